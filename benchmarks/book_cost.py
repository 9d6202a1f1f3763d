"""What the book and the test suite cost to run: a clean book build (fresh output folder,
empty execution cache), a no-change rebuild, the slowest pages, and the default test suite
with its slowest tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _build(out: Path) -> float:
    t = time.perf_counter()
    subprocess.run([str(BIN / "jupyter-book"), "build", str(ROOT / "book"), "--path-output",
                    str(out), "-W", "-n", "--keep-going", "-q"], check=True,
                   capture_output=True, text=True)
    return time.perf_counter() - t


def page_times(out: Path) -> list[tuple[str, float]]:
    """(notebook, seconds) from the build's execution cache, slowest first."""
    from jupyter_cache import get_cache

    cache = get_cache(out / "_build" / ".jupyter_cache")
    rows = []
    for rec in cache.list_cache_records():
        secs = (rec.data or {}).get("execution_seconds")
        uri = Path(rec.uri).name if rec.uri else str(rec.pk)
        if secs is not None:
            rows.append((uri, float(secs)))
    return sorted(rows, key=lambda r: -r[1])


def run(quick: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out["book_clean_build_s"] = _build(tmp)
        out["book_rebuild_s"] = _build(tmp)
        out["slowest_pages"] = page_times(tmp)  # every page, slowest first
        shutil.rmtree(tmp / "_build", ignore_errors=True)
    print(f"  book: clean build {out['book_clean_build_s']:.0f} s, no-change rebuild "
          f"{out['book_rebuild_s']:.0f} s (x{out['book_clean_build_s'] / out['book_rebuild_s']:.0f})")
    if not quick:
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "--durations=8", "-p",
                            "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True)
        out["tests_s"] = time.perf_counter() - t
        out["tests_passed"] = r.returncode == 0
        out["slowest_tests"] = [(m.group(2), float(m.group(1))) for m in re.finditer(
            r"^([\d.]+)s call\s+(\S+)", r.stdout, re.M)]
        print(f"  default test suite: {out['tests_s']:.0f} s "
              f"({'passed' if out['tests_passed'] else 'FAILED'})")
    return out
