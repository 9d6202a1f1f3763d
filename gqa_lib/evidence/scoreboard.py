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

The verdicts follow the fixed rules of :data:`RULES` (the results page prints them), and
each row keeps what its verdict was decided on in ``DataFrame.attrs["basis"]`` (one dict per
row, ``kind`` naming the rule; the headline rows' bootstrap refits in ``attrs["refits"]``),
so a test can re-read rule and row side by side. A claim whose evidence is still being
produced (a running sweep, GPU measurements) is *pending* and says what it waits for: never
a guess. A claim about trained models is tested on models that can show it: ones that use
their context, beat a trigram count model, solve the task, and are compared without a
confound; otherwise it is *not testable here*, with the reason.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from gqa_lib import cost
from gqa_lib.arch.config import paper_family
from gqa_lib.evidence.paper import (HEADLINE_BOOT, PAPER_DIR, PAPER_HEADLINE, TABLE4_CONTEXTS,
                                    among_refits, headline, headline_intervals,
                                    joint_model, paper_headcount_laws, paper_runs,
                                    table4_comparison, table4_summary)
from gqa_lib.fit.recipe import bootstrap_grids
from gqa_lib.errors import GQAError
from gqa_lib.evidence.equal_size import ALPHA as SEED_ALPHA
from gqa_lib.units import format_count, format_heads_each, format_p, format_saving, format_signed

VERDICTS = ("reproduced", "partly", "not reproduced", "not testable here", "pending")
SAVING_TOLERANCE_PTS = 5.0  # a saving within 5 points of the paper's counts as reproduced
LOSS_GAIN_TOLERANCE = 0.10  # a loss gain within 10% of the paper's counts as reproduced
SOLVED_ACC = 0.9            # a retrieval task counts as solved at this accuracy
RULES = {
    "reproduced": (f"a saving within {SAVING_TOLERANCE_PTS:g} percentage points of the paper's "
                   "(with several counting conventions: one of them within a point), a loss "
                   f"gain or a speed-up within {LOSS_GAIN_TOLERANCE:.0%} of it, every cell "
                   "matching (Table 4) or a trend read off it holding at every target loss, "
                   "a share within 5 points by the paper's formula; for "
                   "models trained here, the direction beyond seed noise (a paired test "
                   f"across seeds at p < {SEED_ALPHA:g}, divided by the number of looks where "
                   "seeds were added after the contrast had been read, or z > 2 with many "
                   "pairs) in models that can show it (see not testable here)"),
    "partly": ("the direction agrees but not the number (a saving whose counting conventions "
               "straddle the paper's figure, none within a point, counts here), only some "
               "cells match (or targets hold a trend), or models trained here show the "
               "paper's direction within seed "
               "noise; the why column says which part and why"),
    "not reproduced": ("the opposite direction, a share the paper's own formula does not "
                       "give, no matching cell, or models that can show the effect showing "
                       "the opposite"),
    "not testable here": ("our data cannot decide the claim: the models trained here do not "
                          "use their context (a longer context is no better), lose to a "
                          "trigram count model, leave the task unsolved, or are compared "
                          "with a confound (size, tokens, equal shape where the paper "
                          "compares at equal loss, a learning rate that favours one "
                          "configuration); the why column says which"),
    "pending": ("the evidence is being produced (a sweep still running, measurements on a "
                "GPU); the row names what it waits for and fills in when that lands in data/"),
}
COLUMNS = ("claim", "paper", "ours", "verdict", "why", "page", "anchor")
# Each claim in a few words that stand alone, for lists such as the book's opening summary
# (``board.claim.map(SHORT)``; the ``claim`` column is the table's, read row after row).
SHORT = {
    "(8, 1) needs less memory than Llama-3 GQA at 128K, same loss":
        "(8, 1) needs less memory than Llama-3's GQA at 128K",
    "(8, 1) needs fewer FLOPs than Llama-3 GQA at 128K, same loss": "(8, 1) needs fewer FLOPs",
    "At equal cost Z, (8, 1) reaches a lower loss": "(8, 1) reaches a lower loss at equal cost",
    "Table 4: the cost-optimal H per target loss and context":
        "the paper's Table 4 of cost-optimal heads",
    "Longer context: fewer heads and a bigger model":
        "longer contexts favour fewer heads and bigger models (on the paper's losses)",
    "Longer context: fewer heads, on models trained here (20 tokens per parameter)":
        "longer contexts favour fewer heads, on models trained here",
    "At ~1B parameters and 128K, about 90% of memory is KV cache":
        "about 90% of memory is KV cache at ~1B parameters and 128K",
    "Fewer heads do not hurt retrieval (needle in a haystack)":
        "fewer heads do not hurt retrieval",
    "Loss falls with query heads (App. I's power law) more than with KV heads":
        "query heads lower the loss more than KV heads do",
    "(8, 1) serves faster at 128K (the paper: one A800, batch 1)": "(8, 1) serves faster at 128K",
}


def _row(claim, paper, ours, verdict, why, page, anchor="", basis=None) -> dict[str, Any]:
    if not (verdict in VERDICTS or verdict.startswith("pending: ")):
        raise ValueError(f"verdict {verdict!r} is not one of {VERDICTS}")
    if claim not in SHORT:
        raise ValueError(f"claim {claim!r} has no short form in SHORT")
    return {**dict(zip(COLUMNS, (claim, paper, ours, verdict, why, page, anchor))),
            "basis": basis or {}}


def trained_verdict(b: dict[str, Any]) -> str:
    """The rule for a claim about models trained here (basis kind "trained"): pending while
    the experiment that can decide it runs; not testable here when the models cannot show
    the effect (see :data:`RULES`); else the direction beyond seed noise."""
    if b.get("pending"):
        return f"pending: {b['pending']}"
    if (not b["uses_context"] or not b["beats_trigram"] or not b.get("solved", True)
            or b.get("confounded")):
        return "not testable here"
    if b["holds"]:
        return "reproduced" if _beyond_noise(b) else "partly"
    return "not reproduced"


def _beyond_noise(b: dict[str, Any]) -> bool:
    """A trained claim's basis beyond seed noise: p below ALPHA over its looks, else z > 2."""
    return b["p"] < SEED_ALPHA / b.get("looks", 1) if "p" in b else b["z"] > 2


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


def _serving_row(speedup: float, inf: pd.Series) -> dict[str, Any]:
    """Judged on the H200's measurement of the equal-loss pair at 128K (an H200, not the
    paper's A800): the regimes measured there, with the paper's inference rate read as the
    regime its size allows (a prefill)."""
    from gqa_lib.evidence.serving import table5_prediction
    from gqa_lib.evidence.serving_measured import measured_vs_predicted

    m = measured_vs_predicted("h200").set_index("regime")
    at_128k = m[m.context == 131072]["measured_speedup"]
    need = table5_prediction("a800").set_index("regime").loc["decode, batch 1",
                                                             "implied_llama3"]
    words = {"decode, batch 1, 128K": "decoding at batch 1", "decode, batch 8, 128K":
             "decoding at batch 8", "prefill, 128K": "prefill"}
    ours = "measured on one H200 (not the paper's A800): " + "; ".join(
        f"x{v:.2f} {words[r]}" for r, v in at_128k.items())
    return _row(
        "(8, 1) serves faster at 128K (the paper: one A800, batch 1)", f"x{speedup:.2f}",
        ours, ("reproduced" if any(abs(v - speedup) <= LOSS_GAIN_TOLERANCE * speedup
                                   for v in at_128k)
               else "partly" if all(v > 1 for v in at_128k) else "not reproduced"),
        f"faster in every regime measured at 128K, by x{at_128k.min():.2f} to "
        f"x{at_128k.max():.2f} depending on the regime, none within "
        f"{LOSS_GAIN_TOLERANCE:.0%} of the paper's "
        f"x{speedup:.2f}; the paper's {inf['llama3_gqa_32_8']:,.0f} tokens/s would need "
        f"{need:.0f}x the A800's bandwidth as decoding, so it is a prefill-like rate "
        "(measured x" + f"{m.loc['prefill, 128K', 'measured_speedup']:.2f} on the H200); "
        "a different GPU, aligned shapes (the paper's d_ff 5,461 slows its (32, 8)), "
        "and whether its batch-1 rate counts prefill or decoding, its prompt and its kernels "
        "unstated",
        "notebooks/serving", "table-5-measured",
        basis={"kind": "ratio", "ours": [float(v) for v in at_128k], "paper": float(speedup)})


@functools.lru_cache(maxsize=1)
def _our_sweep() -> dict[str, Any]:
    """What our sweeps can say (data/sweeps/cpu-v2.csv, mqar-v1.csv, cpu-eq-v1 to v4.csv): do the
    models use their context and beat the count models; the equal-shape confound; MQAR."""
    from gqa_lib.evidence import equal_size as eq
    from gqa_lib.evidence import reanalysis as ra
    from gqa_lib.evidence import sweep_recipe as sr
    from gqa_lib.evidence.sweep_summary import mqar_separation
    from gqa_lib.fit.per_head import read_runs

    runs = read_runs(sr.SWEEP_CSV)
    at = runs[runs.context == 128]
    deltas = ra.size_predicted_deltas(at)
    d81 = deltas[deltas.config == "(8, 1)"]
    axes = ra.both_axes(at).set_index("config")
    mq_csv = sr.SWEEP_DIR / "mqar-v1.csv"
    mq = read_runs(mq_csv) if mq_csv.is_file() else None
    try:
        sep = None if mq is None else mqar_separation(mq)
    except GQAError:  # runs of one seed only, so far: no noise to judge them by
        sep = None
    eq_runs = eq.read()
    return {"n_runs": len(runs), "counts": ra.baseline_counts(runs),
            "gap": ra.context_gap(runs), "embedding": ra.embedding_share(runs),
            "best_n": axes.offset_n.idxmin(), "best_total": axes.offset_total.idxmin(),
            "axes": axes, "token_ratio": (float(d81.token_ratio.min()),
                                          float(d81.token_ratio.max())),
            "d81": float(d81.delta.mean()), "d81_size": float(d81.predicted.mean()),
            "n_range": (float(runs.params_non_embedding.min()),
                        float(runs.params_non_embedding.max())),
            "mqar": sep, "mqar_runs": mq, "eq_runs": eq_runs, "eq": eq.status(eq_runs),
            **_longer_runs(eq_runs)}


def _longer_runs(eq_runs: pd.DataFrame) -> dict[str, Any]:
    """The longer runs (cpu-eq-long-v1) for the App. I row: the trigram test, progress,
    the paired head contrast, and whether each run's loss falls with position."""
    from gqa_lib.evidence import longer_training as lt

    long, lr_runs = lt.read(), lt.read_lr()
    cmp = lt.compare(long, eq_runs)
    return {"long": lt.judge(long, eq_runs), "long_multiple": lt.multiple(),
            "long_lr": {**lt.lr_shifts(long, lr_runs), "done": len(lr_runs),
                        "planned": lt.planned(lt.LR_GRID)},
            "long_status": lt.status(long), "long_contrast": lt.head_contrast(long),
            "long_uses_context": bool(len(cmp) and (cmp.near_long > cmp.far_long).all())}


def _fewer_heads_worse(pair: str, diff: float) -> bool:
    """For "(a,b) vs (c,d)" with diff = acc(first) - acc(second): is the configuration with
    fewer KV heads (then fewer query heads) the worse one?"""
    a, b = (tuple(int(x) for x in c.strip("()").split(",")) for c in pair.split(" vs "))
    first_fewer = (a[1], a[0]) < (b[1], b[0])
    return (diff < 0) == first_fewer


def _retrieval_row(ours: dict[str, Any], nih: pd.DataFrame) -> dict[str, Any]:
    """``nih``: Table 5's needle-in-a-haystack rows, indexed by context."""
    claim = "Fewer heads do not hurt retrieval (needle in a haystack)"
    paper = "; ".join(f"{T}: (32, 8) {r.llama3_gqa_32_8:.1f}%, (8, 1) {r.cost_optimal_8_1:.1f}%"
                      for T, r in nih.loc[["16K", "128K"]].iterrows())
    page = ("notebooks/training", "can-the-small-models-retrieve")
    sep, mq = ours["mqar"], ours["mqar_runs"]
    if sep is None:
        done = 0 if mq is None else len(mq)
        return _row(claim, paper, f"{done} MQAR runs, one seed each so far",
                    "pending: data/sweeps/mqar-v1 (MQAR runs, two seeds or more)",
                    "the grid is committed; its seed repeats are not", *page,
                    basis={"kind": "trained", "pending": "data/sweeps/mqar-v1"})
    acc = mq.assign(cfg=format_heads_each(mq["n_head"], mq["n_kv_head"])) \
        .groupby("cfg", sort=False)["mqar_acc"].mean()
    hit = sep[sep["separated"]]
    text = (f"MQAR at (L, d) = (2, 64), {int(mq['tokens'].iloc[0]) / 1e6:.1f}M tokens, "
            f"{mq['seed'].nunique()} seeds: " + ", ".join(f"{c} {v:.0%}" for c, v in acc.items())
            + f"; {len(hit)} of {len(sep)} pairs differ after Holm's correction"
            + (f" ({'; '.join(hit.pair)})" if len(hit) else ""))
    solved = bool(acc.max() >= SOLVED_ACC)
    why = (f"the task is unsolved at this budget ({acc.min():.0%} to {acc.max():.0%} "
           f"accuracy; solved would be {SOLVED_ACC:.0%}): the runs show which model started "
           "to learn it, not retrieval at convergence; and they compare at equal shape and "
           "budget, the paper at equal loss with the fewer-head model made bigger"
           if not solved else "equal shape and budget, not the paper's equal loss")
    basis = {"kind": "trained", "uses_context": True, "beats_trigram": True,
             "solved": solved, "confounded": "equal shape, not equal loss",
             "holds": not any(_fewer_heads_worse(r.pair, r.diff) for r in hit.itertuples()),
             "z": float(sep.z.abs().max())}
    return _row(claim, paper, text, trained_verdict(basis), why, *page, basis=basis)


def _head_count_row(ours: dict[str, Any], laws: pd.DataFrame) -> dict[str, Any]:
    """App. I's query heads against KV heads: tested at equal size (cpu-eq-v1 to v4) once every
    configuration has three seeds and the models beat the trigram; cpu-v2's equal-shape
    comparison is confounded by size and tokens. When the equal-size runs only tie the
    trigram and the same runs trained longer (cpu-eq-long-v1) beat it, the longer runs
    decide (:func:`_decided_by_longer`)."""
    from gqa_lib.evidence import equal_size as eq
    from gqa_lib.evidence import longer_training as lt

    st, ax = ours["eq"], ours["axes"]
    lo, hi = ours["token_ratio"]
    cpu_v2 = (f"cpu-v2 at equal shape cannot decide it: the lowest loss is {ours['best_n']} "
              f"at equal non-embedding N, {ours['best_total']} at equal total parameters "
              f"({ours['best_n']} {ax.loc[ours['best_n'], 'offset_total']:+.3f} nats there; "
              f"the tied embedding is {ours['embedding'][0]:.0%}-{ours['embedding'][1]:.0%} "
              f"of the parameters); (8, 8) trains {lo - 1:.0%}-{hi - 1:.0%} more tokens than "
              f"(8, 1), which alone predicts {ours['d81_size']:.2f} of its "
              f"{ours['d81']:.2f}-nat lead")
    done = f"{st['done']} of {st['planned']} runs"
    basis = {"kind": "trained", "confounded": "", "uses_context": True,
             "beats_trigram": True, "holds": False, "z": 0.0, "pending": ""}
    if not st["ready"]:
        basis["pending"] = (f"data/sweeps/{eq.GRIDS[0].stem} to {eq.GRIDS[-1].stem} "
                            f"(equal size, {done}; "
                            f"{eq.MIN_SEEDS} seeds of each configuration)")
        ours_text = (f"equal-size runs: {done} finished"
                     + (f", {st['min_seeds']} to {max(st['seeds'].values())} seeds per "
                        "configuration so far" if st["done"] else ""))
        why = cpu_v2 + "; the equal-size runs remove both"
    else:
        runs = ours["eq_runs"]
        h = eq.head_comparison(runs)  # the training page's verdict reads the same numbers
        d = h["difference"]
        basis.update(beats_trigram=h["beats_trigram"], uses_context=h["uses_context"],
                     **_contrast_basis(d, eq.LOOKS))
        ours_text = f"at equal size ({done}, paired within {d['n']} seeds): " + _contrast_text(h)
        pen = h["one_head_penalty"]
        tie = not h["beats_trigram"]
        why = (f"(L, d) = (2, 128), T = 512, n_h ≤ 8, {d['n']} seeds: the paper's direction, "
               + ("beyond" if _beyond_noise(basis) else "within") + " seed noise; "
               + (f"but beyond position {eq.FAR} the best model only ties the trigram "
                  if tie else f"beyond position {eq.FAR} the best model beats the trigram ")
               + f"({eq.vs_trigram(h)})" + (": it cannot show long-context effects" if tie
                                             else "")
               + ("; (1, 1)'s deficit is "
                  + ("mostly short-range" if eq.short_range(pen) else "growing with position")
                  + f" ({pen['near']:+.3f} at positions 2-3, "
                  f"{pen['mid']:+.3f} at 8-15, {pen['far']:+.3f} beyond {eq.FAR})" if pen else "")
               + _longer(ours) + _fitted_at(laws))
    anchor = "heads-at-equal-size"
    if st["ready"] and lt.decides(ours["long"]):
        # the equal-size runs cannot show it, the same runs trained longer can: they decide
        basis, ours_text, why = _decided_by_longer(ours, basis, ours_text, _fitted_at(laws))
        anchor = "trained-four-times-as-long"
    return _row(
        "Loss falls with query heads (App. I's power law) more than with KV heads",
        f"App. I: b = {laws.b.min():.3f} to {laws.b.max():.3f} at "
        f"{laws.model_label.iloc[0]} to {laws.model_label.iloc[-1]}", ours_text,
        trained_verdict(basis), why, "notebooks/training", anchor, basis=basis)


def _fitted_at(laws: pd.DataFrame) -> str:
    """Where App. I's laws were fitted, from the paper's table: '; ... at 470M+ parameters'."""
    return f"; the paper's law is fitted at {laws.model_label.iloc[0]}+ parameters"


def _decided_by_longer(ours: dict[str, Any], short: dict[str, Any], short_text: str,
                       fitted_at: str) -> tuple[dict[str, Any], str, str]:
    """The App. I row once the longer runs (cpu-eq-long-v1) beat the trigram where the
    equal-size runs at 20 tokens per parameter only tie it: those models can show what
    heads buy, so their paired head contrast decides the claim, pending until each of
    (8, 8), (8, 1) and (1, 1) has its planned seeds (an interim reading shown, not judged),
    then judged at its looks (longer_training.LOOKS); the shorter runs'
    result stays beside it. Returns (basis, ours, why)."""
    from gqa_lib.evidence import equal_size as eq
    from gqa_lib.evidence import longer_training as lt

    ls, x, c = ours["long_status"], ours["long_multiple"], ours["long_contrast"]
    runs = f"{ls['done']} of {ls['planned']} runs"
    basis = {"kind": "trained", "confounded": "", "uses_context": ours["long_uses_context"],
             "beats_trigram": True, "holds": False, "z": 0.0, "pending": ""}
    lead = ("at 20 tokens per parameter the paper's direction, "
            + ("beyond" if _beyond_noise({"p": 1.0, **short}) else "within") + " seed noise, "
            f"in models that only tie the trigram beyond position {eq.FAR}" + _longer(ours))
    tail = "; (L, d) = (2, 128), T = 512, n_h ≤ 8" + fitted_at
    if not ls["ready"]:
        basis["pending"] = (f"data/sweeps/cpu-eq-long-v1 (trained {x:g} times as long, "
                            f"{runs}; {ls['planned_seeds']} seeds of (8, 8), (8, 1) and (1, 1))")
        so_far = (f"; so far, not judged, paired within {c['difference']['n']} seeds: "
                  + _contrast_text(c) if np.isfinite(c["difference"]["p"]) else "")
        return (basis, f"{short_text}; trained {x:g} times as long: {runs} finished{so_far}",
                lead + f"; the longer runs decide once each configuration has its "
                f"{ls['planned_seeds']} seeds" + tail)
    d = c["difference"]
    confounded, rate = _rate_check(ours["long_lr"])
    basis.update(**_contrast_basis(d, lt.LOOKS), confounded=confounded)
    return basis, (f"trained {x:g} times as long, at equal size ({runs}, paired within "
                   f"{d['n']} seeds): " + _contrast_text(c)), \
        lead + (f"; in those models, {eq.direction(d)} ({format_p(d['p'], d['alpha'])} "
                f"against a threshold of {d['alpha']:.3g})") + rate + tail


def _rate_check(g: dict[str, Any]) -> tuple[str, str]:
    """(confound, why-text) from the rate check at the longer length (cpu-eq-long-lr-v1:
    seed 0 of (8, 8), (1, 1) and then (8, 1) at half the shared rate, then seed 1 of all
    three; each reading the mean of the seeds run at both rates; ``g`` = longer_training's
    lr_shifts, ``gap`` and ``difference``, with ``done`` and ``planned`` runs). Set before its
    runs finished: if the lower rate moves the gap between (1, 1) and (8, 8) (the sum of the
    two gains the contrast compares) or, once (8, 1) has run, their difference (the contrast
    itself) beyond its noise, the contrast depends on the rate, a confound (RULES: not
    testable here); within it, the shared rate stands; until then it is under way."""
    from gqa_lib.evidence import equal_size as eq
    from gqa_lib.evidence import longer_training as lt

    def note(s):  # '(seed 0, noise 0.027)': the seeds a reading averages and its noise
        return f"({eq.seeds_words(s['changes'])}, noise {s['noise']:.3f})"

    gap, diff = g["gap"], g["difference"]
    runs = f"{g['done']} of {g['planned']} runs of cpu-eq-long-lr-v1"
    if not np.isfinite(gap["shift"]):
        return "", f"; the shared rate is being checked at this length ({runs})"
    moved = (f"at half the shared rate the gap between (1, 1) and (8, 8) moves by "
             f"{format_signed(gap['shift'])} nats {note(gap)}")
    if np.isfinite(diff["shift"]):
        moved += f", the difference of the gains by {format_signed(diff['shift'])} {note(diff)}"
    if lt.lr_confounded({"gap": gap, "difference": diff}):
        return "the learning rate", f"; {moved}: the contrast depends on the rate"
    if not np.isfinite(diff["shift"]):
        return "", (f"; the shared rate is being checked at this length: {moved}, within "
                    f"noise; the difference of the gains waits for (8, 1) ({runs})")
    return "", f"; the shared rate checked at this length: {moved}, both within noise"


def _contrast_basis(d: dict[str, float], looks: int) -> dict[str, Any]:
    """The rule's inputs from a paired query-minus-KV contrast (:func:`equal_size.paired_t`)
    read ``looks`` times (seeds added after each earlier look)."""
    return {"holds": bool(d["mean"] > 0), "z": float(d["t"]) if np.isfinite(d["t"]) else 0.0,
            "p": float(d["p"]) if np.isfinite(d["p"]) else 1.0, "looks": looks}


def _contrast_text(g: dict[str, dict[str, float]]) -> str:
    """'1 → 8 query heads ... the difference +0.053 (98.3% interval ..., p ...)' from
    ``query``, ``kv`` and ``difference`` (equal_size.head_gains or longer_training's)."""
    from gqa_lib.evidence import equal_size as eq

    d = g["difference"]
    return (f"1 → 8 query heads (one KV head) lower the loss "
            f"{g['query']['mean']:.3f} nats, 1 → 8 KV heads (eight query heads) "
            f"{g['kv']['mean']:.3f}; the difference {d['mean']:+.3f} ({eq.interval(d)}, "
            f"{format_p(d['p'], d['alpha'])})")


def _longer(ours: dict[str, Any]) -> str:
    """'; trained 4 times as long (one seed), (8, 8) still ties the trigram (...)': the
    longer runs' trigram test (cpu-eq-long-v1), once the run it reads has finished."""
    from gqa_lib.evidence import longer_training as lt

    j = ours["long"]
    if j["state"] == "waiting":
        return ""
    return (f"; trained {ours['long_multiple']:g} times as long ({lt.seeds(j)}), {j['config']} "
            + lt.compared(j))


def _spread(spread: dict[str, Any], key: str, paper: float, fmt: str) -> tuple[str, str]:
    """(" (95% of the refits: lo to hi)", their central interval, for the ours column;
    "; the paper's figure is below 98 of the 100 refits of our fits" for the why column: a
    count, which the refits' random draw moves a little, where in or out of the interval
    flips near its edge) of one headline quantity; ``fmt`` formats a value ("{:.1f}%")."""
    lo, hi = spread[key]
    return (f" ({spread['level']:.0%} of the refits: {fmt.format(lo)} to {fmt.format(hi)})",
            f"; the paper's figure is {among_refits(paper, spread['refits'][key])} of our "
            "fits (the losses' noise only)")


def _trend_refits(model, targets: list[float], n_boot: int) -> tuple[int, int]:
    """(refits in which the long-context trend holds at every target, refits): Table 4's
    grid on ``n_boot`` residual-bootstrap refits of ``model``, judged as
    :func:`_long_context_trend` judges the fit itself."""
    _, reps, _ = bootstrap_grids(model, targets, TABLE4_CONTEXTS, n_boot=n_boot, seed=0)
    return sum(held == n for held, n in (_long_context_trend(g.cells()) for g in reps)), len(reps)


def evidence_links(board: pd.DataFrame) -> list[str]:
    """Each row's evidence as a link relative to the book's pages: "training.html#anchor"."""
    return [f"{page.split('/')[-1]}.html" + (f"#{anchor}" if anchor else "")
            for page, anchor in zip(board["page"], board["anchor"])]


def scoreboard(model=None, *, n_boot: int = HEADLINE_BOOT) -> pd.DataFrame:
    """One row per claim of the paper this book tests (see the module docstring). ``n_boot``:
    the bootstrap refits behind the headline rows' spreads
    (:func:`~gqa_lib.evidence.paper.headline_intervals`)."""
    model = joint_model() if model is None else model
    P = PAPER_HEADLINE
    h = headline(model, baseline="fit")  # the book's one headline definition
    spread = headline_intervals(model, n_boot=n_boot)
    rows = []

    mem_v, why = _saving_verdict(h["memory_pct"], P["memory_pct"], h["memory_pct"])
    ours_cell, noise = _spread(spread, "memory_pct", P["memory_pct"], "{:.1f}%")
    rows.append(_row(
        "(8, 1) needs less memory than Llama-3 GQA at 128K, same loss",
        format_saving(P["memory_pct"], "memory"),
        format_saving(h["memory_pct"], "memory") + ours_cell, mem_v,
        why + noise + "; baseline: the Llama-3 model of the same loss on the fitted law",
        "notebooks/recipe", "the-headline-beside-the-paper-s-numbers",
        basis={"kind": "saving", "ours": h["memory_pct"], "paper": P["memory_pct"],
               "conventions": [h["memory_pct"]], "refits": spread["memory_pct"]}))

    flops = {k: v for k, v in h["flops_pct"].items()}
    closest = min(flops.values(), key=lambda v: abs(v - P["flops_pct"]))
    lo, hi = min(flops.values()), max(flops.values())
    fl_v, why = _saving_verdict(flops["fig2"], P["flops_pct"], closest)
    if fl_v == "reproduced" and abs(closest - P["flops_pct"]) > 1.0:
        fl_v, why = "partly", ("the right size, but no counting convention gives the paper's "
                               f"figure (ours {lo:.1f}% to {hi:.1f}% by convention)")
    _, noise = _spread(spread, "flops_pct:fig2", P["flops_pct"], "{:.1f}%")
    rows.append(_row(
        "(8, 1) needs fewer FLOPs than Llama-3 GQA at 128K, same loss",
        format_saving(P["flops_pct"], "FLOPs"),
        format_saving(flops["fig2"], "FLOPs") + f" ({lo:.1f}% to {hi:.1f}% by convention)",
        fl_v,
        why + noise.replace("; the paper's", "; by Fig. 2's count, the paper's"),
        "notebooks/recipe", "the-headline-beside-the-paper-s-numbers",
        basis={"kind": "saving", "ours": flops["fig2"], "paper": P["flops_pct"],
               "conventions": list(flops.values()), "refits": spread["flops_pct:fig2"]}))

    gain, pg = h["equal_z_loss_gain"], P["equal_z_loss_gain"]
    ours_cell, noise = _spread(spread, "equal_z_loss_gain", pg, "{:.3f}")
    rows.append(_row(
        "At equal cost Z, (8, 1) reaches a lower loss", f"{pg:.3f} nats lower",
        f"{gain:.3f} nats lower{ours_cell}",
        "reproduced" if abs(gain - pg) <= LOSS_GAIN_TOLERANCE * pg else "partly" if gain > 0
        else "not reproduced",
        "same sign; the size rests on our fits of digitised losses "
        f"(±{paper_runs()['loss_err_nats'].max():g} nats each)" + noise,
        "notebooks/recipe", "the-headline-beside-the-paper-s-numbers",
        basis={"kind": "loss gain", "ours": gain, "paper": pg,
               "refits": spread["equal_z_loss_gain"]}))

    t4 = table4_comparison(model)
    s = table4_summary(t4)
    rows.append(_row(
        "Table 4: the cost-optimal H per target loss and context", "40 cells",
        f"{s['matches']} of {s['cells']} match; {s['measured_matches']} of "
        f"{s['measured_cells']} whose answer was measured",
        "reproduced" if s["matches"] == s["cells"] else "partly",
        f"the {s['extrapolated_cells']} other cells need n_h = 16 or 32 (or n_kv > 8), whose "
        "losses the paper does not publish: ours rest on an extrapolation, the paper's on "
        "fits we cannot see",
        "notebooks/recipe", "table-4-cell-by-cell",
        basis={"kind": "cells", "matches": s["matches"], "cells": s["cells"]}))

    held, n_targets = _long_context_trend(t4)
    all_held, n_reps = _trend_refits(model, sorted(t4["target_loss"].unique()), n_boot)
    rows.append(_row(
        "Longer context: fewer heads and a bigger model",
        "read off Table 4", f"holds at {held} of {n_targets} targets of the recomputed "
        f"Table 4 (the paper's data), and at all of them in {all_held} of {n_reps} refits",
        "reproduced" if held == n_targets else "partly",
        "on the paper's losses, fitted by us; the refits resample the losses' noise, not the "
        f"extrapolation to unmeasured heads on which {s['extrapolated_cells']} of the "
        f"{s['cells']} cells rest; on models trained here: the next row",
        "notebooks/recipe", "table-4-cell-by-cell",
        basis={"kind": "cells", "matches": held, "cells": n_targets}))
    ours = _our_sweep()
    gap, c = ours["gap"], ours["counts"]
    basis = {"kind": "trained", "uses_context": gap["mean"] <= 0,
             "beats_trigram": c["trigram"] > 0, "confounded": "", "holds": False, "z": 0.0}
    rows.append(_row(
        "Longer context: fewer heads, on models trained here (20 tokens per parameter)",
        "read off Table 4",
        f"at equal shape T = 512 is {gap['mean']:.2f} nats worse than T = 128 "
        f"({gap['n_worse']} of {gap['n_pairs']} pairs); {c['runs'] - c['bigram']} of "
        f"{c['runs']} runs lose to a bigram count model, {c['runs'] - c['trigram']} to the "
        "trigram", trained_verdict(basis),
        "the claim is about what context costs a model that uses it; these models "
        f"({format_count(ours['n_range'][0])} to {format_count(ours['n_range'][1])} "
        "parameters) do not use theirs: "
        + ("a longer context makes them worse" if gap["mean"] > 0
           else "a longer context does not make them better") + " and "
        + ("none predicts better than the previous two tokens do"
           if c["trigram"] == 0 else f"only {c['trigram']} of {c['runs']} beat the trigram")
        + ", so there is no trade-off for the recipe to act on (its fits on these runs: the "
        "fitting page)",
        "notebooks/fitting", "does-a-longer-context-favour-fewer-heads-and-a-bigger-model",
        basis=basis))

    gqa = paper_family(32)  # the "1.2B" Llama-3 GQA point, L = 32, d = 2048, (32, 8)
    kv = float(cost.kv_cache_values(gqa, P["context"]))
    share = kv / (kv + float(cost.params_non_embedding(gqa, include_norms=False)))
    mha = paper_family(32, n_head=32, n_kv_head=32)
    kv_mha = float(cost.kv_cache_values(mha, P["context"]))
    share_mha = kv_mha / (kv_mha + float(cost.params_non_embedding(mha, include_norms=False)))
    rows.append(_row(
        "At ~1B parameters and 128K, about 90% of memory is KV cache", "about 90%",
        f"{share:.0%} for the paper's ~1B model, its (32, 8) baseline, by eq. 4 "
        f"({share_mha:.0%} with multi-head attention at that shape)",
        "not reproduced" if abs(share - 0.9) > SAVING_TOLERANCE_PTS / 100 else "reproduced",
        "read as the paper's own ~1B model (the sentence names none): 90% is what "
        "multi-head attention holds at that shape; GQA's (32, 8) holds less",
        "notebooks/where-cost-goes", "the-paper-s-90-of-memory-at-1b-parameters",
        basis={"kind": "formula", "ours": share, "paper": 0.9,
               "tolerance": SAVING_TOLERANCE_PTS / 100}))

    t5 = _table5().set_index(["metric", "context"])
    rows.append(_retrieval_row(ours, t5.loc["needle_in_a_haystack"]))
    rows.append(_head_count_row(ours, paper_headcount_laws()))  # App. I, free c

    inf = t5.xs("inference_throughput", level="metric").iloc[0]  # at T = 128K
    speedup = inf["cost_optimal_8_1"] / inf["llama3_gqa_32_8"]
    rows.append(_serving_row(speedup, inf))
    board = pd.DataFrame([{k: r[k] for k in COLUMNS} for r in rows], columns=list(COLUMNS))
    board.attrs["basis"] = [r["basis"] for r in rows]
    board.attrs["refits"] = spread["refits"]  # the headline rows' refit values, one column each
    return board
