"""GPU benchmark: one call, parts in order of value, each under a time budget, the whole
JSON rewritten (atomically) after every part and every row, so a run killed at any point
keeps what it finished.

    python -m benchmarks.gpu --out DIR          # one GPU: <= 330 s by construction
    python -m benchmarks.gpu --toy --out DIR    # toy sizes on the CPU (the tests run this)

Parts (gpu_plan.PARTS; sizes, budgets and the H200 estimates are in gpu_plan.py):
calibrate (matmul peak, copy bandwidth), decode (the equal-loss pair at batch 1 and at the
largest batch that fits, each context, as a CUDA graph of one step and eagerly), prefill
(one causal pass per context and a chunked prefill at the longest, with the SDPA backend
that ran), train_pair (one training step of each model), mfu (the 75M model's training MFU,
eager and torch.compile). Results: DIR/gpu-<device>.json, with ``parts`` (status per part:
ok, skipped: budget, stopped: budget, failed: <error>; running/pending in a killed run),
``parts_done`` and ``rows`` (one measurement each, with its roofline bound); ``decode`` and
``training`` are the views the book's pages read (serving.measured_pair, performance).

A partial run never replaces a complete record: where DIR/gpu-<device>.json already holds a
run (complete, or not ours to judge), the new run is written to DIR/partial-gpu-<device>.json
and renamed over it only once it is complete; a killed run leaves the old record whole.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

T0 = time.perf_counter()  # the run's clock starts with the process (imports included)

import torch  # noqa: E402

from gqa_lib import cost  # noqa: E402
from gqa_lib.errors import GQAError  # noqa: E402
from gqa_lib.cli.main import OneLineParser  # noqa: E402
from gqa_lib.io import atomic_write_text, check_writable_dir  # noqa: E402

from . import gpu_parts, gpu_plan  # noqa: E402
from .gpu_parts import OverBudget  # noqa: E402
from .common import machine, positive_seconds  # noqa: E402

DTYPE_NAMES = {torch.bfloat16: "bf16", torch.float32: "fp32"}


@contextmanager
def hard_deadline(seconds: float) -> Iterator[None]:
    """Interrupt the enclosed code with OverBudget after ``seconds`` (SIGALRM; Python code
    only: a kernel already launched finishes first)."""
    if not hasattr(signal, "setitimer"):  # pragma: no cover - not POSIX
        yield
        return

    def on_alarm(signum, frame):
        raise OverBudget(f"stopped at its {seconds:.0f} s budget")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Ctx:
    """What a part sees: device, dtype, sizes, the results so far, its deadline, and a row
    sink that saves the whole file after each row."""

    def __init__(self, res: dict[str, Any], path: Path, device: torch.device,
                 dtype: torch.dtype, sizes: gpu_plan.Sizes, toy: bool, t0: float):
        self.res, self.path, self.device, self.dtype = res, path, device, dtype
        self.sizes, self.toy, self.t0 = sizes, toy, t0
        self.part, self.deadline = "", float("inf")
        self.sync = torch.cuda.synchronize if device.type == "cuda" else None

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def fits(self, estimate_s: float) -> bool:
        """Whether a step estimated (on one H200) at estimate_s fits in the part's time
        left; at toy size the estimates do not apply, only the deadline does."""
        return self.left() > (0.0 if self.toy else estimate_s)

    def add_row(self, row: dict[str, Any]) -> None:
        self.res["rows"].append({"part": self.part, **row})
        self.save()

    def note(self, message: str) -> None:
        self.res["parts"][self.part].setdefault("notes", []).append(message)
        print(f"  {message}")

    def save(self) -> None:
        self.res["wall_s"] = time.perf_counter() - self.t0
        self.res.update(views(self.res, self.sizes))
        atomic_write_text(self.path, json.dumps(self.res, indent=1) + "\n")


# ----- the views the book's pages read ------------------------------------------------------
def views(res: dict[str, Any], sizes: gpu_plan.Sizes) -> dict[str, Any]:
    """``training``: the MFU rows as the performance page reads them. ``decode``: per context,
    the pair at batch 1 (CUDA-graph step, else eager; one-pass prefill) beside the bounds,
    for contexts where both models have both (gqa_lib.evidence.serving.measured_pair)."""
    rows = res["rows"]
    train = [{"impl": r["impl"], "step_s": r["seconds"], "tokens_per_s": r["tokens_per_s"],
              "mfu": r["mfu"]} for r in rows if r["part"] == "mfu"]
    by = {(r["regime"], r["model"], r["context"], r["batch"]): r for r in rows}
    decode = []
    for T in sizes.contexts:
        pair = []
        for cfg in sizes.pair:
            eager = by.get(("decode_step_eager", cfg.name, T, 1))
            d = by.get(("decode_step", cfg.name, T, 1)) or eager
            p = by.get(("prefill", cfg.name, T, 1))
            if d is None or p is None:
                break
            pair.append({
                "model": cfg.name, "n_head": cfg.n_head, "n_kv_head": cfg.n_kv_head,
                "n_layer": cfg.n_layer, "d_model": cfg.d_model, "context": T,
                "params_total": int(cost.params_total(cfg)),
                "kv_cache_bytes": int(cost.kv_cache_bytes(cfg, T, dtype=res["dtype"])),
                "s_per_token": d["seconds"], "decode_method": d["method"],
                "s_per_token_eager": eager["seconds"] if eager else None,
                "tokens_per_s": 1 / d["seconds"], "bound_s_per_token": d.get("bound_s"),
                "measured_over_bound": d.get("measured_over_bound"),
                "prefill_s": p["seconds"], "prefill_tokens_per_s": p["tokens_per_s"],
                "prefill_flops": p["flops"], "prefill_mfu": p.get("mfu"),
                "prefill_sdpa_backend": p["sdpa_backend"]})
        if len(pair) == 2:
            b, o = pair
            o["speedup_measured"] = b["s_per_token"] / o["s_per_token"]
            if b["bound_s_per_token"] and o["bound_s_per_token"]:
                o["speedup_bound"] = b["bound_s_per_token"] / o["bound_s_per_token"]
            o["prefill_speedup_measured"] = b["prefill_s"] / o["prefill_s"]
            o["prefill_speedup_flops"] = b["prefill_flops"] / o["prefill_flops"]
            decode += pair
    return {"training": {**res["parts"]["mfu"].get("info", {}), "rows": train},
            "decode": {"pair": [c.to_dict() for c in sizes.pair], "rows": decode}}


# ----- the run -------------------------------------------------------------------------------
def output_paths(out_dir: Path, slug: str) -> tuple[Path, Path]:
    """(where the run is written while it runs, where it ends up): the same file unless
    ``gpu-<slug>.json`` already holds a record that is not a known-incomplete run, which a
    partial run must not replace (it then runs in ``partial-gpu-<slug>.json``). Checked
    before any work: GQAError in one line for an unwritable ``out_dir`` or a folder where
    a result file belongs."""
    check_writable_dir(out_dir)
    final, partial = out_dir / f"gpu-{slug}.json", out_dir / f"partial-gpu-{slug}.json"
    for f in (final, partial):
        if f.is_dir():
            raise GQAError(f"--out {str(out_dir)!r}: {f.name} is a folder, not a result file")
        if f.exists() and not os.access(f, os.R_OK | os.W_OK):
            raise GQAError(f"--out {str(out_dir)!r}: {f.name} is not readable and writable")
    if not final.exists():
        return final, final
    try:
        old = json.loads(final.read_text(encoding="utf-8"))
        incomplete = isinstance(old, dict) and old.get("complete") is False
    except (OSError, ValueError):
        incomplete = False  # unreadable: not ours to judge, so not ours to overwrite
    return (final, final) if incomplete else (partial, final)


def run(toy: bool, out_dir: Path, *, budget_s: float = gpu_plan.RUN_BUDGET_S,
        commit: str | None = None, hang_in: str | None = None, t0: float = T0
        ) -> dict[str, Any]:
    """Run the parts in order; ``budget_s`` counts from ``t0`` (default: process start)."""
    device = torch.device("cuda" if torch.cuda.is_available() and not toy else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    sizes = gpu_plan.TOY if toy else gpu_plan.REAL
    est = gpu_plan.part_estimates(gpu_plan.REAL)
    info = machine()
    if commit:
        info["commit"] = commit
    res: dict[str, Any] = {
        "schema": 2, "machine": info, "toy": toy, "device": str(device),
        "dtype": DTYPE_NAMES[dtype], "command": "python -m benchmarks.gpu " + " ".join(
            sys.argv[1:]), "budget_s": budget_s,
        "parts": {name: {"status": "pending", "budget_s": b, "estimate_h200_s": est[name],
                         "what": what} for name, b, what in gpu_plan.PARTS},
        "parts_done": [], "rows": [], "complete": False}
    slug = "toy-cpu" if toy else info.get("gpu", "cpu").lower().replace(" ", "-")
    working, final = output_paths(out_dir, slug)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(res, working, device, dtype, sizes, toy, t0)
    print(gpu_plan.plan_table(sizes, toy, budget_s))
    ctx.save()
    for name, budget, _ in gpu_plan.PARTS:
        part = res["parts"][name]
        ctx.part = name
        allowed = min(budget, budget_s - (time.perf_counter() - t0))
        if allowed <= (0.0 if toy else est[name]):
            part["status"] = "skipped: budget"
            print(f"{name}: skipped: budget ({allowed:.0f} s left, estimate {est[name]:.0f})")
        else:
            part.update(status="running", started_s=time.perf_counter() - t0)
            ctx.save()
            print(f"{name} (budget {allowed:.0f} s):")
            if hang_in == name:  # for tests: a run killed in the middle of this part
                time.sleep(3600)
            ctx.deadline = time.perf_counter() + allowed
            t = time.perf_counter()
            try:
                with hard_deadline(allowed):
                    summary = gpu_parts.PART_FUNCTIONS[name](ctx)
                part["status"] = "ok"
                if summary:
                    part["info"] = summary
            except OverBudget as e:
                part["status"] = f"stopped: budget ({e})"
            except Exception as e:  # noqa: BLE001 -- one part failing must not end the run
                traceback.print_exc()
                part["status"] = f"failed: {type(e).__name__}: {e}"[:300]
            part["wall_s"] = time.perf_counter() - t
            gpu_parts.free_memory(device, collect=True)
            print(f"{name}: {part['status']} in {part['wall_s']:.1f} s")
        res["parts_done"].append(name)
        ctx.save()
    res["complete"] = True
    ctx.save()
    if working != final:  # complete: now it may replace the previous record
        os.replace(working, final)
        ctx.path = final
    print(f"wrote {ctx.path} in {res['wall_s']:.0f} s")
    return res


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.gpu",
                      description=__doc__.split("\n")[0])
    p.add_argument("--toy", action="store_true", help="toy sizes on the CPU (for tests)")
    p.add_argument("--out", default="data/bench", help="output folder")
    p.add_argument("--budget-s", type=positive_seconds, default=gpu_plan.RUN_BUDGET_S,
                   help="the whole run's budget from process start (default: %(default)s)")
    p.add_argument("--commit", help="the commit to record (where the copy has no .git)")
    p.add_argument("--hang-in", choices=[n for n, _, _ in gpu_plan.PARTS],
                   help="for tests: sleep when this part starts, to be killed there")
    args = p.parse_args(argv)
    if args.toy:  # two OpenMP threads on two shared, loaded cores run tiny ops ~100x slower
        torch.set_num_threads(1)
    try:
        run(args.toy, Path(args.out), budget_s=args.budget_s, commit=args.commit,
            hang_in=args.hang_in)
    except GQAError as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
