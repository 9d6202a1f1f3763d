"""What a run is: its training settings (:class:`TrainConfig`, checked when built) and its
identity, every setting that changes its result (shape, training settings, corpus and
tokenizer content, grid name, code version) as plain JSON data, with its key (a hash).
Resume and sweep-skip compare identities, so a changed setting reruns or refuses instead of
reusing a result made under other settings.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gqa_lib import cost
from gqa_lib.arch.config import ModelConfig
from gqa_lib.errors import MAX_EXACT, GQAError, check_choice, check_int, check_real
from gqa_lib.train import data as corpora
from gqa_lib.train.data import DEFAULT_CORPUS

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
FLOAT32_MAX = 3.4028234663852886e38  # torch.finfo(torch.float32).max, without importing torch


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. The token budget is `steps` x `batch_size` x `context_len`;
    :meth:`with_budget` derives `steps` from tokens-per-parameter or an explicit token count."""

    steps: int = 200
    batch_size: int = 16
    context_len: int = 256
    lr: float = 3e-3  # max LR of the WSD schedule
    min_lr_ratio: float = 0.1  # decay ends at 10% of max LR (paper)
    warmup_frac: float = 0.1  # linear warm-up over 10% of steps (paper)
    decay_frac: float = 0.2  # cosine decay over the last 20% (paper)
    weight_decay: float = 0.1  # matrices only
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 50
    eval_tokens: int = 32_768
    seed: int = 0
    data: str = DEFAULT_CORPUS
    device: str = "auto"  # auto | cpu | cuda | mps
    # auto: bf16 autocast on a GPU with bf16 tensor cores (compute capability >= 8.0), fp16
    # autocast with a gradient scaler on an older one (Colab's T4), fp32 elsewhere
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    compile: bool = False
    probe_samples: int = 0  # recall-probe sequences evaluated at the end (0 = off)
    # MQAR (gqa_lib.train.mqar): expected share of training sequences replaced by recall
    # tasks, and evaluation sequences per number of pairs at the end (0 = off)
    mqar_share: float = 0.0
    mqar_eval: int = 0
    # the final evaluation also covers the whole validation split, by position within the
    # context and by source (gqa_lib.train.evaluate.evaluate_full)
    eval_full: bool = False

    def __post_init__(self) -> None:
        for f in ("steps", "batch_size", "context_len", "eval_every", "eval_tokens"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise GQAError(f"{f} must be a positive integer, got {v!r}")
            check_int(f, v, lo=1, hi=MAX_EXACT)
        for f in ("seed", "probe_samples", "mqar_eval"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int):
                raise GQAError(f"{f} must be a non-negative integer, got {v!r}")
            check_int(f, v, lo=0, hi=2**63 - 1 if f == "seed" else 2**20)
        for f in ("lr", "grad_clip"):
            v = getattr(self, f)
            if (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                    or not v > 0):
                raise GQAError(f"{f} must be > 0 (a finite number), got {v!r}")
        for f in ("min_lr_ratio", "warmup_frac", "decay_frac", "weight_decay", "mqar_share"):
            check_real(f, getattr(self, f), lo=0.0, hi=1.0)
        for f in ("beta1", "beta2"):
            check_real(f, getattr(self, f), lo=0.0, hi=1.0, hi_open=True)
        if self.lr / (1 - self.beta1) > FLOAT32_MAX:
            raise GQAError(
                f"lr={self.lr:g} is too large: AdamW's first step moves a weight by up to "
                f"lr / (1 - beta1) = {self.lr / (1 - self.beta1):.3g}, past {FLOAT32_MAX:.4g}, "
                "the largest float32 (the weights' type); choose lr <= "
                f"{FLOAT32_MAX * (1 - self.beta1):.3g}")
        if self.warmup_frac + self.decay_frac > 1:
            raise GQAError("warmup_frac + decay_frac must be <= 1")
        check_choice("device", self.device, ("auto", "cpu", "cuda", "mps"))
        check_choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.data, str) or not self.data:
            raise GQAError(f"data must be a corpus name, a path or hf:NAME, got {self.data!r}")
        for f in ("compile", "eval_full"):
            if not isinstance(getattr(self, f), bool):
                raise GQAError(f"{f} must be true or false, got {getattr(self, f)!r}")
        if self.probe_samples:
            from gqa_lib.train.probe import check_probe_fits

            check_probe_fits(self.context_len)

    @property
    def tokens(self) -> int:
        return self.steps * self.batch_size * self.context_len

    def with_budget(self, model_cfg: ModelConfig, *, tokens: int | None = None,
                    tokens_per_param: float | None = None) -> TrainConfig:
        """Set `steps` from a token budget: explicit, or tokens_per_param x non-embedding N."""
        if (tokens is None) == (tokens_per_param is None):
            raise GQAError("give exactly one of tokens or tokens_per_param")
        if tokens is None:
            tpp = check_real("tokens_per_param", tokens_per_param, lo=0.0, lo_open=True)
            n = float(cost.params_non_embedding(model_cfg))
            tokens = tpp * n
            if not 1 <= tokens <= MAX_EXACT:
                raise GQAError(f"tokens_per_param={tokens_per_param!r} gives {tokens:.3g} "
                               f"tokens for N = {n:,.0f}; choose {1 / n:.3g} to "
                               f"{MAX_EXACT / n:.3g} tokens per parameter (1 to 2**53 tokens)")
            tokens = int(tokens)
        tokens = check_int("tokens", tokens, lo=1, hi=MAX_EXACT)
        steps = max(1, round(tokens / (self.batch_size * self.context_len)))
        return dataclasses.replace(self, steps=steps)



# ----- run identity -------------------------------------------------------------------------
# Bump by hand when a change to the training code (loop, model, data packing) changes the
# numbers a run produces; every run made before then stops matching, so resume and sweep-skip
# refuse or rerun it instead of reusing its result.
TRAIN_CODE_VERSION = 1

# Fields of the identity when it was introduced: always written, so a changed default changes
# the key. A field added later is written only when it differs from its default (a new field's
# default must reproduce the old behaviour), so adding one does not orphan finished runs.
_BASE_MODEL_FIELDS = ("n_layer", "d_model", "n_head", "n_kv_head", "d_head", "d_ff",
                      "vocab_size", "ffn", "tie_embeddings", "norm", "qk_norm", "qkv_bias",
                      "rope_theta", "sliding_window")
_BASE_TRAIN_FIELDS = ("steps", "batch_size", "context_len", "lr", "min_lr_ratio",
                      "warmup_frac", "decay_frac", "weight_decay", "beta1", "beta2",
                      "grad_clip", "eval_every", "eval_tokens", "seed", "data",
                      "probe_samples")
# Where and how a run executes: changes its numbers at the rounding level only; recorded in
# final.json (device, precision, threads, torch_version), not part of the identity (so one
# grid runs unchanged on an H200 in bf16 and on a T4 in fp16). `name` is a label.
_NOT_IDENTITY = ("name", "device", "precision", "compile")


def _identity_fields(obj: Any, base: tuple[str, ...]) -> dict[str, Any]:
    """The identity's fields of a config: every base field, and a later field only where it
    differs from the value it takes when left at its default (the same config built from the
    base fields alone: a field that its config normalises, e.g. a per-layer count derived
    from the shape, is then not mistaken for a setting)."""
    plain = type(obj)(**{f: getattr(obj, f) for f in base})
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if f.name in _NOT_IDENTITY:
            continue
        if isinstance(f.default, float) and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)  # lr = 1 and lr = 1.0 are one setting
        if f.name in base or v != getattr(plain, f.name):
            out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256_of(paths: list[Path], root: Path | None = None) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        name = str(p.relative_to(root)) if root else p.name
        h.update(f"{name}\0{_file_sha256(str(p), st.st_size, st.st_mtime_ns)}\0".encode())
    return h.hexdigest()


def data_identity(source: str) -> dict[str, Any]:
    """The corpus a run trains on: its name plus a SHA-256 of the files it resolves to (and
    of the committed tokenizer when `prepare` uses it). ``hf:`` sources are keyed by name only
    (their content cannot be read offline)."""
    src = str(source)
    ident: dict[str, Any] = {"name": src}
    if src in corpora.CORPORA:
        where = corpora.CORPORA[src]
        target = None if isinstance(where, (list, tuple)) else Path(where)
        files = ([Path(p) for p in where] if target is None else
                 sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir()
                 else [target] if target.is_file() else [])
        if not files:
            raise GQAError(f"shipped corpus {src!r} missing at {where}; is data/ "
                           "checked out?")
        ident["sha256"] = _sha256_of(files)
    elif src.startswith("hf:"):
        ident["sha256"] = None
    else:
        path = Path(src)
        if path.is_dir():
            ident["sha256"] = _sha256_of(sorted(p for p in path.rglob("*") if p.is_file()),
                                         root=path)
        elif path.is_file():
            ident["sha256"] = _sha256_of([path])
        else:
            raise GQAError(f"data source {src!r} is neither a shipped corpus "
                           f"({', '.join(corpora.CORPORA)}), an existing file or folder, "
                           "nor hf:NAME")
    tokenizers = getattr(corpora, "TOKENIZERS", {DEFAULT_CORPUS: corpora.DEFAULT_TOKENIZER})
    if src in tokenizers:  # a shipped corpus brings its committed tokenizer; others train one
        ident["tokenizer_sha256"] = _sha256_of([Path(tokenizers[src])])
    return ident


def run_identity(model_cfg: ModelConfig, tc: TrainConfig, *, grid: str = "") -> dict[str, Any]:
    """Every setting that changes a run's result, as plain JSON data: the model's shape, the
    training settings (budget, batch, context, schedule, optimiser, seed, evaluation, probe),
    the corpus and tokenizer content, the grid name and :data:`TRAIN_CODE_VERSION`."""
    train = _identity_fields(tc, _BASE_TRAIN_FIELDS)
    train["data"] = data_identity(tc.data)
    return {"code_version": TRAIN_CODE_VERSION, "grid": grid,
            "model": _identity_fields(model_cfg, _BASE_MODEL_FIELDS), "train": train}


def run_key(identity: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the identity's canonical JSON (sorted keys)."""
    canon = json.dumps(identity, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def identity_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The settings that differ, as 'train.lr 0.001 -> 0.01' (missing keys shown as -)."""
    a, b = _flatten(old), _flatten(new)
    return [f"{k} {a.get(k, '-')} -> {b.get(k, '-')}" for k in sorted(set(a) | set(b))
            if a.get(k, "-") != b.get(k, "-")]
