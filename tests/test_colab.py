"""The notebooks' first cell: a no-op outside Colab; on Colab it installs gqa_lib without
changing any package already there. The slow test runs a whole notebook the way Colab would,
in a fresh virtual environment that lacks gqa_lib, with a stand-in `google.colab` module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from importlib.metadata import version
from pathlib import Path

import pytest

from gqa_lib.book import colab

ROOT = Path(__file__).resolve().parents[1]


def _run_first_cell(monkeypatch, calls: list, *, on_colab: bool, constraints: Path) -> None:
    """exec the cell with subprocess.run recorded (and the constraints file moved)."""

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="numpy==2.0.0\n", stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    if on_colab:
        google = types.ModuleType("google")
        google.colab = types.ModuleType("google.colab")
        monkeypatch.setitem(sys.modules, "google", google)
        monkeypatch.setitem(sys.modules, "google.colab", google.colab)
    else:
        monkeypatch.setitem(sys.modules, "google.colab", None)  # import fails, as off Colab
    monkeypatch.setattr(sys, "path", list(sys.path))
    cell = colab.FIRST_CELL.replace(colab.CONSTRAINTS, str(constraints))
    exec(compile(cell, "<first cell>", "exec"), {})


def test_first_cell_does_nothing_off_colab(monkeypatch, tmp_path):
    calls = []
    _run_first_cell(monkeypatch, calls, on_colab=False, constraints=tmp_path / "pins.txt")
    assert calls == [] and not (tmp_path / "pins.txt").exists()


def test_first_cell_clones_and_installs_with_everything_pinned(monkeypatch, tmp_path):
    calls = []
    monkeypatch.delenv(colab.SOURCE_ENV, raising=False)
    constraints = tmp_path / "pins.txt"
    _run_first_cell(monkeypatch, calls, on_colab=True, constraints=constraints)
    clone, freeze, install = calls
    assert clone == ["git", "clone", "--depth=1", "-q", colab.REPO_URL, colab.CLONE_DIR]
    assert freeze[-2:] == ["list", "--format=freeze"]
    assert install[1:] == ["-m", "pip", "install", "-q", "-c", str(constraints), "-e",
                           colab.CLONE_DIR]
    assert constraints.read_text() == "numpy==2.0.0\n"  # what was installed stays installed
    assert sys.path[0] == colab.CLONE_DIR


def test_install_source_can_be_a_local_checkout(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setenv(colab.SOURCE_ENV, str(ROOT))
    _run_first_cell(monkeypatch, calls, on_colab=True, constraints=tmp_path / "pins.txt")
    assert [c[:2] for c in calls] == [[sys.executable, "-m"]] * 2  # no clone
    assert calls[-1][-2:] == ["-e", str(ROOT)]


def test_sync_writes_and_checks_the_first_cell(tmp_path, capsys):
    nb = tmp_path / "x.ipynb"
    old = dict(colab.first_cell(), source="import google.colab  # an older install cell")
    nb.write_text(json.dumps({"cells": [old], "metadata": {}, "nbformat": 4,
                              "nbformat_minor": 5}))
    assert colab.main(["--check", str(nb)]) == 1
    assert colab.main([str(nb)]) == 0
    cells = json.loads(nb.read_text())["cells"]
    assert len(cells) == 1 and colab.has_first_cell({"cells": cells})
    assert colab.main(["--check", str(nb)]) == 0
    assert "first cell differs" in capsys.readouterr().out


# What Colab has before the first cell runs (versions of this environment, so pip's cache
# serves them), plus what runs the notebook.
COLAB_STACK = ("numpy", "scipy", "pandas", "altair", "ipykernel", "nbclient", "nbformat")

EXECUTE = textwrap.dedent("""
    import sys, nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(sys.argv[1], as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    print("executed", len(nb.cells), "cells")
""")


@pytest.mark.slow
def test_a_notebook_runs_on_a_fresh_colab_like_python(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"

    def run(*cmd, **kw):
        return subprocess.run([str(c) for c in cmd], env=env, cwd=tmp_path, check=True,
                              capture_output=True, text=True, **kw)

    run(py, "-m", "pip", "install", "-q", *(f"{d}=={version(d)}" for d in COLAB_STACK))
    assert subprocess.run([py, "-c", "import gqa_lib"], env=env, cwd=tmp_path,
                          capture_output=True).returncode != 0, "the venv must lack gqa_lib"
    before = run(py, "-m", "pip", "list", "--format=freeze").stdout

    stand_in = tmp_path / "colab-stand-in" / "google" / "colab"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text('"""Stand-in for Colab\'s google.colab."""\n')
    env["PYTHONPATH"] = str(stand_in.parents[1])
    env[colab.SOURCE_ENV] = str(ROOT)
    done = run(py, "-c", EXECUTE, ROOT / "notebooks" / "where-cost-goes.ipynb")
    assert "executed" in done.stdout

    after = run(py, "-m", "pip", "list", "--format=freeze").stdout
    added = set(after.splitlines()) - set(before.splitlines())
    assert not set(before.splitlines()) - set(after.splitlines()), "a package was changed"
    assert any(line.startswith("gqa_lib==") for line in added)
    located = run(py, "-c", "import gqa_lib; print(gqa_lib.__file__)").stdout.strip()
    assert Path(located).parent == ROOT / "gqa_lib"


def test_sync_clears_outputs_without_nbconvert(tmp_path, capsys):
    nb = tmp_path / "x.ipynb"
    code = {"cell_type": "code", "execution_count": 3, "metadata": {}, "source": "1 + 1",
            "outputs": [{"output_type": "execute_result", "execution_count": 3,
                         "data": {"text/plain": "2"}, "metadata": {}}]}
    nb.write_text(json.dumps({"cells": [colab.first_cell(), code], "metadata": {},
                              "nbformat": 4, "nbformat_minor": 5}))
    assert colab.main(["--check", str(nb)]) == 1
    assert "has outputs" in capsys.readouterr().out
    assert colab.main([str(nb)]) == 0
    cells = json.loads(nb.read_text())["cells"]
    assert cells[1]["outputs"] == [] and cells[1]["execution_count"] is None
    assert colab.main(["--check", str(nb)]) == 0


def test_install_output_shows_only_when_it_fails(monkeypatch, tmp_path, capsys):
    """The build backend's deprecation warnings (9 red lines on Colab) stay hidden; a failing
    install shows everything pip said."""
    def run_with(returncode):
        def fake_run(cmd, **kwargs):
            out = "numpy==2.0.0\n" if "list" in cmd else "SetuptoolsDeprecationWarning: x\n"
            return subprocess.CompletedProcess(cmd, returncode if "install" in cmd else 0,
                                               stdout=out, stderr="")
        monkeypatch.setattr(subprocess, "run", fake_run)
        google = types.ModuleType("google")
        google.colab = types.ModuleType("google.colab")
        monkeypatch.setitem(sys.modules, "google", google)
        monkeypatch.setitem(sys.modules, "google.colab", google.colab)
        monkeypatch.setattr(sys, "path", list(sys.path))
        monkeypatch.setenv(colab.SOURCE_ENV, str(ROOT))
        cell = colab.FIRST_CELL.replace(colab.CONSTRAINTS, str(tmp_path / "pins.txt"))
        exec(compile(cell, "<first cell>", "exec"), {})

    run_with(0)
    assert capsys.readouterr().err == ""
    with pytest.raises(RuntimeError, match="could not install"):
        run_with(1)
    assert "SetuptoolsDeprecationWarning" in capsys.readouterr().err
