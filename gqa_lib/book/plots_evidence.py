"""Charts of what the trained models can show (issue 23): losses beside count-model
baselines, and loss by position within the context. Same conventions as
:mod:`gqa_lib.book.plots` (titled axes with units; no fixed width for a single view)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from gqa_lib.book.figures import number_axis, tip
from gqa_lib.book.plots import HEIGHT, log_ticks

_LOSS = "validation loss (nats/token)"


def loss_vs_baselines(runs: pd.DataFrame, baselines: dict[str, float]) -> alt.LayerChart:
    """Every run's loss against its non-embedding N (log axis), one colour per training
    context (``context``), with the count models' losses on the same tokens as horizontal
    rules (``baselines``: {model: nats})."""
    pts = runs.assign(T=[f"T = {int(t)}" for t in runs["context"]])
    base = pd.DataFrame({"model": list(baselines), "nats": list(baselines.values())})
    points = alt.Chart(pts).mark_point(filled=True, opacity=0.7).encode(
        x=alt.X("params_non_embedding:Q", title="non-embedding parameters N (log scale)",
                scale=alt.Scale(type="log", nice=False),
                axis=number_axis("count", values=log_ticks(runs["params_non_embedding"]))),
        y=alt.Y("val_loss_nats:Q", title=_LOSS, scale=alt.Scale(zero=False)),
        color=alt.Color("T:N", title="training context"),
        tooltip=[tip("config:N"), tip("size:N"), tip("T:N", "training context"), tip("seed:Q"),
                 tip("val_loss_nats:Q", format=".3f")])
    rules = alt.Chart(base).mark_rule(color="gray").encode(
        y=alt.Y("nats:Q", title=_LOSS),
        strokeDash=alt.StrokeDash("model:N", title="count model, same tokens",
                                  sort=list(baselines)),
        tooltip=[tip("model:N", "count model"), tip("nats:Q", "loss (nats/token)", format=".3f")])
    return alt.layer(points, rules).properties(height=HEIGHT)


def loss_by_position(df: pd.DataFrame) -> alt.Chart:
    """Loss by position within the context (log axis of the first position of each bin;
    ``config``, ``first``, ``last``, ``nats``), one line per configuration or count model:
    a model that uses its context keeps falling; a count model (dashed) is flat after
    position 1."""
    d = df.assign(position=df["first"].clip(lower=0.5),  # position 0 on a log axis
                  kind=np.where(df["config"].isin(["bigram", "trigram"]), "count", "trained"))
    order = list(dict.fromkeys(d["config"]))
    firsts = sorted(d["position"].unique())
    last = int(d.loc[d["position"] == firsts[-1], "last"].max())
    x_title = f"position: bins 0, 1, 2-3, ..., {int(firsts[-1])}-{last} (log scale)"
    return alt.Chart(d).mark_line(point=True).encode(
        x=alt.X("position:Q", title=x_title, scale=alt.Scale(type="log", base=2, nice=False),
                axis=alt.Axis(values=firsts, labelExpr="datum.value < 1 ? '0' : datum.label")),
        y=alt.Y("nats:Q", title=_LOSS, scale=alt.Scale(zero=False)),
        color=alt.Color("config:N", title="model", sort=order),
        strokeDash=alt.StrokeDash("kind:N", title="kind", legend=None,  # count models dashed
                                  scale=alt.Scale(domain=["trained", "count"],
                                                  range=[[1, 0], [5, 3]])),
        tooltip=[tip("config:N", "model"), tip("first:Q", "from position"),
                 tip("last:Q", "to position"), tip("nats:Q", "loss (nats/token)", format=".3f")],
    ).properties(height=HEIGHT)
