"""Numbers for the prose: :func:`glue` stores a value for myst-nb's ``{glue:text}`` role, so no
number on a page is typed twice."""

from __future__ import annotations

from typing import Any


def glue(name: str, value: Any) -> None:
    """Store ``value`` under ``name`` for ``{glue:text}`name:fmt``` in the page's prose, with
    nothing displayed. numpy scalars become Python numbers, so that format specs such as
    ``:.1%`` apply. Without myst-nb (on Colab) it does nothing: the cells show the numbers."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=False)
