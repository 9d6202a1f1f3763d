"""How long a sweep will take on a device, before it runs: what `gqa sweep` prints at its
start and, per run, with ``--dry-run``.

A run's time is its training steps, its evaluations and a fixed cost; a sweep adds the
process start and one cold preparation of each corpus:

- **training**: ``steps x (step_overhead + batch_tokens x s_token)``, with ``s_token``, the
  seconds per training token, a power law in the training FLOPs per token
  ``F = cost.training_flops(model, 1, T) + 6 d V`` (the LM head included, as the
  measurements count it): ``s_token = a F**b``, fitted by least squares on log s_token.
  ``h200`` is fitted on the measured H200 tiny-training points of
  ``data/bench/h200-2026-12-04.json`` (bf16 autocast, eager, T = 2,048, 262,144-token batches)
  with at most :data:`H200_FIT_MAX_PARAMS` non-embedding parameters, the range of the GPU
  ladders here; ``cpu`` on this project's CPU sweep rows (``data/sweeps/cpu-v2.csv``: fp32,
  one thread of a loaded 2-core machine, 4,096-token batches); ``t4`` is the H200 fit slowed
  by a datasheet ratio (:data:`T4_SLOWDOWN`, not measured). :func:`describe` prints each
  fit's error on the points it was fitted on.
- **step overhead** (GPU only; on the CPU it is inside the fitted rows): the host-side
  dispatch of a training step, ~230 PyTorch operations per layer (counted on the CPU with a
  dispatch mode) at an assumed ~10 us each, plus two synchronisations:
  :data:`STEP_OVERHEAD_S` + :data:`LAYER_OVERHEAD_S` per layer. **Assumed, not measured**;
  the measured 262K-token steps (40-60 ms at 3-4 layers) bound it from above. Counted in
  full on top of the compute (no overlap), so the estimate errs long; the share of it already
  inside the fitted 262K-token steps is taken out.
- **evaluation**: every ``eval_every`` steps a forward pass over ``eval_tokens`` and a
  checkpoint, and at the end the whole validation split when ``eval_full`` is set
  (:data:`FULL_EVAL_TOKENS`), each token at :data:`EVAL_SPEEDUP` x the training speed (a
  forward pass is a third of a training step's FLOPs; half its speed is assumed).
- **fixed**: :data:`RUN_FIXED_S` per run (loading the cached tokens, building the model,
  writing its files), :data:`START_S` per process and :data:`PREPARE_COLD_S` per corpus (the
  measured cold ``prepare("pd")`` of the 2-core machine, data/README.md).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gqa_lib import cost
from gqa_lib.arch.config import ModelConfig
from gqa_lib.errors import GQAError, check_choice
from gqa_lib.io import REPO_ROOT, read_csv_table
from gqa_lib.units import format_heads

H200_MEASURED = REPO_ROOT / "data" / "bench" / "h200-2026-12-04.json"
CPU_MEASURED = REPO_ROOT / "data" / "sweeps" / "cpu-v2.csv"
H200_FIT_MAX_PARAMS = 8_000_000
H200_BATCH_TOKENS = 262_144  # the measured steps' batch
# NVIDIA datasheets: H200 SXM 989 dense bf16 TFLOP/s and 4.8 TB/s; T4 65 fp16 TFLOP/s (tensor
# cores) and 320 GB/s. Both ratios are ~15; tiny models are bound by neither, so this is rough.
T4_SLOWDOWN = 15.0
STEP_OVERHEAD_S = 1e-3
LAYER_OVERHEAD_S = 2.5e-3
EVAL_SPEEDUP = 1.5
FULL_EVAL_TOKENS = 420_000  # the pd validation split: 417,198 tokens
# A run is never estimated faster than its FLOPs at the device's dense bf16 peak (datasheet:
# the H200's from data/hardware/accelerators.toml, the T4's 65 TFLOP/s quoted above): the
# power law, extrapolated to large models, would otherwise pass it. The CPU has no peak here.
T4_PEAK_FLOPS_PER_S = 65e12
RUN_FIXED_S = {"h200": 2.0, "t4": 4.0, "cpu": 1.0}
START_S = {"h200": 20.0, "t4": 30.0, "cpu": 5.0}
PREPARE_COLD_S = 36.0
KINDS = ("h200", "t4", "cpu")


def flops_per_token(model: ModelConfig, context_len: int) -> float:
    """Training FLOPs per token: cost.training_flops (6 N + attention, eq. 10-11) plus the
    LM head's 6 d V, the count the H200 measurements use for their achieved FLOP/s."""
    return (float(cost.training_flops(model, 1, context_len))
            + 6.0 * model.d_model * model.vocab_size)


@dataclass(frozen=True)
class Throughput:
    """Seconds per training token ``a * F**b`` (F = :func:`flops_per_token`) on one device
    kind, with the points it was fitted on and its relative error on each."""

    kind: str
    a: float
    b: float
    slowdown: float  # x the fitted device (t4: the datasheet ratio)
    points: tuple[tuple[str, float, float], ...]  # (label, FLOPs per token, measured s/token)
    source: str

    def s_per_token(self, flops: float) -> float:
        return self.slowdown * self.a * flops ** self.b

    def errors(self, points=None) -> list[float]:
        """(fit / measured - 1) on each fitted point, or on ``points`` (label, FLOPs/token,
        s/token) measured on the fitted device."""
        return [self.a * f ** self.b / s - 1 for _, f, s in (self.points if points is None
                                                            else points)]

    @property
    def flops_range(self) -> tuple[float, float]:
        f = [p[1] for p in self.points]
        return min(f), max(f)


def _fit(points: list[tuple[str, float, float]]) -> tuple[float, float]:
    f = np.log([p[1] for p in points])
    s = np.log([p[2] for p in points])
    b, log_a = np.polyfit(f, s, 1)
    return float(math.exp(log_a)), float(b)


def _h200_points() -> tuple[list, list]:
    """(fitted, held-out) H200 points: (label, FLOPs/token, s/token)."""
    meas = json.loads(H200_MEASURED.read_text())["tiny_training_throughput"]
    fitted, other = [], []
    for r in meas:
        label = (f"L{r['n_layer']} d{r['d_model']} {format_heads(*r['heads'])} "
                 f"{r['params_non_embedding'] / 1e6:.2f}M")
        point = (label, r["achieved_flops"] / r["tokens_per_s"], 1.0 / r["tokens_per_s"])
        (fitted if r["params_non_embedding"] <= H200_FIT_MAX_PARAMS else other).append(point)
    return fitted, other


def _cpu_points(path=None) -> list[tuple[str, float, float]]:
    """(run id, FLOPs/token, s/token) of a sweep CSV's finished one-thread CPU runs
    (:data:`CPU_MEASURED`'s by default)."""
    _, rows = read_csv_table(CPU_MEASURED if path is None else path)
    points = []
    for r in rows:
        if r.get("status") != "ok" or r.get("threads") != "1" or r.get("device", "cpu") != "cpu":
            continue
        m = ModelConfig(n_layer=int(r["n_layer"]), d_model=int(r["d_model"]),
                        n_head=int(r["n_head"]), n_kv_head=int(r["n_kv_head"]),
                        d_head=int(r["d_head"]), d_ff=int(r["d_ff"]),
                        vocab_size=int(r["vocab_size"]))
        points.append((r["run_id"], flops_per_token(m, int(r["context"])),
                       1.0 / float(r["tokens_per_s"])))
    return points


@functools.lru_cache(maxsize=1)
def cpu_held_out() -> dict[str, list]:
    """The CPU fit's error on every other committed CPU sweep (``data/sweeps/*.csv`` beside
    a grid file, but :data:`CPU_MEASURED`; one thread): ``grids`` (their names) and
    ``errors`` (fit / measured s/token - 1 per run). Those runs shared the 2-core machine
    with other work at times, so this is the error a newcomer meets, not the fit's own."""
    grids, errors = [], []
    tp = throughput("cpu")
    for path in sorted(CPU_MEASURED.parent.glob("*.csv")):
        if path == CPU_MEASURED or not path.with_suffix(".toml").exists():
            continue  # a sweep's CSV sits beside its grid; anything else is not a record
        try:
            points = _cpu_points(path)
        except (GQAError, ValueError, KeyError):
            continue  # a damaged file is `gqa sweep`'s to report, not the estimate's
        if points:
            grids.append(path.stem)
            errors += tp.errors(points)
    return {"grids": grids, "errors": errors}


def check_kind(kind: str) -> str:
    check_choice("device kind", kind, KINDS)
    return kind


@functools.lru_cache(maxsize=4)
def throughput(kind: str) -> Throughput:
    """The fitted throughput model of a device kind ("h200", "t4" or "cpu")."""
    check_kind(kind)
    if kind == "cpu":
        points = _cpu_points()
        return Throughput("cpu", *_fit(points), 1.0, tuple(points),
                          f"{len(points)} CPU sweep runs ({CPU_MEASURED.name}, fp32, one thread "
                          "of the loaded 2-core machine)")
    points, _ = _h200_points()
    a, b = _fit(points)
    src = (f"{len(points)} measured H200 points ({H200_MEASURED.name}: bf16, eager, T = 2048, "
           "262K-token batches)")
    return Throughput(kind, a, b, T4_SLOWDOWN if kind == "t4" else 1.0, tuple(points), src)


def peak_flops_per_s(kind: str) -> float | None:
    """The dense bf16 datasheet peak of a device kind (None for the CPU: no peak is known)."""
    from gqa_lib.arch.hardware import get_accelerator

    check_kind(kind)
    if kind == "cpu":
        return None
    return get_accelerator("h200").bf16_flops_per_s if kind == "h200" else T4_PEAK_FLOPS_PER_S


def step_overhead_s(kind: str, n_layer: int) -> float:
    """Host-side cost of one training step on a GPU (assumed; 0 on the CPU)."""
    return 0.0 if kind == "cpu" else STEP_OVERHEAD_S + LAYER_OVERHEAD_S * n_layer


@dataclass(frozen=True)
class RunEstimate:
    train_s: float
    eval_s: float
    fixed_s: float
    extrapolated: bool  # above the FLOPs per token of the largest fitted point (x1.5)
    at_peak: bool = False  # the fit was faster than the device's peak: capped at the peak

    @property
    def total_s(self) -> float:
        return self.train_s + self.eval_s + self.fixed_s


def estimate_run(model: ModelConfig, tc: Any, kind: str) -> RunEstimate:
    """Estimated seconds of one run (`tc` a TrainConfig) on a device kind; never faster than
    its training FLOPs at the device's peak rate (:func:`peak_flops_per_s`): where the
    fitted power law would be, the estimate is capped there and ``at_peak`` says so."""
    tp = throughput(kind)
    flops = flops_per_token(model, tc.context_len)
    lo, hi = tp.flops_range
    s_tok = tp.s_per_token(max(flops, lo))  # never faster than the smallest measured shape
    peak = peak_flops_per_s(kind)
    at_peak = peak is not None and s_tok < flops / peak
    if at_peak:
        s_tok = flops / peak
    over = step_overhead_s(kind, model.n_layer)
    batch = tc.batch_size * tc.context_len
    # the measured steps already hold one overhead per 262K tokens: not counted twice
    per_step = over + batch * max(s_tok - over / H200_BATCH_TOKENS, 0.5 * s_tok)
    if peak is not None:  # the overhead's share taken out must not beat the peak either
        per_step = max(per_step, batch * flops / peak)
    train_s = tc.steps * per_step
    n_evals = -(-tc.steps // tc.eval_every)
    eval_tokens = n_evals * tc.eval_tokens + (FULL_EVAL_TOKENS if tc.eval_full else 0)
    ckpt_s = n_evals * 12 * float(cost.params_total(model)) / 1e9  # weights + Adam at ~1 GB/s
    eval_s = eval_tokens * s_tok / EVAL_SPEEDUP + ckpt_s
    return RunEstimate(train_s, eval_s, RUN_FIXED_S[kind], flops > 1.5 * hi, at_peak)


@dataclass(frozen=True)
class SweepEstimate:
    kind: str
    runs: tuple[RunEstimate, ...]
    start_s: float  # the process start and one cold preparation per corpus

    @property
    def total_s(self) -> float:
        return self.start_s + sum(r.total_s for r in self.runs)

    def parts(self) -> dict[str, float]:
        return {"training": sum(r.train_s for r in self.runs),
                "evaluation": sum(r.eval_s for r in self.runs),
                "per-run fixed": sum(r.fixed_s for r in self.runs),
                "start and data": self.start_s}


def estimate_sweep(runs: list[tuple[ModelConfig, Any]], kind: str) -> SweepEstimate:
    """Estimated seconds of (model, TrainConfig) runs one after another on a device kind."""
    corpora = {tc.data for _, tc in runs}
    return SweepEstimate(kind, tuple(estimate_run(m, tc, kind) for m, tc in runs),
                         (START_S[kind] + PREPARE_COLD_S * len(corpora)) if runs else 0.0)


def detect_kind(device: str = "auto") -> tuple[str, str]:
    """(kind, note) for the device a run would use: "t4" for a T4, "h200" for any other CUDA
    GPU (the note then says it is another GPU's measurement), "cpu" otherwise."""
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        if "T4" in name:
            return "t4", name
        if "H200" in name:
            return "h200", name
        return "h200", f"{name}; timed as an H200 (not measured on this GPU)"
    if device == "cuda":
        raise GQAError("device='cuda' requested but no CUDA device is available")
    return "cpu", "CPU" if device != "mps" else "mps; timed as the CPU (not measured)"


def describe(kind: str) -> str:
    """One paragraph: how the estimate of `kind` is made and its error on its points."""
    tp = throughput(kind)
    err = tp.errors()
    text = (f"s/token = {tp.a:.3g} x (FLOPs/token)^{tp.b:.3f}, fitted on {tp.source}: "
            f"{min(err):+.0%} to {max(err):+.0%} on those points")
    if kind == "t4":
        text = (f"the H200's time x {T4_SLOWDOWN:g} (a datasheet ratio, not measured); the "
                f"H200's {text}")
    if kind == "cpu":
        held = cpu_held_out()
        if held["errors"]:
            e = held["errors"]
            text += (f"; {min(e):+.0%} to {max(e):+.0%} (median {float(np.median(e)):+.0%}) on "
                     f"the {len(e)} runs of {len(held['grids'])} other committed CPU "
                     f"sweep{'s' if len(held['grids']) > 1 else ''} "
                     "(data/sweeps, not fitted), run while the machine's load varied")
    if kind != "cpu":
        _, held = _h200_points()
        if held:
            out = tp.errors(held)
            text += (f"; {min(out):+.0%} to {max(out):+.0%} on the {len(held)} larger measured "
                     f"points (> {H200_FIT_MAX_PARAMS / 1e6:g}M, not fitted)")
        text += (f". Per step {STEP_OVERHEAD_S * 1e3:g} ms + {LAYER_OVERHEAD_S * 1e3:g} ms "
                 "per layer of host overhead (assumed)")
    return text + "."


def format_s(seconds: float) -> str:
    """'42 s', '7.5 min', '2.1 h'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def sweep_lines(runs: list[tuple[ModelConfig, Any]], kind: str, note: str) -> list[str]:
    """What `gqa sweep --dry-run` prints after its run list: the total on `kind` by part, how
    it is estimated, and the totals on every device kind."""
    est = estimate_sweep(runs, kind)
    parts = ", ".join(f"{k} {format_s(v)}" for k, v in est.parts().items())
    lines = [f"estimate on {note}: {est.total_s:,.0f} s = {format_s(est.total_s)} ({parts})",
             f"  how: {describe(kind)}"]
    n_out = sum(r.extrapolated for r in est.runs)
    if n_out:
        lines.append(f"  {n_out} run(s) need more FLOPs per token than the largest fitted "
                     "point (extrapolated)")
    n_peak = sum(r.at_peak for r in est.runs)
    if n_peak:
        lines.append(f"  {n_peak} run(s) capped at the device's peak of "
                     f"{peak_flops_per_s(kind) / 1e12:,.0f} TFLOP/s (the fit was faster)")
    if kind != "h200":  # the measured GPU, whatever runs the dry run
        lines.append(f"  h200: {describe('h200')}")
    totals = {k: estimate_sweep(runs, k).total_s for k in KINDS}
    lines.append("estimated totals: " + "; ".join(
        f"{k} {v:,.0f} s ({format_s(v)})" + (" (datasheet ratio)" if k == "t4" else "")
        for k, v in totals.items()))
    return lines
