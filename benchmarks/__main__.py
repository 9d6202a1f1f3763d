"""python -m benchmarks [--quick] [--only NAME ...]: run the benchmarks, print ratios, and
record the run in data/bench/latest-cpu.json and the table in benchmarks/README.md.

``--only`` re-measures its sections in that record and keeps the others; ``--quick`` (a
reduced set) writes latest-cpu-quick.json and leaves the full record and its table alone:
a partial run never replaces a full record with a subset."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import torch

from gqa_lib.cli.main import OneLineParser
from gqa_lib.errors import GQAError
from gqa_lib.io import atomic_write_text, check_writable_dir, check_writable_file

from . import book_cost, cost_speed, step_scaling, train_speed
from .common import machine

ROOT = Path(__file__).resolve().parents[1]
SUITES = {"cost": cost_speed.run, "train": train_speed.run, "scaling": step_scaling.run,
          "book": book_cost.run}
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _profile_row(prof: dict, label: str) -> str:
    """One table row from a :func:`benchmarks.profile_step.step_profile` result."""
    sh, rate = prof["share"], {g: (prof[f"{g}_flops_per_s"] or 0) / 1e9 for g in ("matmul", "attention")}
    return (f"| profile {label}n_head={prof['n_head']} T={prof['context']}: share of op time | "
            f"matmul {sh['matmul']:.0%}, attention {sh['attention']:.0%} (for "
            f"{prof['attention_flop_share']:.0%} of FLOPs), other {sh['other']:.0%} | "
            f"attention {rate['attention']:.0f} vs matmul {rate['matmul']:.0f} GFLOP/s |")


def targets(res: dict) -> list[str]:
    """Issue 6's targets, each with its status in this run and, where one is missed, what the
    profiles of the same run show (markdown table lines)."""
    rows = ["| target | status in this run |", "|---|---|"]
    c, t, s = res.get("cost"), res.get("train"), res.get("scaling")
    if c:
        v = c["configs_per_s_vectorised"]
        rows.append(f"| cost model: tens of millions of configurations/s on one core | "
                    f"{'met' if v >= 1e7 else 'not met'}: {v / 1e6:.1f}M/s in arrays of "
                    f"{c.get('chunk', c['batch']):,}"
                    + (f"; {c['configs_per_s_one_array'] / 1e6:.1f}M/s as one array of "
                       f"{c['batch']:,}, whose temporaries stream from RAM"
                       if c.get("configs_per_s_one_array") else "") + " |")
        if c.get("explorer_update_s") is not None:
            e = c["explorer_update_s"] * 1e3
            rows.append(f"| one explorer update < 50 ms | {'met' if e < 50 else 'not met'}: "
                        f"{e:.1f} ms |")
        g = c["table4_grid_s"]
        rows.append(f"| Table 4 grid with all candidates well under a second | "
                    f"{'met' if g < 0.5 else 'not met'}: {g * 1e3:.1f} ms |")
    if t:
        big = [r for r in t["rows"] if r["model"] == max(t["rows"], key=lambda r: r[
            "params_non_embedding"])["model"]]
        small = [r for r in t["rows"] if r not in big]
        ok = all(r["mfu"] >= 0.5 for r in big)
        line = (f"| training MFU >= 50% of the measured matmul peak for the benchmark config | "
                f"{'met' if ok else 'not met'} for {big[0]['model']}: "
                + ", ".join(f"{r['mfu']:.0%} at T = {r['context']}" for r in big))
        prof = t.get("profile_smallest")
        if small and prof:
            sh = prof["share"]
            line += (f". Smaller models {min(r['mfu'] for r in small):.0%}-"
                     f"{max(r['mfu'] for r in small):.0%}: the profile of {prof['model']} (T = "
                     f"{prof['context']}) has its matmuls at {prof['matmul_flops_per_s'] / 1e9:.0f} "
                     f"GFLOP/s but {sh['other']:.0%} of op time in ops the FLOP count ignores "
                     f"(norms, RoPE, cross-entropy, elementwise) and {sh['attention']:.0%} in "
                     f"attention at {prof['attention_flops_per_s'] / 1e9:.0f} GFLOP/s for "
                     f"{prof['attention_flop_share']:.0%} of the FLOPs")
        rows.append(line + " |")
        comp = [r["compile_speedup"] for r in t["rows"] if r.get("compile_speedup")]
        if comp:
            rows.append(f"| torch.compile where it helps, behind a flag | x{comp[0]:.2f} on the "
                        f"largest model here; `gqa train --compile` (off by default: a small "
                        f"gain on CPU against seconds of compilation per run) |")
    if s:
        by_h: dict[int, list[float]] = {}
        for r in s["rows"]:
            by_h.setdefault(r["n_head"], []).append(r["measured_over_predicted"])
        spread = ", ".join(f"n_head {h}: x{min(v):.2f}-{max(v):.2f}" for h, v in sorted(by_h.items()))
        line = f"| step time follows the cost model | measured/predicted by n_head over T: {spread}"
        profs = s.get("profiles", [])
        if profs:
            p = profs[-1]
            line += (f". Profile of n_head {p['n_head']}, T = {p['context']}: attention "
                     f"{p['share']['attention']:.0%} of op time for "
                     f"{p['attention_flop_share']:.0%} of the FLOPs, at "
                     f"{p['attention_flops_per_s'] / 1e9:.0f} vs "
                     f"{p['matmul_flops_per_s'] / 1e9:.0f} GFLOP/s for the matmuls")
        k = s.get("kernel")
        if k:
            line += (f"; the kernel alone: full/causal time x{k['full_over_causal']:.2f} (x2 if "
                     f"every masked key were skipped), {k['full_flops_per_s'] / 1e9:.0f} GFLOP/s "
                     f"over the full square")
        f2 = s.get("two_rate_fit", {})
        if f2.get("matmul_flops_per_s") and f2.get("attention_flops_per_s"):
            line += (f"; two-rate fit: matmul {f2['matmul_flops_per_s'] / 1e9:.0f}, attention "
                     f"{f2['attention_flops_per_s'] / 1e9:.0f} GFLOP/s")
        rows.append(line + " |")
    return rows


def table(res: dict) -> str:
    m = res["machine"]
    lines = [f"Latest run: {m['date_utc']}, commit `{m['commit']}`, {m['cpu']} x{m['cpu_count']}"
             f" ({m['torch_threads']} torch threads), torch {m['torch']}, "
             f"`{res['command']}`, {res['wall_s']:.0f} s.", "",
             "| measurement | value | ratio (same run) |", "|---|---|---|"]
    later = {k: r for k, r in res.get("runs", {}).items() if r["date_utc"] != m["date_utc"]}
    if later:  # sections re-measured by a partial run since
        lines[1:1] = ["", "Re-measured since: " + "; ".join(
            f"{k} on {r['date_utc']} (commit `{r['commit']}`, `{r['command']}`"
            + (f", {r['wall_s']:.0f} s" if "wall_s" in r else "") + ")"
            for k, r in later.items()) + "."]
    c = res.get("cost")
    if c:
        one = c.get("configs_per_s_one_array")
        lines.append(f"| cost model, configs/s (vectorised, {c.get('chunk', c['batch']):,} per "
                     f"array) | {c['configs_per_s_vectorised']:,.0f} | x{c['vectorised_over_loop']:,.0f}"
                     f" vs a Python loop" + (f"; one array of {c['batch']:,}: {one:,.0f}/s" if one
                                             else "") + " |")
        lines.append(f"| Table 4 grid, {c['table4_cells']} cells x "
                     f"{c.get('table4_candidates', 21)} candidates | {c['table4_grid_s'] * 1e3:.1f} ms |"
                     f" joint fit {c['joint_fit_s']:.2f} s |")
        if c.get("explorer_update_s") is not None:
            lines.append(f"| explorer update (target < 50 ms) | {c['explorer_update_s'] * 1e3:.1f} ms | |")
        lines.append(f"| bootstrap of the recommendation, {c['bootstrap_samples']} samples | "
                     f"{c['bootstrap_s']:.2f} s | |")
    t = res.get("train")
    if t:
        lines.append(f"| matmul peak ({t['dtype']}, measured) | {t['matmul_peak_flops'] / 1e9:.0f} "
                     f"GFLOP/s | |")
        for r in t["rows"]:
            extra = f"; torch.compile x{r['compile_speedup']:.2f}" if r.get("compile_speedup") else ""
            ref = r["speedup_vs_reference"]
            lines.append(f"| train {r['model']} T={r['context']}: tokens/s, MFU | "
                         f"{r['tokens_per_s']:,.0f}, MFU {r['mfu']:.0%} | "
                         f"x{ref:.2f} vs reference{extra} |" if ref else
                         f"| train {r['model']} T={r['context']} | {r['tokens_per_s']:,.0f} | |")
        if t.get("profile_smallest"):
            lines.append(_profile_row(t["profile_smallest"], t["profile_smallest"]["model"] + " "))
    s = res.get("scaling")
    if s:
        worst = max(s["rows"], key=lambda r: r["measured_over_predicted"])
        lines.append(f"| step time vs cost model (n_head x context) | {len(s['rows'])} configs | "
                     f"measured/predicted up to x{worst['measured_over_predicted']:.2f} "
                     f"(n_head={worst['n_head']}, T={worst['context']}) |")
        lines += [_profile_row(prof, "") for prof in s.get("profiles", [])]
        k = s.get("kernel")
        if k:
            lines.append(f"| attention kernel alone, n_head={k['n_head']} T={k['context']}: "
                         f"full / causal time | x{k['full_over_causal']:.2f} (x2 = every masked "
                         f"key skipped) | {k['full_flops_per_s'] / 1e9:.0f} GFLOP/s over the full "
                         f"square |")
    b = res.get("book")
    if b:
        lines.append(f"| book: clean build / no-change rebuild | {b['book_clean_build_s']:.0f} s / "
                     f"{b['book_rebuild_s']:.0f} s | x{b['book_clean_build_s'] / b['book_rebuild_s']:.0f} |")
        if b.get("slowest_pages"):
            pages = ", ".join(f"{p} {s:.0f} s" for p, s in b["slowest_pages"][:3])
            lines.append(f"| slowest pages | {pages} | |")
        if "tests_s" in b:
            slow = ", ".join(f"{n.split('::')[-1]} {s:.0f} s" for n, s in b["slowest_tests"][:3])
            lines.append(f"| default test suite | {b['tests_s']:.0f} s | slowest: {slow} |")
    return "\n".join(lines + ["", "Targets (issue 6):", ""] + targets(res))


def _previous(path: Path) -> dict | None:
    """The record a partial (--only) run updates, or None where there is none yet; GQAError
    in one line for a file that is not such a record (it is kept, not overwritten)."""
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise GQAError(f"{path}: the previous record is not readable JSON ({e}); move it "
                       "away to start a new record") from None
    if not isinstance(old, dict) or not isinstance(old.get("runs", {}), dict) \
            or not isinstance(old.get("machine"), dict):
        raise GQAError(f"{path}: not a benchmark record (an object with machine and runs); "
                       "move it away to start a new record")
    return {**old, "runs": old.get("runs", {})}


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks")
    p.add_argument("--quick", action="store_true", help="reduced set, a few minutes")
    p.add_argument("--only", nargs="+", choices=list(SUITES))
    p.add_argument("--out", default=str(ROOT / "data" / "bench"))
    p.add_argument("--readme", default=str(ROOT / "benchmarks" / "README.md"),
                   help="markdown file whose results block gets the table")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    command = ("python -m benchmarks" + (" --quick" if args.quick else "")
               + (" --only " + " ".join(args.only) if args.only else ""))
    dev = "gpu" if torch.cuda.is_available() else "cpu"
    # A quick run measures a reduced set: its own record, never the full one or its table.
    path = Path(args.out) / f"latest-{dev}{'-quick' if args.quick else ''}.json"
    try:  # checked before measuring: minutes of work are not lost to a bad --out at the end
        check_writable_dir(args.out)
        check_writable_file(path, "the record")
        if not args.quick and Path(args.readme).exists():
            check_writable_file(args.readme, "--readme")
        old = _previous(path) if args.only else None
    except GQAError as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2
    res = {"machine": machine(), "quick": args.quick, "command": command, "runs": {}}
    if old is not None:  # a partial run updates its sections, keeps the others
        res = {**old, "runs": old["runs"], "new_machine": res["machine"]}
    now = res.pop("new_machine", res["machine"])
    for name in args.only or (["cost", "train", "scaling"] + ([] if args.quick else ["book"])):
        print(f"== {name}")
        res[name] = SUITES[name](quick=args.quick)
        res["runs"][name] = {"date_utc": now["date_utc"], "commit": now["commit"],
                             "command": command}
    elapsed = time.perf_counter() - t0
    if "wall_s" in res and args.only:  # a partial run: its time goes with its sections
        for name in args.only:
            res["runs"][name]["wall_s"] = elapsed
    else:
        res["wall_s"] = elapsed
    atomic_write_text(path, json.dumps(res, indent=2, default=str) + "\n")
    text = table(res)
    print("\n" + text)
    readme = Path(args.readme)
    if args.quick:
        print(f"\n(quick run: recorded in {path}; {readme.name}'s table keeps the full run)")
    elif readme.is_file() and BEGIN in readme.read_text():
        body = readme.read_text()
        new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), f"{BEGIN}\n{text}\n{END}", body,
                     flags=re.S)
        atomic_write_text(readme, new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
