"""The scoreboard: every claim of the paper this book tests, the paper's number, ours, and a
verdict, computed from the library (the book's "Results at a glance" page).

:func:`scoreboard` returns one row per claim with the columns

- ``claim``: what the paper says, in a few words;
- ``paper``: its number, quoted from the paper (data/paper/ or
  :data:`~gqa_lib.evidence.paper.PAPER_HEADLINE`);
- ``ours``: what this book computes or measures, as text;
- ``verdict``: one of :data:`VERDICTS`;
- ``why``: the reason for the verdict, or for a difference;
- ``page`` and ``anchor``: where the book shows the evidence.

The verdicts follow fixed rules, stated with each row: a saving is *reproduced* when ours is
within :data:`SAVING_TOLERANCE_PTS` percentage points of the paper's, *partly* when it has the
same sign and size but no counting convention reaches the paper's figure. A claim whose
evidence is still being produced (the 20-tokens-per-parameter sweep, a trained recall task,
GPU measurements) is *pending* and says what it waits for: never a guess.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from gqa_lib import cost
from gqa_lib.arch.config import paper_family
from gqa_lib.evidence.paper import (PAPER_DIR, PAPER_HEADLINE, headline, joint_model,
                                    paper_headcount_laws, table4_comparison, table4_summary)
from gqa_lib.io import DATA_DIR

VERDICTS = ("reproduced", "partly", "not reproduced", "not testable here", "pending")
SAVING_TOLERANCE_PTS = 5.0  # a saving within 5 points of the paper's counts as reproduced
COLUMNS = ("claim", "paper", "ours", "verdict", "why", "page", "anchor")


def _row(claim, paper, ours, verdict, why, page, anchor="") -> dict[str, str]:
    if not (verdict in VERDICTS or verdict.startswith("pending: ")):
        raise ValueError(f"verdict {verdict!r} is not one of {VERDICTS}")
    return dict(zip(COLUMNS, (claim, paper, ours, verdict, why, page, anchor)))


def _table5() -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / "table5.csv")


def _saving_verdict(ours: float, paper: float, closest: float) -> tuple[str, str]:
    if abs(closest - paper) <= 1.0:
        return "reproduced", "within a point of the paper's figure"
    if abs(ours - paper) <= SAVING_TOLERANCE_PTS:
        return "reproduced", (f"within {SAVING_TOLERANCE_PTS:g} points of the paper's figure "
                              "(read off a figure, fitted by us)")
    if np.sign(ours) == np.sign(paper):
        return "partly", "same direction, different size"
    return "not reproduced", "the opposite direction"


def _long_context_trend(t4: pd.DataFrame) -> tuple[int, int]:
    """Targets of our Table 4 at which the chosen heads never rise and N* never falls as T
    grows; and the number of targets."""
    held = 0
    targets = sorted(t4["target_loss"].unique())
    for t in targets:
        row = t4[t4["target_loss"] == t].sort_values("context")
        heads = (row["n_head"] * row["n_kv_head"]).to_numpy()
        n = row["params_non_embedding"].to_numpy()
        held += bool(np.all(np.diff(heads) <= 0) and np.all(np.diff(n) >= -1e-6 * n[:-1]))
    return held, len(targets)


def _gpu_decode() -> dict[str, Any] | None:
    """The latest real (not toy) GPU benchmark, if one has been recorded."""
    real = sorted(p for p in (DATA_DIR / "bench").glob("gpu-*.json") if "toy" not in p.name)
    return json.loads(real[-1].read_text()) if real else None


def scoreboard(model=None) -> pd.DataFrame:
    """One row per claim of the paper this book tests (see the module docstring)."""
    model = joint_model() if model is None else model
    P = PAPER_HEADLINE
    h = headline(model, baseline="fit")  # the book's one headline definition
    rows = []

    mem_v, why = _saving_verdict(h["memory_pct"], P["memory_pct"], h["memory_pct"])
    rows.append(_row(
        "(8, 1) needs less memory than Llama-3 GQA at 128K, same loss",
        f"{P['memory_pct']:.1f}% less", f"{h['memory_pct']:.1f}% less", mem_v,
        why + "; baseline: the Llama-3 model of the same loss on the fitted law",
        "notebooks/recipe", "the-headline-beside-the-paper-s"))

    flops = {k: v for k, v in h["flops_pct"].items()}
    closest = min(flops.values(), key=lambda v: abs(v - P["flops_pct"]))
    lo, hi = min(flops.values()), max(flops.values())
    fl_v, why = _saving_verdict(flops["fig2"], P["flops_pct"], closest)
    if fl_v == "reproduced" and abs(closest - P["flops_pct"]) > 1.0:
        fl_v, why = "partly", ("the right size, but no counting convention gives the paper's "
                               f"figure (ours {lo:.1f}% to {hi:.1f}% by convention)")
    rows.append(_row(
        "... and fewer FLOPs", f"{P['flops_pct']:.1f}% fewer",
        f"{flops['fig2']:.1f}% fewer ({lo:.1f}% to {hi:.1f}% by convention)", fl_v, why,
        "notebooks/recipe", "the-headline-beside-the-paper-s"))

    gain, pg = h["equal_z_loss_gain"], P["equal_z_loss_gain"]
    rows.append(_row(
        "At equal cost Z, (8, 1) reaches a lower loss", f"{pg:.3f} nats lower",
        f"{gain:.3f} nats lower",
        "reproduced" if abs(gain - pg) <= 0.1 * pg else "partly" if gain > 0 else
        "not reproduced",
        "same sign; the size rests on our fits of digitised losses (+-0.004 nats each)",
        "notebooks/recipe", "the-headline-beside-the-paper-s"))

    t4 = table4_comparison(model)
    s = table4_summary(t4)
    rows.append(_row(
        "Table 4: the cost-optimal H per target loss and context", "40 cells",
        f"{s['matches']} of {s['cells']} match; {s['measured_matches']} of "
        f"{s['measured_cells']} whose answer was measured",
        "reproduced" if s["matches"] == s["cells"] else "partly",
        f"the {s['extrapolated_cells']} other cells need n_h = 16 or 32, which the published "
        "losses do not cover: both answers rest on an extrapolation",
        "notebooks/recipe", "table-4-cell-by-cell"))

    held, n_targets = _long_context_trend(t4)
    rows.append(_row(
        "Longer context: fewer heads and a bigger model",
        "read off Table 4", f"holds at {held} of {n_targets} targets of our Table 4 "
        "(paper's data); on our own sweep: see the fitting page",
        "reproduced" if held == n_targets else "partly",
        "on the paper's losses; a test on models trained here to 20 tokens per parameter is "
        "pending: the new sweep", "notebooks/fitting",
        "does-a-longer-context-favour-fewer-heads-and-a-bigger-model"))

    gqa = paper_family(32)  # the "1.2B" Llama-3 GQA point, L = 32, d = 2048, (32, 8)
    kv = float(cost.kv_cache_values(gqa, P["context"]))
    share = kv / (kv + float(cost.params_non_embedding(gqa, include_norms=False)))
    rows.append(_row(
        "At ~1B parameters and 128K, about 90% of memory is KV cache", "about 90%",
        f"{share:.0%} for the (32, 8) model by eq. 4",
        "not reproduced" if abs(share - 0.9) > 0.05 else "reproduced",
        "90% is what multi-head attention holds at that shape; GQA's (32, 8) holds less",
        "notebooks/where-cost-goes", "the-paper-s-90-of-memory-at-1b-parameters"))

    t5 = _table5().set_index(["metric", "context"])
    nih = t5.loc[("needle_in_a_haystack", "128K")]
    rows.append(_row(
        "Fewer heads do not hurt retrieval (needle in a haystack)",
        f"{nih['llama3_gqa_32_8']:.1f}% vs {nih['cost_optimal_8_1']:.1f}% at 128K",
        "our tiny models do not copy from context yet (recall probe at chance)",
        "pending: retrieval on a trained recall task",
        "the probe is in every sweep; a task the models can learn at this scale is coming",
        "notebooks/training", "can-the-small-models-retrieve"))

    laws = paper_headcount_laws()  # the paper's printed coefficients (free c)
    rows.append(_row(
        "Loss falls with query heads, L = a n_h^-b + c, more than with KV heads",
        f"App. I: b = {laws.b.min():.3f} to {laws.b.max():.3f} at "
        f"{laws.model_label.iloc[0]} to {laws.model_label.iloc[-1]}",
        "at equal shape our (8, 1) loses to (8, 8); n_h > 8 not trained here",
        "pending: the 20-tokens-per-parameter sweep",
        "the paper's law is fitted at 470M+ parameters; ours needs models trained further",
        "notebooks/fitting", "the-paper-s-head-count-laws-app-i"))

    inf = t5.xs("inference_throughput", level="metric").iloc[0]  # at T = 128K
    speedup = inf["cost_optimal_8_1"] / inf["llama3_gqa_32_8"]
    gpu = _gpu_decode()
    from gqa_lib.evidence.serving import table5_prediction

    pred = table5_prediction("a800").set_index("regime")
    decode, prefill = pred.loc["decode, batch 1"], pred.loc["prefill"]
    ours = (f"roofline on an A800: {decode.predicted_speedup:.2f}x decoding at batch 1, "
            f"{prefill.predicted_speedup:.2f}x prefill"
            + ("; no GPU measurement yet" if gpu is None
               else f"; measured on {gpu.get('device')}"))
    rows.append(_row(
        "(8, 1) serves faster at 128K (one A800, batch 1)", f"{speedup:.2f}x", ours,
        "partly",
        f"faster in every regime, but by more than the paper's {speedup:.2f}x; its "
        f"{inf['llama3_gqa_32_8']:,.0f} tokens/s would need {decode.implied_llama3:.0f}x "
        "the A800's bandwidth as decoding, so it must be prefill"
        + ("; the GPU benchmark (benchmarks/gpu.py) is ready" if gpu is None else ""),
        "notebooks/serving", "table-5-as-a-prediction"))
    return pd.DataFrame(rows, columns=list(COLUMNS))
