"""`gqa train` (one run of the tiny GQA transformer) and `gqa sweep` (a grid file of runs, one
CSV row each, resumable). torch is imported only when a command runs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gqa_lib.cli.common import (add_model_args, command, context_arg, finite_float,
                                model_from_args, positive_int, print_json)
from gqa_lib.errors import GQAError


@command
def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from gqa_lib.train.loop import TrainConfig, train

    cfg = model_from_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    fields = {f: getattr(args, f) for f in ("steps", "batch_size", "context_len", "lr", "seed",
                                             "eval_every", "data", "device", "probe_samples")
              if getattr(args, f) is not None}
    fields["compile"] = args.compile
    tc = TrainConfig(**fields)
    if args.tokens or args.tokens_per_param:
        if args.steps is not None:
            raise GQAError("give --steps or a token budget (--tokens/--tokens-per-param), "
                           "not both")
        tc = tc.with_budget(cfg, tokens=args.tokens, tokens_per_param=args.tokens_per_param)
    final = train(cfg, tc, args.out, resume=args.resume, progress=not args.json)
    if args.json:
        print_json(final)
    else:
        print(f"{cfg.name or 'model'} {cfg.label}: val loss {final['val_loss']:.4f} nats/token "
              f"({final['val_bpb']:.4f} bits/byte; unigram entropy "
              f"{final['unigram_entropy']:.3f}) after {final['tokens']:,} tokens in "
              f"{final['wall_s']:.1f} s ({final['tokens_per_s']:,.0f} tokens/s) -> {args.out}")
    return 0


def _add_train_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a GQA transformer on the shipped corpus or yours")
    add_model_args(p)
    p.add_argument("--out", required=True, help="run folder (metrics.jsonl, final.json, ckpt)")
    p.add_argument("--steps", type=positive_int("--steps"))
    p.add_argument("--tokens", type=positive_int("--tokens"), help="token budget")
    p.add_argument("--tokens-per-param", type=finite_float("--tokens-per-param", lo=0.0,
                                                           lo_open=True),
                   help="budget as tokens per non-embedding parameter (paper: 20)")
    p.add_argument("--batch-size", type=positive_int("--batch-size"))
    p.add_argument("--context", dest="context_len", type=context_arg, help="training context")
    p.add_argument("--lr", type=finite_float("--lr", lo=0.0, lo_open=True),
                   help="max learning rate of the WSD schedule")
    p.add_argument("--seed", type=positive_int("--seed", zero=True, hi=2**63 - 1))
    p.add_argument("--eval-every", type=positive_int("--eval-every"))
    p.add_argument("--data", help="a shipped corpus ('web', the default, or 'pd'), a "
                   ".txt/.jsonl file or folder, or hf:NAME")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--probe-samples", type=positive_int("--probe-samples", zero=True, hi=2**20),
                   help="recall-probe samples at the end")
    p.add_argument("--threads", type=positive_int("--threads"), help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--json", action="store_true")


@command
def cmd_sweep(args: argparse.Namespace) -> int:
    from gqa_lib.train.sweep import parse_shard, run_sweep

    shard = parse_shard(args.shard)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    estimate = [_estimate(args.grid, args.out, shard)]

    def log(line: str) -> None:  # the estimate first, once the sweep's own checks passed
        while estimate:
            print(estimate.pop(), flush=True)
        print(line, flush=True)

    counts = run_sweep(args.grid, args.out, runs_dir=args.runs_dir, shard=shard,
                       keep_checkpoints=args.keep_checkpoints, dry_run=args.dry_run, log=log)
    print(json.dumps(counts) if args.json else
          f"done: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped "
          f"of {counts['total']}")
    return 1 if counts["failed"] else 0


# Seconds one sweep run takes on one CPU thread: wall_s ~ SWEEP_S_PER_GFLOP x training GFLOPs
# + SWEEP_S_PER_MTOKEN x millions of tokens (evaluation and per-token overhead). Least squares
# over the 206 finished runs of data/sweeps/cpu-v1, cpu-v2 and cpu-v2-lr (1 thread on a
# 2-core machine): median error 28% per run, totals within 2%.
SWEEP_S_PER_GFLOP = 0.0136
SWEEP_S_PER_MTOKEN = 79.4


def _estimate(grid: str, out: str, shard: tuple[int, int]) -> str:
    """One line: the runs still to do in this shard and their time on a CPU thread, from the
    rates above (a rough figure: GPUs and other CPUs differ)."""
    from gqa_lib import cost
    from gqa_lib.train.sweep import is_finished, load_grid, read_sweep_csv

    specs = load_grid(grid)[1]
    i, n = shard
    done = {r["run_id"] for r in read_sweep_csv(out)[1] if is_finished(r)}
    todo = [s for k, s in enumerate(specs) if k % n == i and s.run_id not in done]
    flops = sum(float(cost.training_flops(s.model, s.train.tokens, s.train.context_len))
                for s in todo)
    tokens = sum(s.train.tokens for s in todo)
    sec = SWEEP_S_PER_GFLOP * flops / 1e9 + SWEEP_S_PER_MTOKEN * tokens / 1e6
    when = f"{sec / 3600:.1f} CPU-hours" if sec >= 3600 else f"{sec / 60:.0f} CPU-minutes"
    return (f"estimate: {len(todo)} runs to train, {tokens / 1e6:,.1f} M tokens, about {when} "
            "at this project's measured single-thread CPU rates (+-30%; --dry-run lists the "
            "runs without training)")


def _add_sweep_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run a grid of training runs, one CSV row per run")
    p.add_argument("grid", help="grid file (.toml), e.g. data/sweeps/cpu-v1.toml")
    p.add_argument("--out", required=True, help="CSV to append rows to (created if missing)")
    p.add_argument("--shard", default="0/1", help="run every n-th run starting at i: i/n")
    p.add_argument("--runs-dir", help="folder for per-run checkpoints (default runs/GRID)")
    p.add_argument("--keep-checkpoints", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="list the runs without training")
    p.add_argument("--threads", type=positive_int("--threads"), help="torch CPU threads")
    p.add_argument("--json", action="store_true")


def add_parsers(sub: Any) -> None:
    _add_train_parser(sub)
    _add_sweep_parser(sub)
