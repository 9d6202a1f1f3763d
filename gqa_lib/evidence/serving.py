"""The recipe in seconds, tokens per second and accelerators: its picks under serving
objectives beside Z's, serving figures against context for Llama-3 GQA and the recipe's
picks, and the paper's Table 5 (one A800, T = 128K) beside the serving model and the H200's
measurements of the same pair.

The figures are :mod:`gqa_lib.cost.serving`'s: calibrated on measured step times for a
measured accelerator (the H200: data/bench/h200-2026-12-04.json), the datasheet roofline for
the others; every table says which in its ``basis`` column. Shapes are aligned (d_ff rounded
up to a multiple of 256) as one would build them; the equal-loss pair is rounded to whole
layers. :func:`measured_vs_predicted` sets the H200's measured step times of the pair beside
both models' predictions, with the calibrated model's leave-one-out error.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from gqa_lib import cost
from gqa_lib.arch.config import aligned, FFN_MULTIPLE_OF, ModelConfig, paper_family
from gqa_lib.arch.hardware import get_accelerator
from gqa_lib.evidence.paper import read_paper_table, joint_model
from gqa_lib.fit.recipe import CostSettings, baseline_costs, cost_grid, optimize
from gqa_lib.io import DATA_DIR
from gqa_lib.units import format_heads

SERVING_COLUMNS = ("tokens_per_s", "max_batch", "latency_s", "prefill_s")


def pick_label(objective: str) -> str:
    """The ``model`` label of the recipe's pick by ``objective`` in
    :func:`serving_vs_context`: "recipe's pick by Z", "recipe's pick by throughput"."""
    return f"recipe's pick by {cost.OBJECTIVE_SHORT[objective]}"


def objective_picks(model=None, *, targets=(2.615,), contexts=(8192, 32768, 131072),
                    hardware=("h200",), objectives=("z", "latency", "throughput"),
                    **settings: Any) -> pd.DataFrame:
    """One row per (accelerator, objective, target, context): the pick, its size and serving
    figures, and whether it is Z's pick (``agrees_with_z``). ``settings`` go to
    :class:`CostSettings` (efficiencies, batch, price)."""
    model = joint_model() if model is None else model
    rows = []
    for hw in hardware:
        z_pick = None
        for obj in objectives:
            s = CostSettings(objective=obj, hardware=hw, **settings)
            cells = cost_grid(model, np.asarray(targets, float), np.asarray(contexts, float),
                              settings=s).cells().drop(columns="objective", errors="ignore")
            cells["pick"] = [format_heads(a, b) for a, b in zip(cells["n_head"], cells["n_kv_head"])]
            if obj == "z":
                z_pick = cells["pick"].to_numpy()
            cells["agrees_with_z"] = (cells["pick"].to_numpy() == z_pick
                                      if z_pick is not None else np.nan)
            cells.insert(0, "objective", obj)
            cells.insert(0, "hardware", get_accelerator(hw).key)
            rows.append(cells)
    return pd.concat(rows, ignore_index=True)


def serving_vs_context(model=None, *, target_loss: float = 2.615,
                       contexts=tuple(2**k for k in range(12, 21)), hardware=("h200",),
                       picks=("z", "throughput"), **settings: Any) -> pd.DataFrame:
    """Tidy rows (hardware, model, context_len) with tokens/s per accelerator at the largest
    batch, latency per token at batch 1, prefill seconds and the largest batch, for the
    Llama-3 GQA family sized to the target and the recipe's pick by each of ``picks``; the
    ``basis`` of each accelerator's figures (calibrated or datasheet, :func:`cost.basis`).
    Where a model does not fit at batch 1 (``max_batch`` 0) its latency and prefill are NaN."""
    model = joint_model() if model is None else model
    T = np.asarray(contexts, float)
    frames = []
    for hw in hardware:
        key = get_accelerator(hw).key
        base = baseline_costs(model, target_loss, T,
                              settings=CostSettings(hardware=hw, **settings))
        frames.append(pd.DataFrame({"hardware": key, "model": "Llama-3 GQA (d/64, 8)",
                                    "context_len": T.astype(int),
                                    **{c: base[c][0] for c in SERVING_COLUMNS}}))
        for obj in picks:
            cells = cost_grid(model, target_loss, T, settings=CostSettings(
                objective=obj, hardware=hw, **settings)).cells()
            frames.append(pd.DataFrame({
                "hardware": key, "model": pick_label(obj),
                "context_len": T.astype(int),
                "pick": [format_heads(a, b) for a, b in zip(cells["n_head"], cells["n_kv_head"])],
                **{c: cells[c].to_numpy() for c in SERVING_COLUMNS}}))
    df = pd.concat(frames, ignore_index=True)
    df["basis"] = [cost.basis(hw, settings.get("calibration", "auto")) for hw in df["hardware"]]
    # a model whose weights and one sequence's cache do not fit has no batch-1 latency or
    # prefill time on that accelerator: blank, never a number beside those that fit
    df.loc[df["max_batch"] < 1, ["latency_s", "prefill_s"]] = np.nan
    df["latency_ms"] = 1e3 * df["latency_s"]
    return df


def headline_serving(model=None, *, hardware=("a800", "h100", "h200"), context: int = 131072,
                     target_loss: float = 2.615, **settings: Any) -> pd.DataFrame:
    """The headline (T = 128K, target 2.615) in serving units per accelerator: Z's pick and
    the throughput objective's pick against the Llama-3 GQA family of the same fitted loss."""
    model = joint_model() if model is None else model
    rows = []
    for hw in hardware:
        for obj in ("z", "throughput"):
            rec = optimize(model, target_loss, context, baseline="llama3",
                           settings=CostSettings(objective=obj, hardware=hw, **settings))
            b, base, s = rec.best, rec.baseline, rec.savings
            rows.append({"hardware": get_accelerator(hw).key, "objective": obj,
                         "basis": cost.basis(hw, settings.get("calibration", "auto")),
                         "pick": format_heads(b["n_head"], b["n_kv_head"]),
                         "extrapolated": bool(b["extrapolated"]),
                         "params_non_embedding": b["params_non_embedding"],
                         "tokens_per_s": b["tokens_per_s"],
                         "baseline_tokens_per_s": base["tokens_per_s"],
                         "tokens_per_s_ratio": s["tokens_per_s_ratio"],
                         "max_batch": b["max_batch"], "baseline_max_batch": base["max_batch"],
                         # both families share the head size: the cache scales as n_kv L
                         "kv_per_sequence_ratio": (base["n_kv_head"] * base["n_layer"])
                         / (b["n_kv_head"] * b["n_layer"]),
                         "latency_ms": 1e3 * b["latency_s"],
                         "baseline_latency_ms": 1e3 * base["latency_s"],
                         "latency_pct": s.get("latency_pct", float("nan")), "memory_pct": s["memory_pct"],
                         "flops_pct": s["flops_pct"]})
    return pd.DataFrame(rows)


def prompt_counted(model=None, *, outputs=(None, 131072, 16384, 4096, 1024, 256),
                   hardware: str = "h200", context: int = 131072,
                   target_loss: float = 2.615) -> pd.DataFrame:
    """The headline with each request's prompt counted: for G generated tokens per request
    of a ``context``-token prompt (``output_tokens``; None: decode only, every prompt already
    cached), Z's pick and the throughput objective's pick against Llama-3 GQA of the same
    fitted loss, in generated tokens/s per accelerator (prefill + decode, not overlapped:
    :func:`gqa_lib.cost.request_seconds`)."""
    rows = []
    for G in outputs:
        h = headline_serving(model, hardware=(hardware,), context=context,
                             target_loss=target_loss, output_tokens=G).set_index("objective")
        rows.append({"output_tokens": G, "z_pick": h.loc["z", "pick"],
                     "z_ratio": h.loc["z", "tokens_per_s_ratio"],
                     "thr_pick": h.loc["throughput", "pick"],
                     "thr_extrapolated": bool(h.loc["throughput", "extrapolated"]),
                     "thr_ratio": h.loc["throughput", "tokens_per_s_ratio"],
                     "thr_tokens_per_s": h.loc["throughput", "tokens_per_s"],
                     "baseline_tokens_per_s": h.loc["throughput", "baseline_tokens_per_s"]})
    return pd.DataFrame(rows)


# ----- Table 5 as a prediction --------------------------------------------------------------
def equal_loss_pair(model=None, *, target_loss: float = 2.615, context: int = 131072,
                    multiple_of: int = FFN_MULTIPLE_OF) -> tuple[ModelConfig, ModelConfig]:
    """The paper's (32, 8) point (L = 32, d = 2048, whose loss is the target) and the
    recipe's (8, 1) of equal fitted loss at T = 128K, rounded to whole layers on d = 64 L,
    with d_ff rounded up to ``multiple_of`` (256: the shapes the H200 measured and
    benchmarks/gpu.py builds; 1: the paper's int(8d/3), d_ff 5,461 for the (32, 8))."""
    model = joint_model() if model is None else model
    rec = optimize(model, target_loss, context)
    row = rec.candidates[(rec.candidates["n_head"] == 8) & (rec.candidates["n_kv_head"] == 1)]
    L = int(round(float(row["n_layer"].iloc[0])))
    return (aligned(paper_family(32), multiple_of),
            aligned(paper_family(L, n_head=8, n_kv_head=1), multiple_of))


def _training_flops_per_token(cfg: ModelConfig, T: int) -> float:
    """C_train per token (eq. 10-11, causal T_bar = T / 2) plus the LM head's 6 d V."""
    return float(cost.training_flops(cfg, 1, T)) + 6.0 * cfg.d_model * cfg.vocab_size


def table5_prediction(hardware: str = "a800", *, context: int = 131072,
                      calibration: str = "auto", flops_efficiency: float | None = None,
                      bandwidth_efficiency: float | None = None,
                      memory_fraction: float = cost.MEMORY_FRACTION) -> pd.DataFrame:
    """The equal-loss pair's predicted tokens/s per regime on one accelerator beside Table 5.

    Regimes: decode at batch 1 and at the largest batch that fits (generated tokens/s),
    prefill of one T-token prompt (prompt tokens/s, causal attention), training (tokens/s,
    compute-bound: the calibrated training step, or ``flops_efficiency`` of peak on the
    datasheet). ``basis`` says which model (:func:`gqa_lib.cost.serving.basis`).
    ``paper_*`` columns: Table 5's inference row (one A800, batch 1) beside every inference
    regime, its training row beside training.
    ``implied_*``: the fraction of the peak rate that bounds the regime (bandwidth for
    decoding, FLOP/s otherwise) that the paper's tokens/s would need per accelerator, with
    ``paper_accelerators`` of them: 1 for inference (stated), 8 for training (the paper's
    training set-up, 8 x A800; Table 5 does not say). Above 1, the regime cannot be what the
    paper measured."""
    hw = get_accelerator(hardware)
    base, opt = equal_loss_pair(context=context)
    t5 = read_paper_table("table5.csv").set_index("metric")
    eff = {"flops_efficiency": flops_efficiency, "bandwidth_efficiency": bandwidth_efficiency,
           "calibration": calibration}
    cal = cost.resolve_calibration(hw, calibration)
    rows = []
    for regime in ("decode, batch 1", "decode, largest batch", "prefill", "training"):
        r: dict[str, Any] = {"regime": regime}
        paper = t5.loc["training_throughput" if regime == "training" else
                       "inference_throughput"]
        for tag, cfg in (("llama3", base), ("optimum", opt)):
            n_acc = 8 if regime == "training" else 1
            if regime.startswith("decode"):
                B = 1 if regime.endswith("1") else int(cost.max_batch(
                    cfg, context, hw, memory_fraction=memory_fraction,
                    calibration=calibration))
                step = cost.decode_step(cfg, context, hw, batch=max(B, 1), **eff)
                tps = B / step["seconds"] if B else 0.0
                # a decode step is bandwidth-bound: what the paper's rate needs is bytes/s
                need = step["bytes"] / max(B, 1) / hw.memory_bandwidth_bytes_per_s
            elif regime == "prefill":
                step = cost.prefill_step(cfg, context, hw, **eff)
                tps = context / step["seconds"]
                need = step["flops"] / context / hw.bf16_flops_per_s
            else:
                step = {"memory_bound": False}
                need = _training_flops_per_token(cfg, context) / hw.bf16_flops_per_s
                if cal is None:
                    e_f = cost.FLOPS_EFFICIENCY if flops_efficiency is None else flops_efficiency
                    tps = e_f / need
                else:
                    from gqa_lib.cost.calibrate import step_seconds, work

                    tps = context / step_seconds(work(cfg, "train", context), cal)
            col = "llama3_gqa_32_8" if tag == "llama3" else "cost_optimal_8_1"
            r.update({f"{tag}_tokens_per_s": tps,
                      f"{tag}_bound": "memory" if step["memory_bound"] else "compute",
                      f"paper_{tag}_tokens_per_s": float(paper[col]),
                      f"implied_{tag}": float(paper[col]) * need / n_acc,
                      "implied_of": "bandwidth" if regime.startswith("decode") else "FLOP/s",
                      "paper_accelerators": n_acc})
        r["predicted_speedup"] = r["optimum_tokens_per_s"] / r["llama3_tokens_per_s"]
        r["basis"] = "datasheet" if cal is None else "calibrated"
        r["paper_speedup"] = r["paper_optimum_tokens_per_s"] / r["paper_llama3_tokens_per_s"]
        rows.append(r)
    df = pd.DataFrame(rows)
    df.attrs.update({"hardware": hw.key, "context": context,
                     "pair": (base.to_dict(), opt.to_dict()),
                     "params_total": (int(cost.params_total(base)),
                                      int(cost.params_total(opt)))})
    return df


def measured_pair(bench_dir=None, *, context: int = 131072) -> dict[str, Any] | None:
    """The GPU benchmark's measured decode and prefill of the equal-loss pair at ``context``
    (the newest non-toy data/bench/gpu-*.json), or None when no GPU run has been recorded."""
    folder = DATA_DIR / "bench" if bench_dir is None else bench_dir
    found = []
    for path in sorted(folder.glob("gpu-*.json")):
        res = json.loads(path.read_text())
        if res.get("toy") or "decode" not in res:
            continue
        rows = [r for r in res["decode"]["rows"] if r["context"] == context]
        if len(rows) == 2:
            found.append((path, res, rows))
    if not found:
        return None
    path, res, (b, o) = found[-1]
    return {"file": path.name, "device": res.get("machine", {}).get("gpu", res["device"]),
            "decode_speedup": b["s_per_token"] / o["s_per_token"],
            "prefill_speedup": b["prefill_s"] / o["prefill_s"],
            "llama3_decode_tokens_per_s": b["tokens_per_s"],
            "optimum_decode_tokens_per_s": o["tokens_per_s"],
            "llama3_prefill_tokens_per_s": b["prefill_tokens_per_s"],
            "optimum_prefill_tokens_per_s": o["prefill_tokens_per_s"]}


def efficiency_sensitivity(model=None, *, hardware: str = "h200", context: int = 131072,
                           target_loss: float = 2.615,
                           bandwidth=(0.5, 0.7, 0.9), flops=(0.3, 0.5, 0.7)) -> pd.DataFrame:
    """The throughput pick and its gain over Llama-3 GQA on the datasheet roofline as its two
    efficiency factors vary (the defaults are an observation and an assumption, so the page
    shows what they move; a measured accelerator's calibration replaces both)."""
    model = joint_model() if model is None else model
    rows = []
    for e_bw in bandwidth:
        for e_f in flops:
            rec = optimize(model, target_loss, context, baseline="llama3",
                           settings=CostSettings(objective="throughput", hardware=hardware,
                                                 calibration="datasheet",
                                                 bandwidth_efficiency=e_bw,
                                                 flops_efficiency=e_f))
            rows.append({"bandwidth_efficiency": e_bw, "flops_efficiency": e_f,
                         "pick": format_heads(rec.best["n_head"], rec.best["n_kv_head"]),
                         "tokens_per_s": rec.best["tokens_per_s"],
                         "tokens_per_s_ratio": rec.savings["tokens_per_s_ratio"]})
    return pd.DataFrame(rows)


def table5_efficiency_split(hardware: str = "a800", *, context: int = 131072
                            ) -> dict[str, float]:
    """Read Table 5's two inference rates as T-token prefills and solve for the efficiencies
    of matmuls (e_mm) and of attention (e_att) that would give both:
    1 / rate = (F_mm / e_mm + F_att / e_att) / peak per prompt token, two equations in two
    unknowns (the rest of a step, norms and RoPE, counted as free)."""
    hw = get_accelerator(hardware)
    rates = read_paper_table("table5.csv").set_index("metric").loc["inference_throughput"]
    A, b = [], []
    for cfg, col in zip(equal_loss_pair(context=context), ("llama3_gqa_32_8",
                                                           "cost_optimal_8_1")):
        f_mm = 2.0 * float(cost.matmul_params(cfg))            # per prompt token
        f_att = float(cost.prefill_flops(cfg, context)) / context - f_mm  # causal
        A.append([f_mm, f_att])
        b.append(hw.bf16_flops_per_s / float(rates[col]))
    inv_mm, inv_att = np.linalg.solve(np.array(A), np.array(b))
    return {"matmul_efficiency": float(1 / inv_mm), "attention_efficiency": float(1 / inv_att)}
