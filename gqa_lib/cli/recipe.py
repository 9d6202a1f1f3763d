"""`gqa optimize`, `gqa table4` and `gqa hardware`: the recipe (by Z or by a serving
objective on a named accelerator), the paper's Table 4, and the accelerator table.

Registered into `gqa` by :mod:`gqa_lib.cli.main`; what a serving objective prints is in
:mod:`gqa_lib.cli.serving`. Bad input raises GQAError,
which `gqa` prints as one line and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gqa_lib import cost
from gqa_lib.arch.config import ASPECT_RULES, FFN_MULTIPLE_OF
from gqa_lib.cost import DEFAULT_CONVENTION
from gqa_lib.cli.common import command, finite_float, positive_int, print_json, print_table
from gqa_lib.cli.serving import (accelerators_for, baseline_heads, hardware_json,
                                 print_build, print_serving, tera)
from gqa_lib.errors import GQAError
from gqa_lib.units import (format_context, format_count, format_flops, format_heads, format_saving,
                           format_z, parse_context)

FIT_SOURCES = ("paper", "paper-measured")


def _model(args: argparse.Namespace):
    """--fit: 'paper' (joint extrapolation), 'paper-measured' (the seven curves) or a CSV."""
    from gqa_lib.fit import per_head
    from gqa_lib.evidence import paper

    if args.fit in FIT_SOURCES and (args.train_context is not None or args.allow_partial):
        raise GQAError(f"--{'train-context' if args.train_context is not None else 'allow-partial'}"
                       f" applies to a runs .csv (--fit runs.csv), not to --fit {args.fit}")
    if args.fit != "paper" and "kv_rule" in args.flags_given:
        raise GQAError(f"--kv-rule applies to --fit paper (the joint extrapolation to "
                       f"unmeasured heads), not to --fit {args.fit}")
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


# flags that only a named accelerator gives a meaning (refused without one, not ignored)
SERVING_ONLY = {d: "--" + d.replace("_", "-") for d in (
    "throughput", "batch", "datasheet", "price_per_hour", "output_tokens", "memory_fraction",
    "flops_efficiency", "bandwidth_efficiency")}


def _settings(args: argparse.Namespace):
    from gqa_lib.fit.recipe import CostSettings

    serving = {}
    hw = _hardware(args)
    objective = getattr(args, "objective", "z")
    given = getattr(args, "flags_given", frozenset()) | (
        {"datasheet"} if getattr(args, "datasheet", False) else set())
    unused = [f for dest, f in SERVING_ONLY.items() if dest in given]
    if hw is None and unused:
        raise GQAError(f"{unused[0]} applies to the serving figures only: give --hardware "
                       "NAME too (gqa hardware lists them)")
    if objective != "z" and hw is None:  # the library's message names its arguments
        raise GQAError(f"--objective {objective} needs --hardware NAME (e.g. --hardware h100;"
                       " gqa hardware lists them)")
    if objective == "cost" and args.price_per_hour is None:
        raise GQAError("--objective cost needs --price-per-hour P (your price per "
                       "accelerator-hour: no default)")
    if hw is not None:
        serving = {"hardware": hw, "batch": args.batch, "price_per_hour": args.price_per_hour,
                   "output_tokens": args.output_tokens, "calibration": "datasheet" if args.datasheet else "auto",
                   "flops_efficiency": args.flops_efficiency,
                   "bandwidth_efficiency": args.bandwidth_efficiency,
                   "memory_fraction": args.memory_fraction}
    return CostSettings(lam=args.lam, alpha=args.alpha, beta=args.beta,
                        convention=args.convention, aspect=args.aspect,
                        objective=getattr(args, "objective", "z"), **serving)


def _hardware(args: argparse.Namespace):
    """--hardware (a name, alias or .toml), --hardware-file (a table to look it up in) and
    the figure flags (override its figures, or define one without --hardware)."""
    from gqa_lib.arch.hardware import Accelerator, get_accelerator, lookup, read_accelerators

    if not hasattr(args, "hardware"):
        return None
    figures = {"bf16_flops_per_s": args.flops_per_s,
               "memory_bandwidth_bytes_per_s": args.bandwidth,
               "memory_capacity_bytes": None if args.memory_gb is None else args.memory_gb * 1e9}
    if args.hardware is None:
        if args.hardware_file:
            raise GQAError("--hardware-file needs --hardware KEY (which of its accelerators)")
        if all(v is None for v in figures.values()):
            return None
        missing = [f for f, v in zip(FIGURE_FLAGS.values(), figures.values()) if v is None]
        if missing:
            raise GQAError(f"custom hardware needs {', '.join(missing)} (or --hardware NAME)")
        hw = None
    elif args.hardware_file:
        hw = lookup(args.hardware, read_accelerators(args.hardware_file))
    else:
        hw = get_accelerator(args.hardware)
    try:
        return (Accelerator(key="custom", name="user-supplied", **figures) if hw is None
                else hw.replace(**figures))
    except GQAError as e:  # the Accelerator's words, with the flags that set its figures
        message = str(e)
        for field, flag in FIGURE_FLAGS.items():
            if figures[field] is not None:
                message = message.replace(field, flag)
        raise GQAError(message) from None


# The Accelerator figure each flag sets
FIGURE_FLAGS = {"bf16_flops_per_s": "--flops-per-s", "memory_bandwidth_bytes_per_s": "--bandwidth",
                "memory_capacity_bytes": "--memory-gb"}


SERVING_KEYS = ("latency_s", "fits", "max_batch", "tokens_per_s", "prefill_s",
                "usd_per_mtok", "objective")


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    """A candidate, the pick or the baseline for --json; ``fits``: whether --batch sequences
    fit in memory beside the weights (``latency_s`` is for that batch)."""
    keys = ("n_head", "n_kv_head", "params_non_embedding", "n_layer", "d_model",
            "memory_values", "flops", "z", "extrapolated", *SERVING_KEYS)
    out = {k: row[k] for k in keys if k in row}
    if "fits" in out:
        out["fits"] = bool(out["fits"])
    return out


def _build(best: dict[str, Any], aspect: str, model, settings, target: float) -> dict[str, Any]:
    """The model one would build for the pick (the fewest whole layers that reach the target,
    aligned d_ff, the fit's head size and vocabulary), exactly counted, with the loss the fit
    predicts for it (the paper's N: norms excluded): the continuous solution's N* is what the
    fit needs, this is what the shape has."""
    from gqa_lib.fit.shapes import build_for_target

    c, loss = build_for_target({**best, "d_head": model.d_head}, model, target, aspect=aspect)
    return {"n_layer": c.n_layer, "d_model": c.d_model, "n_head": c.n_head,
            "n_kv_head": c.n_kv_head, "d_head": c.d_head, "d_ff": c.d_ff,
            "vocab_size": c.vocab_size, "tie_embeddings": c.tie_embeddings,
            "params_non_embedding": int(cost.params_non_embedding(c)),
            "params_total": int(cost.params_total(c)),
            "d_ff_rule": f"int(8d/3) rounded up to a multiple of {FFN_MULTIPLE_OF}",
            "fitted_loss": loss,
            **({} if settings.hardware is None else {"serving": {
                k: (bool(v) if k == "fits" else float(v)) for k, v in cost.serving_costs(
                    c, best["context"], settings.hardware, **settings.serving_kwargs()
                ).items()}})}


# ----- gqa optimize -------------------------------------------------------------------------
@command
def cmd_optimize(args: argparse.Namespace) -> int:
    from gqa_lib.fit.recipe import optimize

    T = parse_context(args.context)
    model = _model(args)
    settings = _settings(args)
    baseline = args.baseline
    if baseline is None and settings.objective != "z" and model.baseline is not None:
        baseline = "llama3"  # a serving objective is reported against Llama-3 GQA
    if baseline == "none":
        baseline = None
    rec = optimize(model, args.target_loss, T, baseline=baseline, settings=settings)
    out = {
        "context": T, "target_loss": args.target_loss, "convention": args.convention,
        "aspect": args.aspect, "lambda": args.lam, "alpha": args.alpha, "beta": args.beta,
        "fit": args.fit, "model": rec.model, "objective": settings.objective,
        "best": _entry(rec.best),
        "build": _build({**rec.best, "context": T}, args.aspect, model, settings, args.target_loss),
        "candidates": [_entry(r) for r in rec.candidates.to_dict("records")],
        "note": "n_layer and d_model are the continuous solution; 'build' is a real shape",
        "warnings": list(rec.warnings),
    }
    if settings.hardware is not None:
        out["hardware"] = hardware_json(settings)
    if rec.baseline is not None:
        out["baseline"] = {"name": baseline, **rec.baseline,
                           **({"fits": bool(rec.baseline["fits"])}
                              if "fits" in rec.baseline else {})}
        out["savings"] = rec.savings
    if args.throughput is not None and settings.hardware is not None:
        out["accelerators_needed"] = accelerators_for(args.throughput, rec)
    if args.json:
        print_json(out)
        return 0
    for w in rec.warnings:
        print(f"gqa optimize: warning: {w}", file=sys.stderr)
    if settings.hardware is not None:
        print_serving(args, settings, rec, baseline, out.get("accelerators_needed"),
                       out["build"])
        return 0
    b = rec.best
    print(f"T = {format_context(T)}, target loss {args.target_loss} nats, Z = {args.lam} "
          f"M^{args.alpha:.3g} + {1 - args.lam:.3g} C^{args.beta:.3g}, C convention "
          f"'{args.convention}', aspect '{args.aspect}'; fit: {rec.model}")
    print_table(
        [[format_heads(r['n_head'], r['n_kv_head']) + ("*" if r["extrapolated"] else ""),
          format_count(r["params_non_embedding"]), f"{r['n_layer']:.1f}", f"{r['d_model']:.0f}",
          format_count(r["memory_values"]), format_flops(r["flops"]), format_z(r['z']),
          "<- best" if r["best"] else ""] for r in rec.candidates.to_dict("records")],
        ["H", "N*", "L", "d", "M (values)", "C", "Z", "choice"])
    print(f"N*: non-embedding parameters that reach the target; L, d: the continuous shape; "
          f"M: weights + one sequence's KV cache at T, in stored values (bytes = values x 2 "
          f"in bf16; eq. 4); C: the FLOPs of {cost.CONVENTION_LABELS[args.convention]}; Z = "
          f"{args.lam} M^{args.alpha:.3g} + {1 - args.lam:.3g} C^{args.beta:.3g} (eq. 5)")
    if any(rec.candidates["extrapolated"]):
        print("* extrapolated configuration (no measured curve; see gqa_lib/evidence/paper.py)")
    if rec.savings:
        s = rec.savings
        base = rec.baseline
        print(f"\n{format_heads(b['n_head'], b['n_kv_head'])} against {args.baseline} "
              f"({baseline_heads(base)}, N {format_count(base['params_non_embedding'])}): "
              f"{format_saving(s['memory_pct'], 'memory')}, {format_saving(s['flops_pct'], 'FLOPs')} "
              f"(of {cost.CONVENTION_LABELS[args.convention]}), {format_saving(s['z_pct'], 'Z')}")
    print_build(out["build"], b, args.target_loss)
    return 0


# ----- gqa hardware -------------------------------------------------------------------------
@command
def cmd_hardware(args: argparse.Namespace) -> int:
    from gqa_lib.arch.hardware import accelerators, read_accelerators

    table = read_accelerators(args.file) if args.file else accelerators()
    if args.json:
        print_json({k: {f: getattr(a, f) for f in a.__dataclass_fields__}
                    for k, a in table.items()})
        return 0
    print_table([[k, a.name, tera(a.bf16_flops_per_s),
                  f"{a.memory_bandwidth_bytes_per_s / 1e12:.3g}",
                  f"{a.memory_capacity_bytes / 1e9:g}", tera(a.ridge_flops_per_byte * 1e12, 0),
                  "calibrated" if cost.basis(a) == "calibrated" else "datasheet only"]
                 for k, a in table.items()],
                ["key", "accelerator", "TFLOP/s bf16", "TB/s", "GB", "FLOP/byte ridge",
                 "serving model"])
    print("\nPeak figures transcribed from vendor datasheets, not measured; each one's source "
          "is in " + (args.file or "data/hardware/accelerators.toml") + " (--json shows them). "
          "'calibrated': the serving model uses constants fitted on measured step times "
          "(data/hardware/calibration.toml); 'datasheet only': peaks x assumed efficiencies. "
          "GB: the vendor's memory figure read as 1e9 bytes, which is conservative: devices "
          "expose about that many GiB (" + _exposed_note() + "), so a datasheet-only largest "
          "batch is up to that much too small.")
    return 0


def _exposed_note() -> str:
    """'an H200 sold as 141 GB exposes 139.8 GiB = 150.1e9 bytes (measured)', from the
    calibration of each measured accelerator."""
    from gqa_lib.arch.hardware import calibrations, get_accelerator

    notes = []
    for key in calibrations():
        hw = get_accelerator(key)
        got = cost.memory_capacity_bytes(hw)
        if got != hw.memory_capacity_bytes:
            notes.append(f"an {hw.key.upper()} sold as {hw.memory_capacity_bytes / 1e9:g} GB "
                         f"exposes {got / 2**30:.1f} GiB = {got / 1e9:.1f}e9 bytes, measured: "
                         f"{got / hw.memory_capacity_bytes - 1:.0%} more")
    return "; ".join(notes) or "no accelerator measured yet"


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
                   default=0.9, help="Z weight of memory, lambda (default 0.9, the paper's)")
    p.add_argument("--alpha", type=finite_float("--alpha", lo=0.0, lo_open=True), default=0.5,
                   help="Z exponent of memory, alpha (default 0.5)")
    p.add_argument("--beta", type=finite_float("--beta", lo=0.0, lo_open=True), default=1 / 3,
                   help="Z exponent of compute, beta (default 1/3)")
    p.add_argument("--convention", default=DEFAULT_CONVENTION,
                   choices=list(cost.COMPUTE_CONVENTIONS),
                   help="compute term C in Z (default fig2: reproduces the paper)")
    p.add_argument("--aspect", default="d64L", choices=list(ASPECT_RULES),
                   help="N -> (n_layer, d_model): d = 64 L (default), or the paper's Table 9 "
                        "shapes")
    p.add_argument("--kv-rule", default="absolute", choices=["absolute", "ratio"],
                   help="with the paper's fit: carry the KV-head effect to n_h > 8 by the "
                        "number of KV heads (default) or by the group size n_h / n_kv")
    p.add_argument("--method", default="huber", choices=["huber", "lsq"],
                   help="fitting method (huber, the default: Huber on log-loss; lsq: least "
                        "squares on loss)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _positive_float(flag: str, unit: tuple[float, float, str] | None = None):
    """A number > 0; with `unit` (lowest, highest, words), one inside the range a real device
    has in that flag's unit, so that a value typed in another unit (3.35 for 3.35 TB/s) is
    refused naming the unit instead of costed."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {text!r}") from None
        if not v > 0 or v == float("inf"):
            raise argparse.ArgumentTypeError(f"{flag} must be > 0, got {text!r}")
        if unit is not None and not unit[0] <= v <= unit[1]:
            raise argparse.ArgumentTypeError(
                f"{flag} is {unit[2]}, got {text!r}: outside {unit[0]:g} to {unit[1]:g}, what "
                "a real device has in that unit")
        return v

    return parse


def _fraction(flag: str):
    """argparse type: a share in (0, 1]."""
    return finite_float(flag, lo=0.0, hi=1.0, lo_open=True)


def _efficiency(flag: str):
    """argparse type: an achieved fraction of peak, [cost.MIN_EFFICIENCY, 1]."""
    share = _fraction(flag)

    def parse(text: str) -> float:
        try:
            return cost.check_efficiency(flag, share(text))
        except GQAError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def _add_serving_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("serving (a roofline on a named accelerator; gqa hardware "
                             "lists them)")
    g.add_argument("--objective", default="z", choices=list(cost.OBJECTIVES),
                   help="what step 3 minimises: the paper's Z (default), decode latency "
                        "at --batch, tokens/s per accelerator at the largest batch that fits "
                        "(decode only unless --output-tokens) "
                        "(throughput), or cost per million tokens (needs --price-per-hour)")
    g.add_argument("--hardware", metavar="NAME", help="accelerator key or alias (h100, h200, "
                   "a800, ...), or a .toml file with one")
    g.add_argument("--hardware-file", metavar="TOML", help="look --hardware up in this file "
                   "(layout of data/hardware/accelerators.toml)")
    g.add_argument("--flops-per-s", metavar="F", type=_positive_float(
                       "--flops-per-s", (1e9, 1e18, "in FLOP/s (989e12 for 989 TFLOP/s)")),
                   help="peak dense bf16 FLOP/s (overrides --hardware's, e.g. 989e12)")
    g.add_argument("--bandwidth", metavar="B", type=_positive_float(
                       "--bandwidth", (1e9, 1e15, "in bytes/s (3.35e12 for 3.35 TB/s)")),
                   help="peak memory bandwidth in bytes/s (e.g. 3.35e12)")
    g.add_argument("--memory-gb", metavar="GB", type=_positive_float(
                       "--memory-gb", (0.01, 1e6, "in GB of 1e9 bytes (80 for 80 GB)")),
                   help="device memory in GB (1e9 bytes)")
    g.add_argument("--price-per-hour", type=_positive_float("--price-per-hour"),
                   metavar="P", help="your price per accelerator-hour (no default)")
    g.add_argument("--output-tokens", type=positive_int("--output-tokens"), metavar="G",
                   help="tokens generated per request: tokens/s, throughput and cost then "
                        "count each request's prefill of a --context-long prompt (default: "
                        "decode only, prompts already cached)")
    g.add_argument("--batch", type=positive_int("--batch"), default=1,
                   help="sequences per decode step for the latency figures (default 1)")
    g.add_argument("--throughput", type=_positive_float("--throughput"), metavar="TOK_S",
                   help="also print the accelerators needed for this many tokens/s")
    g.add_argument("--datasheet", action="store_true",
                   help="the plain datasheet roofline even where the accelerator has been "
                        "measured (default: a measured accelerator, e.g. h200, uses its "
                        "calibrated constants; gqa hardware says which are)")
    g.add_argument("--flops-efficiency", type=_efficiency("--flops-efficiency"), default=None,
                   metavar="E", help="datasheet roofline: achieved fraction of peak FLOP/s "
                   f"(default {cost.FLOPS_EFFICIENCY}: an assumption near published MFU)")
    g.add_argument("--bandwidth-efficiency", type=_efficiency("--bandwidth-efficiency"),
                   default=None,
                   metavar="E", help="datasheet roofline: achieved fraction of peak bandwidth "
                   f"(default {cost.BANDWIDTH_EFFICIENCY}: gpt-fast's batch-1 decoding on an "
                   "A100)")
    g.add_argument("--memory-fraction", type=_fraction("--memory-fraction"),
                   default=cost.MEMORY_FRACTION,
                   metavar="F", help="share of memory for weights + KV cache (default "
                   f"{cost.MEMORY_FRACTION}, vLLM's gpu_memory_utilization)")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("optimize", help="cost-optimal (n_head, n_kv_head) and size for a "
                       "context and target loss (the paper's recipe)")
    p.add_argument("--context", required=True, metavar="T",
                   help="context length: 131072, 128k, 128K, 1M")
    p.add_argument("--target-loss", required=True, metavar="L",
                   type=finite_float("--target-loss", lo=0.0, lo_open=True),
                   help="target loss in nats per token, on the fit's scale: with --fit "
                        "paper, the paper's models at T = 8K (SlimPajama, GPT-2 BPE of 50,304 "
                        "tokens; its headline target, 2.615, is the loss of its largest "
                        "Llama-3 GQA model), not your own model's loss; with a runs .csv, that "
                        "CSV's validation loss")
    p.add_argument("--fit", default="paper", metavar="SOURCE",
                   help="'paper' (joint extrapolation of the digitised losses, default), "
                        "'paper-measured' (the seven measured curves), or a runs .csv")
    p.add_argument("--train-context", type=positive_int("--train-context"),
                   help="with a CSV: fit the runs at this training context (default: the "
                        "longest)")
    p.add_argument("--allow-partial", action="store_true", help="with a CSV: drop "
                   "configurations with fewer than 3 sizes instead of failing")
    p.add_argument("--baseline", choices=["llama3", "none"], help="compare with Llama-3 GQA "
                   "(d/d_head, 8) sized to the same target (default with a serving "
                   "objective: llama3)")
    _add_cost_args(p)
    _add_serving_args(p)

    p = sub.add_parser("hardware", help="the accelerators the serving objectives know, with "
                       "their datasheet figures")
    p.add_argument("--file", metavar="TOML", help="list a file of your own instead")
    p.add_argument("--json", action="store_true", help="machine-readable, with sources")

    p = sub.add_parser("table4", help="the paper's Table 4 recomputed beside the paper's, "
                       "cell by cell")
    p.add_argument("--bootstrap", type=positive_int("--bootstrap", zero=True, hi=10_000),
                   default=0, metavar="N",
                   help="also refit N bootstrap replicates (at most 10,000; 100 take seconds): "
                        "the share choosing the paper's H, which tells a near tie from a "
                        "small gap the refits confirm")
    _add_cost_args(p)
