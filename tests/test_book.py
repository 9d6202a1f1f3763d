"""The book's sources tell one story: clean notebooks, all in the TOC, each starting with the
canonical Colab cell; configuration consistent with pyproject; notation and data/README.md
naming things that exist; every chart axis titled with its unit; offline chart rendering."""

from __future__ import annotations

import importlib
import dataclasses
import functools
import inspect
import json
import os
import re
import sys
from pathlib import Path

import altair as alt
import nbformat
import pandas as pd
import pytest
import yaml

from gqa_lib import cost
from gqa_lib.errors import GQAError
from gqa_lib.book import (colab, glue, plots, plots_evidence, plots_grids, prose, render,
                          sphinx_ext, tables)
from gqa_lib.evidence import paper, sensitivity, serving, sweep_recipe
from gqa_lib.fit import recipe, scaling
from gqa_lib.arch.config import ModelConfig, get_preset, paper_family

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONFIG = yaml.safe_load((BOOK / "_config.yml").read_text())
TOC = yaml.safe_load((BOOK / "_toc.yml").read_text())


def _toc_files(node) -> list[str]:
    if isinstance(node, dict):
        return ([node["file"]] if "file" in node else []) + [
            f for v in node.values() for f in _toc_files(v)]
    if isinstance(node, list):
        return [f for v in node for f in _toc_files(v)]
    return []


# ----- notebooks --------------------------------------------------------------------------
def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean_and_valid(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.outputs or c.execution_count is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} have outputs; clear them "
                       "(python -m gqa_lib.book.colab NOTEBOOK)")
    assert nb.metadata.kernelspec.name == "python3"
    ids = [c["id"] for c in json.loads(path.read_text())["cells"]]  # nbformat would fix them
    assert len(ids) == len(set(ids)), f"{path.name}: cell ids repeat (a copied cell)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_starts_with_the_colab_cell(path):
    nb = json.loads(path.read_text())
    assert colab.has_first_cell(nb), (
        f"{path.name}: first cell is not gqa_lib.book.colab.FIRST_CELL; "
        f"run `python -m gqa_lib.book.colab {path.relative_to(ROOT)}`")


def test_toc_lists_every_notebook_and_only_existing_pages():
    files = _toc_files(TOC)
    assert len(files) == len(set(files)), "a page appears twice in _toc.yml"
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in files, f"{nb.name} is not in book/_toc.yml"
    for f in files:
        assert any((BOOK / f).with_suffix(s).is_file() for s in (".md", ".ipynb")), f


def test_notebooks_folder_is_linked_into_the_book():
    link = BOOK / "notebooks"
    assert link.is_symlink() and link.readlink() == Path("../notebooks")


# ----- configuration ----------------------------------------------------------------------
def test_config_builds_strictly_with_cache_and_colab():
    execute = CONFIG["execute"]
    assert execute["execute_notebooks"] == "cache"
    assert execute["timeout"] > 30 and execute["allow_errors"] is False
    assert execute["stderr_output"] in ("warn", "error", "severe")
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert "gqa_lib.book.sphinx_ext" in CONFIG["sphinx"]["extra_extensions"]
    assert CONFIG["bibtex_bibfiles"] == ["references.bib"]
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"jupyter-book build book -W -n --keep-going", make)


def test_repository_url_has_one_definition():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    url = pyproject["project"]["urls"]["Repository"]
    assert colab.REPO_URL == url
    assert f'"{url}"' in colab.FIRST_CELL
    assert "url" not in CONFIG.get("repository", {}), (
        "the repository URL lives in pyproject.toml only; gqa_lib.book sets it for the book")
    for path in [*BOOK.glob("*.md"), *BOOK.glob("*.yml"), *NOTEBOOKS]:
        text = path.read_text()
        if path.suffix == ".ipynb":  # the first cell is generated from pyproject, and so
            # are the links that the markdown shows outside the book (gqa_lib.book.prose)
            text = "".join(prose.MARK.sub("", "".join(c["source"]))
                           for c in json.loads(text)["cells"][1:])
        assert url not in text, f"{path.name} repeats the repository URL"


def test_book_extension_configures_the_build(tmp_path, monkeypatch):
    """config-inited: renderer switched, URL set, bundle written once; the execution cache
    is kept while the inputs are those of the last clean build, and emptied otherwise."""

    class Config:
        html_theme_options: dict = {}
        myst_substitutions: dict = {}
        html_static_path: list = []
        nb_execution_cache_path = ""

    class App:
        outdir = str(tmp_path / "html")
        doctreedir = str(tmp_path / ".doctrees")
        config = Config()
        gqa_warnings = sphinx_ext._WarningCounter()

    monkeypatch.setenv(render.RENDERER_ENV, "default")  # restored after the test
    app = App()
    sphinx_ext._config_inited(app, app.config)
    assert os.environ[render.RENDERER_ENV] == render.RENDERER
    assert app.config.html_theme_options["repository_url"] == colab.REPO_URL
    assert app.config.myst_substitutions["repo_url"] == colab.REPO_URL
    (static,) = app.config.html_static_path
    bundle = Path(static) / render.BUNDLE_NAME
    js = bundle.read_text()
    assert js.startswith("/*! vega ") and "window.gqaEmbed" in js and len(js) > 500_000
    shipped = sorted(Path(static).iterdir())
    assert shipped == sorted([bundle, Path(static) / sphinx_ext.CSS_NAME,
                              Path(static) / sphinx_ext.TABLES_JS_NAME]), \
        "only the bundle, the style sheet and the table script are shipped"
    css = (Path(static) / sphinx_ext.CSS_NAME).read_text()
    assert ".gqa-table" in css and "overflow-x: auto" in css and ".gqa-chart svg" in css
    assert app.gqa_inputs_changed  # first build: nothing recorded yet
    sphinx_ext._build_finished(app, None)  # a clean build records its inputs

    cached = tmp_path / ".jupyter_cache" / "entry"
    cached.write_text("executed outputs")
    mtime = bundle.stat().st_mtime_ns
    sphinx_ext._config_inited(app, app.config)  # nothing changed: cache and bundle kept
    assert not app.gqa_inputs_changed and cached.exists()
    assert bundle.stat().st_mtime_ns == mtime

    app.gqa_stamp.write_text("inputs of an older gqa_lib")
    sphinx_ext._config_inited(app, app.config)
    assert app.gqa_inputs_changed and not cached.exists()
    sphinx_ext._build_finished(app, RuntimeError("interrupted"))  # records nothing
    sphinx_ext._config_inited(app, app.config)
    assert app.gqa_inputs_changed


def test_inputs_fingerprint_covers_library_and_data(monkeypatch):
    before = sphinx_ext.inputs_fingerprint()
    monkeypatch.setattr(sphinx_ext, "package_versions", lambda: {"numpy": "0.0"})
    assert sphinx_ext.inputs_fingerprint() != before


# ----- pages that name things -------------------------------------------------------------
def _notation_names() -> set[str]:
    names = set()
    for line in (BOOK / "notation.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3 and not set(cells[1]) <= set("-"):
            names |= set(re.findall(r"`\(?([a-z_][a-z0-9_]*)", cells[1]))
            names |= set(re.findall(r", ([a-z_][a-z0-9_]*)\)?`", cells[1]))
    return names - {"gqa_lib"}


def test_notation_names_exist_in_gqa_lib():
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    known |= {n for n, v in vars(ModelConfig).items() if isinstance(v, property)}
    known |= {n for n in dir(cost) if not n.startswith("_")}
    known |= {p for n in dir(cost) if inspect.isfunction(getattr(cost, n))
              for p in inspect.signature(getattr(cost, n)).parameters}
    known |= set(tables.cost_table([get_preset("tiny")], [8]).columns)
    known |= {f.name for f in dataclasses.fields(scaling.PowerLaw)}
    known |= {n for n in vars(scaling.PowerLaw) if not n.startswith("_")}
    known |= {f.name for f in dataclasses.fields(recipe.CostSettings)}
    known |= {p for n in dir(recipe) if inspect.isfunction(getattr(recipe, n))
              for p in inspect.signature(getattr(recipe, n)).parameters}
    names = _notation_names()
    assert {"n_layer", "d_head", "kv_cache_values", "hardware_cost", "lam"} <= names
    assert {"target_loss", "params_for_loss", "convention", "aspect"} <= names
    assert not names - known, f"notation.md names what gqa_lib lacks: {names - known}"


def test_data_readme_names_every_data_file():
    readme = (ROOT / "data" / "README.md").read_text()
    for path in sorted((ROOT / "data").rglob("*")):
        rel = path.relative_to(ROOT / "data")
        if not path.is_file() or path.suffix == ".lock" or rel.as_posix() == "README.md":
            continue
        named = [rel.as_posix(), *(f"{p.as_posix()}/" for p in rel.parents if p.name)]
        assert any(n in readme for n in named), (
            f"data/README.md does not say where data/{rel} comes from")


def test_references_cover_the_citations():
    bib = (BOOK / "references.bib").read_text()
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, re.M))
    cited = set()
    for path in [*BOOK.glob("*.md"), *NOTEBOOKS]:
        for group in re.findall(r"\{cite:?[a-z]*\}`([^`]+)`", path.read_text()):
            cited |= {k.strip() for k in group.split(",")}
    assert cited and cited <= keys, cited - keys
    assert {"chen2025costoptimal", "ainslie2023gqa", "hoffmann2022chinchilla",
            "kaplan2020scaling", "shazeer2019mqa", "grattafiori2024llama3"} <= keys


# ----- charts -------------------------------------------------------------------------------
def _sample_table():
    models = [get_preset("llama-3.2-1b"), get_preset("mistral-7b-v0.1"), paper_family(32)]
    return tables.cost_table(models, [2**k for k in range(10, 18)])


def _recipe_model():
    return paper.joint_model()  # cached: fitted once per session


BUILDERS = {
    "loss_vs_baselines": lambda df: plots_evidence.loss_vs_baselines(pd.DataFrame(
        {"params_non_embedding": [1e4, 1e5], "val_loss_nats": [5.0, 4.0], "context": [128, 512],
         "config": ["(8, 8)", "(1, 1)"], "size": ["L1 d32", "L2 d64"], "seed": [0, 0]}),
        {"bigram": 4.2, "trigram": 3.4}),
    "loss_by_position": lambda df: plots_evidence.loss_by_position(pd.DataFrame(
        {"config": ["(8, 8)", "(8, 8)", "trigram", "trigram"], "first": [0, 1, 0, 1],
         "last": [0, 1, 0, 1], "nats": [4.5, 3.9, 4.2, 3.6]})),
    "memory_vs_context": lambda df: plots.memory_vs_context(df),
    "flops_vs_context": lambda df: plots.flops_vs_context(df),
    "time_variant_shares": lambda df: plots.time_variant_shares(df),
    "breakdown_bars": lambda df: plots.breakdown_bars(df, 2**17, "memory")
    & plots.breakdown_bars(df, 2**17, "flops"),
    # the recipe's charts read the recipe's frames, not the cost table
    "loss_vs_cost": lambda df: plots.loss_vs_cost(
        paper.fig2_frame(_recipe_model(), n_curve=5), target_loss=2.615),
    "table4_grid": lambda df: plots_grids.table4_grid(paper.table4_comparison(_recipe_model())),
    "choice_heatmap": lambda df: plots_grids.choice_heatmap(sensitivity.choice_across(
        _recipe_model(), 2.6, [8192, 131072], "lam", [0.5, 0.9]), "lam", "λ"),
    # the fitting page's charts: fits, seed noise and our Table 4 on a synthetic sweep
    "loss_vs_params": lambda df: plots.loss_vs_params(
        sweep_recipe.fit_tables({512: _sweep_fit()})["curves"], facet="fit"),
    "fit_intervals": lambda df: plots.fit_intervals(
        sweep_recipe.fit_tables({512: _sweep_fit()})["intervals"]),
    "noise_vs_heads": lambda df: plots.noise_vs_heads(
        sweep_recipe.loss_differences(_sweep()), threshold=0.05),
    "recipe_choices": lambda df: plots_grids.recipe_choices(_sweep_evidence().table()),
    "choice_vs_context": lambda df: plots.choice_vs_context(_sweep_evidence().table()),
    # the training and performance pages
    "training_curve": lambda df: plots.training_curve(pd.DataFrame(
        {"tokens": [1000, 2000], "train_loss": [6.0, 5.0], "val_loss": [5.9, 5.1]})),
    "head_effect": lambda df: plots.head_effect(pd.DataFrame(
        {"config": ["(8, 8)", "(1, 1)"], "n_layer": [2, 2], "d_model": [64, 64],
         "size": ["L2 d64", "L2 d64"], "context": [128, 128], "delta_nats": [0.0, -0.02]})),
    "lr_tuning": lambda df: plots.lr_tuning(pd.DataFrame(
        {"lr": [1e-3, 4e-3], "val_loss_nats": [5.0, 4.8], "config": ["(8, 8)", "(8, 8)"],
         "n_layer": [2, 2], "d_model": [64, 64], "size": ["L2 d64", "L2 d64"]}), chosen=2e-3),
    "mqar_accuracy": lambda df: plots.mqar_accuracy(pd.DataFrame(
        {"config": ["(8, 8)"] * 3, "seed": [0, 0, 0], "context": [64] * 3,
         "by": ["all", "pairs", "distance"], "level": ["all", "2", "near"],
         "accuracy": [0.5, 0.9, 0.6]})),
    "recall_probe": lambda df: plots.recall_probe(pd.DataFrame(
        {"config": ["(8, 8)", "(1, 1)"], "n_layer": [2, 2], "context": [128, 128],
         "recall_acc": [0.2, 0.1], "recall_base_acc": [0.1, 0.1]})),
    "step_time_vs_prediction": lambda df: plots.step_time_vs_prediction(pd.DataFrame(
        {"predicted_s": [0.1, 0.2], "step_s": [0.1, 0.3], "n_head": [1, 16],
         "context": [256, 2048], "measured_over_predicted": [1.0, 1.5]})),
    # the serving page
    "serving_vs_context": lambda df: plots.serving_vs_context(
        _serving_frame(), "tokens_per_s") & plots.serving_vs_context(_serving_frame(),
                                                                     "latency_ms"),
    "objective_grid": lambda df: plots_grids.objective_grid(serving.objective_picks(
        _recipe_model(), contexts=(8192, 131072), hardware=("h200",))),
    "table5_speedups": lambda df: plots.table5_speedups(pd.DataFrame(
        {"regime": ["prefill", "prefill"], "source": ["roofline", "paper"],
         "speedup": [2.1, 1.6]})),
    "head_count_laws": lambda df: plots.head_count_laws(
        pd.DataFrame({"model": ["470M"] * 3, "n_head": [1, 8, 32], "loss_nats": [3, 2.9, 2.8]})),
}


@functools.cache
def _serving_frame():
    return serving.serving_vs_context(_recipe_model(), contexts=(8192, 131072),
                                      hardware=("h100", "l40s"))


@functools.cache
def _sweep():
    from test_ours import sweep_rows  # the synthetic sweep of tests/test_ours.py

    return sweep_rows(sizes=(2, 3, 4))


@functools.cache
def _sweep_fit():
    return sweep_recipe.fit_context(_sweep(), 512, n_boot=5)


@functools.cache
def _sweep_evidence():
    model = _sweep_fit().model
    return sweep_recipe.recipe_evidence(model, sweep_recipe.target_grid(model, 3)[0], [512, 131072], n_boot=3)


def _encodings(spec):
    if isinstance(spec, dict):
        if isinstance(spec.get("encoding"), dict):
            yield spec["encoding"]
        for v in spec.values():
            yield from _encodings(v)
    elif isinstance(spec, list):
        for v in spec:
            yield from _encodings(v)


def test_every_chart_builder_is_checked():
    not_builders = {"context_x", "format_context", "ink", "log_ticks"}
    public = {n for mod in (plots, plots_evidence, plots_grids) for n, f in vars(mod).items()
              if inspect.isfunction(f) and f.__module__ == mod.__name__
              and not n.startswith("_") and n not in not_builders}
    assert public == set(BUILDERS), "add new chart builders to BUILDERS in this test"


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_chart_axes_have_titles_with_units(name):
    spec = BUILDERS[name](_sample_table()).to_dict()
    axes = [(ch, enc[ch]) for enc in _encodings(spec) for ch in ("x", "y") if ch in enc]
    assert axes
    for ch, e in axes:
        title = e.get("title") or ""
        title = " ".join(title) if isinstance(title, list) else title  # a title in lines
        assert title, f"{name}: {ch} axis has no title"
        if e.get("type") == "quantitative":
            assert re.search(r"\(\S[^)]*\)", title), f"{name}: {ch} title {title!r} has no unit"


def test_chart_html_calls_the_shared_bundle_and_is_script_safe():
    chart = alt.Chart(alt.Data(values=[{"a": "</script><b>"}])).mark_point().encode(x="a:N")
    html = render.chart_html(chart.to_dict())
    assert html.count("<script>") == 1 and html.count("</script>") == 1
    assert 'class="gqa-chart"' in html and "gqaEmbed(" in html
    assert "cdn" not in html and "data-gqa-explorer" not in html
    explorer = render.chart_html(render.mark_explorer(chart, "optimum").to_dict())
    assert 'data-gqa-explorer="optimum"' in explorer
    first, second = (re.search(r'id="([^"]+)"', render.chart_html(chart.to_dict())).group(1)
                     for _ in range(2))
    assert first != second, "the same chart twice on a page needs two containers"


def test_offline_renderer_only_in_the_book_build(monkeypatch):
    import importlib

    monkeypatch.delenv(render.RENDERER_ENV, raising=False)
    spec = alt.Chart(alt.Data(values=[{"a": 1}])).mark_point().encode(x="a:Q").to_dict()
    try:
        monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
        alt.renderers.enable("default")
        importlib.reload(render)
        assert alt.renderers.active == "default"  # Colab draws only Altair's HTML
        monkeypatch.delitem(sys.modules, "google.colab")
        alt.renderers.enable("default")
        importlib.reload(render)
        assert alt.renderers.active == render.NOTEBOOK_RENDERER  # JupyterLab: no CDN
        assert set(alt.renderers.get()(spec)) == {render.VEGALITE_MIME, "text/plain"}
        monkeypatch.setenv(render.RENDERER_ENV, render.RENDERER)
        importlib.reload(render)
        assert alt.renderers.active == render.RENDERER
        bundle = alt.renderers.get()(spec)
        assert "gqaEmbed(" in bundle["text/html"]
        assert set(bundle) == {"text/html", "text/plain"}  # myst-nb warns on other types
    finally:
        alt.renderers.enable("default")


def test_download_drops_the_books_chart_html_for_jupyterlab():
    """JupyterLab ranks text/html above its Vega renderer, and the book's HTML needs the
    book's script: the executed download keeps only the Vega-Lite spec of each chart."""
    spec = alt.Chart(alt.Data(values=[{"a": "</script>"}])).mark_point().encode(
        x="a:N").properties(title="Figure 1. A").to_dict()
    chart = {"output_type": "display_data", "metadata": {},
             "data": render.offline_renderer(spec)}
    other = {"output_type": "display_data", "metadata": {},
             "data": {"text/html": "<table></table>", "text/plain": "t"}}
    nb = {"cells": [{"cell_type": "code", "source": "", "outputs": [chart, other]}]}
    assert render.for_jupyter(nb) == 1
    assert set(chart["data"]) == {render.VEGALITE_MIME, "text/plain"}
    assert chart["data"][render.VEGALITE_MIME] == spec  # the very spec, "</" included
    wide = {**spec, "width": "container"}  # a book figure: a fixed width in JupyterLab,
    assert render.jupyter_spec(wide) == {**spec, "width": render.JUPYTER_WIDTH}  # else
    assert render.notebook_renderer(wide)[render.VEGALITE_MIME]["width"] == 640  # it hangs
    assert other["data"]["text/html"] == "<table></table>"


def test_glue_stores_python_numbers(monkeypatch):
    import numpy as np

    stored = {}
    fake = type(sys)("myst_nb")
    fake.glue = lambda name, value, display=True: stored.update({name: (value, display)})
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    assert glue("share", np.float64(0.75)) is None
    assert stored["share"] == (0.75, False) and type(stored["share"][0]) is float
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # as on Colab: not installed
    assert glue("share", 0.5) is None


def test_a_build_with_warnings_is_read_again_next_time(tmp_path):
    """Sphinx skips unchanged pages, so a second build would not repeat a failing cell's
    warning; after any warning the extension drops the environment to force a full read."""
    import logging
    from types import SimpleNamespace

    env = tmp_path / "environment.pickle"
    env.write_text("pickled")
    app = SimpleNamespace(doctreedir=str(tmp_path), gqa_warnings=sphinx_ext._WarningCounter(),
                          gqa_stamp=tmp_path / "cache" / "stamp", gqa_fingerprint="f")
    sphinx_ext._build_finished(app, None)
    assert env.exists() and app.gqa_stamp.read_text() == "f"
    app.gqa_stamp.unlink()
    app.gqa_warnings.handle(logging.LogRecord("sphinx.x", logging.WARNING, "", 0, "w", (), None))
    sphinx_ext._build_finished(app, None)
    assert not env.exists() and not app.gqa_stamp.exists()


def test_duplicate_scripts_are_dropped_once_each():
    """Sphinx 7.4 lists the inline scripts of late extensions twice (THEBE_JS_URL's
    SyntaxError); the handler keeps the first copy of each, in order."""
    from sphinx.builders.html._assets import _JavaScript

    thebe = _JavaScript(None, body="const THEBE_JS_URL = 'x'")
    files = [_JavaScript("a.js"), thebe, _JavaScript("b.js", priority=200),
             _JavaScript("", body="const THEBE_JS_URL = 'x'"), _JavaScript("a.js")]
    ctx = {"script_files": files}
    sphinx_ext.dedupe_scripts(None, "p", "page.html", ctx, None)
    assert ctx["script_files"] == [files[2], files[0], thebe]  # by priority, one copy each
    later_copy = _JavaScript(None, priority=800, body=thebe.attributes["body"])
    other = _JavaScript(None, priority=800, body="const x = 1")
    ctx = {"script_files": [later_copy, other, thebe]}
    sphinx_ext.dedupe_scripts(None, "p", "page.html", ctx, None)
    assert ctx["script_files"] == [thebe, other]  # the copy at another priority goes too


def test_download_button_serves_the_executed_notebook(tmp_path):
    from types import SimpleNamespace

    out = tmp_path / "html"
    src = out / "_sources" / "notebooks" / "x.ipynb"
    src.parent.mkdir(parents=True)
    cells = [nbformat.v4.new_markdown_cell('x = <span data-myst="{glue:text}`x`">1</span>'),
             nbformat.v4.new_code_cell("glue('x', 2)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), src)
    executed = tmp_path / "jupyter_execute" / "notebooks" / "x.ipynb"
    executed.parent.mkdir(parents=True)
    cells[1].outputs = [nbformat.v4.new_output(
        "display_data", {"application/papermill.record/text/plain": "2"},
        metadata={"scrapbook": {"name": "x", "mime_prefix": "application/papermill.record/"}})]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), executed)
    sphinx_ext._ship_executed_notebooks(SimpleNamespace(outdir=str(out)))
    shipped = nbformat.read(src, as_version=4)
    assert shipped.cells[1].outputs, "the download has the outputs"
    # its prose shows the values of its own outputs, readable in JupyterLab too
    assert shipped.cells[0].source == 'x = <span data-myst="{glue:text}`x`">2</span>'
    assert shipped.cells[1].outputs[0].data["text/plain"] == "x = 2"


def test_glue_shows_name_and_value_outside_the_book(monkeypatch, capsys):
    glue_mod = importlib.import_module("gqa_lib.book.glue")  # the module, not the function

    monkeypatch.setitem(sys.modules, "myst_nb", None)  # as on Colab
    monkeypatch.delenv(glue_mod.BOOK_ENV, raising=False)
    glue_mod.glue_all(saving=0.532, best="(8, 1)")
    assert capsys.readouterr().out.strip().splitlines() == ["saving = 0.532", "best = (8, 1)"]
    monkeypatch.setenv(glue_mod.BOOK_ENV, glue_mod.BOOK_VALUE)  # the book build's kernels
    assert glue_mod.in_book_build()
    glue_mod.glue("saving", 0.5)
    assert capsys.readouterr().out == ""
    assert glue_mod.BOOK_ENV == render.RENDERER_ENV and glue_mod.BOOK_VALUE == render.RENDERER


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_chart_builders_make_figures_without_console_warnings(name):
    """Every builder's chart can be a figure: no discrete (step) height on a single or
    layered view, which makes Vega-Lite drop the figure's autosize with a console warning."""
    from gqa_lib.book.figures import figure

    spec = figure(BUILDERS[name](_sample_table()), name, "a title").to_dict()
    assert not isinstance(spec.get("height"), dict), spec.get("height")


def test_figure_refuses_a_step_height():
    from gqa_lib.book.figures import figure

    chart = alt.Chart(pd.DataFrame({"a": ["x"]})).mark_bar().encode(y="a:N").properties(
        height=alt.Step(9))
    with pytest.raises(GQAError, match="figure 'steps': a discrete \\(step\\) height"):
        figure(chart, "steps", "a title")


def test_figures_are_numbered_in_the_order_drawn_and_glued_by_name(monkeypatch):
    """No figure number is typed: a page's figures are numbered as they are first drawn, a
    cell run twice keeps its number, and each number is glued for the prose."""
    from gqa_lib.book import figures
    from gqa_lib.errors import GQAError

    stored = {}
    monkeypatch.setattr(figures, "_NUMBERS", {})
    monkeypatch.setattr(figures, "store", lambda name, value: stored.update({name: value}))
    chart = alt.Chart(pd.DataFrame({"x": [1]})).mark_point().encode(x="x:Q")
    titles = [figures.figure(chart, n, "t.").to_dict()["title"]["text"]
              for n in ("first", "second", "first")]
    assert titles == ["Figure 1. t", "Figure 2. t", "Figure 1. t"]
    assert stored == {"fig_first": 1, "fig_second": 2}
    assert figures.figure_number("second") == 2
    with pytest.raises(GQAError, match="no figure named 'third'.*drawn: first, second"):
        figures.figure_number("third")
    for bad in (3, "Loss vs size", "", "2nd"):
        with pytest.raises(GQAError, match="figure name must be lower-case"):
            figures.figure(chart, bad, "t")
    assert figures.figure_number("second") == 2  # refused figures take no number


def test_a_figure_states_its_number_once(monkeypatch):
    """The chart's title reads "Figure n. title"; the caption below says how to read it
    without repeating the number; the <figure> is labelled with both for screen readers."""
    from gqa_lib.book import figures, render

    monkeypatch.setattr(figures, "_NUMBERS", {})
    monkeypatch.setattr(figures, "store", lambda name, value: None)
    chart = alt.Chart(pd.DataFrame({"x": [1]})).mark_point().encode(x="x:Q")
    out = render.chart_html(figures.figure(chart, "one", "Loss <b>", "Read it so.").to_dict())
    caption = re.search(r"<figcaption>(.*)</figcaption>", out).group(1)
    assert caption == "Read it so." and 'aria-label="Figure 1. Loss &lt;b&gt;"' in out


def test_data_readme_table_reads_as_one_entry_per_file():
    """The reproducibility page shows data/README.md's table of files as entries
    (gqa-data-files): every row parses into the four columns, the path first."""
    from gqa_lib.book.sphinx_ext import DATA_README, readme_files

    header, rows = readme_files(DATA_README.read_text())
    assert header == ["path", "what", "made by", "licence / source"]
    assert len(rows) >= 10 and all(len(r) == 4 and r[0].startswith("`") for r in rows)
    page = (BOOK / "reproducibility.md").read_text()
    assert "{gqa-data-files}" in page
    for marker in re.findall(r':(?:start-after|end-before): "([^"]+)"', page):
        assert marker in DATA_README.read_text(), marker


def test_the_reproducibility_page_names_every_grid_of_each_corpus():
    """The opening paragraph says which sweeps use which corpus, typed by hand: every grid
    file in data/sweeps is named under the corpus its [train] data setting picks (web when
    unset), so a new grid cannot be left out."""
    import tomllib

    page = " ".join((BOOK / "reproducibility.md").read_text().split())
    web, pd_ = page.split("), and `pd` (used by ", 1)
    pd_ = pd_.split(")", 1)[0]
    ranges = {"cpu-eq-v1 to cpu-eq-v4": [f"cpu-eq-v{i}" for i in range(1, 5)]}
    for grid in sorted((ROOT / "data" / "sweeps").glob("*.toml")):
        corpus = tomllib.loads(grid.read_text())["train"].get("data", "web")
        text = {"pd": pd_, "web": web.rsplit("used by the sweeps ", 1)[-1]}[corpus]
        names = set(re.findall(r"\b[a-z0-9]+(?:-[a-z0-9]+)+\b", text))  # hyphenated names
        names |= {g for r, gs in ranges.items() if r in text for g in gs}
        assert grid.stem in names, (grid.stem, corpus, text)


MAX_VISIBLE_CODE_LINES = 300  # issue 24: what a reader learns from; the rest is hidden
_HIDDEN = {"remove-input", "remove-cell", "hide-input"}


def test_visible_code_stays_short():
    """The book is read, not run: at most MAX_VISIBLE_CODE_LINES lines of code show
    without a click (cells tagged hide-input fold behind 'Show code cell source')."""
    counts = {}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        counts[nb.stem] = sum(len("".join(c["source"]).splitlines()) for c in cells
                              if c["cell_type"] == "code"
                              and not _HIDDEN & set(c.get("metadata", {}).get("tags", [])))
    assert sum(counts.values()) <= MAX_VISIBLE_CODE_LINES, counts


MAX_VISIBLE_CODE_WIDTH = 88  # characters a code block shows at 1400 px before it scrolls


def test_visible_code_fits_the_column():
    """A visible code line longer than the column hides its end behind a scroll bar (a
    comment cut mid-word at 1400 px: 'in secon')."""
    wide = [f"{nb.stem}: {line}" for nb in NOTEBOOKS
            for c in json.loads(nb.read_text())["cells"]
            if c["cell_type"] == "code"
            and not _HIDDEN & set(c.get("metadata", {}).get("tags", []))
            for line in "".join(c["source"]).splitlines() if len(line) > MAX_VISIBLE_CODE_WIDTH]
    assert not wide, wide


def test_figure_titles_and_captions_are_not_shown_as_code():
    """A visible cell builds a chart (what a reader learns from); the figure() call that
    titles and captions it sits in a hidden cell below, so the page does not show the
    title and caption twice, once as strings."""
    shown = [f"{nb.stem}: {''.join(c['source']).strip()[:60]}" for nb in NOTEBOOKS
             for c in json.loads(nb.read_text())["cells"]
             if c["cell_type"] == "code" and "figure(" in "".join(c["source"])
             and not _HIDDEN & set(c.get("metadata", {}).get("tags", []))]
    assert not shown, shown


def test_grids_the_pages_name_exist():
    """Every sweep grid a page names (data/sweeps/<name>.toml, in prose or code) is in the
    repository: a page must not tell the reader to run a grid that was never written."""
    named = set()
    for nb in NOTEBOOKS:
        text = nb.read_text()
        named |= set(re.findall(r"sweeps/([\w.-]+\.toml)", text))
        named |= {f"{m}.toml" for m in re.findall(r'SWEEP_DIR / \\"([\w.-]+)\.toml', text)}
    assert named and all((ROOT / "data" / "sweeps" / n).is_file() for n in named), named


def test_tables_inside_blocks_are_displayed():
    """IPython shows only a cell's last top-level expression: a `tables.show(...)` or
    `figure(...)` indented inside an `if` or a loop is computed and silently dropped
    (the equal-size tables never showed), so there it must be wrapped in display()."""
    dropped = [f"{nb.name}: {line.strip()}" for nb in NOTEBOOKS
               for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"
               for line in "".join(c["source"]).splitlines()
               if re.match(r"\s+(tables\.show|figure)\(", line)]
    assert not dropped, dropped


def test_head_configurations_read_one_way():
    """H is written "(8, 1)" (gqa_lib.units.format_heads) in prose, code and captions, never
    "(8,1)" beside it; a model's short name (L2 d64 H(4,2) dh16) is a name, not prose."""
    compact = re.compile(r"(?<![A-Za-z])\(\d+,\d+\)")
    found = [f"{p.relative_to(ROOT)}: {m}" for p in [*NOTEBOOKS, *(ROOT / "book").glob("*.md"),
                                                      ROOT / "README.md"]
             for m in compact.findall(p.read_text())]
    assert not found, found
    assert compact.findall("(8,1) and (8, 1) and H(4,2)") == ["(8,1)"]


def test_a_tooltip_is_titled_in_words():
    """figures.tip titles a tooltip from FIELD_WORDS, or from the title given; a column with
    neither is refused, so no chart shows a column name on hover."""
    from gqa_lib.book.figures import tip

    assert tip("context_len:Q").to_dict()["title"] == "context T (tokens)"
    assert tip("ratio:Q", "objective relative to the pick").to_dict()["title"].startswith("obj")
    with pytest.raises(GQAError, match="tooltip field 'tps' has no words"):
        tip("tps:Q")


def test_charts_write_a_head_configuration_as_the_prose_does():
    """The recipe's grids and choice charts label H "(8, 1)", as the prose and tables do
    (they once wrote "8,1")."""
    df = pd.DataFrame({"n_head": [8, 16], "n_kv_head": [1, 2], "context": [8192, 131072],
                       "lam": [0.9, 0.9], "params_non_embedding": [1e9, 2e9],
                       "target_loss": [2.6, 2.6], "share": [1.0, 0.5], "in_range": [True, False]})
    for chart in (plots_grids.choice_heatmap(df, "lam", "λ"), plots_grids.recipe_choices(df),
                  plots.choice_vs_context(df)):
        text = json.dumps(chart.to_dict())
        assert '"(8, 1)"' in text and '"(16, 2)"' in text and '"8,1"' not in text


def test_cell_text_takes_the_ink_that_reads_on_its_colour():
    """White on the dark blue of (1, 1), near-black on light and mid colours; each grid
    cell's text carries its ink, whose contrast ratio on the cell is >= 4.5 (WCAG AA) on
    every colour the grids use up to the 18th category (tableau20's 19th, a brown, 4.3)."""
    assert plots_grids.ink("#4c78a8") == plots_grids.ink("#000000") == "#ffffff"
    assert plots_grids.ink("#ffbf79") == plots_grids.ink("#ffffff") == "#1b1b1b"

    def luminance(fill):
        c = [int(fill[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        c = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2] + 0.05
    fills = [*plots_grids.TABLEAU20[:18], *plots_grids.TABLE4_STATUS.values(),
             *plots_grids.OBJECTIVE_AGREEMENT.values()]
    for fill in fills:
        a, b = sorted((luminance(fill), luminance(plots_grids.ink(fill))))
        assert b / a >= 4.5, fill
    df = pd.DataFrame({"n_head": [1, 8], "n_kv_head": [1, 1], "context": [8192, 8192],
                       "lam": [0.5, 0.9]})
    data = plots_grids.choice_heatmap(df, "lam", "λ").to_dict()["datasets"]
    rows = next(iter(data.values()))
    assert {r["H"]: r["ink"] for r in rows} == {"(1, 1)": "#ffffff", "(8, 1)": "#1b1b1b"}
