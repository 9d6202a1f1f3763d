"""Altair charts shared by the book's pages.

Chart builders take a tidy DataFrame (a :func:`gqa_lib.book.tables.cost_table`, a recipe or fit
frame, a sweep's rows) and return an Altair chart (single, layered, concatenated or
faceted); every positional axis carries a title
with its unit (tests/test_book.py checks each builder). A single or layered chart has no
fixed width: :func:`gqa_lib.book.figures.figure` gives it the width of the page and its
number, title and caption. A multi-panel chart has panels of :data:`PANEL` pixels, so that
it fits the book's 772 px column (the renderer scales it down on a phone). Log scales
never set ``zero``. Importing this module also registers the book's offline renderer
(:mod:`gqa_lib.book.render`), which the book build switches on.
"""

from __future__ import annotations

import json

import altair as alt
import numpy as np
import pandas as pd

from gqa_lib.arch.config import model_title
from gqa_lib.book import render  # noqa: F401 registers the book's offline renderer
from gqa_lib.book.figures import number_axis, tip, with_number_text
from gqa_lib.errors import GQAError
from gqa_lib.units import format_context, format_heads_each, HEADS_TITLE

HEIGHT = 300
PANEL = 250  # width of one panel of a two-panel chart (pixels)

GIB = 2**30
# Ticks at powers of two, labelled 1K ... 1M.
_CONTEXT_LABEL = (
    "datum.value >= 1048576 ? datum.value / 1048576 + 'M'"
    " : datum.value >= 1024 ? datum.value / 1024 + 'K' : datum.value"
)


def context_x(title: str = "context length T (tokens)", tick_every: int = 2) -> alt.X:
    """The shared x encoding of context length: log2 scale, a tick every ``tick_every``-fold
    increase from 256 tokens (2: every doubling)."""
    ticks = [2**k for k in range(8, 23, max(1, round(np.log2(tick_every))))]
    return alt.X("context_len:Q", title=title, scale=alt.Scale(type="log", base=2),
                 axis=alt.Axis(values=ticks, labelExpr=_CONTEXT_LABEL, labelOverlap="greedy",
                               labelSeparation=4))


def _titled(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its models named as a reader knows them (``model_title``)."""
    return df.assign(model=df["model"].map(model_title))


def _lines(df: pd.DataFrame, field: str, scale: float, y_title: str, log_y: bool) -> alt.Chart:
    df = _titled(df)
    data = df[["model", "context_len", field]].assign(y=df[field] / scale)
    return alt.Chart(data).mark_line(point=True).encode(
        x=context_x(),
        y=alt.Y("y:Q", title=y_title, scale=alt.Scale(type="log" if log_y else "linear")),
        color=alt.Color("model:N", title="model", sort=list(dict.fromkeys(df["model"]))),
        tooltip=[tip("model:N"), tip("context_len:Q"), tip("y:Q", y_title, format=",.3~r")],
    ).properties(height=HEIGHT)


def memory_vs_context(df: pd.DataFrame, *, log_y: bool = True) -> alt.Chart:
    """Inference memory (weights + KV cache of one sequence, eq. 4) in GiB against T."""
    return _lines(df, "memory_bytes", GIB, "memory: weights + KV cache (GiB)", log_y)


def flops_vs_context(df: pd.DataFrame, *, log_y: bool = True) -> alt.Chart:
    """FLOPs to generate one token (eq. 3) in GFLOP against T."""
    return _lines(df, "flops_per_token", 1e9, "compute per generated token (GFLOP)", log_y)


SHARES = {
    "kv_share_of_memory": "memory held by the KV cache",
    "attention_share_of_flops": "FLOPs spent on attention scores",
}


def time_variant_shares(df: pd.DataFrame) -> alt.FacetChart:
    """The time-variant parts against T: KV cache / memory and attention / FLOPs, one panel
    each, as percentages."""
    df = _titled(df)
    long = df.melt(id_vars=["model", "context_len"], value_vars=list(SHARES),
                   var_name="part", value_name="share")
    long["part"] = long["part"].map(SHARES)
    return alt.Chart(long).mark_line(point=True).encode(
        x=context_x(tick_every=4),
        y=alt.Y("share:Q", title="time-variant share (%)", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("model:N", title="model", sort=list(dict.fromkeys(df["model"]))),
        tooltip=[tip("model:N"), tip("context_len:Q"), tip("part:N"),
                 tip("share:Q", "share", format=".1%")],
    ).properties(width=PANEL, height=HEIGHT - 80).facet(
        column=alt.Column("part:N", title=None, sort=list(SHARES.values()))
    )


_PARTS = {
    "memory": ({"weights_bytes": "weights", "kv_cache_bytes": "KV cache"}, GIB, "GiB"),
    "flops": ({"flops_time_invariant": "weights", "flops_time_variant": "attention"}, 1e9,
              "GFLOP"),
}


def breakdown_bars(df: pd.DataFrame, context_len: int, quantity: str = "memory") -> alt.Chart:
    """Stacked bars, one per model, of the time-invariant and time-variant parts of memory
    (GiB) or of FLOPs per token (GFLOP) at one context length."""
    if quantity not in _PARTS:
        raise GQAError(f"quantity must be one of {list(_PARTS)}, got {quantity!r}")
    parts, scale, unit = _PARTS[quantity]
    at = _titled(df[df["context_len"] == context_len])
    if at.empty:
        raise GQAError(f"no rows at context_len={context_len}")
    long = at.melt(id_vars=["model"], value_vars=list(parts), var_name="part", value_name="v")
    long = long.assign(part=long["part"].map(parts), v=long["v"] / scale)
    label = "memory" if quantity == "memory" else "compute per generated token"
    where = f"at T = {format_context(context_len)} ({unit})"
    return alt.Chart(long).mark_bar().encode(  # a long title in two lines, for a phone
        x=alt.X("v:Q", title=f"{label} {where}" if len(label) < 20 else [label, where]),
        y=alt.Y("model:N", title="model", sort=list(dict.fromkeys(at["model"]))),
        color=alt.Color("part:N", title="part", sort=list(parts.values())),
        order=alt.Order("part_order:Q"),
        tooltip=[tip("model:N"), tip("part:N"), tip("v:Q", unit, format=",.3~r")],
    ).transform_calculate(
        part_order=f"indexof({json.dumps(list(parts.values()))}, datum.part)"
    ).properties(height=32 * at["model"].nunique())  # a fixed height: the width may fit


# ----- the recipe ---------------------------------------------------------------------------
_FIG2_PANELS = (("memory_values", "memory M at {T} (values)"),
                ("flops", "compute C at {T} (FLOPs)"),
                ("z", "cost Z at {T} (eq. 5, no unit)"))
_FIG2_KINDS = {"memory_values": "count", "flops": "flops", "z": "z"}  # how each is written
_LOSS_TITLE = "loss (nats/token)"


# Fig. 2's configurations: colours far apart (the recipe's pick (8, 1) red, the Llama-3
# baseline grey), a marker shape each, the two compared configurations drawn thicker.
_FIG2_COLORS = ("#4c78a8", "#72b7b2", "#54a24b", "#e45756", "#f58518", "#b279a2",
                "#9d755d", "#8c8c8c")
_FIG2_SHAPES = ("circle", "square", "triangle-up", "diamond", "cross", "triangle-down",
                "triangle-right", "stroke")


def log_ticks(values: pd.Series) -> list[float]:
    """Ticks at 1 and 3 times each power of ten over the values' range (1, 2 and 5 where
    that leaves fewer than three inside it): Vega's own choice on a log axis puts 100T
    beside 200T, which a phone's column draws as one word."""
    v = values[np.isfinite(values) & (values > 0)]
    lo, hi = int(np.floor(np.log10(v.min()))), int(np.ceil(np.log10(v.max())))

    def at(marks):
        return [m * 10.0**k for k in range(lo, hi + 1) for m in marks]

    inside = [t for t in at((1, 3)) if v.min() <= t <= v.max()]
    return [t for t in at((1, 3) if len(inside) >= 3 else (1, 2, 5))
            if v.min() / 3 <= t <= v.max() * 3]


def loss_vs_cost(df: pd.DataFrame, *, target_loss: float | None = None,
                 highlight: pd.DataFrame | None = None) -> alt.VConcatChart:
    """The paper's Fig. 2 from :func:`gqa_lib.evidence.paper.fig2_frame`: loss against memory,
    compute and Z (log axes), one panel above the other, digitised points over fitted
    curves, a colour and a marker per H; a dashed rule at ``target_loss``. ``highlight``
    (columns ``label``, ``loss_nats``, ``memory_values``, ``flops``, ``z``) marks models at
    the target, e.g. the recipe's pick and the Llama-3 baseline, with a star and a label."""
    order = list(dict.fromkeys(df["config"]))
    T = format_context(df["context"].iloc[0])
    strong = [c for c in order if c == "(8, 1)" or str(c).startswith("Llama-3")]
    color = alt.Color("config:N", title=HEADS_TITLE, sort=order,
                      scale=alt.Scale(domain=order, range=list(_FIG2_COLORS[:len(order)])),
                      legend=alt.Legend(orient="bottom", columns=4))
    shape = alt.Shape("config:N", title=HEADS_TITLE, sort=order,
                      scale=alt.Scale(domain=order, range=list(_FIG2_SHAPES[:len(order)])))
    width = alt.condition(alt.FieldOneOfPredicate(field="config", oneOf=strong),
                          alt.value(3), alt.value(1.4))
    panels = []
    for field, title in _FIG2_PANELS:
        x = alt.X(f"{field}:Q", title=title.format(T=T), scale=alt.Scale(type="log"),
                  axis=number_axis(_FIG2_KINDS[field], values=log_ticks(df[field])))
        y = alt.Y("loss_nats:Q", title=_LOSS_TITLE, scale=alt.Scale(zero=False))
        tips = [tip("config:N"), tip("n_layer:Q", format=".3~r"), tip("params_non_embedding_text:N"),
                tip(f"{field}_text:N"), tip("loss_nats:Q", format=".3f")]
        base = with_number_text(alt.Chart(df), params_non_embedding="count",
                                **{field: _FIG2_KINDS[field]}).encode(x=x, y=y, color=color,
                                                                      tooltip=tips)
        layer = (base.transform_filter("datum.source == 'fitted'").mark_line(opacity=0.8)
                 .encode(strokeWidth=width)
                 + base.transform_filter("datum.source == 'digitised'").mark_point(
                     filled=True, size=45).encode(shape=shape))
        if target_loss is not None:
            layer += alt.Chart(pd.DataFrame({"target": [target_loss]})).mark_rule(
                strokeDash=[4, 3], color="gray").encode(
                y=alt.Y("target:Q", title=_LOSS_TITLE))
        if highlight is not None:
            hx = alt.X(f"{field}:Q", title=title.format(T=T))
            stars = alt.Chart(highlight).encode(x=hx, y=alt.Y("loss_nats:Q", title=_LOSS_TITLE))
            layer += stars.mark_point(shape="M0,-1L0.3,-0.3L1,-0.3L0.45,0.15L0.65,0.9L0,0.45"
                                            "L-0.65,0.9L-0.45,0.15L-1,-0.3L-0.3,-0.3Z",
                                      size=260, filled=True, color="#d62728",
                                      stroke="white", strokeWidth=0.8)
            for i in range(len(highlight)):  # labels alternately above and below their
                label = alt.Chart(highlight.iloc[[i]]).encode(  # stars: two at one loss
                    x=hx, y=alt.Y("loss_nats:Q", title=_LOSS_TITLE))  # never overlap
                layer += label.mark_text(dy=-18 if i % 2 == 0 else 18, fontSize=11,
                                         fontWeight="bold").encode(text="label:N")
        panels.append(layer.properties(width=620, height=210))
    return alt.vconcat(*panels, spacing=18).resolve_scale(color="shared", shape="shared")


# ----- fits and our sweep -------------------------------------------------------------------
_N_TITLE = "non-embedding parameters N (log scale)"


def loss_vs_params(df: pd.DataFrame, *, facet: str | None = None) -> alt.Chart:
    """Loss against N (log axis) per head configuration, from :func:`gqa_lib.fit.per_head.fit_curves`:
    measured points over fitted curves, one colour per ``config``; one panel per value of
    the column ``facet`` (e.g. the training context) when given."""
    order = list(dict.fromkeys(df["config"]))
    base = with_number_text(alt.Chart(), params_non_embedding="count").encode(
        x=alt.X("params_non_embedding:Q", title=_N_TITLE,
                scale=alt.Scale(type="log", nice=False),
                axis=number_axis("count", values=log_ticks(df["params_non_embedding"]))),
        y=alt.Y("loss_nats:Q", title=_LOSS_TITLE, scale=alt.Scale(zero=False)),
        # one domain for both channels, so that Vega-Lite merges them into one legend (the
        # lines' colour scale would otherwise see more data than the points' shape scale)
        color=alt.Color("config:N", title=HEADS_TITLE, sort=order,
                        scale=alt.Scale(domain=order, scheme="tableau10")),
        tooltip=[tip("config:N"), tip("params_non_embedding_text:N"),
                 tip("loss_nats:Q", format=".3f")])
    # the shape goes on the points only: on a line, Vega-Lite draws a symbol at every sample
    # of the fitted curve, and the measured points drown among them
    shape = alt.Shape("config:N", title=HEADS_TITLE, sort=order, scale=alt.Scale(domain=order))
    layer = alt.layer(
        base.transform_filter("datum.source == 'fitted'").mark_line(opacity=0.7),
        base.encode(shape=shape).transform_filter("datum.source != 'fitted'")
        .mark_point(filled=True, size=55, opacity=1),
        data=df)
    if facet is None:
        return layer.properties(height=HEIGHT)
    return layer.properties(width=PANEL, height=HEIGHT - 40).facet(
        column=alt.Column(f"{facet}:N", title=None, sort=list(dict.fromkeys(df[facet]))))


_FIT_PARAMS = (("a", "a_H (parameters, log scale)", "log"),
               ("b", "b_H (exponent, no unit)", "linear"),
               ("E", "E (nats/token)", "linear"))


def fit_intervals(df: pd.DataFrame) -> alt.HConcatChart:
    """a_H, b_H and E with their intervals, one row per ``config`` and one panel per
    parameter, from :func:`gqa_lib.fit.per_head.interval_table`; an optional ``fit`` column (e.g.
    the training context) colours the points and offsets them within a row."""
    order = list(dict.fromkeys(df["config"]))
    by_fit = "fit" in df
    enc = {"y": alt.Y("config:N", title=HEADS_TITLE, sort=order),
           "color": (alt.Color("fit:N", title="fit", legend=alt.Legend(orient="bottom"))
                     if by_fit else alt.value("#4c78a8"))}
    if by_fit:
        enc["yOffset"] = alt.YOffset("fit:N")
    panels = []
    for p, title, scale in _FIT_PARAMS:
        tips = [tip("config:N"), *([tip("fit:N")] if by_fit else []),
                *(tip(f"{p}{s}:Q", f"{p}{words}", format=".4~g")
                  for s, words in (("", ""), ("_lo", ", 95% low"), ("_hi", ", 95% high")))]
        y = enc["y"] if not panels else alt.Y("config:N", title=HEADS_TITLE, sort=order,
                                              axis=None)  # one y axis, on the left panel
        base = alt.Chart(df).encode(**{**enc, "y": y}, tooltip=tips)
        sc = alt.Scale(type="log") if scale == "log" else alt.Scale(zero=False)
        x = alt.X(f"{p}_lo:Q", title=title, scale=sc,
                  axis=alt.Axis(format="~g", tickCount=3))
        panels.append((base.mark_rule().encode(x=x, x2=f"{p}_hi:Q")
                       + base.mark_point(filled=True).encode(x=alt.X(f"{p}:Q", title=title))
                       ).properties(width=170))
    return alt.hconcat(*panels, spacing=12)


def _sizes(df: pd.DataFrame) -> list[str]:
    """The ``size`` labels of a frame, smallest (L, d) first."""
    return list(dict.fromkeys(df.sort_values(["n_layer", "d_model"])["size"]))


def noise_vs_heads(df: pd.DataFrame, *, threshold: float | None = None) -> alt.Chart:
    """|Loss differences| from :func:`gqa_lib.evidence.sweep_recipe.loss_differences`: between seeds of one
    run against between head configurations of one size, one tick each; a dashed rule at
    ``threshold`` (the difference that two runs' noise alone rarely exceeds)."""
    kinds = list(dict.fromkeys(df["kind"]))
    chart = alt.Chart(df).mark_tick(thickness=2, opacity=0.6).encode(
        x=alt.X("abs_diff_nats:Q", title="|loss difference| (nats/token)"),
        y=alt.Y("kind:N", title="comparison", sort=kinds),
        color=alt.Color("size:O", title="size (L, d)", sort=_sizes(df),
                        scale=alt.Scale(scheme="tableau10")),  # five sizes told apart
        tooltip=[tip("kind:N", "comparison"), tip("pair:N", "runs compared"), tip("size:N"),
                 tip("context:O"), tip("abs_diff_nats:Q", format=".4f")])
    if threshold is not None and np.isfinite(threshold):
        chart += alt.Chart(pd.DataFrame({"t": [threshold]})).mark_rule(
            strokeDash=[4, 3], color="gray").encode(
            x=alt.X("t:Q", title="|loss difference| (nats/token)"))
    return chart.properties(height=60 * len(kinds))


def choice_vs_context(df: pd.DataFrame) -> alt.HConcatChart:
    """The recipe's choice against the context at each target (from
    :meth:`gqa_lib.evidence.sweep_recipe.RecipeEvidence.table`): the chosen H (fewest heads at the bottom)
    and its size N*, one line per target loss."""
    data = df.assign(context_len=df["context"], H=format_heads_each(df["n_head"], df["n_kv_head"]),
                     heads=df["n_head"] * df["n_kv_head"])
    order = list(dict.fromkeys(data.sort_values("heads", ascending=False)["H"]))
    color = alt.Color("target_loss:O", title="target L* (nats)", sort="descending")
    tips = [tip("target_loss:O"), tip("context_len:Q"), tip("H:N"),
            tip("params_non_embedding_text:N", "N*")]
    base = with_number_text(alt.Chart(data), params_non_embedding="count").encode(
        x=context_x(tick_every=4), color=color, tooltip=tips)
    heads = base.mark_line(point=True).encode(
        y=alt.Y("H:O", title=f"cost-optimal {HEADS_TITLE}", sort=order))
    size = base.mark_line(point=True).encode(
        y=alt.Y("params_non_embedding:Q", title="its size N* (parameters)",
                scale=alt.Scale(type="log"),
                axis=number_axis("count", values=log_ticks(data["params_non_embedding"]))))
    return alt.hconcat(heads.properties(width=PANEL, height=HEIGHT - 60),
                       size.properties(width=PANEL, height=HEIGHT - 60))


def head_count_laws(df: pd.DataFrame) -> alt.Chart:
    """Loss against query heads n_h (log2 axis), one line per ``model`` (e.g. App. I's laws
    L(n_h) = a n_h^-b + c at 470M, 680M, 1.2B)."""
    return alt.Chart(df).mark_line().encode(
        x=alt.X("n_head:Q", title="query heads n_h (count)",
                scale=alt.Scale(type="log", base=2)),
        y=alt.Y("loss_nats:Q", title=_LOSS_TITLE, scale=alt.Scale(zero=False)),
        color=alt.Color("model:N", title="model", sort=list(dict.fromkeys(df["model"]))),
        tooltip=[tip("model:N"), tip("n_head:Q"), tip("loss_nats:Q", format=".3f")],
    ).properties(height=HEIGHT - 60)


# ----- training and performance ---------------------------------------------------------
def training_curve(metrics: pd.DataFrame) -> alt.Chart:
    """Training and validation loss against tokens seen, from a run's metrics.jsonl rows
    (columns ``tokens``, ``train_loss``, ``val_loss``)."""
    data = metrics.rename(columns={"train_loss": "training", "val_loss": "validation"}).melt(
        id_vars="tokens", value_vars=["training", "validation"], var_name="split",
        value_name="loss_nats")
    return alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("tokens:Q", title="tokens seen (count)", axis=number_axis("count")),
        y=alt.Y("loss_nats:Q", title=_LOSS_TITLE, scale=alt.Scale(zero=False)),
        color=alt.Color("split:N", title=None),
        tooltip=[tip("split:N"), tip("tokens:Q"), tip("loss_nats:Q", format=".3f")],
    ).properties(height=HEIGHT - 80)


def head_effect(df: pd.DataFrame) -> alt.Chart:
    """Loss of each head configuration minus the loss of the reference configuration of the
    same size, context and seed (columns ``config``, ``n_layer``, ``d_model``, ``size``,
    ``context``, ``delta_nats``): below zero is better than the reference. One panel per
    context."""
    order = list(dict.fromkeys(df["config"]))
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("config:N", title=HEADS_TITLE, sort=order),
        y=alt.Y("delta_nats:Q", title="loss minus reference (nats/token)"),
        color=alt.Color("size:O", title="size (L, d)", sort=_sizes(df),
                        scale=alt.Scale(scheme="tableau10")),  # five sizes told apart
        tooltip=[tip("config:N"), tip("size:N"), tip("context:O"),
                 tip("delta_nats:Q", format="+.3f")],
    ).properties(width=PANEL, height=HEIGHT - 60).facet(
        column=alt.Column("context:O", title="training context T (tokens)"))


def recall_probe(df: pd.DataFrame) -> alt.Chart:
    """Recall-probe accuracy on the copied needle against the same tokens seen first
    (columns ``config``, ``n_layer``, ``context``, ``recall_acc``, ``recall_base_acc``)."""
    order = list(dict.fromkeys(df["config"]))
    data = df.melt(id_vars=["config", "n_layer", "context"],
                   value_vars=["recall_acc", "recall_base_acc"], var_name="where",
                   value_name="accuracy")
    data["where"] = data["where"].map({"recall_acc": "copy (retrievable)",
                                       "recall_base_acc": "first occurrence"})
    return alt.Chart(data).mark_point(filled=True).encode(
        x=alt.X("config:N", title=HEADS_TITLE, sort=order),
        y=alt.Y("accuracy:Q", title="top-1 accuracy on needle tokens (fraction)"),
        color=alt.Color("where:N", title=None), shape=alt.Shape("n_layer:N", title="layers L"),
        tooltip=[tip("config:N"), tip("n_layer:O"), tip("where:N", "tokens"),
                 tip("accuracy:Q", format=".3f")],
    ).properties(width=PANEL, height=HEIGHT - 60).facet(
        column=alt.Column("context:O", title="training context T (tokens)"))


def lr_tuning(df: pd.DataFrame, chosen: float | None = None) -> alt.Chart:
    """Validation loss against the learning rate (log axis), one line per head configuration,
    one panel per size (columns ``lr``, ``val_loss_nats``, ``config``, ``size``); a dashed
    rule at the ``chosen`` rate."""
    order = list(dict.fromkeys(df["config"]))
    x_title = "peak learning rate (AdamW step size)"
    x = alt.X("lr:Q", title=x_title, scale=alt.Scale(type="log"),
              axis=alt.Axis(format="~e", tickCount=4))
    line = alt.Chart().mark_line(point=True).encode(
        x=x, y=alt.Y("val_loss_nats:Q", title=_LOSS_TITLE, scale=alt.Scale(zero=False)),
        color=alt.Color("config:N", title=HEADS_TITLE, sort=order),
        tooltip=[tip("config:N"), tip("size:N"), tip("lr:Q", format=".2e"),
                 tip("val_loss_nats:Q", format=".3f")])
    layers = [line]
    if chosen is not None:  # a facet needs one data set: the rule reads a column of it
        df = df.assign(chosen=float(chosen))
        layers.append(alt.Chart().mark_rule(strokeDash=[4, 3], color="gray").encode(
            x=alt.X("mean(chosen):Q", title=x_title)))
    return alt.layer(*layers, data=df).properties(width=PANEL, height=HEIGHT - 80).facet(
        column=alt.Column("size:N", title="size (L, d)", sort=_sizes(df)))


def mqar_accuracy(long: pd.DataFrame) -> alt.HConcatChart:
    """MQAR accuracy of each head configuration against the number of pairs (left) and the
    query distance (right), from :func:`gqa_lib.evidence.sweep_summary.mqar_long`: one point
    per run (seed), a line through the seed means; configurations in the frame's order."""
    order = list(dict.fromkeys(long["config"]))
    color = alt.Color("config:N", title=HEADS_TITLE, sort=order)
    panels = []
    for by, title, sort in (("pairs", "key-value pairs in the sequence (count)",
                             ["2", "4", "8", "16"]),
                            ("distance", "query distance (thirds of the context)",
                             ["near", "mid", "far"])):
        d = long[long["by"] == by]
        x = alt.X("level:O", title=title, sort=sort)
        y_title, y_scale = "MQAR accuracy (fraction of queries)", alt.Scale(domain=[0, 1])
        base = alt.Chart(d).encode(x=x, color=color)
        panels.append((base.mark_line().encode(y=alt.Y("mean(accuracy):Q", title=y_title,
                                                       scale=y_scale))
                       + base.mark_point(filled=True, opacity=0.6).encode(
                           y=alt.Y("accuracy:Q", title=y_title, scale=y_scale),
                           tooltip=[tip("config:N"), tip("seed:O"), tip("level:N", title),
                                    tip("accuracy:Q", format=".3f")])
                       ).properties(width=PANEL, height=HEIGHT - 60))
    return alt.hconcat(*panels, spacing=12)


def step_time_vs_prediction(df: pd.DataFrame) -> alt.LayerChart:
    """Measured seconds per training step against the cost model's prediction (columns
    ``predicted_s``, ``step_s``, ``n_head``, ``context``), with the diagonal y = x."""
    lo = float(min(df["predicted_s"].min(), df["step_s"].min())) * 0.8
    hi = float(max(df["predicted_s"].max(), df["step_s"].max())) * 1.25
    x = alt.X("predicted_s:Q", title="predicted step time (s)",
              scale=alt.Scale(type="log", domain=[lo, hi]))
    y = alt.Y("step_s:Q", title="measured step time (s)",
              scale=alt.Scale(type="log", domain=[lo, hi]))
    diag = alt.Chart(pd.DataFrame({"predicted_s": [lo, hi], "step_s": [lo, hi]})).mark_line(
        strokeDash=[4, 3], color="gray").encode(x=x, y=y)
    pts = alt.Chart(df).mark_point(filled=True, size=70).encode(
        x=x, y=y, color=alt.Color("n_head:O", title="query heads n_h"),
        shape=alt.Shape("context:N", title="context T"),
        tooltip=[tip("n_head:O"), tip("context:O"), tip("step_s:Q", format=".3f"),
                 tip("predicted_s:Q", format=".3f"),
                 tip("measured_over_predicted:Q", format=".2f")])
    return alt.layer(diag, pts).properties(height=HEIGHT)


# ----- serving: the roofline of gqa_lib.cost.serving ------------------------------------------
SERVING_METRICS = {
    "tokens_per_s": "decode tokens/s per accelerator at the largest batch (tokens/s)",
    "latency_ms": "latency per generated token at batch 1 (ms)",
    "prefill_s": "prefill of one T-token prompt (s)",
    "max_batch": "largest batch that fits (sequences)",
}
# the y title of one panel of a stacked figure: short enough for a 150 px tall axis
_SERVING_AXIS = {"tokens_per_s": "decode rate (tokens/s)", "latency_ms": "latency (ms/token)",
                 "prefill_s": "prefill (s)", "max_batch": "batch (sequences)"}


def serving_vs_context(df: pd.DataFrame, metric: str = "tokens_per_s") -> alt.FacetChart:
    """One serving figure against T from :func:`gqa_lib.evidence.serving.serving_vs_context`:
    a colour per model (Llama-3 GQA, the recipe's picks), one panel per accelerator (stacked,
    one shared y axis). In one panel a model's line on one accelerator lay under another's on
    a second (the H200's Llama-3 GQA under the L40S's picks)."""
    if metric not in SERVING_METRICS:
        raise GQAError(f"metric={metric!r} is not one of {', '.join(SERVING_METRICS)}")
    data = df.assign(y=df[metric], pick=df.get("pick", pd.Series(index=df.index)).fillna(
        "(d/64, 8)"), hardware=df["hardware"].str.upper())  # H200, L40S, RTX-4090
    if "basis" in data:  # the panel says where its figures come from
        data["hardware"] = data["hardware"] + data["basis"].map(
            {"calibrated": ": calibrated on measurements",
             "datasheet": ": datasheet roofline, not measured"}).fillna("")
    data = data[np.isfinite(data["y"]) & (data["y"] > 0)]  # nothing fits: no point
    base = alt.Chart().encode(
        x=context_x(),
        y=alt.Y("y:Q", title=_SERVING_AXIS[metric], scale=alt.Scale(type="log")),
        color=alt.Color("model:N", title="model", sort=list(dict.fromkeys(df["model"]))),
        tooltip=[tip("model:N"), tip("hardware:N"), tip("pick:N"), tip("context_len:Q"),
                 tip("y:Q", SERVING_METRICS[metric], format=",.4~r")])
    # the points are a layer of their own: a line with point=True gets legend symbols
    # filled like its points; the figure's title says what the y axis is
    return alt.layer(base.mark_line(), base.mark_point(filled=True, size=25),
                     data=data).properties(width=360, height=HEIGHT // 2).facet(
        row=alt.Row("hardware:N", title=None, sort=list(dict.fromkeys(data["hardware"])),
                    header=alt.Header(labelAngle=0, labelAlign="left", labelAnchor="start",
                                      labelOrient="top", labelFontWeight="bold")),
        spacing=14)


def table5_speedups(df: pd.DataFrame) -> alt.Chart:
    """Speed-up of the (8, 1) model over (32, 8) per regime and source (the paper's Table 5,
    the datasheet roofline, the calibrated model, a measurement); tidy rows regime, source,
    speedup. Horizontal bars, one group per regime, so that long labels fit a phone."""
    regimes, sources = (list(dict.fromkeys(df[c])) for c in ("regime", "source"))
    bars = alt.Chart(df).mark_bar().encode(
        y=alt.Y("regime:N", title="regime", sort=regimes, axis=alt.Axis(labelLimit=160)),
        yOffset=alt.YOffset("source:N", sort=sources),
        x=alt.X("speedup:Q", title="speed-up of (8, 1) over (32, 8) (x)",
                axis=alt.Axis(tickCount=6)),  # a tick per 0.2 crowds its labels together
        color=alt.Color("source:N", title=None, sort=sources,
                        legend=alt.Legend(orient="bottom", columns=2, labelLimit=220)),
        tooltip=[tip("regime:N"), tip("source:N"), tip("speedup:Q", format=".2f")],
    )
    one = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(strokeDash=[4, 3], color="#888").encode(
        x=alt.X("x:Q", title="speed-up of (8, 1) over (32, 8) (x)", axis=alt.Axis(tickCount=6)))
    # a fixed height of ~9 px per bar, not alt.Step(9): a discrete height makes Vega-Lite
    # warn in the console that it drops the figure's autosize
    return alt.layer(bars, one).properties(height=len(regimes) * (9 * len(sources) + 8))
