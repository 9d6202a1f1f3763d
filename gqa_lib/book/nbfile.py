"""Reading a notebook file for the tools that rewrite one (:mod:`gqa_lib.book.colab`,
:mod:`gqa_lib.book.prose_refresh`): a damaged file is one line, not a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gqa_lib.errors import GQAError


def read_notebook(path: str | Path) -> dict[str, Any]:
    """A notebook file as JSON, checked enough for the tools that rewrite it: an object whose
    ``cells`` are objects with a ``cell_type`` and a text (or list of lines) ``source``; a
    file that is not one is refused in one line naming it."""
    p = Path(path)
    try:
        nb = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GQAError(f"{p}: no such notebook") from None
    except IsADirectoryError:
        raise GQAError(f"{p}: a folder, not a notebook") from None
    except UnicodeDecodeError:
        raise GQAError(f"{p}: not UTF-8 text, so not a notebook") from None
    except ValueError as e:
        raise GQAError(f"{p}: not a notebook (invalid JSON: {e})") from None
    except OSError as e:
        raise GQAError(f"{p}: cannot read it ({e.strerror or e})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise GQAError(f"{p}: not a notebook (a JSON object with a list of cells expected)")
    for i, c in enumerate(cells):
        src = c.get("source") if isinstance(c, dict) else None
        if not isinstance(c, dict) or not isinstance(c.get("cell_type"), str) or not (
                isinstance(src, str)
                or isinstance(src, list) and all(isinstance(x, str) for x in src)):
            raise GQAError(f"{p}: cell {i} is not a notebook cell (a cell_type and a text "
                           "source expected)")
    return nb


def one_line(prog: str, run: Callable[[], int]) -> int:
    """A notebook tool's exit status: ``run()``'s, or 2 with the refusal on one line of
    stderr (a damaged notebook is a message, not a traceback)."""
    try:
        return run()
    except GQAError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
