"""Figures for the book: a chart from :mod:`gqa_lib.book.plots` with its number, title and
caption, sized to the page and drawn for both themes.

:func:`figure` is the one place these defaults live:

- a single or layered chart takes the width of its container (``width="container"``), so
  it fills the 772 px column on a desktop and the screen on a phone; a multi-panel chart
  (concatenated or faceted) keeps its panel widths and is scaled down by the book's
  renderer when the column is narrower (:mod:`gqa_lib.book.render`);
- legends go below the plot, in as many columns as fit;
- numbers on axes and in tooltips are written as the tables and the prose write them
  (:func:`number_axis`, :func:`with_number_text`: "20.6 K", "1.5 B", "34 GFLOP", Z as
  "56,605"), by a Vega expression that mirrors :mod:`gqa_lib.units` (a test renders it and
  compares); an axis without one writes 10^9 as "B", not Vega's SI "G";
- the background is transparent and the axes take the theme's colours (the book's
  renderer switches to light text in dark mode);
- the title reads "Figure n. title", and in the book a caption below the chart says how to
  read it;
- a hovered mark names each value in words (:func:`tip`, :data:`FIELD_WORDS`), not by the
  column that holds it.

A figure is named, not numbered: the page's figures are numbered 1, 2, ... in the order
they are first drawn, and each number is glued as ``fig_<name>``, so the prose refers to a
figure as ``Figure {glue:text}`fig_<name>``` and a caption as ``figure_number(name)``; no
number is typed, and a figure that a page draws only sometimes shifts the rest correctly.
Drawing the same name again (a cell run twice) keeps its number.

Outside the book (JupyterLab, Colab) the same chart shows its title; the caption is in the
chart's metadata only.
"""

from __future__ import annotations

import re

import altair as alt

from gqa_lib.book.glue import store
from gqa_lib.book.render import FIGURE_KEY
from gqa_lib.errors import GQAError
from gqa_lib.units import HEADS_TITLE, PREFIXED

HEIGHT = 300
# Chart-wide settings of every figure: transparent background, readable fonts, legends that
# wrap below the plot instead of overflowing to the right.
CONFIG = {
    "background": "transparent",
    "legend": {"orient": "bottom", "columns": 4, "labelLimit": 260, "symbolLimit": 60},
    # an axis left to Vega's SI format: "G" (giga) reads as a billion, as the prose writes
    # it (counts); the book's own number axes use number_axis
    "axis": {"labelFontSize": 11, "titleFontSize": 12, "labelLimit": 240,
             "labelExpr": "replace(datum.label, /^([0-9.]+)G$/, '$1 B')"},
    "title": {"fontSize": 14, "anchor": "start", "subtitleFontSize": 11, "offset": 10},
}
_SINGLE = (alt.Chart, alt.LayerChart)
_NAME = re.compile(r"[a-z][a-z0-9_]*")
# name -> number, in the order this kernel (one page) first drew each figure
_NUMBERS: dict[str, int] = {}


# Words for the columns a chart's tooltip shows (Vega-Lite would title each by its column
# name: "context_len", "loss_nats"); :func:`tip` reads them
FIELD_WORDS = {
    "config": HEADS_TITLE, "H": HEADS_TITLE, "fit": "fit",
    "model": "model", "part": "part", "hardware": "accelerator", "regime": "regime",
    "source": "source", "pick": "the recipe's pick", "objective": "objective",
    "context": "context T (tokens)", "context_len": "context T (tokens)", "T": "context T",
    "target_loss": "target loss L* (nats)", "n_head": "n_h (query heads)",
    "n_layer": "L (layers)", "size": "size (L, d)", "seed": "seed",
    "params_non_embedding": "N (non-embedding)", "memory_values": "M (values)",
    "flops": "C (FLOPs)", "Z": "Z", "z": "Z", "extrapolated": "extrapolated",
    "share": "bootstrap share", "paper_share": "bootstrap share, paper's",
    "in_range": "N* within measured sizes",
    "loss_nats": "loss (nats/token)", "val_loss_nats": "validation loss (nats/token)",
    "delta_nats": "loss minus reference (nats)", "abs_diff_nats": "|loss difference| (nats)",
    "accuracy": "accuracy", "lr": "peak learning rate", "tokens": "tokens seen",
    "split": "split", "step_s": "measured step (s)", "predicted_s": "predicted step (s)",
    "measured_over_predicted": "measured / predicted", "speedup": "speed-up (x)",
}


NUMBER_KINDS = (*PREFIXED, "z")


def number_expr(kind: str, ref: str = "datum.value", digits: int = 3) -> str:
    """A Vega expression that writes the number ``ref`` (an expression) as
    :mod:`gqa_lib.units` writes a number of ``kind`` in tables and prose: "count"
    (:func:`~gqa_lib.units.format_count`: 20,600 -> '20.6 K', 1.5e9 -> '1.5 B'), "flops"
    (:func:`~gqa_lib.units.format_flops`: '34 GFLOP') or "z"
    (:func:`~gqa_lib.units.format_z`: '56,605'). The same text but for exact decimal ties
    (2.5 rounds to '3' here, to '2' in Python)."""
    sign = f"(({ref}) < 0 ? '-' : '') + "  # Vega writes a minus as U+2212, Python as '-'
    if kind == "z":
        return (f"{sign}(abs({ref}) >= 1000 && abs({ref}) < 1e12 ? format(abs({ref}), ',.0f')"
                f" : format(abs({ref}), '.4~g'))")
    if kind not in PREFIXED:
        raise GQAError(f"kind={kind!r} is not one of {', '.join(NUMBER_KINDS)}")
    units, suffix, bare = PREFIXED[kind]

    def sig(x: str) -> str:  # units._sig of |x|: `digits` significant digits, no trailing 0s
        return (f"(({x}) == 0 ? '0' : format({x}, '.' + max(0, {digits - 1} - "
                f"floor(log({x}) / LN10)) + '~f'))")

    expr = f"{sig(f'abs({ref})')} + '{bare}'"
    for unit, scale in reversed(units):  # the largest unit in which it shows as >= 1
        shown = sig(f"abs({ref}) / {scale:.0e}")
        expr = f"toNumber({shown}) >= 1 ? {shown} + ' {unit}{suffix}' : ({expr})"
    return f"{sign}({expr})"


def number_axis(kind: str, **kwargs) -> alt.Axis:
    """An axis whose labels are written as the tables write a number of ``kind`` (see
    :func:`number_expr`); ``kwargs`` go to :class:`altair.Axis`."""
    return alt.Axis(labelExpr=number_expr(kind),
                    **{"labelOverlap": "greedy", "labelSeparation": 4, **kwargs})


def with_number_text(chart: alt.Chart, **kinds: str) -> alt.Chart:
    """``chart`` with a text field ``<field>_text`` for each ``field=kind``, the number as the
    tables write it, for a tooltip: ``tip("<field>_text:N")`` (titled by ``field``'s words)."""
    return chart.transform_calculate(**{f"{field}_text": number_expr(kind, f"datum[{field!r}]")
                                        for field, kind in kinds.items()})


def tip(shorthand: str, title: str | None = None, **kwargs) -> alt.Tooltip:
    """A tooltip entry (``"field:type"``, as Altair writes it) titled in words: ``title``,
    else the field's words in :data:`FIELD_WORDS` (for ``<field>_text``, the text of a number
    from :func:`with_number_text`, ``field``'s words); a field with neither is refused."""
    field = shorthand.split(":")[0].removesuffix("_text")
    if title is None and field not in FIELD_WORDS:
        raise GQAError(f"tooltip field {field!r} has no words in figures.FIELD_WORDS; "
                       "pass title=")
    return alt.Tooltip(shorthand, title=FIELD_WORDS[field] if title is None else title, **kwargs)


def figure_number(name: str) -> int:
    """The number of the page's figure ``name`` (drawn earlier on the page)."""
    if name not in _NUMBERS:
        drawn = ", ".join(_NUMBERS) or "none yet"
        raise GQAError(f"no figure named {name!r} has been drawn on this page (drawn: {drawn})")
    return _NUMBERS[name]


def figure(chart: alt.TopLevelMixin, name: str, title: str, caption: str = "") -> alt.TopLevelMixin:
    """``chart`` as the page's next figure, named ``name``: titled "Figure n. title",
    captioned in the book, full width when it is a single or layered view, transparent,
    legends below; its number is glued as ``fig_<name>`` for the prose.

    ``name`` is lower-case letters, digits and underscores; ``title`` says what is plotted
    (no final full stop); ``caption`` how to read it.
    """
    if not (isinstance(name, str) and _NAME.fullmatch(name)):
        raise GQAError(f"figure name must be lower-case letters, digits and underscores "
                       f"(e.g. 'loss_vs_size'), got {name!r}")
    if not title.strip():
        raise GQAError(f"figure {name!r} needs a title")
    if isinstance(chart, _SINGLE) and isinstance(getattr(chart, "height", None), (alt.Step, dict)):
        raise GQAError(f"figure {name!r}: a discrete (step) height makes Vega-Lite warn in the "
                       "console that it drops the autosize; give a fixed height")
    number = _NUMBERS.setdefault(name, len(_NUMBERS) + 1)
    if isinstance(chart, _SINGLE):  # fit the width; the height is fixed
        chart = chart.properties(width="container",
                                 autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))
    current = getattr(chart, "usermeta", alt.Undefined)
    meta = {} if current is alt.Undefined else dict(current)
    meta[FIGURE_KEY] = {"number": number, "title": title.rstrip("."), "caption": caption}
    chart = chart.properties(
        title=alt.TitleParams(f"Figure {number}. {title.rstrip('.')}"), usermeta=meta)
    for key, value in CONFIG.items():
        configure = getattr(chart, f"configure_{key}", None)
        chart = configure(**value) if configure else chart.properties(**{key: value})
    store(f"fig_{name}", number)
    return chart
