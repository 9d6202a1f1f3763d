"""The first cell of every notebook: on Colab, fetch the repository and install gqa_lib.

Colab opens a notebook straight from GitHub, without the rest of the repository, and the
notebooks need both the library and the files in data/. So on Colab (and only there: the
test is ``import google.colab``) the first cell clones the repository, then installs it
editable with ``pip install -e``, constrained to every package's installed version, so that
Colab's own numpy, pandas, torch... are never upgraded or replaced; pip may only add what is
missing. pip's output shows only when the install fails (otherwise the setuptools build
backend's deprecation warnings fill the cell in red). Everywhere else the cell does nothing.

:data:`FIRST_CELL` is the one definition of that cell; tests/test_book.py checks that every
notebook starts with it, and ``python -m gqa_lib.book.colab notebooks/*.ipynb`` (re)writes it
and clears the notebooks' outputs (no nbconvert needed).
The repository URL comes from ``[project.urls]`` in pyproject.toml (:data:`REPO_URL`). For
tests, the environment variable ``GQA_INSTALL_SOURCE`` replaces the URL with another git
URL or a local checkout (used in place, not cloned).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from gqa_lib.book.nbfile import one_line, read_notebook
from gqa_lib.io import atomic_write_text, REPO_ROOT

SOURCE_ENV = "GQA_INSTALL_SOURCE"
CLONE_DIR = "/content/gqa-companion"
CONSTRAINTS = "/tmp/gqa-colab-constraints.txt"
CELL_TAGS = ["remove-cell"]  # runs in the book build (a no-op there) but is not shown


def repository_url() -> str:
    """``Repository`` of pyproject's [project.urls]: from pyproject.toml in a source checkout
    (editable installs, Colab's clone), else from the installed package's metadata."""
    pyproject = REPO_ROOT / "pyproject.toml"
    if pyproject.is_file():
        from gqa_lib.arch.config import read_data_file

        return read_data_file(pyproject)["project"]["urls"]["Repository"]
    from importlib.metadata import metadata

    for entry in metadata("gqa_lib").get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip() == "Repository":
            return url.strip()
    raise LookupError("gqa_lib's metadata has no Repository URL")  # pragma: no cover


REPO_URL = repository_url()

FIRST_CELL = f"""\
# On Colab only: get the repository (the notebooks read its data/) and install gqa_lib,
# keeping every package Colab already has at its version. Does nothing anywhere else.
import os
import subprocess
import sys

try:
    import google.colab  # noqa: F401 (exists only on Colab)
except ImportError:
    pass
else:
    src = os.environ.get("{SOURCE_ENV}",
                         "{REPO_URL}")
    repo = src if os.path.isdir(src) else "{CLONE_DIR}"
    if not os.path.isdir(repo):
        subprocess.run(["git", "clone", "--depth=1", "-q", src, repo], check=True)
    pip = [sys.executable, "-m", "pip"]
    pins = "{CONSTRAINTS}"  # every installed package, pinned at its version
    with open(pins, "w") as f:
        f.write(subprocess.run(pip + ["list", "--format=freeze"], capture_output=True,
                               text=True, check=True).stdout)
    # pip's output (a build backend's deprecation warnings, in red) only if it fails
    done = subprocess.run(pip + ["install", "-q", "-c", pins, "-e", repo],
                          capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"pip could not install {{repo}} (its output above)")
    sys.path.insert(0, repo)  # importable now, without restarting the kernel"""


def first_cell() -> dict:
    """The canonical first cell as an nbformat 4 code cell (no outputs)."""
    return {
        "cell_type": "code",
        "id": "colab-install",
        "execution_count": None,
        "metadata": {"tags": list(CELL_TAGS)},
        "outputs": [],
        "source": FIRST_CELL.splitlines(keepends=True),  # as Jupyter stores it
    }


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def has_first_cell(nb: dict) -> bool:
    """True when the notebook starts with the canonical cell (source and tags)."""
    cells = nb.get("cells") or []
    return bool(cells) and (
        cells[0].get("cell_type") == "code"
        and _source(cells[0]) == FIRST_CELL
        and cells[0].get("metadata", {}).get("tags") == CELL_TAGS
    )


def has_outputs(nb: dict) -> bool:
    """True when a code cell holds outputs or an execution count (the repository keeps
    notebooks without them; tests/test_book.py checks)."""
    return any(c.get("cell_type") == "code" and (c.get("outputs")
                                                 or c.get("execution_count") is not None)
               for c in nb.get("cells") or [])


def sync(path: Path) -> bool:
    """Make the notebook at ``path`` start with the canonical cell, replacing an older
    version of it (recognised by its ``import google.colab``), and clear its outputs and
    execution counts (what `jupyter nbconvert --clear-output` does, without nbconvert);
    True if the file changed."""
    nb = read_notebook(path)
    if has_first_cell(nb) and not has_outputs(nb):
        return False
    cells = nb.setdefault("cells", [])
    if not has_first_cell(nb):
        if cells and "import google.colab" in _source(cells[0]):
            cells[0] = first_cell()
        else:
            cells.insert(0, first_cell())
    for c in cells:
        if c.get("cell_type") == "code":
            c["outputs"], c["execution_count"] = [], None
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False)  # as Jupyter writes
    atomic_write_text(path, text + "\n")  # cut short (a full disk), the old file stays
    return True


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m gqa_lib.book.colab",
        description="Check or write the canonical Colab install cell at the top of notebooks, "
        "and clear their outputs.")
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true", help="only report; exit 1 if any differ")
    args = ap.parse_args(argv)
    return one_line(ap.prog, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    stale = {}
    for p in args.notebooks:
        nb = read_notebook(p)
        what = (["first cell differs"] if not has_first_cell(nb) else []) + (
            ["has outputs"] if has_outputs(nb) else [])
        if what:
            stale[p] = what
    if not args.check:
        for p in stale:
            sync(p)
    for p, what in stale.items():
        print(f"{p}: {', '.join(what) if args.check else 'first cell written, outputs cleared'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
