"""Numbers for the prose: :func:`glue` stores a value for myst-nb's ``{glue:text}`` role, so no
number on a page is typed twice.

In the book build (the kernels started by :mod:`gqa_lib.book.sphinx_ext`, which sets
``GQA_ALTAIR_RENDERER=gqa-offline``) a glued value is stored and shows nowhere but in the
prose. Outside the book the markdown shows the values of the last book build
(:mod:`gqa_lib.book.prose` writes them into the committed notebooks), so each value this
run computes is also displayed as ``name = value`` under the cell that computed it: a
reader who changes a cell sees what changed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

# The book build's marker, set by gqa_lib.book.sphinx_ext for every kernel it starts
# (the same variable switches on the offline chart renderer, gqa_lib.book.render).
BOOK_ENV, BOOK_VALUE = "GQA_ALTAIR_RENDERER", "gqa-offline"


def in_book_build() -> bool:
    """True inside a kernel started by the book build (and only there)."""
    return os.environ.get(BOOK_ENV) == BOOK_VALUE


def _plain(value: Any) -> Any:
    """numpy scalars become Python numbers, so that format specs such as ``:.1%`` apply."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _shown(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


class GluedValues:
    """What the notebook shows outside the book: one ``name = value`` line per glued value."""

    def __init__(self, values: Mapping[str, Any]):
        self.values = dict(values)

    def __repr__(self) -> str:
        return "\n".join(f"{k} = {_shown(v)}" for k, v in self.values.items())

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<code>{html.escape(k)}</code> = {html.escape(_shown(v))}<br>"
                       for k, v in self.values.items())
        return f"<div class='gqa-glued' style='font-size:0.85em'>{rows}</div>"


def store(name: str, value: Any) -> None:
    """Store ``value`` for ``{glue:text}`name``` and display nothing anywhere (for values the
    page shows anyway, e.g. a figure's number, which its title carries)."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab without myst-nb: nothing to store into
        return
    myst_glue(name, value, display=False)


def glue(name: str, value: Any) -> None:
    """Store ``value`` under ``name`` for ``{glue:text}`name:fmt``` in the page's prose. In
    the book nothing is displayed; elsewhere ``name = value`` is (see the module docstring)."""
    glue_all({name: value})


def glue_all(values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
    """:func:`glue` for many values at once (a mapping, keywords or both); outside the book
    they are displayed together, one line each."""
    items = {**(values or {}), **more}
    items = {k: _plain(v) for k, v in items.items()}
    for k, v in items.items():
        store(k, v)
    if items and not in_book_build():
        from IPython.display import display

        display(GluedValues(items))
