"""The equal-loss pair as measured: the H200's step times beside the datasheet roofline and
the calibrated model (:mod:`gqa_lib.cost.calibrate`), the speed-ups per regime beside the
paper's Table 5, what aligned shapes change, and the serving page's numbers.

Every ratio here is (32, 8) seconds over (8, 1) seconds: how much faster the recipe's
(8, 1) runs. "Measured" numbers come from data/bench/h200-2026-12-04.json (each point the
median of its repeats); a measured ratio divides two step times taken on the same machine
(the file's two calls ran on two H200 machines of the same kind: the (8, 1) was timed on
both, and the spread between them is reported beside the ratio as its noise). "Calibrated"
ones come from a fit that left the predicted configuration out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gqa_lib import cost
from gqa_lib.arch.config import ModelConfig
from gqa_lib.arch.hardware import calibration, get_accelerator
from gqa_lib.cost.calibrate import (MEASUREMENTS, calibrate, error_table, measured_points,
                                   read_measurements)
from gqa_lib.errors import GQAError
from gqa_lib.evidence.paper import PAPER_HEADLINE, read_paper_table
from gqa_lib.evidence.serving import (equal_loss_pair, headline_serving, pick_label,
                                      prompt_counted, serving_vs_context, table5_prediction)

# (label, kind, context, batch) of the pair's measured regimes
MEASURED_REGIMES = (("decode, batch 1, 128K", "decode", 131072, 1),
                    ("decode, batch 8, 128K", "decode", 131072, 8),
                    ("prefill, 128K", "prefill", 131072, 1),
                    ("prefill, 8K", "prefill", 8192, 1),
                    ("training, 8K", "train", 8192, 1))


def _shape(cfg: ModelConfig) -> tuple[int, ...]:
    return (cfg.n_layer, cfg.d_model, cfg.n_head, cfg.n_kv_head, cfg.d_ff)


def measured_vs_predicted(hardware: str = "h200") -> pd.DataFrame:
    """Per measured regime of the equal-loss pair (aligned shapes): each model's measured
    seconds per step on one machine (``measured_on``: the call that timed both), the
    datasheet roofline's and the calibrated model's (leave-one-out) predictions and errors,
    the (8, 1)'s speed-up by each, and ``machine_spread``: how far one model's step time
    differed between the two machines that timed it (NaN where one did). Prefill is timed
    and predicted as measured: logits for every position."""
    key = get_accelerator(hardware).key
    if key not in MEASUREMENTS:
        raise GQAError(f"hardware={hardware!r} has no measurements; measured: "
                       f"{', '.join(MEASUREMENTS)}")
    _, loo = calibrate(key)
    pair = dict(zip(("llama3", "optimum"), equal_loss_pair()))  # one optimize, not ten
    rows = []
    for label, kind, T, B in MEASURED_REGIMES:
        r: dict[str, Any] = {"regime": label, "context": T, "batch": B}
        found = {}
        for tag, cfg in pair.items():
            found[tag] = [p for p in loo if p["shape"] == _shape(cfg) and p["kind"] == kind
                          and p["context"] == T and p["batch"] == B]
            if not found[tag]:
                raise GQAError(f"{MEASUREMENTS[key].name}: no {kind} of {cfg.name} at "
                               f"T={T}, batch {B}")
        # one machine for both: the last source (call) that timed both models
        common = sorted({p["source"] for p in found["llama3"]}
                        & {p["source"] for p in found["optimum"]})
        if not common:
            raise GQAError(f"{MEASUREMENTS[key].name}: no machine timed both models' "
                           f"{kind} at T={T}, batch {B}")
        r["measured_on"] = common[-1]
        spreads = [max(v) / min(v) - 1 for v in (
            [p["seconds"] for p in pts] for pts in found.values()) if len(v) > 1]
        r["machine_spread"] = max(spreads) if spreads else float("nan")
        for tag in pair:
            pts = [p for p in found[tag] if p["source"] == r["measured_on"]]
            meas = float(np.mean([p["seconds"] for p in pts]))
            pred = float(np.mean([p["predicted_s"] for p in pts]))
            sheet = float(pts[0]["datasheet_s"])
            r.update({f"{tag}_measured_s": meas, f"{tag}_calibrated_s": pred,
                      f"{tag}_datasheet_s": sheet, f"{tag}_calibrated_error": pred / meas - 1,
                      f"{tag}_datasheet_error": sheet / meas - 1})
        for m in ("measured", "calibrated", "datasheet"):
            r[f"{m}_speedup"] = r[f"llama3_{m}_s"] / r[f"optimum_{m}_s"]
        rows.append(r)
    return pd.DataFrame(rows)


def error_summary(hardware: str = "h200") -> pd.DataFrame:
    """Leave-one-out error of step time per regime, calibrated and datasheet
    (:func:`gqa_lib.cost.calibrate.error_table`)."""
    return pd.DataFrame(error_table(calibrate(get_accelerator(hardware).key)[1]))


def constants_table(hardware: str = "h200") -> pd.DataFrame:
    """The serving model's constants on a measured accelerator beside the datasheet
    roofline's, in words and units."""
    hw = get_accelerator(hardware)
    c = calibration(hw)
    if c is None:
        raise GQAError(f"hardware={hardware!r} has no calibration (not measured)")
    bw, f = hw.memory_bandwidth_bytes_per_s, hw.bf16_flops_per_s
    e_bw, e_f = cost.BANDWIDTH_EFFICIENCY, cost.FLOPS_EFFICIENCY
    rows = [("floor per layer and step, c", f"{c.layer_floor_s * 1e3:.3f} ms", "0",
             "kernel latency no bandwidth hides"),
            ("bandwidth, BW", f"{c.bandwidth_bytes_per_s / 1e12:.2f} TB/s "
             f"({c.bandwidth_bytes_per_s / bw:.0%})", f"{bw * e_bw / 1e12:.2f} TB/s ({e_bw:.0%})",
             "weights and KV cache read; an effective constant, fitted beside the floor: "
             f"a device copy measured {copy_bandwidth_text(hw.key)}"),
            ("matmul rate, R_mm", f"{c.matmul_flops_per_s / 1e12:,.0f} TFLOP/s "
             f"({c.matmul_flops_per_s / f:.0%})", f"{f * e_f / 1e12:,.0f} TFLOP/s ({e_f:.0%})",
             "projections, FFN, LM head"),
            ("attention rate, R_att", f"{c.attention_flops_per_s / 1e12:,.0f} TFLOP/s "
             f"({c.attention_flops_per_s / f:.0%})", f"{f * e_f / 1e12:,.0f} TFLOP/s ({e_f:.0%})",
             "scores and weighted values"),
            ("training compute factor", f"x{c.train_compute_factor:.2f}", "x1",
             "backward kernels slower than forward"),
            ("memory", f"{c.memory_capacity_bytes / 1e9:,.1f} GB (as exposed)",
             f"{hw.memory_capacity_bytes / 1e9:,.0f} GB (datasheet)", "weights and KV caches")]
    return pd.DataFrame(rows, columns=["constant", "calibrated", "datasheet", "meaning"])


def copy_bandwidth_text(hardware: str = "h200") -> str:
    """The device-copy bandwidth the measurement file records (read + write), as a range."""
    m = read_measurements(MEASUREMENTS[get_accelerator(hardware).key])
    v = sorted(m["machine"]["device_copy_bytes_per_s_read_plus_write"])
    return f"{v[0] / 1e12:.2f}-{v[-1] / 1e12:.2f} TB/s"


def _measured_s(cfg: ModelConfig, kind: str, T: int) -> float:
    """Mean measured seconds of a batch-1 step of ``cfg`` on the H200 (aligned or not)."""
    got = [p["seconds"] for p in measured_points(MEASUREMENTS["h200"], aligned_only=False)
           if p["shape"] == _shape(cfg) and p["kind"] == kind and p["context"] == T
           and p["batch"] == 1]
    if not got:
        raise GQAError(f"no measured {kind} of {cfg.name} at T={T} on the H200")
    return float(np.mean(got))


def alignment_table(paper_shape: ModelConfig, built: ModelConfig) -> pd.DataFrame:
    """What rounding d_ff up changes for one model: its width, parameters, and the measured
    prefill and training times of both shapes on the H200."""
    rows = [("d_ff", f"{paper_shape.d_ff:,}", f"{built.d_ff:,}",
             f"+{built.d_ff - paper_shape.d_ff:,}"),
            ("parameters", f"{int(cost.params_total(paper_shape)):,}",
             f"{int(cost.params_total(built)):,}",
             f"{cost.params_total(built) / cost.params_total(paper_shape) - 1:+.1%}")]
    for label, kind, T in (("prefill of 8K tokens, H200", "prefill", 8192),
                           ("prefill of 128K tokens, H200", "prefill", 131072),
                           ("training step of 8K tokens, H200", "train", 8192)):
        a, b = _measured_s(paper_shape, kind, T), _measured_s(built, kind, T)
        rows.append((label, f"{a * 1e3:,.0f} ms", f"{b * 1e3:,.0f} ms", f"x{a / b:.2f} faster"))
    return pd.DataFrame(rows, columns=["quantity", "paper_rule", "aligned", "change"])


def headline_table(*frames: pd.DataFrame) -> pd.DataFrame:
    """Headline frames (:func:`~gqa_lib.evidence.serving.headline_serving`) as one table with
    the accelerator's name."""
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "accelerator", [get_accelerator(k).name for k in df["hardware"]])
    return df


def speedup_sources(mvp: pd.DataFrame) -> pd.DataFrame:
    """Tidy (regime, source, speedup) rows for the speed-up chart: the paper's Table 5 (one
    A800, 128K; inference beside prefill and batch-1 decoding, training beside training)
    and the H200's datasheet roofline, calibrated model and measurement."""
    t5 = read_paper_table("table5.csv").set_index("metric")
    paper = {m: float(t5.loc[m, "cost_optimal_8_1"]) / float(t5.loc[m, "llama3_gqa_32_8"])
             for m in ("inference_throughput", "training_throughput")}
    rows = []
    for _, r in mvp.iterrows():
        if r["context"] == 131072 and not r["regime"].startswith("decode, batch 8"):
            rows.append((r["regime"], "paper, Table 5 (A800, 128K)",
                         paper["inference_throughput"]))
        rows += [(r["regime"], "datasheet roofline (H200)", r["datasheet_speedup"]),
                 (r["regime"], "calibrated, left out of the fit (H200)", r["calibrated_speedup"]),
                 (r["regime"], "measured (H200)", r["measured_speedup"])]
    rows.append(("training, 128K", "paper, Table 5 (A800, 128K)",
                 paper["training_throughput"]))
    return pd.DataFrame(rows, columns=["regime", "source", "speedup"])


def context_numbers(vs_t: pd.DataFrame, hardware: str = "h200") -> dict[str, float]:
    """The against-context section's numbers: gains of the picks over Llama-3 GQA at 8K and
    from 32K on (tokens/s at the largest batch)."""
    tps = vs_t[vs_t.hardware == hardware].pivot(index="context_len", columns="model",
                                                values="tokens_per_s")
    gain = tps.div(tps["Llama-3 GQA (d/64, 8)"], axis=0)
    z, thr = pick_label("z"), pick_label("throughput")
    return {"gain_z_8k": gain.loc[8192, z], "gain_thr_8k": gain.loc[8192, thr],
            "gain_z_long": gain.loc[32768:, z].min(), "gain_thr_long": gain.loc[32768:, thr].max()}


def objective_numbers(picks: pd.DataFrame) -> dict[str, Any]:
    """How often the serving objectives' picks differ from Z's; up to which context latency
    agrees with Z on the RTX 4090 (datasheet roofline); the H200's (calibrated) latency
    picks at the shortest and the longest context."""
    from gqa_lib.units import format_context

    other = picks[picks.objective != "z"]
    thr = picks[picks.objective == "throughput"]

    def latency(hw):
        return picks[(picks.objective == "latency") & (picks.hardware == hw)].sort_values(
            "context")

    lat = latency("rtx-4090")
    same = lat.agrees_with_z.astype(bool)
    h200 = latency("h200")
    return {"lat_agree_upto": format_context(int(lat[same].context.max())) if same.any()
            else "no context", "n_differ": int((~other.agrees_with_z.astype(bool)).sum()),
            "n_cells": len(other), "h200_lat_short": h200.pick.iloc[0],
            "n_thr_differ": int((~thr.agrees_with_z.astype(bool)).sum()), "n_thr_cells": len(thr),
            "h200_lat_short_T": format_context(int(h200.context.iloc[0])),
            "h200_lat_long": h200.pick.iloc[-1],
            "h200_lat_agree": int(h200.agrees_with_z.astype(bool).sum()),
            "h200_lat_contexts": len(h200)}


def page_numbers(model) -> dict[str, Any]:
    """Every number the serving page's prose quotes that is not computed in its sections."""
    mvp = measured_vs_predicted("h200").set_index("regime")
    c = calibration("h200")
    errs = error_summary("h200")
    hw = get_accelerator("h200")
    out: dict[str, Any] = {}
    for key, regime in (("dec1", "decode, batch 1, 128K"), ("dec8", "decode, batch 8, 128K"),
                        ("pre", "prefill, 128K")):
        out[f"m_{key}"] = mvp.loc[regime, "measured_speedup"]
        out[f"d_{key}"] = mvp.loc[regime, "datasheet_speedup"]
    out["b1_predicted_loo"] = mvp.loc["decode, batch 1, 128K", "calibrated_speedup"]
    out["m_dec1_lat"] = 100 * (1 - 1 / out["m_dec1"])  # latency per token saved, measured
    out["b1_overstated"] = out["d_dec1"] / out["m_dec1"]  # datasheet over measured batch-1 gain
    eager = eager_over_graph("h200")
    out.update(eager_lo=eager.min(), eager_hi=eager.max(),
               eager_b1_lo=eager[eager.index.get_level_values("batch") == 1].min())
    out.update(copy_bw=copy_bandwidth_text("h200"),
               mem_sheet_gb=hw.memory_capacity_bytes / 1e9,
               mem_exposed_gb=c.memory_capacity_bytes / 1e9)
    pc = prompt_counted(model)
    g1k, g16k = (pc[pc.output_tokens == g].iloc[0] for g in (1024, 16384))
    out.update(pc_thr_pick=g1k["thr_pick"], pc_thr_ratio=g1k["thr_ratio"],
               pc_z_ratio=g1k["z_ratio"], pc_thr_ratio_16k=g16k["thr_ratio"],
               pc_z_ratio_16k=g16k["z_ratio"])
    out.update(floor_ms=c.layer_floor_s * 1e3, r_mm=c.matmul_flops_per_s / 1e12,
               r_att=c.attention_flops_per_s / 1e12, bw_tb=c.bandwidth_bytes_per_s / 1e12,
               bw_frac=c.bandwidth_bytes_per_s / hw.memory_bandwidth_bytes_per_s,
               n_points=c.points, loo_worst=errs["max_error"].max(),
               ds_worst=errs["datasheet_max_error"].max())
    out.update(batch1_account(*equal_loss_pair()))
    # aligned shapes: the (32, 8) with d_ff 5,461 against 5,632, as measured
    from gqa_lib.arch.config import aligned, paper_family

    al = alignment_ratios(paper_family(32), aligned(paper_family(32)))
    out.update(al)
    # the headline with both models
    cal = headline_serving(model, hardware=("h200",)).set_index("objective")
    ds = headline_serving(model, hardware=("h200",), calibration="datasheet").set_index(
        "objective")
    out.update(z_pick=cal.loc["z", "pick"], thr_pick=cal.loc["throughput", "pick"],
               hl_ratio_z=cal.loc["z", "tokens_per_s_ratio"],
               thr_ratio=cal.loc["throughput", "tokens_per_s_ratio"],
               hl_ratio_z_ds=ds.loc["z", "tokens_per_s_ratio"],
               thr_ratio_ds=ds.loc["throughput", "tokens_per_s_ratio"],
               lat_cal=cal.loc["z", "latency_pct"], lat_ds=ds.loc["z", "latency_pct"],
               rise=" to ".join(f"{r - 1:.0%}" for r in sorted(  # calibrated over datasheet
                   cal.loc["z", c] / ds.loc["z", c] for c in ("tokens_per_s",
                                                              "baseline_tokens_per_s"))),
               kv_ratio_z=cal.loc["z", "kv_per_sequence_ratio"],
               batch_ratio_z=cal.loc["z", "max_batch"] / cal.loc["z", "baseline_max_batch"],
               batch_picks=" and ".join(f"{b:,.0f}" for b in sorted(
                   {cal.loc["z", "max_batch"], cal.loc["throughput", "max_batch"]})),
               batch_base=cal.loc["z", "baseline_max_batch"])
    # Table 5: the paper's rates, and what they would need on an A800
    t5 = table5_prediction("a800").set_index("regime")
    out.update(t5_rate=f"{t5.loc['prefill', 'paper_llama3_tokens_per_s']:,.0f}",
               t5_rate_opt=f"{t5.loc['prefill', 'paper_optimum_tokens_per_s']:,.0f}",
               t5_bw_x=t5.loc["decode, batch 1", "implied_llama3"],
               t5_mfu_base=t5.loc["prefill", "implied_llama3"],
               t5_mfu_opt=t5.loc["prefill", "implied_optimum"],
               t5_paper_inf=t5.loc["prefill", "paper_speedup"],
               t5_paper_train=t5.loc["training", "paper_speedup"])
    # prefill of a 128K prompt by Z's pick and the throughput pick
    vs = serving_vs_context(model, target_loss=PAPER_HEADLINE["target_loss"],
                            contexts=(PAPER_HEADLINE["context"],), hardware=("h200",))
    vs = vs.set_index("model")
    out.update(prefill_z=vs.loc[pick_label("z"), "prefill_s"],
               prefill_thr=vs.loc[pick_label("throughput"), "prefill_s"])
    return out


def eager_over_graph(hardware: str = "h200") -> pd.Series:
    """How much slower an eager decode loop measured than a CUDA graph of the same step (same
    model, context, batch and machine), per (model, context, batch): the Python launch cost
    the graph removes."""
    rows = pd.DataFrame(read_measurements(MEASUREMENTS[hardware])["rows"])
    keys = ["model", "context", "batch", "source"]
    step = rows[rows.regime == "decode_step"].set_index(keys)["value"]
    eager = rows[rows.regime == "decode_step_eager"].set_index(keys)["value"]
    both = eager.index.intersection(step.index)
    if both.empty:
        raise GQAError(f"{MEASUREMENTS[hardware].name} has no eager decode step beside a graph")
    return (eager[both] / step[both]).droplevel("source")


def batch1_account(base: ModelConfig, opt: ModelConfig, context: int = 131072,
                   hardware: str = "h200") -> dict[str, float]:
    """The calibrated model's account of a batch-1 decode step of the equal-loss pair (ms):
    the (32, 8)'s step, its per-layer floor, KV-cache and weight reads; the cache the (8, 1)
    saves, the floor its extra layers add, the weights its larger size adds; the predicted
    speed-up. Bandwidth-bound at batch 1, so step = floor + (weights + cache) / bandwidth."""
    c = calibration(hardware)
    ms = 1e3 / c.bandwidth_bytes_per_s

    def parts(cfg):
        step = cost.decode_step(cfg, context, hardware)
        return {"step": 1e3 * float(step["seconds"]), "floor": 1e3 * float(step["floor_s"]),
                "kv": ms * float(cost.kv_bytes_per_sequence(cfg, context)),
                "w": ms * float(cost.weights_read_bytes(cfg))}

    b, o = parts(base), parts(opt)
    return {"b1_step": b["step"], "b1_floor": b["floor"], "b1_kv": b["kv"], "b1_w": b["w"],
            "b1_kv_saved": b["kv"] - o["kv"], "b1_floor_added": o["floor"] - b["floor"],
            "b1_w_added": o["w"] - b["w"], "b1_layers_added": opt.n_layer - base.n_layer,
            "b1_predicted": b["step"] / o["step"]}


def alignment_ratios(paper_shape: ModelConfig, built: ModelConfig) -> dict[str, float]:
    """Measured slow-down of the paper's shape against the aligned one (prefill at 8K and
    128K, training at 8K) and the parameters rounding adds (fraction)."""
    def ratio(kind, T):
        return _measured_s(paper_shape, kind, T) / _measured_s(built, kind, T)

    return {"ff_pre": ratio("prefill", 8192), "ff_pre_128k": ratio("prefill", 131072),
            "ff_train": ratio("train", 8192),
            "ff_params_pct": float(cost.params_total(built) / cost.params_total(paper_shape)
                                   - 1)}
