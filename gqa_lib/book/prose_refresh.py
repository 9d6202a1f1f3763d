"""Refresh (or check) what the notebooks' markdown shows outside the book.

``python -m gqa_lib.book.prose_refresh notebooks/*.ipynb`` writes into each notebook's
markdown the values its last clean book build glued (read from the build's execution cache,
and only from a build of this checkout's code, gqa_lib, data/ and package versions), the
citations and the data links, and converts MyST an author typed into the marked form
(:mod:`gqa_lib.book.prose`). ``make book`` runs it after the build. ``--check`` changes
nothing and exits 1 on raw MyST or on a value that differs from the build's.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from gqa_lib.book import sphinx_ext
from gqa_lib.book.prose import (BOOK, ProseError, cell_source, glued_values, map_markdown,
                                raw_myst, read_notebook, refresh_markdown, shown_values,
                                write_notebook)
from gqa_lib.book.nbfile import one_line

CACHE_DIR = BOOK / "_build" / ".jupyter_cache"


def build_values(path: Path, cache_dir: Path = CACHE_DIR) -> tuple[dict[str, str] | None, str]:
    """The glued values of ``path`` in the last clean book build, or None and why not.
    Only a build whose execution cache matches the notebook's code and whose inputs
    (gqa_lib, data/, package versions) are those of this checkout counts."""
    stamp = cache_dir / sphinx_ext.FINGERPRINT_FILE
    if not stamp.is_file():
        return None, f"no clean book build in {cache_dir} (make book)"
    if stamp.read_text() != sphinx_ext.inputs_fingerprint():
        return None, "gqa_lib, data/ or packages changed since the last book build (make book)"
    import nbformat
    from jupyter_cache import get_cache

    try:
        _, merged = get_cache(cache_dir).merge_match_into_notebook(
            nbformat.read(path, as_version=4))
    except KeyError:
        return None, "its code changed since the last book build (make book)"
    return glued_values(merged), ""


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m gqa_lib.book.prose_refresh",
        description="Write the values, citations, links and admonitions the notebooks' "
        "markdown shows outside the book, from the last clean book build.")
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true", help="only report; exit 1 if any differ")
    ap.add_argument("--cache", type=Path, default=CACHE_DIR, help="the build's execution cache")
    args = ap.parse_args(argv)
    return one_line(ap.prog, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    failed = False
    for path in args.notebooks:
        nb = read_notebook(path)
        values, why = build_values(path, args.cache)
        missing: set[str] = set()
        new = json.loads(json.dumps(nb))
        try:
            changed = map_markdown(new, lambda s: refresh_markdown(s, values, missing))
        except ProseError as err:
            print(f"{path}: {err}")
            failed = True
            continue
        raw = [r for c in new["cells"] if c["cell_type"] == "markdown"
               for r in raw_myst(cell_source(c))]
        problems = [f"raw MyST: {r}" for r in raw[:3]]
        if len(raw) > 3:
            problems.append(f"... and {len(raw) - 3} more lines of raw MyST")
        if values is not None and missing:
            problems.append(f"not glued by the notebook: {', '.join(sorted(missing))}")
        if args.check and changed:
            for c_old, c_new in zip(nb["cells"], new["cells"]):
                old, now = shown_values(cell_source(c_old)), shown_values(cell_source(c_new))
                problems += [f"{k} shows {old.get(k)!r}, the build computed {v!r}"
                             for k, v in now.items() if old.get(k) != v]
            problems = problems or ["markup out of date (run --refresh)"]
        if not args.check and changed:
            write_notebook(path, new)
            print(f"{path}: refreshed")
        if values is None:
            print(f"{path}: values not {'checked' if args.check else 'refreshed'}: {why}")
        for p in problems:
            print(f"{path}: {p}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
