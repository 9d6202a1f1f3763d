"""Resumable training sweeps over sizes x head configurations x contexts x seeds.

A grid is a TOML file (parsed as data, never executed)::

    name = "cpu-v1"
    [model]            # ModelConfig fields shared by every run
    d_head = 16
    vocab_size = 2048
    [train]            # TrainConfig fields, plus the budget: tokens, batch_tokens
    tokens = 786432
    batch_tokens = 8192
    [[block]]          # one or more blocks; each is a full cross product
    sizes = [[2, 128], [3, 192]]          # (n_layer, d_model), or (n_layer, d_model, d_head)
    heads = [[8, 8], [8, 1], "llama3"]    # (n_head, n_kv_head); "llama3" = (d/d_head, <=8)
    contexts = [256, 1024]
    seeds = [0]

`run_sweep` appends one CSV row per finished run under a file lock, with an atomic rewrite,
so a killed sweep restarts without losing or duplicating rows; a failed run is recorded as
failed and retried on the next start; ``shard=(i, n)`` runs every n-th run from i.

Each run has an identity (:func:`gqa_lib.train.settings.run_identity`: shape, training settings,
corpus and tokenizer content, grid name, code version) whose hash, ``run_key``, is stored in
its CSV row and names its folder (``runs/GRID/RUN_ID-KEY``). A row is skipped only when its
``run_key`` matches; a finished row of the same run id with another key (an edited grid, a
changed corpus, a bumped code version, or a row written before run keys existed) makes the
sweep refuse before training anything, naming the settings that differ: sweep into a new CSV,
or delete those rows to rerun them. A result is never reused under another label, and no
finished row is silently replaced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import os
import re
import subprocess
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gqa_lib.arch.config import ModelConfig, read_data_file
from gqa_lib.errors import MAX_EXACT, GQAError, check_int, check_real, did_you_mean
from gqa_lib.units import format_context
from gqa_lib.io import (REPO_ROOT, check_writable_dir, check_writable_file, file_lock,
                        read_csv_table, write_csv_rows)

# MQAR accuracy (gqa_lib.train.mqar.evaluate): overall, by number of pairs, by query distance
MQAR_COLUMNS = ["mqar_acc", "mqar_acc_pairs_2", "mqar_acc_pairs_4", "mqar_acc_pairs_8",
                "mqar_acc_pairs_16", "mqar_acc_dist_near", "mqar_acc_dist_mid",
                "mqar_acc_dist_far"]
# the whole validation split (TrainConfig.eval_full): mean, and JSON of the loss by position
# bin and by source (gqa_lib.train.evaluate.evaluate_full)
FULL_EVAL_COLUMNS = ["val_loss_full_nats", "val_loss_by_position", "val_loss_by_source"]
COLUMNS = [
    "run_id", "run_key", "grid", "status", "error", "family", "n_layer", "d_model", "n_head", "n_kv_head",
    "d_head", "d_ff", "vocab_size", "params_non_embedding", "params_total", "tokens", "context",
    "seed", "steps", "batch_size", "lr", "mqar_share", "val_loss_nats", "val_bpb", "best_val_loss_nats",
    "best_val_bpb", "recall_acc", "recall_base_acc", "recall_gain_nats", *MQAR_COLUMNS,
    "train_flops", *FULL_EVAL_COLUMNS,
    "wall_s", "tokens_per_s", "device", "precision", "threads", "torch_version", "git_commit",
    "finished_utc",
]
_TOP_KEYS = ("name", "description", "model", "train", "block")
# A grid's name is a folder under runs/ and a column of its CSV: one plain path component
GRID_NAME = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}"
_BLOCK_KEYS = ("sizes", "heads", "contexts", "seeds")
# `equal_params = true` in a block: every head configuration of a size gets the d_ff that
# gives it the non-embedding (and so, with the same d_model and vocabulary, the total)
# parameters of the block's first head configuration at the shape rule's d_ff; refused when
# they cannot be matched within EQUAL_PARAMS_TOLERANCE. Such runs' ids end in -ff<d_ff>.
# `equal_params_to = [n_head, n_kv_head]` names another reference configuration (one that
# need not run in the block, e.g. because an earlier grid ran it).
# `d_ff_multiple_of = m` with it aligns the widths for GPU matmuls: the first configuration's
# d_ff is rounded up to a multiple of m, every other's matched width to the nearest multiple
# of m, and the tolerance is still checked (m = 64 misses it by up to 6% at d = 128, L = 2:
# one step of 64 moves 3 x 2 x 128 x 64 parameters; m = 8 stays within 0.6% there).
EQUAL_PARAMS_TOLERANCE = 0.01
# A run inside a sweep reports progress (log lines when not on a terminal) this often: a
# CPU run of an hour is never silent, and a short GPU run prints two lines.
PROGRESS_EVERY_S = 60.0
# A size [n_layer, d_model, d_head] sets the head dimension for that size (e.g. d_model / 8
# at each size of a ladder, so that (8, 8) is plain multi-head attention at every size).
# Optional block keys: training settings swept within a block (learning-rate tuning, the MQAR
# mix); each value also names the run (run_id suffix -lr3e-03, -lr1.6e-02, -mq0.1), exactly:
# the shortest scientific form that reads back as the same number.
_BLOCK_SWEEPS = {"lrs": ("lr", "lr"), "mqar_shares": ("mqar_share", "mq")}


def _label(prefix: str, x: float) -> str:
    """`prefix` and `x` in the shortest text that reads back as `x`: lr3e-03, mq0.1, and
    mq0.1234567 where 6 significant digits would round it (`{x:g}` where it does not, so
    existing run ids keep their names)."""
    import numpy as np

    if prefix == "lr":
        text = np.format_float_scientific(x, trim="-", exp_digits=2)
    else:
        text = f"{x:g}" if float(f"{x:g}") == x else repr(float(x))
    if float(text) != x:  # a check of the input, not an assert: python -O keeps it
        raise GQAError(f"cannot label {prefix}={x!r} exactly (got {text!r})")
    return prefix + text
_BUDGET_KEYS = ("tokens", "tokens_per_param", "batch_tokens")


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    family: str  # "grid" (explicit heads), "llama3" (the baseline), or "grid+llama3" (both)
    model: ModelConfig
    train: Any  # TrainConfig (imported lazily: torch)
    run_key: str = ""  # hash of the run's identity (settings.run_key)

    @property
    def folder(self) -> str:
        """The run's folder name: its id and the first 8 digits of its key."""
        return f"{self.run_id}-{self.run_key[:8]}"


def llama3_heads(d_model: int, d_head: int) -> tuple[int, int]:
    """The Llama-3 style baseline: n_head = d_model / d_head, n_kv_head = the largest divisor
    of n_head that is <= 8 (8 when n_head is a multiple of 8, as in Llama 3)."""
    if d_model % d_head:
        raise GQAError(f"llama3 heads need d_model={d_model} divisible by d_head={d_head}")
    n_head = d_model // d_head
    return n_head, max(k for k in range(1, 9) if n_head % k == 0)


def _check_keys(where: str, got: Iterable[str], allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    for k in got:
        if k not in allowed:
            raise GQAError(f"{where}: unknown key {k!r}{did_you_mean(k, allowed)}; "
                           f"allowed: {', '.join(allowed)}")


def _int_list(where: str, v: Any, lo: int = 0) -> list[int]:
    if not isinstance(v, list) or not v or not all(
            isinstance(x, int) and not isinstance(x, bool) and lo <= x <= MAX_EXACT for x in v):
        # 2**53: the largest whole number a CSV column read as float keeps exactly
        raise GQAError(f"{where} must be a non-empty list of integers in {lo}..2**53, got {v!r}")
    return v


def _table(where: str, v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise GQAError(f"{where} must be a table of fields, got {v!r}")
    return dict(v)


def load_grid(path: str | Path) -> tuple[str, list[RunSpec]]:
    """Parse and expand a grid file into run specs (validated, deduplicated, ordered)."""
    from gqa_lib.train.loop import TrainConfig

    path = Path(path)
    if path.suffix.lower() != ".toml":
        raise GQAError(f"grid file {str(path)!r} must be a .toml file")
    g = read_data_file(path)
    _check_keys(str(path), g, _TOP_KEYS)
    name = g.get("name")
    if not isinstance(name, str) or not name:
        raise GQAError(f"{path}: the grid needs a non-empty string `name`")
    if not re.fullmatch(GRID_NAME, name):
        raise GQAError(f"{path}: name={name!r:.60} must be one plain folder name (the runs go "
                       "to runs/NAME): ASCII letters, digits, '-', '_' and '.', not starting with "
                       "'.', at most 100 characters")
    model_base = _table(f"{path} [model]", g.get("model", {}))
    train_base = _table(f"{path} [train]", g.get("train", {}))
    tfields = [f.name for f in dataclasses.fields(TrainConfig)]
    _check_keys(f"{path} [train]", train_base, tfields + list(_BUDGET_KEYS))
    tokens = train_base.pop("tokens", None)
    per_param = train_base.pop("tokens_per_param", None)
    batch_tokens = train_base.pop("batch_tokens", None)
    if (tokens is None) == (per_param is None) or batch_tokens is None:
        raise GQAError(f"{path} [train]: needs `batch_tokens` and one of `tokens` (the same "
                       "budget for every run) or `tokens_per_param` (x each run's "
                       "non-embedding parameters)")
    for key, v in (("tokens", tokens), ("batch_tokens", batch_tokens)):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int):
            raise GQAError(f"{path} [train]: {key} must be a positive integer, got {v!r}")
        check_int(f"{path} [train]: {key}", v, lo=1, hi=MAX_EXACT)
    if per_param is not None:
        check_real(f"{path} [train]: tokens_per_param", per_param, lo=0.0, lo_open=True,
                   hi=1e6)
    budget = {"tokens": tokens} if per_param is None else {"tokens_per_param": per_param}
    try:
        TrainConfig(**train_base)  # the shared fields' types and ranges, once, up front
    except GQAError as e:
        raise GQAError(f"{path} [train]: {e}") from None
    blocks = g.get("block")
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, dict) for b in blocks):
        raise GQAError(f"{path}: needs at least one [[block]] table")
    specs: dict[str, RunSpec] = {}
    for bi, b in enumerate(blocks):
        where = f"{path} block {bi + 1}"
        _check_keys(where, b, _BLOCK_KEYS + tuple(_BLOCK_SWEEPS)
                    + ("equal_params", "equal_params_to", "d_ff_multiple_of"))
        equal = b.get("equal_params", False)
        if not isinstance(equal, bool):
            raise GQAError(f"{where}: equal_params must be true or false, got {equal!r}")
        ref_heads = b.get("equal_params_to")
        if ref_heads is not None:
            if not equal:
                raise GQAError(f"{where}: equal_params_to needs equal_params = true")
            if not (isinstance(ref_heads, list) and len(ref_heads) == 2):
                raise GQAError(f"{where}: equal_params_to must be [n_head, n_kv_head], "
                               f"got {ref_heads!r}")
            _int_list(f"{where}: equal_params_to", ref_heads, lo=1)
        multiple = b.get("d_ff_multiple_of", 1)
        if "d_ff_multiple_of" in b and not equal:
            raise GQAError(f"{where}: d_ff_multiple_of needs equal_params = true")
        if (isinstance(multiple, bool) or not isinstance(multiple, int)
                or not 1 <= multiple <= 4096):
            raise GQAError(f"{where}: d_ff_multiple_of must be an integer in 1..4096, "
                           f"got {multiple!r}")
        missing = [k for k in _BLOCK_KEYS if k not in b]
        if missing:
            raise GQAError(f"{where}: missing {', '.join(missing)}")
        for key in ("sizes", "heads"):
            if not isinstance(b[key], list) or not b[key]:
                raise GQAError(f"{where}: {key} must be a non-empty list, got {b[key]!r}")
        for size in b["sizes"]:
            if not (isinstance(size, list) and len(size) in (2, 3)):
                raise GQAError(f"{where}: each size is [n_layer, d_model] or [n_layer, "
                               f"d_model, d_head], got {size!r}")
            _int_list(f"{where}: size {size!r}", size, lo=1)
        for head in b["heads"]:
            if head != "llama3":
                if not (isinstance(head, list) and len(head) == 2):
                    raise GQAError(f"{where}: each head entry is [n_head, n_kv_head] or "
                                   f"\"llama3\", got {head!r}")
                _int_list(f"{where}: heads {head!r}", head, lo=1)
        # Order: context, seed, heads, size, so a sweep stopped early holds whole size
        # ladders (what a fit needs) for the first contexts rather than a few sizes of all.
        sweeps = [_setting_list(f"{where} {key}", b[key], field, label)
                  for key, (field, label) in _BLOCK_SWEEPS.items() if key in b]
        for ctx, seed, extra, head, size in itertools.product(
                _int_list(f"{where} contexts", b["contexts"], lo=1),
                _int_list(f"{where} seeds", b["seeds"]), _combinations(sweeps), b["heads"],
                b["sizes"]):
            overrides, suffix = extra
            spec = _spec(where, name, {**model_base}, {**train_base, **overrides},
                         size, head, ctx, seed, budget, batch_tokens, suffix,
                         match=(ref_heads or b["heads"][0]) if equal else None, multiple_of=multiple)
            prev = specs.get(spec.run_id)
            if prev is None:
                specs[spec.run_id] = spec
            elif prev.run_key != spec.run_key:  # one id, two settings: one would be lost
                raise GQAError(f"{where}: two runs with other settings get the same run id "
                               f"{spec.run_id!r} (e.g. swept values that differ only past "
                               "the digits of their label); make the values distinct")
            elif spec.family not in prev.family.split("+"):
                # e.g. the llama3 baseline coinciding with an explicit (8, 8)
                specs[spec.run_id] = dataclasses.replace(
                    prev, family=f"{prev.family}+{spec.family}")
    return name, list(specs.values())


def _setting_list(where: str, v: Any, field: str, label: str) -> list[tuple[str, float, str]]:
    if not isinstance(v, list) or not v or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        raise GQAError(f"{where} must be a non-empty list of numbers, got {v!r}")
    return [(field, float(x), _label(label, float(x))) for x in v]


def _combinations(sweeps: list[list[tuple[str, float, str]]]) -> list[tuple[dict, str]]:
    """Every combination of the block's swept settings: (overrides, run_id suffix)."""
    return [({f: x for f, x, _ in combo}, "".join(f"-{lab}" for _, _, lab in combo))
            for combo in itertools.product(*sweeps)]


def _model(where, model_base, size, head) -> tuple[ModelConfig, str]:
    """The model of one (size, heads) entry and its family ("grid" or "llama3")."""
    n_layer, d_model = size[:2]
    if len(size) == 3:
        model_base = {**model_base, "d_head": size[2]}
    d_head = model_base.get("d_head")
    if head == "llama3":
        if d_head is None:
            raise GQAError(f"{where}: 'llama3' heads need [model] d_head")
        n_head, n_kv_head = llama3_heads(d_model, d_head)
        family = "llama3"
    elif isinstance(head, list) and len(head) == 2:
        n_head, n_kv_head = head
        family = "grid"
    else:
        raise GQAError(f"{where}: each head entry is [n_head, n_kv_head] or \"llama3\", "
                       f"got {head!r}")
    try:
        return ModelConfig.from_dict({**model_base, "n_layer": n_layer, "d_model": d_model,
                                      "n_head": n_head, "n_kv_head": n_kv_head}), family
    except GQAError as e:
        raise GQAError(f"{where}: {e}") from None


def _match_params(where: str, model: ModelConfig, ref: ModelConfig,
                  multiple_of: int = 1) -> ModelConfig:
    """`model` with the d_ff (a multiple of `multiple_of`, the nearest) that gives it `ref`'s
    parameters (EQUAL_PARAMS_TOLERANCE)."""
    from gqa_lib import cost

    target = int(cost.params_non_embedding(ref))
    try:
        d_ff = cost.d_ff_for_params(model, target)
    except GQAError as e:
        raise GQAError(f"{where}: equal_params: {e}") from None
    d_ff = max(multiple_of, multiple_of * round(d_ff / multiple_of))
    matched = dataclasses.replace(model, d_ff=d_ff)
    for what, count in (("non-embedding", cost.params_non_embedding),
                        ("total", cost.params_total)):
        a, b = int(count(matched)), int(count(ref))
        if abs(a - b) > EQUAL_PARAMS_TOLERANCE * b:
            raise GQAError(f"{where}: equal_params: heads ({model.n_head}, {model.n_kv_head}) "
                           f"reach {a:,} {what} parameters against {b:,} (more than "
                           f"{EQUAL_PARAMS_TOLERANCE:.0%} apart"
                           + (f"; d_ff_multiple_of = {multiple_of} may be too coarse"
                              if multiple_of > 1 else "") + ")")
    return matched


def _spec(where, grid, model_base, train_base, size, head, ctx, seed, budget, batch_tokens,
          suffix="", match=None, multiple_of=1):
    from gqa_lib.arch.config import aligned
    from gqa_lib.train.loop import TrainConfig
    from gqa_lib.train.model import check_buildable
    from gqa_lib.train.settings import run_identity, run_key

    n_layer, d_model = size[:2]
    model, family = _model(where, model_base, size, head)
    try:  # refused here, so that a dry run never lists a run that cannot train
        check_buildable(model)
    except GQAError as e:
        raise GQAError(f"{where} [model]: {e}") from None
    n_head, n_kv_head = model.n_head, model.n_kv_head
    if match is not None:
        default_ff = model.d_ff
        ref = aligned(_model(where, model_base, size, match)[0], multiple_of)
        model = _match_params(where, model, ref, multiple_of)
        if model.d_ff != default_ff:
            suffix = f"-ff{model.d_ff}{suffix}"
    if batch_tokens % ctx:
        raise GQAError(f"{where}: batch_tokens={batch_tokens} is not a multiple of context "
                       f"{format_context(ctx)}")
    try:
        tc = TrainConfig(**{**train_base, "context_len": ctx, "seed": seed,
                            "batch_size": batch_tokens // ctx}).with_budget(model, **budget)
    except GQAError as e:
        raise GQAError(f"{where} (context {format_context(ctx)}): {e}") from None
    run_id = (f"L{n_layer}-d{d_model}-h{n_head}-kv{n_kv_head}-dh{model.d_head}-T{ctx}-s{seed}"
              f"{suffix}")
    model = dataclasses.replace(model, name=run_id)
    return RunSpec(run_id, family, model, tc, run_key(run_identity(model, tc, grid=grid)))


def git_commit() -> str:
    """The checkout's commit (``-dirty`` with uncommitted changes to tracked files);
    ``$GQA_COMMIT`` where set (a copy of the repository without ``.git``, e.g. on a lent GPU)."""
    if os.environ.get("GQA_COMMIT"):
        return os.environ["GQA_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout
        return (sha + ("-dirty" if dirty.strip() else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise GQAError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise GQAError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


def read_sweep_csv(csv_path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a sweep CSV, checked: UTF-8, a header holding run_id and status
    (a file without one is refused, not read as data); ([], []) when it does not exist."""
    header, rows = read_csv_table(csv_path)
    if (header or rows) and not {"run_id", "status"} <= set(header):
        raise GQAError(f"{csv_path}: not a sweep CSV (its header {header[:4]}... lacks "
                       "run_id and status); give --out a new file or a sweep's CSV")
    return header, rows


def is_finished(row: dict[str, str | None]) -> bool:
    """A row of a finished run: status ok and its loss a finite number. A row cut short
    (a truncated file: status ok, no numbers) is not, so the sweep runs it again and
    replaces it."""
    import math

    try:
        return row.get("status") == "ok" and math.isfinite(float(row.get("val_loss_nats")))
    except (TypeError, ValueError):
        return False


def record(csv_path: Path, row: dict[str, Any]) -> None:
    """Insert or replace the row of `row['run_id']`, atomically and under a lock. Columns the
    sweep does not own (e.g. a `notes` column a user added) are kept, after COLUMNS."""
    with file_lock(csv_path):
        header, rows = read_sweep_csv(csv_path)
        rows = [r for r in rows if r["run_id"] != row["run_id"]]
        rows.append(row)
        write_csv_rows(csv_path, rows, COLUMNS + [c for c in header if c not in COLUMNS])


def _row(spec: RunSpec, grid: str, commit: str, final: dict[str, Any] | None,
         error: str = "") -> dict:
    from gqa_lib import cost

    m, tc = spec.model, spec.train
    row = {
        "run_id": spec.run_id, "run_key": spec.run_key, "grid": grid, "status": "ok" if final else "failed",
        "error": error, "family": spec.family, "n_layer": m.n_layer, "d_model": m.d_model,
        "n_head": m.n_head, "n_kv_head": m.n_kv_head, "d_head": m.d_head, "d_ff": m.d_ff,
        "vocab_size": m.vocab_size, "params_non_embedding": cost.params_non_embedding(m),
        "params_total": cost.params_total(m), "tokens": tc.tokens, "context": tc.context_len,
        "seed": tc.seed, "steps": tc.steps, "batch_size": tc.batch_size, "lr": tc.lr,
        "mqar_share": tc.mqar_share, "git_commit": commit,
        "finished_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if final:
        row.update({
            "val_loss_nats": final["val_loss"], "val_bpb": final["val_bpb"],
            "best_val_loss_nats": final["best_val_loss"], "best_val_bpb": final["best_val_bpb"],
            "recall_acc": final.get("recall_acc", ""),
            "recall_base_acc": final.get("recall_base_acc", ""),
            "recall_gain_nats": final.get("recall_gain_nats", ""),
            **{c: final.get(c, "") for c in MQAR_COLUMNS},
            **{c: (json.dumps(final[c], separators=(",", ":")) if isinstance(final.get(c), dict)
                   else final.get(c, "")) for c in FULL_EVAL_COLUMNS},
            "train_flops": final["train_flops"], "wall_s": round(final["wall_s"], 2),
            "tokens_per_s": round(final["tokens_per_s"], 1), "device": final["device"],
            "precision": final.get("precision", ""), "threads": final["threads"],
            "torch_version": final["torch_version"],
        })
    return {k: (int(v) if hasattr(v, "dtype") and v.dtype.kind in "iu" else v)
            for k, v in row.items()}


def run_sweep(grid_path: str | Path, out_csv: str | Path, *, runs_dir: str | Path | None = None,
              shard: tuple[int, int] = (0, 1), keep_checkpoints: bool = False,
              dry_run: bool = False, estimate_for: str = "auto",
              log: Callable[[str], None] = print) -> dict[str, int]:
    """Run every unfinished run of the grid (this shard's share); return counts by outcome.

    The start message gives the estimated time of the runs to go on the device they will
    use (:mod:`gqa_lib.train.estimate`), or on `estimate_for` ("h200", "t4", "cpu"); a dry
    run lists each run's estimate, the total by part, how it is made and the totals on
    every device kind, and trains nothing."""
    from gqa_lib.train import estimate
    from gqa_lib.train.loop import train

    grid, specs = load_grid(grid_path)
    commit = git_commit()  # the code this process runs, read once at start
    out_csv, runs_dir = Path(out_csv), Path(runs_dir) if runs_dir else REPO_ROOT / "runs" / grid
    if not dry_run:  # checked before the first run trains, not after it
        check_writable_file(out_csv, "--out")
        check_writable_dir(runs_dir, "--runs-dir")
    i, n = shard
    mine = [s for k, s in enumerate(specs) if k % n == i]
    ok = {r["run_id"]: r for r in read_sweep_csv(out_csv)[1] if r.get("status") == "ok"}
    _refuse_changed(out_csv, grid, [(s, ok[s.run_id]) for s in mine if s.run_id in ok
                                    and ok[s.run_id].get("run_key") != s.run_key])
    done = {k for k, r in ok.items() if is_finished(r)}  # a truncated row is run again
    todo = [s for s in mine if s.run_id not in done]
    counts = {"total": len(mine), "skipped": len(mine) - len(todo), "ok": 0, "failed": 0}
    if estimate_for == "auto":
        kind, note = estimate.detect_kind(todo[0].train.device if todo else "auto")
    else:
        kind, note = estimate.check_kind(estimate_for), f"{estimate_for} (--estimate-for)"
    est = estimate.estimate_sweep([(s.model, s.train) for s in todo], kind)
    log(f"sweep {grid}: {len(specs)} runs in grid, {len(mine)} in shard {i}/{n}, "
        f"{counts['skipped']} already done, {len(todo)} to run -> {out_csv}; estimated "
        f"{estimate.format_s(est.total_s)} on {note}")
    for k, spec in enumerate(todo, 1):
        log(f"[{k}/{len(todo)}] {spec.run_id} ({spec.family}, {spec.train.steps} steps)"
            + (f" ~{est.runs[k - 1].total_s:.1f} s" if dry_run else ""))
        if dry_run:
            if k == len(todo):
                for line in estimate.sweep_lines([(s.model, s.train) for s in todo], kind,
                                                 note):
                    log(line)
            continue
        run_dir = runs_dir / spec.folder
        try:
            final = train(spec.model, spec.train, run_dir,
                          resume=(run_dir / "ckpt.pt").exists() or (run_dir / "final.json").exists(),
                          progress_every_s=PROGRESS_EVERY_S, grid=grid)
            record(out_csv, _row(spec, grid, commit, final))
            counts["ok"] += 1
            log(f"    val_loss {final['val_loss']:.4f} in {final['wall_s']:.0f} s")
            if not keep_checkpoints:
                (run_dir / "ckpt.pt").unlink(missing_ok=True)
        except (GQAError, RuntimeError, ValueError) as e:
            msg = f"{type(e).__name__}: {e}".replace("\n", " ")[:500]
            record(out_csv, _row(spec, grid, commit, None, msg))
            counts["failed"] += 1
            log(f"    FAILED: {msg}")
            if not isinstance(e, GQAError):
                log(traceback.format_exc(limit=3))
    if dry_run:  # what --json prints of a dry run: the estimates, not only empty counts
        runs = [(s.model, s.train) for s in todo]
        counts["estimate_s"] = {k: estimate.estimate_sweep(runs, k).total_s
                                for k in estimate.KINDS} if runs else {}
        counts["estimate_device"] = kind
    return counts


# CSV columns that hold a setting of the run, compared to name what changed in a refusal.
_SETTING_COLUMNS = ("grid", "n_layer", "d_model", "n_head", "n_kv_head", "d_head", "d_ff",
                    "vocab_size", "tokens", "context", "seed", "steps", "batch_size", "lr",
                    "mqar_share")


def _refuse_changed(out_csv: Path, grid: str, changed: list[tuple[RunSpec, dict]]) -> None:
    """Refuse (GQAError) when finished rows of these runs were made with other settings."""
    if not changed:
        return
    spec, row = changed[0]
    if not row.get("run_key"):
        why = "it has no run_key (written before runs had an identity)"
    else:
        new = _row(spec, grid, "", None)  # the settings columns, as this grid gives them
        diff = [f"{c} {row.get(c, '-')} -> {new[c]}" for c in _SETTING_COLUMNS
                if not _same_value(row.get(c, ""), new[c])]
        why = ("settings differ: " + ", ".join(diff) if diff else
               "settings not in the CSV differ (schedule, eval, data, or code version)")
    raise GQAError(
        f"{out_csv}: {len(changed)} finished run(s) were made with other settings than the "
        f"grid now gives, e.g. {spec.run_id}: {why}; refusing to reuse or overwrite them: "
        "sweep into a new --out CSV, or delete those rows to rerun them")


def _same_value(text: str, value: Any) -> bool:
    try:
        return float(text) == float(value)
    except (TypeError, ValueError):
        return str(text) == str(value)
