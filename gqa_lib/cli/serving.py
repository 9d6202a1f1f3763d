"""What `gqa optimize --hardware NAME` prints: seconds, tokens/s, accelerators and money per
candidate, the pick and the baseline, and where each figure's constants come from (measured,
calibrated, or datasheet peaks; :mod:`gqa_lib.cost.serving`). Used by
:mod:`gqa_lib.cli.recipe`, which parses the flags and runs the recipe."""

from __future__ import annotations

import math
from typing import Any

from gqa_lib import cost
from gqa_lib.arch.config import FFN_MULTIPLE_OF
from gqa_lib.cli.common import print_table
from gqa_lib.errors import GQAError
from gqa_lib.units import (format_context, format_count, format_heads, format_rate, format_saving,
                           format_z)


def hardware_json(settings) -> dict[str, Any]:
    hw = settings.hardware
    return {"key": hw.key, "name": hw.name, "bf16_flops_per_s": hw.bf16_flops_per_s,
            "memory_bandwidth_bytes_per_s": hw.memory_bandwidth_bytes_per_s,
            "memory_capacity_bytes": hw.memory_capacity_bytes, "source": hw.source,
            "batch": settings.batch, "price_per_hour": settings.price_per_hour,
            "output_tokens": settings.output_tokens, "tokens_per_s_counts": _rate_basis(settings),
            "memory_fraction": settings.memory_fraction, **_basis_json(settings),
            "note": ("peak figures transcribed from the vendor's datasheet, not measured"
                     if _figures_from(hw) == "datasheet" else
                     f"peak figures: {_figures_from(hw)} ({hw.source})")}


def _rate_basis(settings) -> str:
    """What a tokens/s figure counts, in words (also the throughput objective's)."""
    if settings.output_tokens is None:
        return ("decode only: every prompt already in the cache (--output-tokens G counts "
                "each request's prefill)")
    return (f"requests of a prompt of the context's length and {settings.output_tokens:,} "
            "generated tokens: prefill + decode, not overlapped")


def _basis_json(settings) -> dict[str, Any]:
    """Where the serving figures come from: ``basis`` and the constants used."""
    hw = settings.hardware
    cal = cost.resolve_calibration(hw, settings.calibration)
    note = cost.basis_note(hw, settings.calibration,
                           flops_efficiency=settings.flops_efficiency,
                           bandwidth_efficiency=settings.bandwidth_efficiency)
    if cal is None:
        return {"basis": "datasheet", "basis_note": note,
                "flops_efficiency": settings.flops_efficiency or cost.FLOPS_EFFICIENCY,
                "bandwidth_efficiency": (settings.bandwidth_efficiency
                                         or cost.BANDWIDTH_EFFICIENCY)}
    return {"basis": "calibrated", "basis_note": note, "calibration": {
        "layer_floor_s": cal.layer_floor_s, "bandwidth_bytes_per_s": cal.bandwidth_bytes_per_s,
        "matmul_flops_per_s": cal.matmul_flops_per_s,
        "attention_flops_per_s": cal.attention_flops_per_s,
        "memory_capacity_bytes": cal.memory_capacity_bytes, "source": cal.source,
        "points": cal.points, "loo_max_error": dict(cal.loo_max_error)}}


def accelerators_for(target: float, rec) -> dict[str, Any]:
    try:
        out = {"target_tokens_per_s": target,
               "best": cost.accelerators_needed(target, rec.best["tokens_per_s"])}
        if rec.baseline is not None:
            out["baseline"] = cost.accelerators_needed(target, rec.baseline["tokens_per_s"])
    except GQAError as e:
        raise GQAError(f"--throughput {target:g}: {e}") from None
    return out


def baseline_heads(base: dict) -> str:
    """The Llama-3 baseline's heads: n_head = d_model / d_head on the continuous shape (so
    fractional), n_kv_head = 8."""
    return (f"n_head = d_model / d_head = {base['n_head']:.1f} on the continuous shape, "
            f"n_kv_head {base['n_kv_head']:.3g}")


def _latency_cell(r: dict, batch: int) -> str:
    """ms per token at --batch; marked where that batch does not fit in memory."""
    ms = f"{r['latency_s'] * 1e3:.3g}"
    return ms if r["fits"] else f"{ms} no fit"


def _money(v: float) -> str:
    """Cost per million tokens; "no fit" where nothing fits (no tokens: inf)."""
    return f"{v:.3g}" if math.isfinite(v) else "no fit"


def _count_or_none(v: float) -> str:
    """Accelerators needed; inf (the model fits on none) said in words."""
    return f"{v:,.0f}" if math.isfinite(v) else "none suffices: it does not fit in memory"


def tera(v: float, decimals: int = 1) -> str:
    """A rate in units of 1e12 with thousands separators ('989.4'); a figure of more than
    nine digits (a user's absurd file) in four significant digits, not 300."""
    t = v / 1e12
    return f"{t:,.{decimals}f}" if t < 1e9 else f"{t:.4g}"


def _figures_from(hw) -> str:
    """Whose peak figures these are: the shipped datasheet's, a user's file's, the figure
    flags' alone, or the datasheet's with some overridden (Accelerator.replace says so in
    its source)."""
    from gqa_lib.arch.hardware import accelerators

    if hw.key == "custom":
        return "user figures"
    if "overridden by the user" in hw.source:
        return "datasheet figures overridden by the user"
    return "datasheet" if accelerators().get(hw.key) == hw else "figures from a user's file"


def print_serving(args, settings, rec, baseline, needed, built) -> None:
    """The readable `gqa optimize --hardware ...`: seconds, tokens/s, accelerators, money."""
    hw, T = settings.hardware, rec.context
    goal = {"z": f"Z (lambda {args.lam})", "latency": f"decode latency at batch "
            f"{settings.batch}", "throughput": "tokens/s per accelerator at the largest batch",
            "cost": "cost per million tokens"}[settings.objective]
    if settings.objective in ("throughput", "cost"):
        goal += (" (decode only)" if settings.output_tokens is None else
                 f" (requests of {format_context(T)} prompt + {settings.output_tokens:,} "
                 "generated tokens)")
    print(f"T = {format_context(T)}, target loss {args.target_loss} nats; objective: {goal}; "
          f"fit: {rec.model}")
    b = _basis_json(settings)
    print(f"hardware: {hw.name} ({_figures_from(hw)}: {tera(hw.bf16_flops_per_s)} TFLOP/s dense "
          f"bf16, {hw.memory_bandwidth_bytes_per_s / 1e12:.3g} TB/s, "
          f"{cost.memory_capacity_bytes(hw, settings.calibration) / 1e9:,.1f} GB"
          + (" as measured" if b["basis"] == "calibrated" else "") + ", "
          f"{settings.memory_fraction:.0%} of it for weights + KV cache)")
    print(f"serving figures: {b['basis_note']}; costed on each candidate's continuous shape "
          f"(fractional L) with d_ff rounded up to a multiple of {FFN_MULTIPLE_OF} (the shape "
          "to build, whole layers, is costed below)")
    print(f"tokens/s/GPU: {_rate_basis(settings)}; prefill s: one {format_context(T)} prompt")
    price = settings.price_per_hour is not None
    rows = []
    for r in rec.candidates.to_dict("records"):
        rows.append([format_heads(r['n_head'], r['n_kv_head']) + ("*" if r["extrapolated"] else ""),
                     format_count(r["params_non_embedding"]), f"{r['n_layer']:.1f}",
                     format_z(r['z']), format_rate(r["tokens_per_s"]), f"{r['max_batch']:.0f}",
                     _latency_cell(r, settings.batch), f"{r['prefill_s']:.3g}"]
                    + ([_money(r["usd_per_mtok"])] if price else [])
                    + ["<- best" if r["best"] else ""])
    print_table(rows, ["H", "N*", "L", "Z", "tokens/s/GPU", "max B",
                       f"ms/token (B={settings.batch})", "prefill s"]
                + (["per 1M tok"] if price else []) + ["choice"])
    if not all(rec.candidates["fits"]):
        print(f"no fit: {settings.batch} sequences do not fit in memory beside the weights "
              "(max B is smaller); the latency is the roofline's for a batch that cannot run")
    if any(rec.candidates["extrapolated"]):
        print("* extrapolated configuration (no measured curve; see gqa_lib/evidence/paper.py)")
    b = rec.best
    print_build(built, b, args.target_loss)
    if "serving" in built:
        v = built["serving"]
        print(f"  on the {hw.name}: {format_rate(v['tokens_per_s'])} tokens/s per accelerator at "
              f"batch {v['max_batch']:.0f}, {v['latency_s'] * 1e3:.3g} ms per token at batch "
              f"{settings.batch}" + ("" if v["fits"] else " (no fit)")
              + f", prefill of {format_context(T)} tokens in {v['prefill_s']:.3g} s")
    print(f"pick: H = {format_heads(b['n_head'], b['n_kv_head'])}, N* = "
          f"{format_count(b['params_non_embedding'])}: {format_rate(b['tokens_per_s'])} tokens/s "
          f"per accelerator at batch {b['max_batch']:.0f}, {b['latency_s'] * 1e3:.3g} ms per "
          f"token at batch {settings.batch}"
          + ("" if b["fits"] else f" (which does not fit in memory: the largest batch is "
             f"{b['max_batch']:.0f})")
          + f", prefill of {format_context(T)} tokens in {b['prefill_s']:.3g} s")
    if rec.savings:
        base, s = rec.baseline, rec.savings
        latency = (format_saving(s["latency_pct"], "latency") if "latency_pct" in s else
                   f"latency not compared (batch {settings.batch} does not fit in memory "
                   "for the pick or the baseline)")
        print(f"against {baseline} ({baseline_heads(base)}, N "
              f"{format_count(base['params_non_embedding'])}: "
              f"{format_rate(base['tokens_per_s'])} tokens/s per accelerator at batch "
              f"{base['max_batch']:.0f}): "
              + (f"x{s['tokens_per_s_ratio']:.2f} tokens/s per accelerator"
                 if math.isfinite(s["tokens_per_s_ratio"]) else
                 "the baseline does not fit in memory at all")
              + f", {latency}"
              + (f", {format_saving(s['cost_pct'], 'cost')}" if "cost_pct" in s else "")
              + f"; in the paper's units: {format_saving(s['memory_pct'], 'memory')}, "
              f"{format_saving(s['flops_pct'], 'FLOPs')} (of {cost.CONVENTION_LABELS[args.convention]}), "
              f"{format_saving(s['z_pct'], 'Z')}")
    if needed:
        print(f"accelerators for {format_rate(needed['target_tokens_per_s'])} tokens/s: "
              f"{_count_or_none(needed['best'])}"
              + (f" (baseline: {_count_or_none(needed['baseline'])})"
                 if "baseline" in needed else ""))


def print_build(built: dict[str, Any], best: dict[str, Any], target: float) -> None:
    n = built["params_non_embedding"]
    print(f"\nwhat to build: {built['n_layer']} layers, d_model {built['d_model']:,}, "
          f"{format_heads(built['n_head'], built['n_kv_head'])} heads of {built['d_head']}, "
          f"d_ff {built['d_ff']:,} ({built['d_ff_rule']})\n  {n:,} non-embedding parameters "
          f"({built['params_total']:,} with the tied {built['vocab_size']:,}-token embedding); "
          f"fitted loss {built['fitted_loss']:.4f} against the target {target:g} (the "
          f"continuous solution: N* {format_count(best['params_non_embedding'])}, "
          f"L {best['n_layer']:.1f})"
          + ("; it misses the target: no whole-layer shape within three layers of L reaches "
             "it" if built["fitted_loss"] > target else ""))
