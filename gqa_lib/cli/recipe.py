"""`gqa optimize` and `gqa table4`: the recipe and the paper's Table 4 on the command line.

Registered into `gqa` by :mod:`gqa_lib.cli.main`. Bad input raises GQAError,
which `gqa` prints as one line and exits 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from gqa_lib import cost
from gqa_lib.arch.config import ASPECT_RULES
from gqa_lib.cost import DEFAULT_CONVENTION
from gqa_lib.cli.common import command, finite_float, positive_int, print_json, print_table
from gqa_lib.errors import GQAError
from gqa_lib.units import format_context, format_count, format_flops, parse_context

FIT_SOURCES = ("paper", "paper-measured")


def _model(args: argparse.Namespace):
    """--fit: 'paper' (joint extrapolation), 'paper-measured' (the seven curves) or a CSV."""
    from gqa_lib.fit import per_head
    from gqa_lib.evidence import paper

    if args.fit == "paper":
        return paper.joint_model(args.method, args.kv_rule)
    if args.fit == "paper-measured":
        return paper.measured_model(args.method)
    if not args.fit.lower().endswith(".csv"):
        raise GQAError(f"--fit must be one of {', '.join(FIT_SOURCES)} or a path to a runs "
                       f".csv, got {args.fit!r}")
    runs = per_head.read_runs(args.fit)
    return per_head.fit_runs(runs, train_context=args.train_context, method=args.method,
                           allow_partial=args.allow_partial)


def _settings(args: argparse.Namespace):
    from gqa_lib.fit.recipe import CostSettings

    return CostSettings(lam=args.lam, alpha=args.alpha, beta=args.beta,
                        convention=args.convention, aspect=args.aspect)


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("n_head", "n_kv_head", "params_non_embedding", "n_layer", "d_model",
            "memory_values", "flops", "z", "extrapolated")
    return {k: row[k] for k in keys if k in row}


# ----- gqa optimize -------------------------------------------------------------------------
@command
def cmd_optimize(args: argparse.Namespace) -> int:
    from gqa_lib.fit.recipe import optimize

    T = parse_context(args.context)
    model = _model(args)
    rec = optimize(model, args.target_loss, T, baseline=args.baseline,
                   settings=_settings(args))
    out = {
        "context": T, "target_loss": args.target_loss, "convention": args.convention,
        "aspect": args.aspect, "lambda": args.lam, "alpha": args.alpha, "beta": args.beta,
        "fit": args.fit, "model": rec.model,
        "best": _entry(rec.best),
        "candidates": [_entry(r) for r in rec.candidates.to_dict("records")],
        "note": "n_layer and d_model are the continuous solution; round to a real shape",
    }
    if rec.baseline is not None:
        out["baseline"] = {"name": args.baseline, **rec.baseline}
        out["savings"] = rec.savings
    if args.json:
        print_json(out)
        return 0
    b = rec.best
    print(f"T = {format_context(T)}, target loss {args.target_loss} nats, Z = {args.lam} "
          f"M^{args.alpha:.3g} + {1 - args.lam:.3g} C^{args.beta:.3g}, C convention "
          f"'{args.convention}', aspect '{args.aspect}'; fit: {rec.model}")
    print_table(
        [[f"({r['n_head']},{r['n_kv_head']})" + ("*" if r["extrapolated"] else ""),
          format_count(r["params_non_embedding"]), f"{r['n_layer']:.1f}", f"{r['d_model']:.0f}",
          format_count(r["memory_values"]), format_flops(r["flops"]), f"{r['z']:,.0f}",
          "<- best" if r["best"] else ""] for r in rec.candidates.to_dict("records")],
        ["H", "N*", "L", "d", "M (values)", "C", "Z", ""])
    if any(rec.candidates["extrapolated"]):
        print("* extrapolated configuration (no measured curve; see gqa_lib/paper.py)")
    if rec.savings:
        s = rec.savings
        base = rec.baseline
        print(f"\nsavings of ({b['n_head']},{b['n_kv_head']}) over {args.baseline} (n_head "
              f"{base['n_head']:.1f}, N {format_count(base['params_non_embedding'])}; positive "
              f"= cheaper): memory {s['memory_pct']:.1f}%, FLOPs {s['flops_pct']:.1f}% "
              f"('{args.convention}'), Z {s['z_pct']:.1f}%")
    return 0


# ----- gqa table4 ---------------------------------------------------------------------------
@command
def cmd_table4(args: argparse.Namespace) -> int:
    from gqa_lib.evidence.paper import joint_model, mismatches, table4_comparison, table4_summary

    df = table4_comparison(joint_model(args.method, args.kv_rule), settings=_settings(args),
                           n_boot=args.bootstrap)
    why = mismatches(df)
    causes = {(r.target_loss, r.context): r.cause for r in why.itertuples()}
    df["cause"] = [causes.get((t, c), "") for t, c in zip(df["target_loss"], df["context"])]
    if args.json:
        print_json(df.to_dict("records"))
        return 0
    contexts = sorted(set(df["context"]))
    rows = []
    for t in sorted(set(df["target_loss"]), reverse=True):
        cells = df[df["target_loss"] == t].set_index("context")
        rows.append([f"{t:.2f}"] + [
            f"{c.n_head},{c.n_kv_head}{'*' if c.extrapolated else ' '} | "
            f"{c.paper_n_head},{c.paper_n_kv_head} {'ok' if c.match else 'x '}"
            for c in (cells.loc[T] for T in contexts)])
    print("Table 4 recomputed (ours | paper) from the digitised Fig. 2 losses; "
          f"C convention '{args.convention}', aspect '{args.aspect}'")
    print_table(rows, ["L* \\ T"] + [format_context(T) for T in contexts])
    s = table4_summary(df)
    print(f"\nmatches: {s['matches']}/{s['cells']} overall; {s['measured_matches']}/"
          f"{s['measured_cells']} where the paper's optimum is a measured configuration; "
          f"{s['extrapolated_matches']}/{s['extrapolated_cells']} resting on the extrapolation "
          "(* = our choice is an extrapolated H)")
    if len(why):
        print("\nmismatches and their most likely cause (loss_gap = how much worse, in nats, "
              "the paper's H is at our optimum's Z):")
        print_table([[f"{r.target_loss:.2f}", format_context(r.context),
                      f"{r.n_head},{r.n_kv_head}", f"{r.paper_n_head},{r.paper_n_kv_head}",
                      f"{r.loss_gap:.4f}", r.cause] for r in why.itertuples()],
                    ["L*", "T", "ours", "paper", "loss_gap", "cause"])
    return 0


# ----- parsers ------------------------------------------------------------------------------
def _add_cost_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lambda", dest="lam", type=finite_float("--lambda", lo=0.0, hi=1.0),
                   default=0.9, help="Z weight of memory")
    p.add_argument("--alpha", type=finite_float("--alpha", lo=0.0, lo_open=True), default=0.5,
                   help="Z exponent of memory")
    p.add_argument("--beta", type=finite_float("--beta", lo=0.0, lo_open=True), default=1 / 3,
                   help="Z exponent of compute")
    p.add_argument("--convention", default=DEFAULT_CONVENTION,
                   choices=list(cost.COMPUTE_CONVENTIONS),
                   help="compute term C in Z (default fig2: reproduces the paper)")
    p.add_argument("--aspect", default="d64L", choices=list(ASPECT_RULES),
                   help="N -> (n_layer, d_model): d = 64 L, or the paper's Table 9 shapes")
    p.add_argument("--kv-rule", default="absolute", choices=["absolute", "ratio"],
                   help="with the paper's fit: carry the KV-head effect to n_h > 8 by the "
                        "number of KV heads (default) or by the group size n_h / n_kv")
    p.add_argument("--method", default="huber", choices=["huber", "lsq"],
                   help="fitting method (Huber on log-loss, or least squares on loss)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("optimize", help="cost-optimal (n_head, n_kv_head) and size for a "
                       "context and target loss (the paper's recipe)")
    p.add_argument("--context", required=True, metavar="T",
                   help="context length: 131072, 128k, 128K, 1M")
    p.add_argument("--target-loss", required=True, metavar="L",
                   type=finite_float("--target-loss", lo=0.0, lo_open=True),
                   help="target loss in nats per token")
    p.add_argument("--fit", default="paper", metavar="SOURCE",
                   help="'paper' (joint extrapolation of the digitised losses, default), "
                        "'paper-measured' (the seven measured curves), or a runs .csv")
    p.add_argument("--train-context", type=positive_int("--train-context"),
                   help="with a CSV: fit the runs at this training context (default: the "
                        "longest)")
    p.add_argument("--allow-partial", action="store_true", help="with a CSV: drop "
                   "configurations with fewer than 3 sizes instead of failing")
    p.add_argument("--baseline", choices=["llama3"], help="compare with Llama-3 GQA "
                   "(d/d_head, 8) sized to the same target")
    _add_cost_args(p)

    p = sub.add_parser("table4", help="the paper's Table 4 recomputed beside the paper's, "
                       "cell by cell")
    p.add_argument("--bootstrap", type=positive_int("--bootstrap", zero=True), default=0,
                   metavar="N",
                   help="also refit N bootstrap replicates: share choosing the paper's H")
    _add_cost_args(p)
