"""Altair charts shared by the book's pages, and the renderer that makes them work offline.

Chart builders take a :func:`gqa_lib.tables.cost_table` and return an ``alt.Chart``; every
positional axis carries a title with its unit (tests/test_book.py checks each builder).

Offline rendering. Altair's default HTML output loads Vega, Vega-Lite and vega-embed from a
CDN, so the charts of a book read offline stay blank. The book build (``gqa_lib.book``) sets
``GQA_ALTAIR_RENDERER=gqa-offline`` for the kernels it starts; importing this module then
enables :func:`offline_renderer`, which emits only a ``<div>`` and a call to ``gqaEmbed``, a
function defined by :func:`vega_bundle`: the three libraries, bundled by vl-convert from its
own copy (no network), shipped once per book in ``_static/``. Elsewhere (Jupyter, Colab)
Altair's default renderer is left alone.

A static explorer (a chart whose Vega-Lite parameters recompute an optimum in the browser)
is marked with :func:`mark_explorer`; the browser test then moves its sliders and checks that
the optimum shown changes.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import os
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from .errors import GQAError
from .units import format_context

RENDERER = "gqa-offline"
RENDERER_ENV = "GQA_ALTAIR_RENDERER"
BUNDLE_NAME = "vega-bundle.js"
EXPLORER_KEY = "gqa_explorer"  # usermeta key: name of the mark that shows the optimum
WIDTH = 520
HEIGHT = 300

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
                 axis=alt.Axis(values=ticks, labelExpr=_CONTEXT_LABEL))


def _lines(df: pd.DataFrame, field: str, scale: float, y_title: str, log_y: bool) -> alt.Chart:
    data = df[["model", "context_len", field]].assign(y=df[field] / scale)
    return alt.Chart(data).mark_line(point=True).encode(
        x=context_x(),
        y=alt.Y("y:Q", title=y_title, scale=alt.Scale(type="log" if log_y else "linear")),
        color=alt.Color("model:N", title="model", sort=list(dict.fromkeys(df["model"]))),
        tooltip=["model:N", "context_len:Q", alt.Tooltip("y:Q", title=y_title, format=".3~s")],
    ).properties(width=WIDTH, height=HEIGHT)


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
    long = df.melt(id_vars=["model", "context_len"], value_vars=list(SHARES),
                   var_name="part", value_name="share")
    long["part"] = long["part"].map(SHARES)
    return alt.Chart(long).mark_line(point=True).encode(
        x=context_x(tick_every=4),
        y=alt.Y("share:Q", title="time-variant share (%)", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("model:N", title="model", sort=list(dict.fromkeys(df["model"]))),
        tooltip=["model:N", "context_len:Q", alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=WIDTH // 2 - 20, height=HEIGHT - 60).facet(
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
    at = df[df["context_len"] == context_len]
    if at.empty:
        raise GQAError(f"no rows at context_len={context_len}")
    long = at.melt(id_vars=["model"], value_vars=list(parts), var_name="part", value_name="v")
    long = long.assign(part=long["part"].map(parts), v=long["v"] / scale)
    label = "memory" if quantity == "memory" else "compute per generated token"
    return alt.Chart(long).mark_bar().encode(
        x=alt.X("v:Q", title=f"{label} at T = {format_context(context_len)} ({unit})"),
        y=alt.Y("model:N", title="model", sort=list(dict.fromkeys(at["model"]))),
        color=alt.Color("part:N", title="part", sort=list(parts.values())),
        order=alt.Order("part_order:Q"),
        tooltip=["model:N", "part:N", alt.Tooltip("v:Q", title=unit, format=".3~s")],
    ).transform_calculate(
        part_order=f"indexof({json.dumps(list(parts.values()))}, datum.part)"
    ).properties(width=WIDTH - 100)


# ----- explorers --------------------------------------------------------------------------
def mark_explorer(chart: alt.TopLevelMixin, optimum_mark: str) -> alt.TopLevelMixin:
    """Mark a chart as a static explorer. Its optimum must be drawn as text by a layer named
    ``optimum_mark`` (``alt.Chart(...).mark_text().properties(name=optimum_mark)``, which Vega
    draws as ``<g class="... {optimum_mark}_marks">``); the browser test moves every slider
    of the chart to both ends and checks that this text changes."""
    current = getattr(chart, "usermeta", alt.Undefined)
    meta = {} if current is alt.Undefined else dict(current)
    meta[EXPLORER_KEY] = optimum_mark
    return chart.properties(usermeta=meta)


# ----- offline rendering ------------------------------------------------------------------
_chart_ids = itertools.count()

# Bundled with the three libraries: exposes them, and gqaEmbed(id, spec) for each chart.
_BUNDLE_SNIPPET = """
window.vegaEmbed = vegaEmbed;
window.vega = vega;
window.vegaLite = vegaLite;
window.gqaEmbed = function (id, spec) {
  const run = () => {
    const el = document.getElementById(id);
    vegaEmbed(el, spec, { actions: false, renderer: "svg" })
      .then((result) => { el.gqaView = result.view; el.dataset.gqaRendered = "1"; })
      .catch((err) => {
        el.dataset.gqaError = String(err);
        el.textContent = "Chart error: " + err;
      });
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
};
"""


def chart_html(spec: dict[str, Any]) -> str:
    """The HTML of one chart for the book: a container and a ``gqaEmbed`` call (no library)."""
    spec_json = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha1(spec_json.encode()).hexdigest()[:10]
    chart_id = f"gqa-chart-{digest}-{next(_chart_ids)}"
    explorer = (spec.get("usermeta") or {}).get(EXPLORER_KEY)
    attrs = f' data-gqa-explorer="{html.escape(explorer)}"' if explorer else ""
    safe = spec_json.replace("</", "<\\/")  # never close the <script> early
    return (f'<div class="gqa-chart" id="{chart_id}"{attrs}></div>\n'
            f'<script>gqaEmbed("{chart_id}", {safe});</script>')


def offline_renderer(spec: dict[str, Any], **metadata: Any) -> dict[str, str]:
    """Altair renderer for the built book: HTML against the bundle in ``_static/``."""
    return {"text/html": chart_html(spec), "text/plain": "<Altair chart>"}


def bundle_versions() -> dict[str, str]:
    """Versions of the JavaScript libraries :func:`vega_bundle` ships, and of its bundler."""
    from importlib.metadata import version

    import vl_convert as vlc

    return {
        "vega": vlc.get_vega_version(),
        "vega-lite": alt.VEGALITE_VERSION,
        "vega-embed": vlc.get_vega_embed_version(),
        "vl-convert-python": version("vl-convert-python"),
    }


def vega_bundle() -> str:
    """Vega, Vega-Lite (the version Altair targets) and vega-embed as one classic script that
    defines ``window.vegaEmbed`` and ``window.gqaEmbed``. Built offline by vl-convert from the
    copies compiled into it (~0.9 MB, a few seconds)."""
    import vl_convert as vlc

    v = bundle_versions()
    vl_minor = ".".join(alt.VEGALITE_VERSION.split(".")[:2])
    js = vlc.javascript_bundle(_BUNDLE_SNIPPET, vl_version=vl_minor)
    header = (
        f"/*! vega {v['vega']}, vega-lite {v['vega-lite']}, vega-embed {v['vega-embed']}:"
        " BSD-3-Clause, Copyright (c) the University of Washington Interactive Data Lab.\n"
        " * Bundled dependencies: d3-* and semver (ISC), fast-json-patch,"
        " json-stringify-pretty-compact and lodash.debounce (MIT), tslib (0BSD),"
        " vega-themes and vega-tooltip (BSD-3-Clause).\n"
        f" * Bundled offline by vl-convert-python {v['vl-convert-python']} (BSD-3-Clause)"
        " for gqa_lib.plots. */\n"
    )
    return f"{header}(function () {{\n{js}\n}})();\n"


alt.renderers.register(RENDERER, offline_renderer)
if os.environ.get(RENDERER_ENV) == RENDERER:
    alt.renderers.enable(RENDERER)
