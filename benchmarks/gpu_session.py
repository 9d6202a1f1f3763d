"""The one call a lent GPU gets: the equal-size ladder and the serving benchmark, in the order
of value, each capped so that the call ends inside the device's per-call limit.

    python -m benchmarks.gpu_session --out "$OUT" --commit SHA     # one GPU: <= 560 s
    python -m benchmarks.gpu_session --toy --grid TOY.toml --out DIR  # CPU, toy size (tests)

Order: the ladder (``gqa sweep data/sweeps/gpu-eq-v1.toml``, ~5.0 min estimated on an H200)
first when ``data/bench`` already holds an H200 measurement (it does: the serving model is
calibrated on ``h200-2026-12-04.json``), the benchmark (``benchmarks.gpu``) first otherwise.
Each step is a process of its own under a cap: the ladder's CSV gains a row as each run
finishes, so a capped sweep keeps its finished runs (the run it was in is lost, and the next
session resumes the grid from the CSV); the benchmark gets what is left of the limit as its
own budget, stops itself and rewrites its JSON after every part. ``OUT/session.json``
records the order, the commands, each step's wall time and status (``ok``, ``stopped:
cap``, ``failed: exit N``, ``skipped: N s left``), the commit and the machine (start time,
device, torch, CUDA), and is rewritten after each step; each step's output is in
``OUT/<step>.log``. The commit is passed to both (``GQA_COMMIT``, ``--commit``): the
device's copy of the repository has no ``.git``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gqa_lib.errors import GQAError
from gqa_lib.cli.main import OneLineParser
from gqa_lib.io import REPO_ROOT, atomic_write_text, check_writable_dir

from .common import machine, positive_seconds
from .gpu_plan import RUN_BUDGET_S

LADDER_GRID = REPO_ROOT / "data" / "sweeps" / "gpu-eq-v1.toml"
LIMIT_S = 560.0      # the device tool runs one command for at most 600 s; 40 s for the rest
LADDER_CAP_S = 330.0  # its dry run estimates 302 s on one H200
MIN_BENCH_S = 60.0   # less than this left: the benchmark's first parts would not finish
STOP_GRACE_S = 10.0  # SIGTERM, then this long before SIGKILL


def h200_measured(bench_dir: Path = REPO_ROOT / "data" / "bench") -> bool:
    """Whether the project already holds an H200 measurement (then the ladder goes first)."""
    return any(bench_dir.glob("h200-*.json"))


def run_capped(cmd: list[str], cap_s: float, log: Path, env: dict[str, str]) -> tuple[str, float]:
    """Run ``cmd`` for at most ``cap_s`` seconds, its output into ``log``; (status, wall s)."""
    t = time.monotonic()
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
        try:
            rc = proc.wait(timeout=max(cap_s, 0.01))
            status = "ok" if rc == 0 else f"failed: exit {rc}"
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            status = "stopped: cap"
    return status, round(time.monotonic() - t, 1)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m benchmarks.gpu_session",
                      description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for every result")
    p.add_argument("--commit", help="the commit to record (the device's copy has no .git)")
    p.add_argument("--grid", type=Path, default=LADDER_GRID, help="the ladder's grid")
    p.add_argument("--limit-s", type=positive_seconds, default=LIMIT_S, help="the whole call")
    p.add_argument("--ladder-cap-s", type=positive_seconds, default=LADDER_CAP_S)
    p.add_argument("--toy", action="store_true", help="toy benchmark, one CPU thread (tests)")
    args = p.parse_args(argv)
    t0 = time.monotonic()  # the call's clock: every cap is measured from here
    try:
        check_writable_dir(args.out)
        if (args.out / "session.json").is_dir():
            raise GQAError(f"--out {str(args.out)!r}: session.json is a folder, not a file")
    except GQAError as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    runs_dir = tempfile.mkdtemp(prefix="gqa-session-runs-")  # the ladder's checkpoints
    try:
        return _session(args, argv, t0, runs_dir)
    finally:  # the CSV keeps each finished run; the checkpoints are not kept
        shutil.rmtree(runs_dir, ignore_errors=True)


def _session(args: argparse.Namespace, argv: list[str] | None, t0: float, runs_dir: str) -> int:
    """The steps of :func:`main` in order, each under its cap, recorded in session.json."""
    from gqa_lib.train.sweep import git_commit

    commit = args.commit or git_commit()
    env = {**os.environ, "GQA_COMMIT": commit}
    py = [sys.executable]
    ladder = (["-m", "gqa_lib", "sweep", str(args.grid), "--out",
               str(args.out / f"{args.grid.stem}.csv"), "--runs-dir", runs_dir]
              + (["--threads", "1"] if args.toy else []))
    order = ["ladder", "benchmark"] if h200_measured() else ["benchmark", "ladder"]
    record: dict[str, Any] = {
        "command": " ".join(["python", "-m", "benchmarks.gpu_session", *(argv or sys.argv[1:])]),
        **machine(), "commit": commit, "limit_s": args.limit_s, "order": order,
        "why_this_order": ("data/bench holds an H200 measurement: the ladder first"
                           if order[0] == "ladder" else "no H200 measurement: the benchmark"
                           " first"), "steps": []}
    path = args.out / "session.json"

    def save() -> None:
        atomic_write_text(path, json.dumps(record, indent=1) + "\n")

    save()
    for i, name in enumerate(order):
        budget = 0.0
        left = args.limit_s - (time.monotonic() - t0)
        last = i == len(order) - 1
        if name == "ladder":
            cmd, cap = py + ladder, left if last else min(args.ladder_cap_s, left)
        else:
            budget = left - STOP_GRACE_S if last else min(left, RUN_BUDGET_S)
            cmd = py + ["-m", "benchmarks.gpu", "--out", str(args.out), "--budget-s",
                        f"{budget:.0f}", "--commit", commit] + (["--toy"] if args.toy else [])
            cap = budget + STOP_GRACE_S
        if left < (MIN_BENCH_S if name == "benchmark" and not args.toy else 1.0) or (
                name == "benchmark" and budget < 1.0):  # its --budget-s must be >= 1 s
            status, wall = f"skipped: {left:.0f} s left", 0.0
        else:
            status, wall = run_capped(cmd, cap, args.out / f"{name}.log", env)
        record["steps"].append({"name": name, "command": " ".join(cmd[1:]), "cap_s": round(cap),
                                "wall_s": wall, "status": status})
        save()
        print(f"{name}: {status} after {wall:.0f} s", flush=True)
    record["wall_s"] = round(time.monotonic() - t0, 1)
    save()
    return 0 if all(s["status"] == "ok" for s in record["steps"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
