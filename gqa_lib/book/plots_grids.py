"""Grid charts of the book: one cell per (target loss or setting, context), coloured by a
category, with the cell's answer written in it.

The recipe's choice of H per target loss and context (the paper's Table 4, recomputed and
on our sweep), its sensitivity to a setting such as lambda, and the pick under each serving
objective. Each cell's text is drawn in the ink that reads on its colour (:func:`ink`), of
as many lines as the tallest cell and centred; a chart of many contexts puts context down
(a phone has room for few columns). Same conventions as :mod:`gqa_lib.book.plots`.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from gqa_lib import cost
from gqa_lib.book.figures import tip
from gqa_lib.units import format_context, format_count, format_heads_each, HEADS_TITLE


# Vega's "tableau20" scheme, in its order: one colour per head configuration of a grid
TABLEAU20 = ("#4c78a8", "#9ecae9", "#f58518", "#ffbf79", "#54a24b", "#88d27a", "#b79a20",
             "#f2cf5b", "#439894", "#83bcb6", "#e45756", "#ff9d98", "#79706e", "#bab0ac",
             "#d67195", "#fcbfd2", "#b279a2", "#d6a5c9", "#9e765f", "#d8b5a5")
_DARK_INK = "#1b1b1b"


def ink(fill: str) -> str:
    """The text colour for a cell filled with ``fill`` ("#rrggbb"): white or near-black,
    whichever has the higher contrast ratio on it (WCAG relative luminance)."""
    def luminance(hex_: str) -> float:
        lin = [(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
               for c in (int(hex_[i:i + 2], 16) / 255 for i in (1, 3, 5))]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    fl, dark = luminance(fill) + 0.05, luminance(_DARK_INK) + 0.05
    return "#ffffff" if 1.05 / fl > fl / dark else _DARK_INK


def _heads_colors(data: pd.DataFrame, title: str = HEADS_TITLE) -> alt.Color:
    """A colour per head configuration (column ``H``, ordered by n_h then n_kv), and in
    ``data`` the ``ink`` that reads on each."""
    order = list(dict.fromkeys(data.sort_values(["n_head", "n_kv_head"])["H"]))
    fills = dict(zip(order, TABLEAU20 * (len(order) // len(TABLEAU20) + 1)))
    data["ink"] = [ink(fills[h]) for h in data["H"]]
    return alt.Color("H:N", title=title, sort=order,
                     scale=alt.Scale(domain=order, range=[fills[h] for h in order]),
                     legend=alt.Legend(symbolType="square"))  # a cell, not a point


def _context_cells(df: pd.DataFrame, y: str, y_title: str, text: str, color: alt.Color,
                   tooltip: list, cell_width: int = 92, *, context_down: bool = False,
                   facet: str | None = None) -> alt.LayerChart | alt.FacetChart:
    """A grid of cells, context across, ``y`` down (``context_down``: ``y`` across, context
    down, for many contexts: a phone has room for few columns), coloured, with ``text``
    in each (``cell_width`` pixels per column: wide enough for the longest line); with
    ``facet`` (a column), one grid per value, side by side (stacked on a phone)."""
    contexts = [format_context(t) for t in sorted(set(df["context"]))]
    data = df.assign(T=[format_context(t) for t in df["context"]])
    t_axis = {"shorthand": "T:O", "title": "context length T (tokens)", "sort": contexts}
    y_axis = {"shorthand": f"{y}:O", "title": y_title}
    # a loss reads as the tables write it: 3 decimals ("3.000", not "3")
    labels = {"labelExpr": "format(datum.value, '.3f')"} if y == "target_loss" else {}
    if context_down:
        enc = {"x": alt.X(**y_axis, sort="ascending", axis=alt.Axis(labelAngle=0, **labels)),
               "y": alt.Y(**t_axis)}
    else:
        enc = {"x": alt.X(**t_axis, axis=alt.Axis(labelAngle=0)),
               "y": alt.Y(**y_axis, sort="descending", axis=alt.Axis(**labels))}
    # every text as tall as the tallest (blank lines around a shorter one), so that one
    # offset centres them all
    lines = int(df[text].astype(str).str.count("\n").max()) + 1
    pad = [lines - 1 - str(v).count("\n") for v in df[text]]
    data[text] = ["\n" * (p // 2) + str(v) + "\n" * (p - p // 2) for v, p in zip(df[text], pad)]
    base = alt.Chart().encode(**enc)
    columns, rows = (df[y].nunique(), len(contexts)) if context_down else \
        (len(contexts), df[y].nunique())
    grid = alt.layer(
        base.mark_rect(stroke="white").encode(color=color, tooltip=tooltip),
        # text in the ink that reads on its cell (column ``ink``; else dark); a text of
        # several lines starts at the middle: lift it
        base.mark_text(fontSize=11, lineHeight=13, dy=-6.5 * (lines - 1), color=_DARK_INK,
                       lineBreak="\n").encode(
            text=f"{text}:N", **({"color": alt.Color("ink:N", scale=None)} if "ink" in data
                                 else {})),
        data=data).properties(width=cell_width * columns, height=(13 * lines + 14) * rows)
    if facet is None:
        return grid
    return grid.facet(column=alt.Column(f"{facet}:N", title=None,
                                        header=alt.Header(labelFontSize=12, labelFontWeight="bold")))


TABLE4_STATUS = {"match, measured H": "#4c9a5a", "match, extrapolated H": "#a6d49a",
                 "differs, measured H": "#e45756", "differs, extrapolated H": "#f4b183"}


def table4_grid(df: pd.DataFrame) -> alt.LayerChart:
    """Table 4 from :func:`gqa_lib.evidence.paper.table4_comparison`: our (n_h, n_kv) per target
    loss and context, the paper's beside it where they differ, coloured by match and by
    whether the cell rests on an extrapolated configuration."""
    ours = format_heads_each(df["n_head"], df["n_kv_head"])
    paper = format_heads_each(df["paper_n_head"], df["paper_n_kv_head"])
    data = df.assign(
        ours=ours, paper=paper,
        # the paper's choice on lines of its own: a cell is narrow on a phone
        label=[o if m else f"{o}\npaper\n{p}" for o, p, m in zip(ours, paper, df["match"])],
        status=[f"{'match' if m else 'differs'}, {'extrapolated' if e else 'measured'} H"
                for m, e in zip(df["match"], df["extrapolated"])])
    data["ink"] = [ink(TABLE4_STATUS[s]) for s in data["status"]]
    color = alt.Color("status:N", title="ours vs the paper's",
                      scale=alt.Scale(domain=list(TABLE4_STATUS),
                                      range=list(TABLE4_STATUS.values())),
                      legend=alt.Legend(orient="bottom", columns=2, symbolType="square"))
    tips = [tip("target_loss:O"), tip("T:O"), tip("ours:N", "our H"), tip("paper:N", "paper's H"),
            tip("measured_only:N", "our H, measured curves only"),
            tip("loss_gap:Q", "loss gap (nats)", format=".4f")]
    tips += [tip(f"{c}:Q", format=".0%") for c in ("share", "paper_share") if c in df]
    return _context_cells(data, "target_loss", "target loss L* (nats/token)", "label", color,
                          tips, cell_width=72)


def choice_heatmap(df: pd.DataFrame, y: str, y_title: str) -> alt.LayerChart:
    """The recipe's choice (n_h, n_kv) per context and per value of ``y`` (e.g. ``lam`` from
    :func:`gqa_lib.evidence.sensitivity.choice_across`), one colour per configuration."""
    data = df.assign(H=format_heads_each(df["n_head"], df["n_kv_head"]))
    color = _heads_colors(data)
    return _context_cells(data, y, y_title, "H", color,
                          [tip(f"{y}:O", y_title), tip("T:O"), tip("H:N")], cell_width=72,
                          context_down=True)


def recipe_choices(df: pd.DataFrame) -> alt.LayerChart:
    """Our Table 4 from :meth:`gqa_lib.evidence.sweep_recipe.RecipeEvidence.table`: the chosen (n_h, n_kv)
    per target loss and context with the bootstrap share of that choice, coloured by H."""
    data = df.assign(H=format_heads_each(df["n_head"], df["n_kv_head"]),
                     params_non_embedding_text=df["params_non_embedding"].map(format_count))
    data["label"] = [f"{h}\n{s:.0%}" for h, s in zip(data["H"], data["share"])]  # narrow cells
    color = _heads_colors(data)
    tips = [tip("target_loss:O"), tip("T:O"), tip("H:N"), tip("share:Q", format=".0%"),
            tip("params_non_embedding_text:N", "N*"), tip("in_range:N")]
    return _context_cells(data, "target_loss", "target loss L* (nats/token)", "label", color,
                          tips)


# the serving grid's colours: the pick under an objective agrees with Z's, or not
OBJECTIVE_AGREEMENT = {"same as Z's pick": "#a6d49a", "differs from Z's pick": "#f4b183"}


def objective_grid(df: pd.DataFrame) -> alt.FacetChart:
    """The recipe's pick per context (rows) and objective (columns), one grid per accelerator,
    from :func:`gqa_lib.evidence.serving.objective_picks`, coloured by agreement with Z's
    pick."""
    data = df.assign(
        hardware=df["hardware"].str.upper(), objective=df["objective"].map(cost.OBJECTIVE_SHORT),
        agrees=np.where(df["agrees_with_z"].astype(bool), *OBJECTIVE_AGREEMENT))
    color = alt.Color("agrees:N", title=None, scale=alt.Scale(
        domain=list(OBJECTIVE_AGREEMENT), range=list(OBJECTIVE_AGREEMENT.values())),
        legend=alt.Legend(orient="bottom", symbolType="square"))
    return _context_cells(data, "objective", "objective", "pick", color,
                          [tip("hardware:N"), tip("objective:N"), tip("T:O"), tip("pick:N"),
                           tip("tokens_per_s:Q", "tokens/s", format=",.0f")],
                          cell_width=76, context_down=True, facet="hardware")
