"""The layout's promise: data travel one way through gqa_lib's stages. A module imports only
its own stage and the stages below it (gqa_lib.LAYERS), and no module, in gqa_lib or in
benchmarks/, takes part in an import cycle (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gqa_lib import LAYERS

ROOT = Path(__file__).resolve().parents[1]
RANK = {stage: i for i, stages in enumerate(LAYERS) for stage in stages}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def imports(name: str, source: str, known: set[str], is_package: bool = False) -> set[str]:
    """Every module of ``known`` that ``source`` (module ``name``) imports, at any depth of the
    file; ``from pkg import sub`` counts as importing ``pkg.sub`` when that is a module."""
    found: set[str] = set()
    base = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                up = base[: len(base) - node.level + 1]
                mod = ".".join(up + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def graph(package: str) -> dict[str, set[str]]:
    mods = modules(package)
    known = set(mods) | set(modules("gqa_lib"))
    return {m: imports(m, p.read_text(), known, p.name == "__init__.py") for m, p in mods.items()}


def stage(module: str) -> str | None:
    """'cost' for gqa_lib.cost.counts; None for the top package and __main__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for m, deps in g.items():
        if stage(m) is None:
            continue
        for d in deps:
            if stage(d) is not None and RANK[stage(d)] > RANK[stage(m)]:
                bad.append(f"{m} ({stage(m)}) imports {d} ({stage(d)})")
    return sorted(bad)


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_every_stage_is_declared():
    packages = {p.name for p in (ROOT / "gqa_lib").iterdir() if (p / "__init__.py").is_file()}
    top = {p.stem for p in (ROOT / "gqa_lib").glob("*.py")} - {"__init__", "__main__"}
    assert packages | top == set(RANK)


def test_no_stage_imports_a_later_one():
    assert upward_imports(graph("gqa_lib")) == []


@pytest.mark.parametrize("package", ["gqa_lib", "benchmarks"])
def test_no_import_cycles(package):
    g = graph("gqa_lib") | graph(package)
    assert cycles(g) == []


def test_every_module_says_what_it_holds():
    for name, path in modules("gqa_lib").items():
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc.split()) >= 5, f"{name} has no opening docstring"


def test_the_checks_can_fail():
    known = {"gqa_lib.cost.counts", "gqa_lib.fit.recipe", "gqa_lib.book.plots", "gqa_lib.fit"}
    src = "def f():\n    from gqa_lib.fit import recipe\n"
    g = {"gqa_lib.cost.counts": imports("gqa_lib.cost.counts", src, known)}
    assert g["gqa_lib.cost.counts"] == {"gqa_lib.fit.recipe"}
    assert upward_imports(g) == ["gqa_lib.cost.counts (cost) imports gqa_lib.fit.recipe (fit)"]
    rel = imports("gqa_lib.fit.recipe", "from ..book import plots\n", known)
    assert rel == {"gqa_lib.book.plots"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


MAX_MODULE_LINES = 600  # split a module by concept before it passes this (developers' guide)


def oversized(paths: dict[str, Path], limit: int = MAX_MODULE_LINES) -> list[str]:
    sizes = {name: len(p.read_text().splitlines()) for name, p in paths.items()}
    return sorted(f"{name}: {n} lines" for name, n in sizes.items() if n > limit)


@pytest.mark.parametrize("package", ["gqa_lib", "benchmarks"])
def test_no_module_passes_the_size_limit(package):
    assert oversized(modules(package)) == []


def test_the_size_check_can_fail(tmp_path):
    big = tmp_path / "big.py"
    big.write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    assert oversized({"big": big}) == [f"big: {MAX_MODULE_LINES + 1} lines"]
