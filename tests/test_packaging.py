"""Set-up files tell one story: pyproject is the source; environment.yml, Makefile, README and
CI follow it."""

import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _req_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_environment_yml_wraps_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    pip_lists = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1, "environment.yml installs the project with one pip block"
    (pip_reqs,) = pip_lists
    m = re.fullmatch(r'-e\s+"?\.\[([a-z,]+)\]"?', pip_reqs[0])
    assert m, "environment.yml must install the project itself: -e .[extras]"
    extras = PYPROJECT["project"]["optional-dependencies"]
    for extra in m.group(1).split(","):
        assert extra in extras, f"environment.yml asks for extra {extra!r} missing in pyproject"
    conda = [d for d in deps if isinstance(d, str)]
    # python bound identical to requires-python
    py = next(d for d in conda if d.startswith("python"))
    assert py.removeprefix("python") == PYPROJECT["project"]["requires-python"]
    # pytorch is the only library conda provides; its bound must equal pyproject's torch bound
    torch_bound = next(r for r in extras["train"] if _req_name(r) == "torch").removeprefix("torch")
    assert f"pytorch{torch_bound}" in conda
    others = [d for d in conda if not d.startswith(("python", "pip", "pytorch"))]
    assert not others, f"declare these in pyproject.toml, not environment.yml: {others}"


def test_console_script_and_extras():
    assert PYPROJECT["project"]["scripts"]["gqa"] == "gqa_lib.cli:main"
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"book", "test", "train"} <= set(extras)
    # torch must never be pinned to an exact version in pyproject: the Makefile chooses the build
    torch = [r for rs in extras.values() for r in rs if _req_name(r) == "torch"]
    assert torch and all("==" not in r for r in torch)


def test_readme_commands_match_makefile_and_ci():
    readme = (ROOT / "README.md").read_text()
    make = (ROOT / "Makefile").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for target in ("book", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", make, re.M)
    assert "make test" in ci and "make book" in ci
    # the README's annotated tree names every sub-package and module that exists, in place
    tree = readme[readme.index("\ngqa_lib/"):readme.index("\nnotebooks/")]
    for py in sorted((ROOT / "gqa_lib").rglob("*.py")):
        rel = py.relative_to(ROOT / "gqa_lib")
        if py.name != "__init__.py":
            indent = "  " * len(rel.parts)
            assert f"\n{indent}{py.name} " in tree, f"README's tree does not mention gqa_lib/{rel}"
        if len(rel.parts) == 2:
            assert f"\n  {rel.parts[0]}/ " in tree, f"README's tree does not mention gqa_lib/{rel.parts[0]}/"
