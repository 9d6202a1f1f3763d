"""Training loop: AdamW, the paper's WSD schedule, periodic validation, atomic checkpoints,
bitwise-exact resume on CPU, NaN guard, and DDP through torchrun.

Outputs in ``out_dir``: ``config.json`` (model and training settings), ``metrics.jsonl`` (one
object per evaluation: step, tokens, train_loss, val_loss, val_bpb, lr, wall_s),
``ckpt.pt`` (loads with ``torch.load(..., weights_only=True)``) and ``final.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from gqa_lib import cost
from gqa_lib.arch.config import ModelConfig
from gqa_lib.train.data import TokenData, batch_windows, eval_windows, prepare
from gqa_lib.errors import GQAError, check_choice
from gqa_lib.units import format_context
from gqa_lib.io import (RUN_LOCK, atomic_write_bytes, atomic_write_text, check_writable_dir,
                        folder_lock, orphan_temporary)
from gqa_lib.train.settings import PRECISIONS, TrainConfig, identity_diff, run_identity, run_key
from gqa_lib.train import mqar
from gqa_lib.train.model import GQATransformer


class TrainingDiverged(GQAError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def lr_at(step: int, tc: TrainConfig) -> float:
    """WSD: linear warm-up, constant, cosine decay to min_lr_ratio x lr over the last part."""
    warm = max(1, round(tc.warmup_frac * tc.steps))
    decay = round(tc.decay_frac * tc.steps)
    if step < warm:
        return tc.lr * (step + 1) / warm
    start = tc.steps - decay
    if decay == 0 or step < start:
        return tc.lr
    progress = (step - start + 1) / decay
    floor = tc.lr * tc.min_lr_ratio
    return floor + (tc.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GQAError("device='cuda' requested but no CUDA device is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()):
        raise GQAError("device='mps' requested but no MPS device (an Apple-silicon GPU) is "
                       "available")
    return torch.device(name)


def pick_precision(name: str, device: torch.device) -> str:
    """The precision a run trains in: `name`, or for "auto" bf16 on a CUDA device of compute
    capability >= 8.0 (bf16 tensor cores; ``torch.cuda.is_bf16_supported()`` also says yes
    where bf16 is only emulated, e.g. on a T4), fp16 on an older CUDA device, fp32 elsewhere."""
    check_choice("precision", name, PRECISIONS)
    if name != "auto":
        return name
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.get_device_capability(device) >= (8, 0) else "fp16"


def autocast_for(precision: str, device: torch.device) -> torch.autocast | None:
    """The autocast context of a precision (None for fp32)."""
    if precision == "fp32":
        return None
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def make_optimizer(model: torch.nn.Module, tc: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (dim >= 2) only; norms and biases are not decayed."""
    params = list(dict.fromkeys(p for p in model.parameters() if p.requires_grad))
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": tc.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    kw = {"fused": True} if next(model.parameters()).is_cuda else {"foreach": True}
    return torch.optim.AdamW(groups, lr=tc.lr, betas=(tc.beta1, tc.beta2), **kw)


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: TokenData, tc: TrainConfig, device: torch.device,
             amp: torch.autocast | None = None) -> float:
    """Mean validation loss (nats/token) over fixed windows of the validation stream."""
    model.eval()
    x_all, y_all = eval_windows(data.val, tc.context_len, tc.eval_tokens)
    total, count = 0.0, 0
    for i in range(0, len(x_all), tc.batch_size):
        x = torch.from_numpy(x_all[i:i + tc.batch_size]).to(device)
        y = torch.from_numpy(y_all[i:i + tc.batch_size]).to(device)
        with amp or contextlib.nullcontext():
            _, loss = model(x, y)
        total += loss.item() * y.numel()
        count += y.numel()
    model.train()
    return total / count


def _dist_info() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) otherwise."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        return int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(
            os.environ["WORLD_SIZE"])
    return 0, 0, 1


def train(model_cfg: ModelConfig, tc: TrainConfig, out_dir: str | Path, *,
          resume: bool = False, progress: bool = True, progress_every_s: float = 10.0,
          stop_after: int | None = None, grid: str = "") -> dict[str, Any]:
    """:func:`_train` holding the run folder's lock (rank 0, which writes every file): a
    second process training into the same folder is refused in one line, not interleaved."""
    out = Path(out_dir)
    args = dict(resume=resume, progress=progress, progress_every_s=progress_every_s,
                stop_after=stop_after, grid=grid)
    if _dist_info()[0] != 0:
        return _train(model_cfg, tc, out, **args)
    check_writable_dir(out, "--out")
    with folder_lock(out, "--out"):
        return _train(model_cfg, tc, out, **args)


def _train(model_cfg: ModelConfig, tc: TrainConfig, out_dir: str | Path, *,
           resume: bool = False, progress: bool = True, progress_every_s: float = 10.0,
           stop_after: int | None = None, grid: str = "") -> dict[str, Any]:
    """Train `model_cfg` with `tc`, writing to `out_dir`; return the final.json dict.

    ``resume=True`` continues from ``out_dir/ckpt.pt`` and reaches the same result as an
    uninterrupted run (bitwise on CPU with the same thread count). ``stop_after`` ends the
    run after that many steps (a deliberate interruption, for tests and time-boxed jobs).
    Progress is a bar on a terminal, else a line every ``progress_every_s`` seconds.
    The run's identity (:func:`run_identity`, with `grid` the sweep's name) is stored in
    ckpt.pt and final.json; resuming a folder whose stored identity differs is refused with
    the differing settings named, so no result is ever returned under another run's label.
    Under torchrun each rank draws its own batches and rank 0 writes every file.
    """
    out = Path(out_dir)
    rank, local_rank, world = _dist_info()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = pick_device(tc.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not isinstance(model_cfg, ModelConfig) or not isinstance(tc, TrainConfig):
        raise GQAError("train() needs a ModelConfig and a TrainConfig")
    check_writable_dir(out, "--out")
    identity = run_identity(model_cfg, tc, grid=grid)
    key = run_key(identity)
    ckpt_path = out / "ckpt.pt"
    state = None
    if resume and ckpt_path.is_file():
        state = _load_state(ckpt_path, device)
        _check_same_run(out, _stored_identity(state), identity, model_cfg, tc,
                        legacy=state.get("config_json"))
    elif resume and (out / "final.json").is_file():
        final = _read_final(out / "final.json")
        _check_same_run(out, final.get("run_identity"), identity, model_cfg, tc)
        return final
    elif resume:
        raise GQAError(f"--resume: no checkpoint at {ckpt_path}")
    elif ckpt_path.exists() or (out / "final.json").exists():
        raise GQAError(f"{out} already holds a run; pass --resume to continue it or choose "
                       "another --out")
    else:
        _refuse_foreign_files(out)
    if rank == 0:  # before the data are prepared: an uncreatable --out fails in seconds
        out.mkdir(parents=True, exist_ok=True)
    data = prepare(tc.data)
    if tc.batch_size * tc.context_len * world > len(data.train):
        raise GQAError(f"batch_size={tc.batch_size:,} x context_len={format_context(tc.context_len)}"
                       + (f" x {world} processes" if world > 1 else "")
                       + f" tokens per step is more than the training corpus holds "
                       f"({len(data.train):,} tokens); choose a smaller batch_size (--batch-size)")
    if data.vocab_size > model_cfg.vocab_size:
        raise GQAError(f"vocab_size={model_cfg.vocab_size} is smaller than the tokenizer's "
                       f"{data.vocab_size}")

    torch.manual_seed(tc.seed)
    model = GQATransformer(model_cfg).to(device)
    opt = make_optimizer(model, tc)
    step, history, wall_before = 0, [], 0.0
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise GQAError(f"--resume: {ckpt_path} does not fit this model "
                           f"({str(e).splitlines()[0][:200]}); {_CKPT_ADVICE}") from None
        step, wall_before = int(state["step"]), float(state["wall_s"])
        history = state["history"]
    config_json = json.dumps({"model": model_cfg.to_dict(), "train": dataclasses.asdict(tc)},
                             indent=2)
    if rank == 0:
        atomic_write_text(out / "config.json", config_json + "\n")
        atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))

    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None)
    fwd = torch.compile(ddp_model) if tc.compile else ddp_model
    precision = pick_precision(tc.precision, device)
    amp = autocast_for(precision, device)
    # fp16 needs loss scaling (its range underflows small gradients); its state is checkpointed
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    if scaler is not None and state is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    # what final.json records: "fp16+bf16" for a run resumed in another precision
    used = state.get("precision", precision) if state is not None else precision
    if used.split("+")[-1] != precision:
        used = f"{used}+{precision}"

    good = {"step": step if state is not None else None}

    def checkpoint(wall: float) -> None:
        # Written only after the weights are checked: a NaN/inf never replaces the last
        # finite checkpoint (the loss of the step that produced them may still be finite).
        if not _finite_params(model):
            raise TrainingDiverged(
                f"the weights became non-finite by step {step} (lr="
                f"{lr_at(max(step - 1, 0), tc):.3g}); lower the "
                f"learning rate or check the data. {_last_good(ckpt_path, good['step'])}")
        good["step"] = step
        if rank != 0:
            return
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                 "wall_s": wall, "config_json": config_json,
                 "history_json": json.dumps(history), "identity_json": json.dumps(identity),
                 "precision": used}
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        atomic_write_bytes(ckpt_path, _torch_bytes(state))

    t0 = time.perf_counter()
    bar = _progress(tc.steps, step, progress and rank == 0,
                    tokens_per_step=tc.batch_size * tc.context_len * world,
                    every_s=progress_every_s)
    last_loss = float("nan")
    end = tc.steps if stop_after is None else min(tc.steps, step + stop_after)
    while step < end:
        lr = lr_at(step, tc)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch_windows(data.train, tc.batch_size, tc.context_len, seed=tc.seed,
                             step=step, rank=rank)
        if tc.mqar_share:
            x, y = mqar.mix_into_batch(x, y, tc.mqar_share, vocab_size=model_cfg.vocab_size,
                                       seed=tc.seed, step=step, rank=rank)
        x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        with amp or contextlib.nullcontext():
            _, loss = fwd(x, y)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss.item()} at step {step} (lr={lr:.3g}); lower the learning "
                f"rate or check the data. {_last_good(ckpt_path, good['step'])}")
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
        else:  # clip the true gradients; a step with inf/NaN gradients is skipped
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            scaler.step(opt)
            scaler.update()
        step += 1
        last_loss = loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{last_loss:.3f}", lr=f"{lr:.2e}")
        if step % tc.eval_every == 0 or step == tc.steps:
            val = evaluate(model, data, tc, device, amp)
            if not math.isfinite(val):
                raise TrainingDiverged(
                    f"validation loss became {val} at step {step} (lr={lr:.3g}); lower the "
                    f"learning rate or check the data. {_last_good(ckpt_path, good['step'])}")
            wall = wall_before + time.perf_counter() - t0
            history.append({"step": step, "tokens": step * tc.batch_size * tc.context_len * world,
                            "train_loss": last_loss, "val_loss": val,
                            "val_bpb": data.bits_per_byte(val), "lr": lr, "wall_s": wall})
            if rank == 0:
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(history[-1]) + "\n")
            checkpoint(wall)
    bar.close()
    wall = wall_before + time.perf_counter() - t0
    if step < tc.steps:  # interrupted on purpose: checkpoint so --resume continues here
        checkpoint(wall)
        return {"step": step, "interrupted": True}
    final = _final(model, model_cfg, tc, data, device, history, step, wall, world, amp)
    final.update(run_key=key, run_identity=identity, precision=used)
    if rank == 0:
        atomic_write_text(out / "final.json", json.dumps(final, indent=2) + "\n")
    if world > 1:
        dist.barrier()
    return final


# What a run writes before its first checkpoint: a start stopped there (a diverged step, a
# kill) leaves only these, and a new start in the folder may write over them.
_START_FILES = ("config.json", "metrics.jsonl")


def _refuse_foreign_files(out: Path) -> None:
    """A new run writes config.json and metrics.jsonl into `out`: refused where the folder
    holds anything else, or files of those names that no run of gqa train wrote (a
    config.json without its "model" and "train"), so that no file is written over that
    this command did not write."""
    try:
        # a temporary file of a write killed midway (a checkpoint's) is this command's own
        names = sorted(p.name for p in out.iterdir()
                       if p.name != RUN_LOCK and not orphan_temporary(p.name)) \
            if out.is_dir() else []
    except OSError as e:
        raise GQAError(f"--out {out}: cannot list it ({e.strerror or e})") from None
    if not names:
        return
    foreign = [n for n in names if n not in _START_FILES]
    if not foreign and not _is_run_config(out / "config.json"):
        foreign = ["config.json" if "config.json" in names else names[0]]
    if foreign:
        raise GQAError(f"--out {out} is not empty and holds no run of gqa train (it has "
                       f"{foreign[0]!r}); a run writes config.json and metrics.jsonl there, "
                       "and never over files it did not write: choose a new or empty folder")


def _is_run_config(path: Path) -> bool:
    """Whether `path` is the config.json of a run (what train() writes: model and train)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and set(data) == {"model", "train"}


_CKPT_ADVICE = ("move it away (or delete it) to start the run again, or choose another "
                "--out")
_CKPT_KEYS = {"model": dict, "optimizer": dict, "step": int, "wall_s": float,
              "config_json": str, "history_json": str}


def _load_state(path: Path, device: torch.device | str) -> dict[str, Any]:
    """A checkpoint written by :func:`train`, checked; one-line GQAError for an empty,
    truncated, random or foreign file (weights_only=True: nothing is unpickled as code)."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except OSError as e:
        raise GQAError(f"--resume: cannot read {path} ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 - torch.load fails in many ways on a bad file
        raise GQAError(f"--resume: {path} is not a readable checkpoint (empty, truncated, or "
                       f"not written by gqa train: {type(e).__name__}); {_CKPT_ADVICE}"
                       ) from None
    bad = ([k for k, t in _CKPT_KEYS.items()
            if not isinstance(state.get(k), t if t is not float else (int, float))]
           if isinstance(state, dict) else list(_CKPT_KEYS))
    if not bad:
        try:
            state["history"] = json.loads(state["history_json"])
            json.loads(state["config_json"])
            if not isinstance(state["history"], list) or state["step"] < 0:
                bad = ["history_json"]
        except ValueError:
            bad = ["history_json or config_json"]
    if bad:
        raise GQAError(f"--resume: {path} is not a checkpoint of gqa train (missing or "
                       f"malformed: {', '.join(bad)}); {_CKPT_ADVICE}")
    return state


def _finite_params(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _last_good(ckpt_path: Path, step: int | None) -> str:
    if step is None:
        return "No checkpoint was written before it."
    return f"Last good checkpoint: {ckpt_path} (step {step}), kept."


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


# What a finished run's final.json must hold (the numbers a sweep's row is made of).
_FINAL_NUMBERS = ("val_loss", "val_bpb", "best_val_loss", "best_val_bpb", "train_flops",
                  "wall_s", "tokens_per_s", "threads")


def _read_final(path: Path) -> dict[str, Any]:
    """A finished run's final.json, checked like a checkpoint: one-line GQAError for an
    empty, truncated or foreign file (not a JSON object with finite numbers)."""
    try:
        final = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise GQAError(f"--resume: cannot read {path} ({e.strerror or e})") from None
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        final = None
    ok = isinstance(final, dict) and all(
        isinstance(final.get(k), (int, float)) and not isinstance(final.get(k), bool)
        and math.isfinite(final[k]) for k in _FINAL_NUMBERS)
    if not ok or not isinstance(final.get("device"), str):
        raise GQAError(f"--resume: {path} is not a readable final.json of gqa train (empty, "
                       f"truncated, or missing its results); {_CKPT_ADVICE}")
    return final


def _stored_identity(state: dict[str, Any]) -> dict[str, Any] | None:
    text = state.get("identity_json")
    return json.loads(text) if text else None


def _check_same_run(out: Path, stored: dict[str, Any] | None, identity: dict[str, Any],
                    model_cfg: ModelConfig, tc: TrainConfig, legacy: str | None = None) -> None:
    """Refuse, naming the settings that differ, unless the folder's run is this run.

    Runs written before runs had an identity are compared by their saved config (the
    checkpoint's, else config.json: model and training settings; the data's content and
    the code version were not recorded)."""
    if stored is not None:
        diff = identity_diff(stored, identity)
    else:
        try:
            saved = json.loads(legacy) if legacy else _read_json(out / "config.json")
            diff = identity_diff({"model": saved["model"], "train": saved["train"]},
                                 {"model": model_cfg.to_dict(),
                                  "train": dataclasses.asdict(tc)})
        except (OSError, ValueError, KeyError, TypeError):
            raise GQAError(f"--resume: {out} holds a run without a readable identity or "
                           "config.json; choose another --out") from None
    if diff:
        shown = "; ".join(diff[:6]) + (f"; and {len(diff) - 6} more" if len(diff) > 6 else "")
        raise GQAError(f"--resume: {out} holds a run with other settings ({shown}); "
                       "choose another --out or repeat that run's settings")


def _final(model, model_cfg, tc, data, device, history, step, wall, world, amp):
    tokens = step * tc.batch_size * tc.context_len * world
    best = min(history, key=lambda h: h["val_loss"])
    final = {
        "val_loss": history[-1]["val_loss"], "val_bpb": history[-1]["val_bpb"],
        "best_val_loss": best["val_loss"], "best_val_bpb": best["val_bpb"],
        "step": step, "tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / max(wall, 1e-9),
        "train_flops": float(cost.training_flops(model_cfg, tokens, tc.context_len)),
        "params_non_embedding": int(cost.params_non_embedding(model_cfg)),
        "params_total": int(cost.params_total(model_cfg)),
        "unigram_entropy": data.unigram_entropy(), "device": str(device),
        "world_size": world, "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if tc.mqar_eval:
        final.update(mqar.evaluate(model, data.val, tc.context_len, model_cfg.vocab_size,
                                   per_pairs=tc.mqar_eval, seed=tc.seed, device=device))
    if tc.eval_full:
        from gqa_lib.train.evaluate import evaluate_full

        final.update(evaluate_full(model, data, tc.context_len, tc.batch_size, device, amp))
    if tc.probe_samples:
        from gqa_lib.train.probe import recall_probe

        final.update(recall_probe(model, data.val, tc.context_len, tc.probe_samples,
                                  seed=tc.seed, device=device))
    return final


def _torch_bytes(obj: Any) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _progress(total: int, initial: int, enabled: bool, tokens_per_step: int = 0,
              every_s: float = 10.0):
    """A tqdm bar on a terminal; elsewhere (a log file, a pipe, a notebook's stderr) one
    line now and then, so a long run is never silent (:class:`_ProgressLines`)."""
    from tqdm.auto import tqdm

    if enabled and not sys.stderr.isatty():
        return _ProgressLines(total, initial, tokens_per_step, every_s)
    return tqdm(total=total, initial=initial, disable=not enabled or not sys.stderr.isatty(),
                dynamic_ncols=True, desc="train")


class _ProgressLines:
    """tqdm's update/set_postfix/close as plain lines on stderr: after the first step,
    every ``every_s`` seconds and at the last step, with tokens/s and the time left."""

    def __init__(self, total: int, initial: int, tokens_per_step: int, every_s: float = 10.0):
        self.total, self.initial, self.step = total, initial, initial
        self.tokens_per_step, self.every_s = tokens_per_step, every_s
        self.t0 = self.last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.step += n

    def set_postfix(self, **values: Any) -> None:
        now = time.perf_counter()
        done = self.step - self.initial
        if not (done == 1 or self.step >= self.total or now - self.last >= self.every_s):
            return
        self.last = now
        per_step = (now - self.t0) / max(done, 1)
        left = round(per_step * (self.total - self.step))
        eta = f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
        extra = "".join(f", {k} {v}" for k, v in values.items())
        print(f"train: step {self.step}/{self.total} ({100 * self.step / self.total:.0f}%)"
              f"{extra}, {self.tokens_per_step / max(per_step, 1e-9):,.0f} tokens/s, "
              f"ETA {eta}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[GQATransformer, dict]:
    """Rebuild a trained model from ckpt.pt (weights_only=True: no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise GQAError(f"checkpoint {str(path)!r} does not exist")
    state = _load_state(path, device)
    saved = json.loads(state["config_json"])
    try:
        model = GQATransformer(ModelConfig.from_dict(saved["model"]))
        model.load_state_dict(state["model"])
    except (GQAError, RuntimeError, KeyError, TypeError) as e:
        raise GQAError(f"{path}: its weights do not match its saved config "
                       f"({str(e).splitlines()[0][:200]})") from None
    return model, saved
