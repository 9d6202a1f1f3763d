"""The notebooks' prose reads with real numbers outside the book (gqa_lib.book.prose): no raw
MyST in the committed markdown, values current with the last book build, the book reading
plain MyST, and the executed download drawing its charts in JupyterLab."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from gqa_lib.book import prose, prose_refresh, render

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
HTML = ROOT / "book" / "_build" / "html"

MYST = """\
# A page

:::{admonition} Key takeaways
:class: tip
- The cache shrinks by {glue:text}`saving:.0%`, as {cite:p}`chen2025costoptimal` says.
- Best: {glue:text}`best`.
:::

Data: {download}`table5.csv <../../data/paper/table5.csv>`."""
VALUES = {"saving": "0.532", "best": "'(8, 1)'"}


def _markdown(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [prose.cell_source(c) for c in nb["cells"] if c["cell_type"] == "markdown"]


# ----- the committed notebooks ------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_markdown_has_no_raw_myst(path):
    """Jupyter and Colab would show these raw: each must be in the marked form."""
    raw = [line for text in _markdown(path) for line in prose.raw_myst(text)]
    assert not raw, (f"{path.name}: raw MyST (run python -m gqa_lib.book.prose_refresh "
                     f"{path.relative_to(ROOT)} after make book): {raw[:3]}")
    assert not any("{glue" in prose.MARK.sub("", t) for t in _markdown(path))


# "Figure 3" typed in prose or in a caption string (the page's own figures; "Fig. 2" is the
# paper's): a number that goes stale when a figure is added above it
TYPED_FIGURE = re.compile(r"\bFigures? \d")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_figure_references_are_generated(path):
    """Figures are named, and numbered as they are drawn (gqa_lib.book.figures): the prose
    refers to one as Figure {glue:text}`fig_<name>`, a caption with figure_number(name)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    typed = [m.group(0) + ": " + line.strip()[:70] for c in nb["cells"]
             for line in prose.cell_source(c).splitlines()
             for m in [TYPED_FIGURE.search(prose.MARK.sub("", line))] if m]
    assert not typed, f"{path.name}: figure numbers typed by hand: {typed[:3]}"


def test_the_typed_figure_check_can_fail():
    assert TYPED_FIGURE.search("as Figure 3 shows") and TYPED_FIGURE.search("Figures 1 and 2")
    assert not TYPED_FIGURE.search("the paper's Fig. 2") and not TYPED_FIGURE.search(
        "Figure {glue:text}`fig_memory`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_markup_is_current_and_reverses_to_myst(path):
    """Refreshing without values changes nothing (citations, links and titles current), and
    what the book reads is MyST without a marker left."""
    for text in _markdown(path):
        assert prose.refresh_markdown(text, None) == text
        myst = prose.to_myst(text)
        assert "data-myst=" not in myst and "<!--:::" not in myst, myst[:200]
    for text in _markdown(path):
        for body, shown in prose.shown_values(text).items():
            name, _, fmt = body.partition(":")
            assert re.fullmatch(r"\w+", name) and shown.strip(), body
            if fmt:  # a format spec myst-nb can apply
                assert prose.format_value("1" if fmt[-1] in "bcdoxX" else "0.5", fmt), body


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_values_are_those_of_the_last_book_build(path):
    """Every value the markdown shows is what the last clean book build of this checkout
    glued, under a name the notebook glues (skipped without such a build)."""
    values, why = prose_refresh.build_values(path)
    if values is None:
        pytest.skip(why)
    missing: set[str] = set()
    for text in _markdown(path):
        assert prose.refresh_markdown(text, values, missing) == text, (
            f"{path.name}: stale values (python -m gqa_lib.book.prose_refresh)")
    assert not missing, f"{path.name}: the markdown quotes names never glued: {missing}"


def test_the_references_cover_every_cited_key():
    for path in NOTEBOOKS:
        for text in _markdown(path):
            for m in prose.MARK.finditer(text):
                if m["role"].startswith("cite"):
                    assert all(k.strip() in prose.bibliography() for k in m["body"].split(","))


# ----- the mechanism ----------------------------------------------------------------------
def test_refresh_marks_values_citations_links_and_admonitions():
    marked = prose.refresh_markdown(MYST, VALUES)
    assert not prose.raw_myst(marked) and "{glue" not in prose.MARK.sub("", marked)
    assert '<span data-myst="{glue:text}`saving:.0%`">53%</span>' in marked
    assert '">(8, 1)</span>' in marked  # a glued string without its quotes
    assert "([Chen et al., 2025](https://arxiv.org/abs/2503.09579))" in marked
    assert "[table5.csv](https://github.com/" in marked and "/blob/main/data/paper/" in marked
    assert "> **Key takeaways**\n>\n> - The cache" in marked  # a blockquote for Jupyter
    assert prose.to_myst(marked) == MYST  # what the book reads


def test_refresh_is_idempotent_and_updates_values():
    once = prose.refresh_markdown(MYST, VALUES)
    assert prose.refresh_markdown(once, VALUES) == once
    newer = prose.refresh_markdown(once, {**VALUES, "saving": "0.61"})
    assert '">61%</span>' in newer and '">53%</span>' not in newer
    assert prose.to_myst(newer) == MYST


def test_a_measured_time_keeps_its_text_within_the_slack():
    """A wall-clock time (a name ending in _wall) is not rewritten by the build's noise,
    but is by a real change; any other value is rewritten on any change."""
    text = prose.refresh_markdown("about {glue:text}`run_wall` and {glue:text}`est`",
                                  {"run_wall": "'15 s'", "est": "'15 s'"})
    noisy = prose.refresh_markdown(text, {"run_wall": "'19 s'", "est": "'16 s'"})
    assert '">15 s</span> and' in noisy and '">16 s</span>' in noisy
    slower = prose.refresh_markdown(text, {"run_wall": "'2.1 min'", "est": "'15 s'"})
    assert '">2.1 min</span>' in slower
    assert prose.same_timing("90 s", "1.5 min") and not prose.same_timing("15 s", "23 s")
    assert not prose.same_timing("15 s", "15 tokens") and not prose.same_timing("0 s", "0 s")


def test_refresh_without_values_keeps_what_is_shown():
    once = prose.refresh_markdown(MYST, VALUES)
    missing: set[str] = set()
    assert prose.refresh_markdown(once, None, missing) == once
    assert missing == {"saving", "best"}
    raw = prose.refresh_markdown(MYST, None)  # a new value without a build stays raw MyST
    assert "{glue:text}`saving:.0%`" in prose.MARK.sub("", raw) and prose.raw_myst(raw)


def test_shown_values_are_escaped_markdown():
    assert prose.md_escape("a_b *c* [d] <e> $f$ |g|") == (
        r"a\_b \*c\* \[d\] \<e\> \$f\$ \|g\|")
    assert prose.md_escape("two\nlines") == "two lines"


def test_a_broken_marked_admonition_is_reported():
    marked = prose.refresh_markdown(MYST, VALUES)
    broken = marked.replace("> - Best", "- Best")  # a line outside the blockquote
    assert any("<!--:::" in line for line in prose.raw_myst(broken))


def test_the_book_reads_plain_myst_from_a_notebook():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(prose.refresh_markdown(MYST, VALUES)),
        nbformat.v4.new_code_cell("x = 1")])
    read = json.loads(prose.notebook_to_myst(nbformat.writes(nb)))
    assert prose.cell_source(read["cells"][0]) == MYST and prose.cell_source(read["cells"][1]) == "x = 1"


def _notebook_with_glue(tmp_path: Path, shown: str) -> Path:
    text = prose.refresh_markdown(MYST, {**VALUES, "saving": shown})
    path = tmp_path / "page.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    prose.write_notebook(path, json.loads(nbformat.writes(nb)))
    return path


def test_check_detects_a_stale_value_and_refresh_fixes_it(tmp_path, monkeypatch, capsys):
    path = _notebook_with_glue(tmp_path, "0.532")
    monkeypatch.setattr(prose_refresh, "build_values",
                        lambda p, cache=None: ({**VALUES, "saving": "0.61"}, ""))
    assert prose_refresh.main(["--check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "saving:.0% shows '53%', the build computed '61%'" in out
    assert prose_refresh.main([str(path)]) == 0  # refresh
    assert '">61%</span>' in path.read_text()
    before = path.read_text()
    assert prose_refresh.main([str(path)]) == 0 and path.read_text() == before  # idempotent
    assert prose_refresh.main(["--check", str(path)]) == 0


def test_check_without_a_build_checks_the_markup_only(tmp_path, monkeypatch, capsys):
    path = _notebook_with_glue(tmp_path, "0.532")
    monkeypatch.setattr(prose_refresh, "build_values", lambda p, cache=None: (None, "no build"))
    assert prose_refresh.main(["--check", str(path)]) == 0
    assert "values not checked: no build" in capsys.readouterr().out
    nb = json.loads(path.read_text())
    nb["cells"][0]["source"] += "\nMore: {glue:text}`new_value`."
    path.write_text(json.dumps(nb))
    assert prose_refresh.main(["--check", str(path)]) == 1


def test_check_names_a_value_the_notebook_does_not_glue(tmp_path, monkeypatch, capsys):
    path = _notebook_with_glue(tmp_path, "0.532")
    monkeypatch.setattr(prose_refresh, "build_values", lambda p, cache=None: ({}, ""))
    assert prose_refresh.main(["--check", str(path)]) == 1
    assert "not glued by the notebook: best, saving" in capsys.readouterr().out


def test_no_build_no_values(tmp_path):
    values, why = prose_refresh.build_values(NOTEBOOKS[0], tmp_path / "no-cache")
    assert values is None and "make book" in why


# ----- the built book ---------------------------------------------------------------------
def _built_pages() -> list[Path]:
    pages = sorted((HTML / "notebooks").glob("*.html"))
    if not pages:
        pytest.skip("no built book (make book)")
    return pages


def test_built_pages_show_no_marker():
    for page in _built_pages():
        text = page.read_text(encoding="utf-8")
        assert "data-myst=" not in text and "{glue" not in text, page.name


def test_download_draws_charts_in_jupyterlab_and_reads_with_values():
    _built_pages()
    for path in sorted((HTML / "_sources" / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert not any("gqaEmbed(" in str(o.get("data", {}).get("text/html", ""))
                       for o in outputs), f"{path.name}: the book's chart HTML"
        charts = [o for o in outputs if render.VEGALITE_MIME in o.get("data", {})]
        if path.stem not in ("results", "explore"):
            assert charts, f"{path.name}: no chart as Vega-Lite"
        missing: set[str] = set()
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                assert not prose.raw_myst(cell.source), path.name
                prose.refresh_markdown(cell.source, prose.glued_values(nb), missing)
        assert not missing, f"{path.name}: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_markers_stay_inline_markdown_in_jupyter(path):
    """Parsed as CommonMark (as Jupyter does), a marker never turns a line into a raw HTML
    block, whose markdown Jupyter would show unrendered: the only HTML blocks are the
    admonitions' comment lines."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark")
    for text in _markdown(path):
        blocks = [t.content for t in md.parse(text) if t.type == "html_block"]
        assert all(b.startswith("<!--:::") for b in blocks), blocks


def test_a_value_at_a_line_start_is_still_inline():
    from markdown_it import MarkdownIt

    text = prose.refresh_markdown("{glue:text}`best` wins,\n{glue:text}`saving:.0%` less.",
                                  VALUES)
    html = MarkdownIt("commonmark").render(text)
    assert html.startswith("<p><span") and "53%</span> less.</p>" in html


def test_the_book_extension_reads_notebooks_as_plain_myst():
    """sphinx_ext's source-read hook: notebooks become plain MyST, other pages stay."""
    from types import SimpleNamespace

    from gqa_lib.book import sphinx_ext

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(prose.refresh_markdown(MYST, VALUES))])
    app = SimpleNamespace(env=SimpleNamespace(doc2path=lambda d: f"/book/{d}.ipynb"))
    source = [nbformat.writes(nb)]
    sphinx_ext._source_read(app, "notebooks/page", source)
    assert prose.cell_source(json.loads(source[0])["cells"][0]) == MYST
    page = ["<span data-myst=\"{glue:text}`x`\">1</span>"]
    app.env.doc2path = lambda d: f"/book/{d}.md"
    sphinx_ext._source_read(app, "intro", page)
    assert page == ["<span data-myst=\"{glue:text}`x`\">1</span>"]


def test_make_book_refreshes_the_prose_after_building():
    recipe = (ROOT / "Makefile").read_text().split("\nbook:")[1].split("\n\n")[0]
    build, refresh = recipe.index("jupyter-book build"), recipe.index("prose_refresh")
    assert build < refresh and "--check" not in recipe
