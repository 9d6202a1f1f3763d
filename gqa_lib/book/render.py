"""Offline rendering of the book's Altair charts.

Altair's default HTML output loads Vega, Vega-Lite and vega-embed from a CDN, so the charts
of a book read offline stay blank. The book build (``gqa_lib.book``) sets
``GQA_ALTAIR_RENDERER=gqa-offline`` for the kernels it starts; importing this module then
enables :func:`offline_renderer`, which emits only a ``<div>`` and a call to ``gqaEmbed``, a
function defined by :func:`vega_bundle`: the three libraries, bundled by vl-convert from its
own copy (no network), shipped once per book in ``_static/``. Each chart output also carries
its spec, which the executed notebook behind the download button gets as Vega-Lite JSON
instead of the HTML (:func:`for_jupyter`), so JupyterLab draws it there. Elsewhere, JupyterLab and VS Code get
:func:`notebook_renderer` (the spec alone, drawn by their own Vega: no CDN); Colab, which draws
only HTML, keeps Altair's default renderer.

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
import re
import sys
from typing import Any

import altair as alt

RENDERER = "gqa-offline"
NOTEBOOK_RENDERER = "gqa-notebook"
# The Vega-Lite mime type JupyterLab's vega extension draws (vega-lite 5 there; Altair's own
# mime type for Vega-Lite 6 has no renderer in JupyterLab 4).
VEGALITE_MIME = "application/vnd.vegalite.v5+json"
JUPYTER_WIDTH = 640  # pixels: a book figure's width in JupyterLab (jupyter_spec)
RENDERER_ENV = "GQA_ALTAIR_RENDERER"
BUNDLE_NAME = "vega-bundle.js"
EXPLORER_KEY = "gqa_explorer"  # usermeta key: name of the mark that shows the optimum


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
# In dark mode (the theme's html[data-theme="dark"]) a chart is drawn with light axes, text
# and legends on its transparent background, and drawn again when the reader switches theme.
# A multi-panel chart wider than its column is scaled down to fit (its SVG gets a viewBox).
_BUNDLE_SNIPPET = """
window.vegaEmbed = vegaEmbed;
window.vega = vega;
window.vegaLite = vegaLite;
const GQA_FG = "#d8dde3", GQA_MUTED = "#8b949e", GQA_GRID = "#3a4048";
const GQA_DARK = {
  background: "transparent",
  axis: {labelColor: GQA_FG, titleColor: GQA_FG, domainColor: GQA_MUTED,
         tickColor: GQA_MUTED, gridColor: GQA_GRID},
  // symbols not coloured by a scale (a dash or shape legend) would stay black on black
  legend: {labelColor: GQA_FG, titleColor: GQA_FG, symbolStrokeColor: GQA_FG,
           symbolFillColor: GQA_FG},
  header: {labelColor: GQA_FG, titleColor: GQA_FG},
  title: {color: GQA_FG, subtitleColor: GQA_MUTED},
  text: {color: GQA_FG},
  view: {stroke: GQA_GRID},
};
const gqaDark = () => document.documentElement.dataset.theme === "dark";
const gqaFit = (el) => {
  const svg = el.querySelector("svg");
  if (!svg) return;
  const w = parseFloat(svg.getAttribute("width")), h = parseFloat(svg.getAttribute("height"));
  if (w && h && !svg.getAttribute("viewBox")) svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
};
// On a narrow screen (a phone) a multi-panel chart is stacked, one panel per row at the
// column's width, rather than scaled down to unreadable text; long titles wrap and legends
// take fewer columns.
const GQA_NARROW = 640, GQA_AXIS_ROOM = 90;
const gqaWrap = (text, chars) => {
  const lines = [];
  for (const word of String(text).split(" ")) {
    const last = lines.length ? lines[lines.length - 1] : null;
    if (last !== null && (last + " " + word).length <= chars) lines[lines.length - 1] += " " + word;
    else lines.push(word);
  }
  return lines;
};
const gqaPanelWidth = (s, w) => {
  if (!s || typeof s !== "object") return;
  if (typeof s.width === "number") s.width = w;
  for (const key of ["layer", "hconcat", "vconcat", "concat"]) (s[key] || []).forEach((c) => gqaPanelWidth(c, w));
  if (s.spec) gqaPanelWidth(s.spec, w);
};
// Calls fix(value) on every object under `name` anywhere in a spec (not inside its data):
// a legend's or an axis's own properties override the config's.
const gqaEach = (s, name, fix) => {
  if (!s || typeof s !== "object") return;
  for (const [key, value] of Object.entries(s)) {
    if (key === name && value && typeof value === "object") fix(value);
    else if (key !== "data" && key !== "datasets") gqaEach(value, name, fix);
  }
};
const gqaNarrowSpec = (spec, avail) => {
  const s = JSON.parse(JSON.stringify(spec)), w = Math.max(120, avail - GQA_AXIS_ROOM);
  if (s.hconcat) {  // side by side -> stacked: each panel shows its own category labels
    s.vconcat = s.hconcat; delete s.hconcat;
    const showY = (c) => {
      const y = c && c.encoding && c.encoding.y;
      if (y && y.axis === null && (y.type === "nominal" || y.type === "ordinal")) delete y.axis;
      (c && c.layer || []).forEach(showY);
    };
    s.vconcat.forEach(showY);
  }
  if (s.concat) s.columns = 1;
  if (s.facet && s.facet.column && !s.facet.row) { s.facet = s.facet.column; s.columns = 1; }
  else if (s.facet && s.facet.field) s.columns = 1;
  if (s.facet) {  // stacked panels: each keeps its own x labels (else only the last has them)
    s.resolve = s.resolve || {};
    s.resolve.axis = Object.assign({}, s.resolve.axis, {x: "independent"});
  }
  if (s.repeat && s.repeat.column) { s.repeat = s.repeat.column; s.columns = 1; }
  if (s.vconcat || s.facet || s.concat || s.repeat) gqaPanelWidth(s, w);
  const chars = Math.floor(avail / 7.5);
  if (s.title) {
    const t = typeof s.title === "string" ? {text: s.title} : s.title;
    if (typeof t.text === "string" && t.text.length > chars) t.text = gqaWrap(t.text, chars);
    s.title = t;
  }
  s.config = s.config || {};
  s.config.legend = Object.assign({}, s.config.legend, {columns: 1, labelLimit: avail - 40});
  gqaEach(s, "legend", (l) => {  // one column, as in the config
    if ("columns" in l) l.columns = 1;
    if ("labelLimit" in l) l.labelLimit = avail - 40;
  });
  gqaEach(s, "axis", (a) => {  // slanted labels (many categories) stand upright
    if (a.labelAngle < 0 && a.labelAngle > -90) a.labelAngle = -90;
  });
  s.config.axis = Object.assign({}, s.config.axis, {labelOverlap: "greedy"});  // no "100T200T"
  return s;
};
window.gqaEmbed = function (id, spec) {
  const run = () => {
    const el = document.getElementById(id);
    if (el.gqaView) el.gqaView.finalize();
    const opts = {actions: false, renderer: "svg", config: gqaDark() ? GQA_DARK : {}};
    const avail = el.clientWidth || (el.parentElement && el.parentElement.clientWidth) || 0;
    const narrow = avail > 0 && avail < GQA_NARROW;
    vegaEmbed(el, narrow ? gqaNarrowSpec(spec, avail) : spec, opts)
      .then((result) => {
        el.gqaView = result.view;
        el.dataset.gqaTheme = gqaDark() ? "dark" : "light";
        gqaFit(el);
        result.view.addEventListener("resize", () => gqaFit(el));
        el.dataset.gqaRendered = "1";
      })
      .catch((err) => {
        el.dataset.gqaError = String(err);
        el.textContent = "Chart error: " + err;
      });
  };
  const start = () => {
    run();
    new MutationObserver(() => {
      const el = document.getElementById(id);
      if (el.dataset.gqaTheme !== (gqaDark() ? "dark" : "light")) run();
    }).observe(document.documentElement, {attributes: true, attributeFilter: ["data-theme"]});
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
};
"""

FIGURE_KEY = "gqa_figure"  # usermeta key: {"number", "title", "caption"} (figures.figure)


def chart_html(spec: dict[str, Any]) -> str:
    """The HTML of one chart for the book: a container and a ``gqaEmbed`` call (no library);
    inside a ``<figure>`` with its number and caption when the chart carries them
    (:func:`gqa_lib.book.figures.figure`)."""
    spec_json = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha1(spec_json.encode()).hexdigest()[:10]
    chart_id = f"gqa-chart-{digest}-{next(_chart_ids)}"
    meta = spec.get("usermeta") or {}
    explorer = meta.get(EXPLORER_KEY)
    attrs = f' data-gqa-explorer="{html.escape(explorer)}"' if explorer else ""
    safe = spec_json.replace("</", "<\\/")  # never close the <script> early
    chart = (f'<div class="gqa-chart" id="{chart_id}"{attrs}></div>\n'
             f'<script>gqaEmbed("{chart_id}", {safe});</script>')
    fig = meta.get(FIGURE_KEY)
    if not fig:
        return chart
    # the chart's title carries "Figure n." (figures.figure); the caption says how to read
    # it (the title if none), without repeating the number; the figure's label names both
    number = int(fig["number"])
    caption = html.escape((fig.get("caption") or fig["title"] + ".").strip())
    label = html.escape(f"Figure {number}. {fig['title']}", quote=True)
    return (f'<figure class="gqa-figure" id="figure-{number}" aria-label="{label}">\n'
            f'{chart}\n<figcaption>{caption}</figcaption>\n</figure>')


def offline_renderer(spec: dict[str, Any], **metadata: Any) -> dict[str, str]:
    """Altair renderer for the built book: HTML against the bundle in ``_static/``. Its
    ``gqaEmbed`` call holds the spec, which :func:`for_jupyter` takes out for JupyterLab
    (a second mime type here would be one myst-nb warns it cannot render, failing the
    strict build)."""
    return {"text/html": chart_html(spec), "text/plain": "<Altair chart>"}


def jupyter_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` as JupyterLab can draw it: a chart as wide as its container (the book's
    figures) gets :data:`JUPYTER_WIDTH` pixels instead, since in JupyterLab's output area
    a container-wide chart keeps resizing, and the page hangs."""
    if spec.get("width") != "container":
        return spec
    return {**spec, "width": JUPYTER_WIDTH}


def notebook_renderer(spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    """Altair renderer for JupyterLab, Notebook 7 and VS Code: the spec alone, which they draw
    with their own copy of Vega (Altair's default HTML loads it from a CDN)."""
    return {VEGALITE_MIME: jupyter_spec(spec), "text/plain": "<Altair chart>"}


_EMBED_CALL = re.compile(r'<script>gqaEmbed\("[^"]+", (\{.*\})\);</script>', re.S)


def spec_of(chart_html_: str) -> dict[str, Any] | None:
    """The Vega-Lite spec inside :func:`chart_html`'s output (None for other HTML). Its
    ``<\\/`` escapes are JSON's own escape of ``/``."""
    m = _EMBED_CALL.search(chart_html_)
    return json.loads(m.group(1)) if m else None


def for_jupyter(nb: dict[str, Any]) -> int:
    """Replace the book's HTML of each chart output of an executed notebook by its spec as
    :data:`VEGALITE_MIME`, in place: JupyterLab draws that with its own Vega, while the
    book's HTML needs the book's script (and JupyterLab would prefer it: it ranks
    ``text/html`` above Vega). Returns the number of charts changed."""
    changed = 0
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data") or {}
            html_ = data.get("text/html")
            spec = spec_of("".join(html_) if isinstance(html_, list) else html_ or "")
            if spec is not None:
                del data["text/html"]
                data[VEGALITE_MIME] = jupyter_spec(spec)
                changed += 1
    return changed


def bundle_fingerprint() -> str:
    """What the shipped bundle is made from: the library versions and a hash of the book's own
    JavaScript snippet in it; a bundle made from another fingerprint is rebuilt."""
    import hashlib

    snippet = hashlib.sha1(_BUNDLE_SNIPPET.encode()).hexdigest()[:12]
    return repr(sorted(bundle_versions().items())) + " snippet " + snippet


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
        " for gqa_lib.book.render. */\n"
    )
    return f"{header}(function () {{\n{js}\n}})();\n"


def in_colab() -> bool:
    return "google.colab" in sys.modules


alt.renderers.register(RENDERER, offline_renderer)
alt.renderers.register(NOTEBOOK_RENDERER, notebook_renderer)
if os.environ.get(RENDERER_ENV) == RENDERER:
    alt.renderers.enable(RENDERER)
elif alt.renderers.active == "default" and not in_colab():  # Colab draws only Altair's HTML
    alt.renderers.enable(NOTEBOOK_RENDERER)
