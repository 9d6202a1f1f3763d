"""Prose that reads with its numbers wherever a notebook is opened.

The notebooks' markdown quotes computed numbers (myst-nb's ``{glue:text}`` role), cites
papers (``{cite:p}``), links data files (``{download}``) and boxes its key takeaways
(``:::{admonition}``). Only the book understands that MyST; Jupyter, Colab and GitHub show
it raw. So the committed markdown carries each piece twice: the MyST in an attribute of a
``<span>``, whose content is what a reader outside the book sees::

    the cache shrinks by <span data-myst="{glue:text}`kv1_delta_128:.3f`">0.123</span> nats,
    as <span data-myst="{cite:p}`chen2025costoptimal`">([Chen et al., 2025](https://...))</span>

(a span, not an HTML comment: a line that starts with ``<!--`` is a raw HTML block in
CommonMark, whose markdown Jupyter would no longer render), and an admonition is a
blockquote (a bold title, then its text) between two comment lines::

    <!--:::{admonition} Key takeaways
    :class: tip-->
    > **Key takeaways**
    >
    > - ...

    <!--:::-->

The book never reads what the spans and blockquotes show: the Sphinx extension
(:mod:`gqa_lib.book.sphinx_ext`) turns each notebook back into plain MyST with
:func:`to_myst` as Sphinx reads it, so every number on a page comes from the same build's
glue. :func:`refresh_markdown` writes that text: glued values from the executed notebook,
citations from book/references.bib, links to the files in the repository. It also converts
MyST an author types (a new ``{glue:text}`name:fmt``` or ``:::{admonition}``) into the
marked form, and it is idempotent. A wall-clock time the build measured (a glue name ending in
``_wall``, a duration such as "15 s") keeps the text it shows while the build's value is
within x1.5 of it (:data:`TIMING_SLACK`): machine noise would otherwise rewrite a committed
notebook on every build; the book's page always shows the build's own value.

``make book`` runs ``python -m gqa_lib.book.prose_refresh notebooks/*.ipynb`` after the build
(:mod:`gqa_lib.book.prose_refresh`: values from the build's execution cache).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gqa_lib.book.nbfile import read_notebook  # noqa: F401 (part of this module's API)
from gqa_lib.io import atomic_write_text, REPO_ROOT

BOOK = REPO_ROOT / "book"
DOC_DIR = "book/notebooks"  # where Sphinx sees the notebooks: {download} paths start here

ROLES = ("glue:text", "cite:p", "cite:t", "download")
# A marked role: the MyST in the span's attribute, what Jupyter shows inside (one line).
MARK = re.compile(r'<span data-myst="\{(?P<role>[\w:]+)\}`(?P<body>[^`"\n]*)`">'
                  r"(?P<shown>.*?)</span>")
RAW = re.compile(r"\{(?P<role>" + "|".join(map(re.escape, ROLES)) + r")\}`(?P<body>[^`\n]*)`")
# A MyST directive in colon fences, e.g. an admonition, with its options and body.
RAW_BLOCK = re.compile(
    r"^(?P<fence>:{3,})\{(?P<name>admonition|note|tip|important|warning|seealso)\}"
    r"(?P<arg>[^\n]*)\n(?P<opts>(?::[\w-]+:[^\n]*\n)*)(?P<body>.*?)\n(?P=fence)[ \t]*$",
    re.M | re.S)
MARKED_BLOCK = re.compile(
    r"^<!--(?P<open>(?P<fence>:{3,})\{(?P<name>[\w-]+)\}(?P<arg>[^\n]*?)"
    r"(?P<opts>(?:\n:[\w-]+:[^\n]*?)*))-->\n(?P<quote>(?:>[^\n]*\n)*)\n?<!--(?P=fence)-->$",
    re.M)
# MyST Jupyter would show raw; a marked block's comment left over is a broken marked block
# A duration as units.format_s writes one; the factor within which a shown one stays
DURATION = re.compile(r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>µs|ms|s|min|h)")
SECONDS = {"µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
TIMING_SLACK = 1.5
RAW_MYST = re.compile(r"\{(?:glue|cite|download)[\w:]*\}`|^:{3,}\{|<!--:{3,}", re.M)


class ProseError(ValueError):
    """Markdown that cannot be refreshed (an unknown role, an unknown citation key)."""


# ----- what Jupyter shows -----------------------------------------------------------------
def md_escape(text: str) -> str:
    """``text`` as literal markdown: one line, markdown's and MathJax's specials escaped."""
    text = " ".join(str(text).split("\n"))
    return re.sub(r"([\\`*_\[\]<>|$])", r"\\\1", text)


def format_value(plain: str, fmt: str) -> str:
    """What ``{glue:text}`name:fmt``` shows for a glued ``text/plain``: myst-nb's rule."""
    from myst_nb.core.variables import format_plain_text

    return format_plain_text(plain, fmt)


@functools.lru_cache(maxsize=1)
def bibliography() -> dict[str, tuple[str, str, str]]:
    """key -> (authors as cited, year, URL) for every entry of book/references.bib."""
    from pybtex.database import parse_file

    def clean(s: str) -> str:
        return re.sub(r"[{}]", "", s).strip()

    out = {}
    for key, entry in parse_file(str(BOOK / "references.bib")).entries.items():
        last = [clean(" ".join(p.last_names) or str(p)) for p in entry.persons.get("author", [])]
        last = [n for n in last if n and n != "others"] or ["Anonymous"]
        others = len(entry.persons.get("author", [])) > 2
        who = (f"{last[0]} et al." if others or len(last) > 2
               else " and ".join(last))
        f = entry.fields
        url = f.get("url") or (f"https://doi.org/{f['doi']}" if "doi" in f else "")
        if not url and "eprint" in f:
            url = f"https://arxiv.org/abs/{f['eprint']}"
        out[key] = (who, clean(f.get("year", "n.d.")), url)
    return out


def _cite(keys: str, textual: bool) -> str:
    bib, parts = bibliography(), []
    for key in (k.strip() for k in keys.split(",")):
        if key not in bib:
            raise ProseError(f"{{cite}}`{key}`: no such key in book/references.bib")
        who, year, url = bib[key]
        text = f"{who} ({year})" if textual else f"{who}, {year}"
        parts.append(f"[{md_escape(text)}]({url})" if url else md_escape(text))
    return "; ".join(parts) if textual else "(" + "; ".join(parts) + ")"


def _download(body: str) -> str:
    m = re.fullmatch(r"(?P<text>.*?)\s*<(?P<path>[^>]+)>", body.strip())
    path = m["path"] if m else body.strip()
    text = (m["text"] if m and m["text"] else None) or os.path.basename(path)
    rel = os.path.normpath(os.path.join(DOC_DIR, path)).replace(os.sep, "/")
    if rel.startswith(".."):
        raise ProseError(f"{{download}}`{body}`: outside the repository")
    return f"[{md_escape(text)}]({_repository_blob()}/{rel})"


@functools.lru_cache(maxsize=1)
def _repository_blob() -> str:
    """The repository's files on GitHub: pyproject's URL, book/_config.yml's branch."""
    import yaml

    from gqa_lib.book.colab import REPO_URL

    branch = yaml.safe_load((BOOK / "_config.yml").read_text())["repository"]["branch"]
    return f"{REPO_URL}/blob/{branch}"


def render_role(role: str, body: str, values: Mapping[str, str] | None) -> str | None:
    """What Jupyter shows for ``{role}`body```; None for a glued value not in ``values``."""
    if role == "glue:text":
        name, _, fmt = body.partition(":")
        if values is None or name not in values:
            return None
        return md_escape(format_value(values[name], fmt))
    if role in ("cite:p", "cite:t"):
        return _cite(body, textual=role == "cite:t")
    if role == "download":
        return _download(body)
    raise ProseError(f"{{{role}}}`{body}`: no Jupyter form for this role")


def _seconds(text: str) -> float | None:
    m = DURATION.fullmatch(text.strip())
    return float(m["value"]) * SECONDS[m["unit"]] if m else None


def same_timing(old: str, new: str) -> bool:
    """Whether two shown durations agree within :data:`TIMING_SLACK` (False if either is
    not a duration). Only for measured wall-clock times (glue names ending in ``_wall``)."""
    a, b = _seconds(old), _seconds(new)
    return a is not None and b is not None and a > 0 and b > 0 and (
        max(a, b) / min(a, b) <= TIMING_SLACK)


# ----- refresh and reverse ----------------------------------------------------------------
def _inline(text: str, values: Mapping[str, str] | None, missing: set[str]) -> str:
    """Refresh the marked roles of ``text`` and mark its raw ones."""

    def fill(role: str, body: str, old: str | None) -> str:
        if '"' in body:
            raise ProseError(f'{{{role}}}`{body}`: a role with " cannot be marked')
        shown = render_role(role, body, values)
        if shown is None:
            missing.add(body.partition(":")[0])
            if old is None:  # a raw role without its value stays raw
                return f"{{{role}}}`{body}`"
            shown = old
        elif old is not None and body.partition(":")[0].endswith("_wall") and same_timing(
                old, shown):
            shown = old  # the build's noise, not a change
        return f'<span data-myst="{{{role}}}`{body}`">{shown}</span>'

    def raw(part: str) -> str:
        return RAW.sub(lambda m: fill(m["role"], m["body"], None), part)

    out, pos = [], 0
    for m in MARK.finditer(text):
        out += [raw(text[pos:m.start()]), fill(m["role"], m["body"], m["shown"])]
        pos = m.end()
    return "".join(out + [raw(text[pos:])])


def _quote(title: str, body: str) -> str:
    lines = [f"**{md_escape(title)}**", "", *body.split("\n")]
    return "\n".join(f"> {ln}" if ln.strip() else ">" for ln in lines) + "\n"


def _unquote(quote: str) -> str:
    """The body of a marked block's blockquote, without its title line and the blank after."""
    lines = [re.sub(r"^> ?", "", ln) for ln in quote.rstrip("\n").split("\n")]
    if lines and re.fullmatch(r"\*\*.*\*\*", lines[0].strip()):
        lines = lines[1:]
    if lines and not lines[0].strip():
        lines = lines[1:]
    return "\n".join(lines)


def _title(name: str, arg: str) -> str:
    return arg.strip() or name.capitalize()


def _blocks(text: str) -> str:
    """Mark the raw colon-fenced admonitions of ``text``; re-title the marked ones."""

    def raw(m: re.Match) -> str:
        opts = m["opts"].rstrip("\n")
        head = f"{m['fence']}{{{m['name']}}}{m['arg']}" + (f"\n{opts}" if opts else "")
        return (f"<!--{head}-->\n{_quote(_title(m['name'], m['arg']), m['body'])}\n"
                f"<!--{m['fence']}-->")

    def marked(m: re.Match) -> str:
        return (f"<!--{m['open']}-->\n{_quote(_title(m['name'], m['arg']), _unquote(m['quote']))}"
                f"\n<!--{m['fence']}-->")

    return MARKED_BLOCK.sub(marked, RAW_BLOCK.sub(raw, text))


def refresh_markdown(text: str, values: Mapping[str, str] | None,
                     missing: set[str] | None = None) -> str:
    """``text`` in the marked form, showing ``values`` (glue name -> glued ``text/plain``).
    Glued names not in ``values`` (all of them when it is None) keep the text they show,
    or stay raw MyST if they were; their names are added to ``missing``."""
    return _inline(_blocks(text), values, set() if missing is None else missing)


def to_myst(text: str) -> str:
    """The plain MyST of marked markdown (what the book parses): the inverse of
    :func:`refresh_markdown` on what it produces."""

    def block(m: re.Match) -> str:
        return f"{m['open']}\n{_unquote(m['quote'])}\n{m['fence']}"

    text = MARKED_BLOCK.sub(block, text)
    return MARK.sub(lambda m: f"{{{m['role']}}}`{m['body']}`", text)


def shown_values(text: str) -> dict[str, str]:
    """glue role body (``name:fmt``) -> the text the markdown shows for it."""
    return {m["body"]: m["shown"] for m in MARK.finditer(text) if m["role"] == "glue:text"}


def raw_myst(text: str) -> list[str]:
    """The MyST of ``text`` that Jupyter would show raw (outside the marking comments)."""
    bare = MARKED_BLOCK.sub(lambda m: m["quote"], MARK.sub("", text))
    return [ln.strip() for ln in bare.splitlines() if RAW_MYST.search(ln)]


# ----- notebooks --------------------------------------------------------------------------
def cell_source(cell: Mapping[str, Any]) -> str:
    """A notebook cell's source as one string (nbformat stores a string or a list of lines)."""
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def map_markdown(nb: dict, fn: Callable[[str], str]) -> bool:
    """Apply ``fn`` to every markdown cell's source, in place; True if any changed."""
    changed = False
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        old = cell_source(cell)
        new = fn(old)
        if new != old:
            cell["source"] = new.splitlines(keepends=True) if isinstance(
                cell.get("source"), list) else new
            changed = True
    return changed


def glued_values(nb: Mapping[str, Any]) -> dict[str, str]:
    """name -> glued ``text/plain`` of an executed notebook (what myst_nb.glue stored)."""
    out = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            record = (output.get("metadata") or {}).get("scrapbook")
            if record:
                data = output.get("data") or {}
                prefix = record.get("mime_prefix", "")
                if prefix + "text/plain" in data:
                    plain = data[prefix + "text/plain"]
                    out[record["name"]] = "".join(plain) if isinstance(plain, list) else plain
    return out


def readable_records(nb: dict) -> None:
    """Give each glue record of an executed notebook a ``text/plain`` ``name = value``, in
    place: JupyterLab has no renderer for myst-nb's mime type and says so under the cell."""
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            record = (output.get("metadata") or {}).get("scrapbook")
            data = output.get("data") or {}
            plain = data.get(record.get("mime_prefix", "") + "text/plain") if record else None
            if plain is not None:
                plain = "".join(plain) if isinstance(plain, list) else plain
                data["text/plain"] = f"{record['name']} = {format_value(plain, '')}"


def notebook_to_myst(text: str) -> str:
    """A notebook's JSON with its markdown in plain MyST (the book's ``source-read``)."""
    nb = json.loads(text)
    return json.dumps(nb, ensure_ascii=False) if map_markdown(nb, to_myst) else text


def write_notebook(path: Path, nb: Mapping[str, Any]) -> None:
    """Write ``nb`` atomically (a write cut short, e.g. by a full disk, leaves the old file)."""
    text = json.dumps(nb, indent=1, ensure_ascii=False)  # keys in their order: small diffs
    atomic_write_text(path, text + "\n")
