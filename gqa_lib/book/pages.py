"""Small frames the pages display, assembled from the library's results: the bookkeeping that
would otherwise sit in a notebook cell between the reader and the prose.

Each function takes what a page already computed (a :class:`~gqa_lib.fit.recipe.Recommendation`,
the dict of :func:`gqa_lib.evidence.paper.headline`) and returns a tidy DataFrame for
:func:`gqa_lib.book.tables.show` or a chart of :mod:`gqa_lib.book.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from gqa_lib.book.tables import convention_words
from gqa_lib.evidence.paper import PAPER_HEADLINE
from gqa_lib.units import format_count, format_heads, HEADS_TITLE


def _span(lo: int, hi: int) -> str:
    """'50 to 1,352', or one number where both ends are the same ('640', not '640 to 640')."""
    return f"{lo:,}" if lo == hi else f"{lo:,} to {hi:,}"


def headline_points(rec) -> pd.DataFrame:
    """The recipe's pick and the Llama-3 baseline at the target (``rec`` from
    ``optimize(..., baseline="llama3")``): one row each, with the columns of the Fig. 2
    frame (``memory_values``, ``flops``, ``z``, ``loss_nats``) and a ``label``."""
    best, base = rec.best, rec.baseline
    rows = [{"label": f"pick {format_heads(best['n_head'], best['n_kv_head'])}", **best},
            {"label": "Llama-3 GQA", **base}]
    keep = ["label", "memory_values", "flops", "z", "params_non_embedding"]
    return pd.DataFrame([{k: r[k] for k in keep} for r in rows]).assign(
        loss_nats=rec.target_loss)


def headline_rows(h: dict[str, Any], intervals: dict[str, Any] | None = None) -> pd.DataFrame:
    """The headline savings, ours against the paper's: memory, FLOPs under every compute
    convention (with and without the LM head), Z. Columns ``what``, ``ours``, ``paper``
    (text, "not stated" where the paper gives none) and, with ``intervals``
    (:func:`gqa_lib.evidence.paper.headline_intervals`), "95% of the refits": ours on the
    bootstrap refits ("52.2% to 54.7%")."""
    rows = [("memory (eq. 4)", "memory_pct", h["memory_pct"], PAPER_HEADLINE["memory_pct"])]
    rows += [(f"FLOPs of {convention_words(conv)}", f"flops_pct:{conv}", pct,
              PAPER_HEADLINE["flops_pct"]) for conv, pct in h["flops_pct"].items()]
    rows += [("Z (eq. 5)", "z_pct", h["z_pct"], None)]
    out = pd.DataFrame({
        "what": [w for w, _, _, _ in rows],
        "ours": [f"{o:.1f}%" for _, _, o, _ in rows],
        "paper": ["not stated" if p is None else f"{p:.1f}%" for _, _, _, p in rows]})
    if intervals is not None:
        out[f"{intervals['level']:.0%} of the refits"] = [
            f"{intervals[k][0]:.1f}% to {intervals[k][1]:.1f}%" for _, k, _, _ in rows]
    return out


def implied_shapes(h: dict[str, Any]) -> pd.DataFrame:
    """The (8, 1) models that would give exactly the paper's two savings, one row per compute
    convention (``h["implied_by_paper"]``)."""
    return (pd.DataFrame(h["implied_by_paper"]).T.rename_axis("convention").reset_index()
            [["convention", "params_non_embedding", "n_layer", "d_model", "d_over_L"]])


def falls_table(trend: pd.DataFrame, mean_trend: pd.DataFrame) -> pd.DataFrame:
    """Does loss fall with size? One row per configuration, one column per training context,
    for the seed-0 ladders and for the seed-averaged ladders
    (:func:`gqa_lib.evidence.size_trend` frames): "falls", "rises" or "" (no ladder)."""
    word = {True: "falls", False: "rises"}
    seed0 = trend[trend.seed == 0].pivot_table(index="config", columns="context",
                                               values="falls", aggfunc="all")
    mean = mean_trend.pivot_table(index="config", columns="context", values="falls",
                                  aggfunc="all")
    order = list(dict.fromkeys(trend["config"]))
    out = pd.DataFrame({"config": order})
    for label, frame in (("seed 0", seed0), ("mean over seeds", mean)):
        for T in frame.columns:
            col = frame[T].reindex(order)
            out[f"{label}, T = {T}"] = [word.get(v, "") if isinstance(v, bool) else
                                        word.get(bool(v), "") if pd.notna(v) else ""
                                        for v in col]
    return out.rename(columns={"config": HEADS_TITLE})


def progress_table(status: pd.DataFrame) -> pd.DataFrame:
    """Runs done of planned, one row per configuration and one column per (training context,
    seed), from :func:`gqa_lib.evidence.sweep_recipe.progress`."""
    status = status.assign(runs=status.done.astype(str) + " of " + status.planned.astype(str))
    wide = status.pivot(index="config", columns=["context", "seed"], values="runs").fillna("")
    wide.columns = [f"T = {T}, seed {s}" for T, s in wide.columns]
    order = list(dict.fromkeys(status["config"]))
    return wide.reindex(order).rename_axis(HEADS_TITLE).reset_index()


def regime_table(sweeps: Mapping[str, pd.DataFrame], *, context: int = 128) -> pd.DataFrame:
    """Two or more sweeps of the head grid side by side, one column each ("ok" runs): runs,
    N, tokens per parameter, optimiser steps, the loss range at the largest size, the mean
    loss of (8, 1) minus (8, 8) at equal shape, and one run's seed noise, at ``context``."""
    from gqa_lib.evidence import head_deltas
    from gqa_lib.evidence.sweep_recipe import seed_noise

    out = {}
    for name, r in sweeps.items():
        at = r[r["context"] == context]
        tpp = r["tokens"] / r["params_non_embedding"]
        largest = at.groupby(["n_layer", "d_model"])["params_non_embedding"].median().idxmax()
        top = at[(at[["n_layer", "d_model"]].apply(tuple, axis=1) == largest)
                 & (at["seed"] == 0)]
        d = head_deltas(at)
        kv1 = d[(d["config"] == "(8, 1)") & (d["seed"] == 0)]["delta_nats"]
        n = seed_noise(at)
        out[name] = {
            "runs": f"{len(r)}",
            "non-embedding N": f"{format_count(r['params_non_embedding'].min())} to "
                               f"{format_count(r['params_non_embedding'].max())}",
            "tokens per parameter": f"{tpp.min():.2f} to {tpp.max():.2f}",
            "optimiser steps": _span(int(r["steps"].min()), int(r["steps"].max())),
            f"loss at the largest size, T = {context} (nats)":
                f"{top['val_loss_nats'].min():.3f} to {top['val_loss_nats'].max():.3f}",
            f"(8, 1) minus (8, 8), same shape, T = {context}":
                f"{kv1.mean():+.3f} nats over {len(kv1)} sizes",
            f"seed noise of one run, T = {context}":
                f"{n.sd:.3f} nats [{n.lo:.3f}, {n.hi:.3f}]" if n.dof else "not measured",
        }
    return pd.DataFrame(out).rename_axis("").reset_index()


def lr_check_table(check: pd.DataFrame, tail: str):
    """A learning-rate check (:func:`gqa_lib.evidence.equal_size.lr_check`, or
    :func:`gqa_lib.evidence.longer_training.lr_check`) as the book shows it: the loss at
    each rate tried, averaged over the seeds that ran every rate (blank where a configuration
    did not run), the best rate, the shared rate's gap to it and whether that gap is within
    seed noise. The caption names the seeds (a column only where configurations differ in
    them) and ends with ``tail``."""
    from gqa_lib.book.tables import show
    from gqa_lib.evidence.equal_size import fmt, seeds_words

    seeds = check.seeds.unique() if len(check) else []
    if len(seeds) == 1:
        check = check.drop(columns="seeds")
        who = (f"{seeds_words(seeds[0]).capitalize()}'s validation loss (nats) at each "
               "learning rate" if "," not in seeds[0] else
               "Validation loss (nats) at each learning rate, the mean of "
               + seeds_words(seeds[0]))
    else:
        who = "Validation loss (nats) at each learning rate, the mean of the seeds listed"
    return show(
        check, headers={"seeds": "seeds", "best_lr": "best rate",
                        "gap": "shared rate's loss - best (nats)",
                        "within_noise": "shared rate within noise"},
        formats={"best_lr": "{:g}".format, "gap": "{:+.3f}".format,
                 "within_noise": fmt("yes/no"),
                 **{c: (lambda v: "" if v != v else f"{v:.3f}") for c in check
                    if c.startswith("loss at")}},
        caption=who + tail)
