"""Calibrating the serving model on measured step times: the work a measured step did, the
four constants that turn work into seconds, their fit, and the leave-one-out error.

The calibrated step time (:func:`step_seconds`) keeps the roofline's physics, bytes moved
and FLOPs done (:mod:`gqa_lib.cost.serving`), and adds what measurements on an H200 showed
it lacks (data/bench/h200-2026-12-04.json):

==============  =========================================================================
term            meaning (constant: where it comes from)
==============  =========================================================================
k L c           a floor per layer and step: kernel latency that no bandwidth hides (about
                0.1 ms per layer at batch 1 even as a CUDA graph). c = ``layer_floor_s``,
                fitted; k = 1 for a forward pass (decode, prefill), 3 for a training step
                (forward and backward)
bytes / BW      weights read (and, decoding, every sequence's KV cache; training: the fused
                AdamW's 28 bytes per parameter). BW = ``bandwidth_bytes_per_s``, fitted
F_mm / R_mm     matmul FLOPs (2 N_active per token, LM head included; x3 for training).
                R_mm = ``matmul_flops_per_s``, fitted
F_att / R_att   attention FLOPs (causal in prefill and training, over all T keys in a
                decode step; x3 for training). R_att = ``attention_flops_per_s``, fitted
==============  =========================================================================

``t = k L c + max(bytes / BW, F_mm / R_mm + F_att / R_att)``: the step is bound by memory
or by compute, and the per-layer floor adds to either. An accelerator without measurements
has no calibration; the serving functions then use the datasheet roofline (peak rates times
the efficiency defaults, no floor) and say so.

The constants are fitted by least squares on log time (relative error) over the measured
points of aligned shapes (d_ff a multiple of 256: unaligned shapes measure misalignment,
2.8x slower prefill), and judged by leave-one-out: each configuration (shape, regime,
context, batch; both repeats of a repeated point) is predicted by a fit without it.
``python -m gqa_lib.cost.calibrate`` refits and writes data/hardware/calibration.toml, which
:func:`gqa_lib.arch.hardware.calibration` reads; a test checks that file is current.

A constant is written only where measured step times determine it: decode steps the floor
and the bandwidth, prefill the two FLOP rates, training steps ``train_compute_factor``. A
measurement file lacking one of those regimes (or holding it in fewer than two
configurations, which leave-one-out needs) is refused, as is a fit in which some constant
moves no step time: its starting guess would otherwise be written as "fitted". Rows are
read in their ``unit`` (s, ms, us); counts must be whole; a damaged file is refused in one
line naming the row and field, and the fit must pass the plausibility bounds of
:func:`gqa_lib.arch.hardware.check_calibration` before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gqa_lib.arch.config import ModelConfig
from gqa_lib.arch.hardware import (CALIBRATION_FILE, Calibration, check_calibration,
                                   get_accelerator)
from gqa_lib.cost.counts import params_total
from gqa_lib.cost.serving import (BANDWIDTH_EFFICIENCY, decode_work, FLOPS_EFFICIENCY,
                                  prefill_work)
from gqa_lib.errors import check_int, check_real, GQAError
from gqa_lib.io import DATA_DIR, atomic_write_text

MEASUREMENTS = {"h200": DATA_DIR / "bench" / "h200-2026-12-04.json"}
REGIMES = ("decode, batch 1", "decode, batch > 1", "prefill", "training")
_STEP_KINDS = {"decode_step": "decode", "prefill": "prefill", "train_step": "train"}
ALIGN = 256  # the calibration's shapes: d_ff a multiple of this (gqa_lib.arch.aligned)
ADAMW_BYTES_PER_PARAM = 28  # fp32 weight, grad, m, v read (16); weight, m, v written (12)
_NAMES = ("layer_floor_s", "bandwidth_bytes_per_s", "matmul_flops_per_s",
          "attention_flops_per_s", "train_compute_factor")


def work(cfg: ModelConfig, kind: str, context: int, batch: int = 1, *,
         logits: str = "last", dtype: str = "bf16") -> dict[str, Any]:
    """The work of one step of ``kind`` ("decode", "prefill", "train") at ``context`` for
    ``batch`` sequences: ``kind``, ``layers`` (floor multiplier k L), ``bytes``,
    ``matmul_flops``, ``attention_flops``. Decode and prefill are those of
    :mod:`gqa_lib.cost.serving` (prefill with ``logits`` "last" or "all"); a training step is
    three times the forward work with every position's logits, k = 3, and the fused AdamW's
    bytes."""
    if kind == "decode":
        w = decode_work(cfg, context, batch=batch, dtype=dtype)
    elif kind == "prefill":
        w = prefill_work(cfg, context, batch=batch, dtype=dtype, logits=logits)
    elif kind == "train":
        f = prefill_work(cfg, context, batch=batch, dtype=dtype, logits="all")
        w = {"layers": 3.0 * f["layers"],
             "bytes": ADAMW_BYTES_PER_PARAM * float(params_total(cfg)),
             "matmul_flops": 3.0 * f["matmul_flops"],
             "attention_flops": 3.0 * f["attention_flops"]}
    else:
        raise GQAError(f"kind must be 'decode', 'prefill' or 'train', got {kind!r}")
    return {"kind": kind, **{k: float(v) for k, v in w.items()}}


def step_seconds(w: dict[str, Any], c: Calibration) -> float:
    """Seconds of one step of work ``w`` under calibration ``c``: the serving model's
    formula (module docstring), a training step's compute x ``train_compute_factor``."""
    compute = (w["matmul_flops"] / c.matmul_flops_per_s
               + w["attention_flops"] / c.attention_flops_per_s)
    if w["kind"] == "train":
        compute *= c.train_compute_factor
    return w["layers"] * c.layer_floor_s + max(w["bytes"] / c.bandwidth_bytes_per_s, compute)


def datasheet_seconds(w: dict[str, Any], hardware: str, *,
                      flops_efficiency: float = FLOPS_EFFICIENCY,
                      bandwidth_efficiency: float = BANDWIDTH_EFFICIENCY) -> float:
    """The plain roofline of the same work: max(bytes / (BW e_bw), FLOPs / (F e_F)), no
    floor, one FLOP rate (the serving model with ``calibration="datasheet"``)."""
    hw = get_accelerator(hardware)
    return max(w["bytes"] / (hw.memory_bandwidth_bytes_per_s * bandwidth_efficiency),
               (w["matmul_flops"] + w["attention_flops"])
               / (hw.bf16_flops_per_s * flops_efficiency))


# ----- the measured points ----------------------------------------------------------------
def regime(kind: str, batch: int) -> str:
    """The regime a step belongs to, for the error table (REGIMES)."""
    if kind == "decode":
        return REGIMES[0] if batch == 1 else REGIMES[1]
    return REGIMES[2] if kind == "prefill" else REGIMES[3]


_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}  # a row's `unit`: seconds per unit
# Which step kind determines which constant (module docstring): decode steps are bound by
# bytes (bandwidth; at batch 1 the per-layer floor), prefill by the forward FLOP rates, and
# only a training step measures how much slower its compute is than the forward's.
_DETERMINED_BY = {"decode": ("layer_floor_s", "bandwidth_bytes_per_s"),
                  "prefill": ("matmul_flops_per_s", "attention_flops_per_s"),
                  "train": ("train_compute_factor",)}
_ROW_NAMES = {v: k for k, v in _STEP_KINDS.items()}


def _whole(path: Path, where: str, v: object) -> int:
    """A whole count of a measurement row (context, batch), refused in one line otherwise."""
    try:
        return check_int(f"{path}: {where}", v)
    except GQAError as e:
        raise GQAError(f"{e} (a whole number of tokens or sequences)") from None


def read_measurements(path: Path) -> dict[str, Any]:
    """A measurement file's JSON, an object with "models" and "rows"; GQAError in one line
    naming the file otherwise."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise GQAError(f"{path}: not a readable measurement file ({e})") from None
    if not isinstance(data, dict):
        raise GQAError(f"{path}: must hold a JSON object with \"models\" and \"rows\"")
    for k, typ, what in (("models", dict, "an object of model specs by name"),
                         ("rows", list, "a list of measured rows")):
        if not isinstance(data.get(k), typ):
            raise GQAError(f"{path}: \"{k}\" must be {what}, got {data.get(k)!r:.60}")
    return data


def measured_points(path: str | Path, *, aligned_only: bool = True) -> list[dict[str, Any]]:
    """The step-time rows of a measurement file with their model config and work: regime,
    group (shape, kind, context, batch: repeats share it), seconds, cfg, work. Eager decode
    (Python launch cost) is not a step time and is left out; so are unaligned shapes unless
    ``aligned_only=False``. A row's ``value`` is read in its ``unit`` (s, ms or us; another
    unit is refused), ``context`` and ``batch`` must be whole counts; a damaged row is refused
    in one line naming the file, the row and the field."""
    path = Path(path)
    data = read_measurements(path)
    models = data["models"]
    out = []
    for i, r in enumerate(data["rows"]):
        where = f"rows[{i}]"
        if not isinstance(r, dict):
            raise GQAError(f"{path}: {where} must be an object, got {r!r:.60}")
        kind = _STEP_KINDS.get(r.get("regime")) if isinstance(r.get("regime"), str) else None
        if kind is None:
            continue
        name = r.get("model")
        if not isinstance(name, str):
            raise GQAError(f"{path}: {where}.model must be a model name, got {name!r:.60}")
        if name not in models and name.endswith("-ff256") and name[:-6] in models:
            base = models[name[:-6]]  # "-ff256" of a model whose d_ff already is aligned
            if not isinstance(base, dict) or not isinstance(base.get("d_ff"), int):
                raise GQAError(f"{path}: models.{name[:-6]} must be a model spec with d_ff")
            spec = {**base, "d_ff": -(-base["d_ff"] // ALIGN) * ALIGN, "name": name}
        elif name in models:
            spec = models[name]
        else:
            raise GQAError(f"{path}: {where}.model={name!r} is not in \"models\"; known: "
                           f"{', '.join(list(models)[:8]) or 'none'}")
        if not isinstance(spec, dict):
            raise GQAError(f"{path}: models.{name} must be an object, got {spec!r:.60}")
        try:
            cfg = ModelConfig.from_dict(dict(spec))
        except GQAError as e:
            raise GQAError(f"{path}: models.{name}: {e}") from None
        if aligned_only and cfg.d_ff % ALIGN:
            continue
        T = _whole(path, f"{where}.context", r.get("context"))
        B = _whole(path, f"{where}.batch", r.get("batch"))
        unit = r.get("unit", "s")
        if unit not in _UNITS:
            raise GQAError(f"{path}: {where}.unit must be one of "
                           f"{', '.join(map(repr, _UNITS))}, got {unit!r:.40}")
        value = check_real(f"{path}: {where}.value (step time, {unit})", r.get("value"),
                           lo=0.0, lo_open=True)
        w = work(cfg, kind, T, B, logits="all")
        out.append({"regime": regime(kind, B), "kind": kind, "context": T, "batch": B,
                    "model": name, "shape": (cfg.n_layer, cfg.d_model, cfg.n_head,
                                             cfg.n_kv_head, cfg.d_ff),
                    "group": (cfg.n_layer, cfg.d_model, cfg.n_head, cfg.n_kv_head, cfg.d_ff,
                              kind, T, B),
                    "seconds": value * _UNITS[unit], "source": r.get("source", ""),
                    "cfg": cfg, "work": w})
    return out


def check_determined(points: list[dict[str, Any]], *, min_configs: int = 1,
                     where: str = "the measured points") -> None:
    """Refuse points that leave a constant undetermined: every step kind whose constants the
    model needs (_DETERMINED_BY: decode, prefill, train) must be measured in at least
    ``min_configs`` configurations; a fit would otherwise return its starting guess for
    that kind's constants and call it fitted."""
    for kind, names in _DETERMINED_BY.items():
        n = len({p["group"] for p in points if p["work"]["kind"] == kind})
        if n < min_configs:
            raise GQAError(
                f"{where}: {n} measured {_ROW_NAMES[kind]!r} configuration(s), need >= "
                f"{min_configs}: {' and '.join(names)} would not be fitted but guessed "
                "(a calibration needs decode_step, prefill and train_step rows"
                + (", each in >= 2 configurations for leave-one-out" if min_configs > 1 else "")
                + ")")


# ----- fit ----------------------------------------------------------------------------------
def _calibration(x: np.ndarray, key: str, **meta: Any) -> Calibration:
    return Calibration(key, **dict(zip(_NAMES, (float(v) for v in np.exp(x)))), **meta)


def fit(points: list[dict[str, Any]], key: str = "h200", *, n_points: int | None = None,
        **meta: Any) -> Calibration:
    """Least squares on log seconds over ``points`` (from :func:`measured_points`); the four
    constants are kept positive by fitting their logarithms, from datasheet-like starts."""
    from scipy.optimize import least_squares

    if len(points) < 4:
        raise GQAError(f"a calibration needs >= 4 measured points, got {len(points)}")
    check_determined(points)
    hw = get_accelerator(key)
    x0 = np.log([1e-4, 0.8 * hw.memory_bandwidth_bytes_per_s, 0.5 * hw.bf16_flops_per_s,
                 0.4 * hw.bf16_flops_per_s, 1.2])
    y = np.log([p["seconds"] for p in points])

    def resid(x: np.ndarray) -> np.ndarray:
        c = _calibration(x, key)
        return np.log([step_seconds(p["work"], c) for p in points]) - y

    best = least_squares(resid, x0, method="lm", xtol=1e-12, ftol=1e-12)
    sens = np.abs(best.jac).max(axis=0)  # d log t / d log constant, largest over the points
    for name, d in zip(_NAMES, sens):
        if not d > 1e-6:  # no measured step time moves with it: the start would be kept
            raise GQAError(f"{name} is not determined by the {len(points)} measured points "
                           "(no step time depends on it); measure the regime it governs")
    return _calibration(best.x, key, points=len(points) if n_points is None else n_points,
                        **meta)


def leave_one_out(points: list[dict[str, Any]], key: str = "h200") -> list[dict[str, Any]]:
    """Each point predicted by a fit without its group (all repeats of its configuration):
    the point's fields plus ``predicted_s``, ``error`` (predicted / measured - 1) and
    ``datasheet_s``, ``datasheet_error`` (the plain roofline's)."""
    rows = []
    for g in dict.fromkeys(p["group"] for p in points):
        c = fit([p for p in points if p["group"] != g], key)
        for p in points:
            if p["group"] == g:
                pred = step_seconds(p["work"], c)
                sheet = datasheet_seconds(p["work"], key)
                rows.append({**p, "predicted_s": pred, "error": pred / p["seconds"] - 1,
                             "datasheet_s": sheet,
                             "datasheet_error": sheet / p["seconds"] - 1})
    return rows


def error_table(loo: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per regime: points, the largest and the mean |leave-one-out error| of the calibrated
    model, and the same of the datasheet roofline."""
    out = []
    for r in REGIMES:
        sel = [p for p in loo if p["regime"] == r]
        if not sel:
            continue
        e = np.abs([p["error"] for p in sel])
        d = np.abs([p["datasheet_error"] for p in sel])
        out.append({"regime": r, "points": len(sel), "max_error": float(e.max()),
                    "mean_error": float(e.mean()), "datasheet_max_error": float(d.max()),
                    "datasheet_mean_error": float(d.mean())})
    return out


def calibrate(key: str = "h200") -> tuple[Calibration, list[dict[str, Any]]]:
    """Fit accelerator ``key`` on its measurement file; (calibration with its leave-one-out
    errors per regime, the leave-one-out rows)."""
    if key not in MEASUREMENTS:
        raise GQAError(f"no measurements of hardware={key!r}; measured: "
                       f"{', '.join(MEASUREMENTS)}")
    path = MEASUREMENTS[key]
    points = measured_points(path)
    check_determined(points, min_configs=2, where=str(path))
    machine = read_measurements(path).get("machine")
    gib = machine.get("memory_gib") if isinstance(machine, dict) else None
    memory = check_real(f"{path}: machine.memory_gib (the GiB the device exposes)", gib,
                        lo=0.0, lo_open=True, hi=1e6) * 2**30  # checked before arithmetic
    loo = leave_one_out(points, key)
    table = error_table(loo)
    c = fit(points, key, source=str(path.relative_to(DATA_DIR.parent)),
            memory_capacity_bytes=float(memory),
            loo_max_error=tuple((t["regime"], round(t["max_error"], 4)) for t in table))
    return check_calibration(c, f"the fit of {path}"), loo


def write_calibrations(path: Path = CALIBRATION_FILE) -> str:
    """Refit every measured accelerator and write the calibration file; returns its text."""
    lines = ["# Calibrated serving constants per accelerator (gqa_lib.cost.calibrate), fitted",
             "# on the measured step times named in `source`. Written by",
             "#   python -m gqa_lib.cost.calibrate",
             "# and checked to be current by tests/test_calibrate.py. Do not edit by hand.", ""]
    for key in MEASUREMENTS:
        c, _ = calibrate(key)
        lines += [f"[calibration.{key}]"]
        for name in (*_NAMES, "memory_capacity_bytes"):
            lines.append(f"{name} = {float(f'{getattr(c, name):.4g}')!r}")
        lines += [f"source = {json.dumps(c.source)}", f"points = {c.points}",
                  "loo_max_error = {" + ", ".join(f"{json.dumps(r)} = {e}"
                                                  for r, e in c.loo_max_error) + "}", ""]
    text = "\n".join(lines)
    atomic_write_text(path, text)
    return text


def main(argv: list[str] | None = None) -> int:
    """``python -m gqa_lib.cost.calibrate``: refit and write the calibration file; a refusal
    is one line on stderr and exit status 2, and the file is then left as it was."""
    import argparse
    import sys

    class OneLine(argparse.ArgumentParser):  # a usage error is one line (gqa's parsers too)
        def error(self, message: str):  # type: ignore[override]
            self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    ap = OneLine(
        prog="python -m gqa_lib.cost.calibrate",
        description="Refit the calibrated serving constants of every measured accelerator "
                    f"({', '.join(MEASUREMENTS)}) and write {CALIBRATION_FILE.name}.")
    ap.parse_args(argv)  # --help prints this and exits; unknown arguments exit 2: no write
    try:
        print(write_calibrations())
    except GQAError as e:
        print(f"calibrate: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover - the command that writes the file
    raise SystemExit(main())
