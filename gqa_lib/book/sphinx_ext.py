"""The book's Sphinx extension (``sphinx.extra_extensions: gqa_lib.book.sphinx_ext`` in
book/_config.yml). The notebook side, :func:`gqa_lib.book.glue`, lives in its own module. It

- ships the Vega JavaScript once, as ``_static/vega-bundle.js``
  (:func:`gqa_lib.book.render.vega_bundle`, rebuilt only when the versions or the book's
  own JavaScript change), and switches
  the kernels it starts to the offline chart renderer;
- sets the repository URL of the launch and repository buttons, and the ``{{ repo_url }}``
  substitution of the pages, from pyproject.toml, its only definition
  (:data:`gqa_lib.book.colab.REPO_URL`);
- re-executes every notebook when gqa_lib, data/ or the key package versions change: the
  execution cache keys on a notebook's own code only, so without this a library change would
  leave stale numbers in the book;
- forgets the build environment after a build with warnings, so that the next build reads
  every page again and reports them again: otherwise Sphinx skips the unchanged pages and a
  second ``make book`` "succeeds" over a failing cell;
- adds the book's style sheet, ``_static/gqa.css`` (:data:`CSS`: charts that fit their
  column, tables that wrap their headers and scroll inside their box, secondary
  columns in a toggle, figure captions) and ``_static/gqa-tables.js`` (on a phone, a table
  wider than its column shows as one card per row);
- leaves one copy of each script on a page: Sphinx 7.4 adds the inline scripts of
  extensions that register them after the builder starts twice (sphinx-thebe's
  ``const THEBE_JS_URL``, a SyntaxError in the console; fixed in Sphinx 8.2, which Jupyter
  Book 1 cannot use);
- reads each notebook's markdown as plain MyST (:func:`gqa_lib.book.prose.to_myst`): the
  committed markdown shows values, citations and admonitions in a form Jupyter renders,
  which the book replaces with the same build's glue;
- puts the executed notebooks behind the pages' ".ipynb" download button (by default it
  serves the sources, stored without outputs), with their prose refreshed from their own
  outputs and charts JupyterLab can draw;
- adds the ``gqa-versions`` directive (package versions of the build, for the status page)
  and the ``gqa-data-files`` directive (the table of files of data/README.md as one entry
  per file, its description at the column's full width: a four-column table of long text
  is a tall and narrow read).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from gqa_lib.io import REPO_ROOT

ROOT = REPO_ROOT
FINGERPRINT_FILE = "gqa-inputs.sha256"
# MyST-NB's status marks in the execution table, in words (ExecStatusInWords in setup).
EXEC_STATUS_WORDS = {"\u2705": "passed", "\u274c": "failed"}

# Distributions whose versions the status page lists (and whose change re-executes the book).
VERSIONED = ("gqa_lib", "numpy", "scipy", "pandas", "torch", "altair", "vl-convert-python",
             "jupyter-book", "myst-nb", "sphinx", "sphinx-book-theme", "sphinxcontrib-bibtex")


# ----- build side -------------------------------------------------------------------------
DATA_README = ROOT / "data" / "README.md"


def readme_files(text: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the first Markdown table of ``text`` (data/README.md's table of
    files): cells split on unescaped pipes, ``\\|`` read as a pipe."""
    import re

    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([c.strip().replace("\\|", "|")
                      for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])])
    header, rows = table[0], [r for r in table[1:] if not set("".join(r)) <= set("-: ")]
    return header, rows


def package_versions() -> dict[str, str]:
    """Python and the :data:`VERSIONED` distributions, then the bundled JavaScript."""
    from gqa_lib.book import render

    out = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    out.update({k: v for k, v in render.bundle_versions().items() if k not in out})
    return out


def inputs_fingerprint() -> str:
    """SHA-256 over gqa_lib's sources, every file in data/ (lock files aside) and the
    package versions: what a notebook's outputs depend on beyond its own code."""
    h = hashlib.sha256()
    files = sorted(ROOT.joinpath("gqa_lib").rglob("*.py"))
    files += sorted(p for p in ROOT.joinpath("data").rglob("*")
                    if p.is_file() and p.suffix != ".lock" and "__pycache__" not in p.parts)
    for p in files:
        h.update(p.relative_to(ROOT).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    h.update(repr(sorted(package_versions().items())).encode())
    return h.hexdigest()


CSS_NAME = "gqa.css"
CSS = """/* gqa_lib.book.sphinx_ext: charts and tables that fit the page */
/* pydata-sphinx-theme >= 0.16 adds a top bar holding only a second search field above
   sphinx-book-theme's page (whose sidebar and article header have their own search): 60 px
   of nothing on a desktop. */
#pst-header { display: none; }
.gqa-chart { width: 100%; }
.gqa-chart svg { max-width: 100%; height: auto; display: block; }
figure.gqa-figure { margin: 1rem 0 1.5rem; }
figure.gqa-figure figcaption { font-size: 0.9rem; margin-top: 0.4rem; text-align: left; }
.gqa-table { max-width: 100%; overflow-x: auto; margin: 0.5rem 0 1rem; }
.gqa-table table { border-collapse: collapse; font-size: 0.88rem; }
.gqa-table th, .gqa-table td { padding: 0.25rem 0.6rem; vertical-align: top;
  border-bottom: 1px solid var(--pst-color-border, #ddd); }
.gqa-table th { text-align: left; font-weight: 600; white-space: normal; }
.gqa-table td.num { text-align: right; white-space: nowrap; }
.gqa-table th.num { text-align: right; }
.gqa-table td.text { min-width: 9rem; white-space: normal; }
/* Secondary columns of a table (gqa_lib.book.tables.show(details=...)), in a toggle. */
details.gqa-details { margin: -0.5rem 0 1rem; }
details.gqa-details > summary { cursor: pointer; font-size: 0.88rem; }
details.gqa-fold { margin: 0.5rem 0 1rem; }  /* a whole table folded: no table above it */
details.gqa-fold > summary { font-weight: 600; }
/* data/README.md's files (the gqa-data-files directive): one entry per file. */
.gqa-data-file { border-bottom: 1px solid var(--pst-color-border, #ddd); padding: 0.4rem 0; }
.gqa-data-file p { margin: 0 0 0.2rem; }
.gqa-data-file p + p { font-size: 0.88rem; }
.gqa-data-file code.literal, .gqa-data-file code.literal span.pre { white-space: normal;
  overflow-wrap: anywhere; }
/* Markdown tables (notation, data/README.md): long code wraps anywhere inside the column;
   words and numbers only where they must (anywhere would split "1,378" to narrow a column). */
.bd-article table.table td, .bd-article table.table th { overflow-wrap: break-word;
  font-size: 0.88rem; padding: 0.25rem 0.5rem; }  /* the size of the notebooks' tables */
.bd-article table.table td code.literal, .bd-article table.table td code.literal span.pre {
  white-space: normal; overflow-wrap: anywhere; }
.gqa-table caption { caption-side: top; text-align: left; font-size: 0.9rem;
  padding-bottom: 0.3rem; }
.cell_output .output.text_plain, .cell_output pre { overflow-x: auto; }
/* A display formula wider than the column scrolls inside it (a phone). */
mjx-container[display="true"] { max-width: 100%; overflow-x: auto; overflow-y: hidden; }
@media (max-width: 639.98px) { mjx-container[display="true"] { font-size: 85% !important; } }
/* An explorer's menus never wider than the screen (long option names on a phone). */
.gqa-chart .vega-bind, .gqa-chart .vega-bind label { max-width: 100%; }
.gqa-chart .vega-bind label { display: inline-flex; flex-wrap: wrap; align-items: center;
  column-gap: 0.3em; }
.gqa-chart .vega-bindings select, .gqa-chart .vega-bindings input { max-width: 100%;
  min-width: 0; }
/* Printed sentences (a cell's stdout) wrap at the column, so no answer is off-screen. */
.cell_output .output.stream pre { white-space: pre-wrap; overflow-wrap: anywhere; }
/* The theme gives HTML outputs a light box in dark mode, for outputs that assume white;
   the book's charts and tables follow the theme, so they keep the page's background. */
html[data-theme=dark] .bd-content div.cell_output .text_html:has(.gqa-chart, .gqa-table) {
  background-color: transparent !important; color: inherit !important; }
/* Glued values in the prose's weight (myst-nb sets them bold): some are whole sentences,
   and a page read in Jupyter shows the same text unbolded. */
span.pasted-text { font-weight: inherit; }
/* On a phone, a table wider than its column is shown as one card per row, each cell under
   its column's header (gqa-tables.js adds the class and the labels). */
@media (max-width: 639.98px) {
  table.gqa-cards, table.gqa-cards tbody, table.gqa-cards tr { display: block; width: 100%;
    box-sizing: border-box; }
  table.gqa-cards thead { display: none; }
  table.gqa-cards caption { display: block; }
  table.gqa-cards tr { border: 1px solid var(--pst-color-border, #ccc); border-radius: 4px;
    margin: 0 0 0.6rem; padding: 0.3rem 0.6rem; }
  table.gqa-cards td { display: grid; grid-template-columns: minmax(6.5rem, 38%) 1fr;
    column-gap: 0.6rem; border: none !important; padding: 0.12rem 0 !important;
    text-align: left !important; white-space: normal !important; min-width: 0 !important;
    overflow-wrap: anywhere; }
  table.gqa-cards td::before { content: attr(data-label); font-weight: 600;
    overflow-wrap: normal; }
  table.gqa-cards td:empty { display: none; }
}
"""

TABLES_JS_NAME = "gqa-tables.js"
# Phone tables: below GQA_CARDS px, a table wider than its column (measured, so narrow
# tables stay tables) becomes cards, each cell labelled with its column's header; again
# when the window is resized or a toggle opens (a table in a closed toggle has no width).
TABLES_JS = """/* gqa_lib.book.sphinx_ext: tables that fit a phone */
(function () {
  const GQA_CARDS = 640;
  const labelled = (table) => {
    const rows = table.tHead ? table.tHead.rows : [];
    if (rows.length !== 1) return false;  // no header, or a header of two levels
    const heads = [...rows[0].cells].map((th) => th.textContent.trim());
    for (const tr of table.tBodies[0] ? table.tBodies[0].rows : []) {
      if (tr.cells.length !== heads.length) return false;
      [...tr.cells].forEach((td, i) => { td.dataset.label = heads[i]; });
    }
    return true;
  };
  const fit = () => {
    const narrow = window.innerWidth < GQA_CARDS;
    for (const table of document.querySelectorAll(".bd-article table")) {
      table.classList.remove("gqa-cards");
      if (!narrow || table.closest(".cell_input, .highlight")) continue;
      const box = table.parentElement;
      if (box.clientWidth > 0 && table.scrollWidth > box.clientWidth + 1 && labelled(table))
        table.classList.add("gqa-cards");
    }
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fit);
  else fit();
  window.addEventListener("load", () => {  // again once images, fonts and formulas have
    fit();                                 // their size (MathJax typesets after the load)
    const mj = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
    if (mj) mj.then(fit);
  });
  window.addEventListener("resize", fit);
  document.addEventListener("toggle", fit, true);  // <details> opened: its tables get a width
})();
"""


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep one copy of every script of a page (``html-page-context``): the copy with the
    lowest priority, in its place. Two copies differ only in their priority (Sphinx 7.4 adds
    the late extension's script again at another one), so the key leaves it out."""
    files = context.get("script_files")
    if not files:
        return
    ordered = sorted(files, key=lambda js: getattr(js, "priority", 500))
    seen, unique = set(), []
    for js in ordered:
        key = (str(getattr(js, "filename", js) or ""),  # an inline script: None or ""
               tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def _ship_executed_notebooks(app) -> None:
    """Put the executed notebooks over their sources in ``_sources/`` (the download button).

    The outputs come from the execution cache (a page read from the cache leaves a copy
    without outputs in ``jupyter_execute/``); without a cache entry, from
    ``jupyter_execute/``."""
    executed = Path(app.outdir).parent / "jupyter_execute"
    sources = Path(app.outdir) / "_sources"
    cache = None
    if getattr(app, "config", None) is not None:
        try:
            from jupyter_cache import get_cache

            cache = get_cache(_cache_dir(app))
        except Exception:  # no cache (execution off): fall back to jupyter_execute/
            cache = None
    for target in sources.rglob("*.ipynb"):
        if cache is not None:
            import nbformat

            try:
                _, merged = cache.merge_match_into_notebook(
                    nbformat.read(target, as_version=4))
            except KeyError:
                merged = None
            if merged is not None:
                nbformat.write(_for_jupyter(merged), target)
                continue
        copy = executed / target.relative_to(sources)
        if copy.is_file():
            import nbformat

            nbformat.write(_for_jupyter(nbformat.read(copy, as_version=4)), target)


def _for_jupyter(nb):
    """The executed notebook as JupyterLab should show it: its markdown's values from its own
    outputs (:mod:`gqa_lib.book.prose`), charts drawn from their Vega-Lite spec, glued values
    readable as ``name = value``."""
    from gqa_lib.book import prose, render

    values = prose.glued_values(nb)
    prose.map_markdown(nb, lambda text: prose.refresh_markdown(text, values))
    render.for_jupyter(nb)
    prose.readable_records(nb)
    return nb


def _cache_dir(app) -> Path:
    path = getattr(app.config, "nb_execution_cache_path", "") or ""
    return Path(path) if path else Path(app.outdir).parent / ".jupyter_cache"


def _write_bundle(static_dir: Path) -> None:
    """Write the Vega bundle into ``static_dir`` unless the one there has these versions and
    was made from this snippet of the book's own JavaScript."""
    from gqa_lib.book import render

    target = static_dir / render.BUNDLE_NAME
    stamp = static_dir.with_name(static_dir.name + ".versions")  # outside: not shipped
    versions = render.bundle_fingerprint()
    if target.is_file() and stamp.is_file() and stamp.read_text() == versions:
        return
    static_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(render.vega_bundle(), encoding="utf-8")
    stamp.write_text(versions)


def _write_css(static_dir: Path) -> None:
    """The book's style sheet and its table script, into ``_static/`` (when changed)."""
    static_dir.mkdir(parents=True, exist_ok=True)
    for name, text in ((CSS_NAME, CSS), (TABLES_JS_NAME, TABLES_JS)):
        target = static_dir / name
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")




def _config_inited(app, config) -> None:
    from gqa_lib.book import colab, render

    os.environ[render.RENDERER_ENV] = render.RENDERER  # inherited by the kernels myst-nb starts
    config.html_theme_options.update(
        repository_url=colab.REPO_URL, use_repository_button=True, use_issues_button=True)
    config.myst_substitutions = {**config.myst_substitutions, "repo_url": colab.REPO_URL}
    # A folder of generated static files inside the build tree (not the source tree).
    static_dir = Path(app.outdir).parent / "gqa_static"
    _write_bundle(static_dir)
    _write_css(static_dir)
    config.html_static_path = [*config.html_static_path, str(static_dir)]

    # The stamp is written only when a build ends cleanly (_build_finished): after a failed
    # or interrupted build the inputs still count as changed, and the notebooks run again.
    app.gqa_stamp = _cache_dir(app) / FINGERPRINT_FILE
    app.gqa_fingerprint = inputs_fingerprint()
    stamp = app.gqa_stamp
    app.gqa_inputs_changed = not (stamp.is_file() and stamp.read_text() == app.gqa_fingerprint)
    if app.gqa_inputs_changed:
        shutil.rmtree(stamp.parent, ignore_errors=True)


def _env_get_outdated(app, env, added, changed, removed) -> list[str]:
    """Re-read every notebook when the inputs changed, and always the versions page."""
    redo = set(getattr(env, "gqa_versions_docs", set()))
    if app.gqa_inputs_changed:
        redo |= {d for d in env.found_docs if str(env.doc2path(d)).endswith(".ipynb")}
    return sorted(redo - added - changed - removed)


def _source_read(app, docname, source) -> None:
    """A notebook's markdown as plain MyST: the book fills its numbers, citations, links
    and admonitions itself, never from the text shown outside it (gqa_lib.book.prose)."""
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        from gqa_lib.book import prose

        source[0] = prose.notebook_to_myst(source[0])


def _env_purge_doc(app, env, docname) -> None:
    getattr(env, "gqa_versions_docs", set()).discard(docname)


class _WarningCounter(logging.Handler):
    """Counts the warnings (and errors) Sphinx and its extensions log during one build."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _build_finished(app, exception) -> None:
    """A clean build records the inputs it ran on; any other forgets the environment, so that
    the next build reads every page again and repeats its warnings."""
    if exception is None and getattr(getattr(app, "builder", None), "format", "") == "html":
        _ship_executed_notebooks(app)
    if exception is None and not app.gqa_warnings.count:
        app.gqa_stamp.parent.mkdir(parents=True, exist_ok=True)
        app.gqa_stamp.write_text(app.gqa_fingerprint)
    else:
        Path(app.doctreedir, "environment.pickle").unlink(missing_ok=True)


def setup(app) -> dict[str, Any]:
    from docutils import nodes
    from sphinx.transforms.post_transforms import SphinxPostTransform
    from sphinx.util.docutils import SphinxDirective

    from gqa_lib.book import render

    class VersionsDirective(SphinxDirective):
        """``gqa-versions``: a two-column table of the build's package versions."""

        def run(self):
            if not hasattr(self.env, "gqa_versions_docs"):
                self.env.gqa_versions_docs = set()
            self.env.gqa_versions_docs.add(self.env.docname)
            table = nodes.table(classes=["colwidths-auto"])
            group = nodes.tgroup(cols=2)
            table += group
            group += [nodes.colspec(colwidth=1), nodes.colspec(colwidth=1)]
            head, body = nodes.thead(), nodes.tbody()
            group += [head, body]
            for parent, cells in [(head, ("package", "version")),
                                  *((body, kv) for kv in package_versions().items())]:
                row = nodes.row()
                for text in cells:
                    row += nodes.entry("", nodes.paragraph(text=text))
                parent += row
            return [table]

    class DataFilesDirective(SphinxDirective):
        """``gqa-data-files``: data/README.md's table of files, one entry per file: the path
        and what it holds, then in smaller type how it is made and its licence."""

        def run(self):
            from docutils.statemachine import StringList

            self.env.note_dependency(str(DATA_README))
            header, rows = readme_files(DATA_README.read_text(encoding="utf-8"))
            out = []
            for row in rows:
                entry = nodes.container(classes=["gqa-data-file"])
                lines = [f"**{row[0]}**: {row[1]}", ""]
                lines += ["; ".join(f"*{h[:1].upper() + h[1:]}:* {c}"
                                    for h, c in zip(header[2:], row[2:])
                                    if c.strip() not in ("", "-"))]
                self.state.nested_parse(StringList(lines, str(DATA_README)),
                                        self.content_offset, entry)
                out.append(entry)
            return out

    class ExecStatusInWords(SphinxPostTransform):
        """MyST-NB's execution table marks a page's status with the emoji ✅ or ❌, which a
        reader without an emoji font sees as an empty box: say "passed" or "failed"."""

        default_priority = 20  # after MyST-NB builds the table (8)

        def run(self, **kwargs) -> None:
            for table in self.document.findall(nodes.table):
                for text in list(table.findall(nodes.Text)):
                    if str(text) in EXEC_STATUS_WORDS:
                        text.parent.replace(text, nodes.Text(EXEC_STATUS_WORDS[str(text)]))

    app.add_directive("gqa-versions", VersionsDirective)
    app.add_directive("gqa-data-files", DataFilesDirective)
    app.add_post_transform(ExecStatusInWords)
    app.add_js_file(render.BUNDLE_NAME)
    app.add_css_file(CSS_NAME)
    app.add_js_file(TABLES_JS_NAME)
    app.connect("html-page-context", dedupe_scripts, priority=900)  # after the others
    app.connect("config-inited", _config_inited)
    app.connect("env-get-outdated", _env_get_outdated)
    app.connect("source-read", _source_read)
    app.connect("env-purge-doc", _env_purge_doc)
    app.gqa_warnings = _WarningCounter()
    logging.getLogger("sphinx").addHandler(app.gqa_warnings)  # Sphinx logs under "sphinx.*"
    app.connect("build-finished", _build_finished)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True,
            "env_version": 1}
