"""`gqa train` (one run of the tiny GQA transformer) and `gqa sweep` (a grid file of runs, one
CSV row each, resumable). torch is imported only when a command runs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from gqa_lib.cli.common import (add_model_args, command, context_arg, finite_float,
                                model_from_args, positive_int, print_json)
from gqa_lib.errors import GQAError
from gqa_lib.train.settings import TrainConfig
from gqa_lib.units import format_rate


@command
def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from gqa_lib.train.loop import TrainConfig, train

    cfg = model_from_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    fields = {f: getattr(args, f) for f in ("steps", "batch_size", "context_len", "lr", "seed",
                                             "eval_every", "data", "device", "precision",
                                             "probe_samples")
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
              f"{final['wall_s']:.1f} s ({format_rate(final['tokens_per_s'])} tokens/s) "
              f"-> {args.out}")
    return 0


def _add_train_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a GQA transformer on the shipped corpus or yours")
    add_model_args(p)
    p.add_argument("--out", required=True, help="run folder (metrics.jsonl, final.json, ckpt)")
    d = {f.name: f.default for f in dataclasses.fields(TrainConfig)}  # TrainConfig's defaults
    p.add_argument("--steps", type=positive_int("--steps"),
                   help=f"optimiser steps (default {d['steps']}; or --tokens, --tokens-per-param)")
    p.add_argument("--tokens", type=positive_int("--tokens"),
                   help="token budget: steps = tokens / (batch size x context)")
    p.add_argument("--tokens-per-param", type=finite_float("--tokens-per-param", lo=0.0,
                                                           lo_open=True),
                   help="budget as tokens per non-embedding parameter (paper: 20)")
    p.add_argument("--batch-size", type=positive_int("--batch-size"),
                   help=f"sequences per step (default {d['batch_size']})")
    p.add_argument("--context", dest="context_len", type=context_arg, metavar="T",
                   help=f"training context in tokens: 256, 1k (default {d['context_len']})")
    p.add_argument("--lr", type=finite_float("--lr", lo=0.0, lo_open=True),
                   help=f"max learning rate of the WSD schedule (default {d['lr']:g})")
    p.add_argument("--seed", type=positive_int("--seed", zero=True, hi=2**63 - 1),
                   help=f"initialisation and data order (default {d['seed']})")
    p.add_argument("--eval-every", type=positive_int("--eval-every"),
                   help=f"steps between validation losses and checkpoints "
                        f"(default {d['eval_every']})")
    p.add_argument("--data", help="a shipped corpus ('web', the default, or 'pd'), a "
                   ".txt/.jsonl file or folder, or hf:NAME")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto (default): bf16 autocast on a GPU with bf16 tensor cores, fp16 "
                   "with a gradient scaler on an older GPU, fp32 on the CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--probe-samples", type=positive_int("--probe-samples", zero=True, hi=2**20),
                   help="recall-probe samples at the end")
    p.add_argument("--threads", type=positive_int("--threads"), help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--json", action="store_true", help="print final.json's figures as JSON")


@command
def cmd_sweep(args: argparse.Namespace) -> int:
    from gqa_lib.train.sweep import parse_shard, run_sweep

    shard = parse_shard(args.shard)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    def log(line: str) -> None:  # with --json, stdout holds only the JSON
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    counts = run_sweep(args.grid, args.out, runs_dir=args.runs_dir, shard=shard,
                       keep_checkpoints=args.keep_checkpoints, dry_run=args.dry_run,
                       estimate_for=args.estimate_for, log=log)
    if args.dry_run and not args.json:
        print(f"on Colab (free tier: a T4, fp16 with a gradient scaler), one cell: "
              f"{colab_command(args.grid, args.out)}")
    print(json.dumps(counts) if args.json else
          f"dry run: nothing trained; {counts['total'] - counts['skipped']} of "
          f"{counts['total']} runs to do" if args.dry_run else
          f"done: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped "
          f"of {counts['total']}")
    return 1 if counts["failed"] else 0


def colab_command(grid: str, out: str) -> str:
    """The Colab cell that runs a grid there: clone the repository and run `gqa sweep` from
    it (Colab has torch, numpy, scipy, pandas, tokenizers and tqdm; nothing is installed).
    Paths inside this checkout are given relative to it; a grid outside it is named by its
    file name, with a note to upload it, and an output outside it lands in the clone."""
    from pathlib import Path

    from gqa_lib.book.colab import REPO_URL
    from gqa_lib.io import REPO_ROOT

    def inside(path: str) -> bool:
        return Path(path).resolve().is_relative_to(REPO_ROOT)

    def rel(path: str) -> str:
        p = Path(path).resolve()
        return str(p.relative_to(REPO_ROOT)) if inside(path) else p.name

    cell = (f"!git clone -q --depth=1 {REPO_URL} /content/gqa && cd /content/gqa && "
            f"python -m gqa_lib sweep {rel(grid)} --out {rel(out)}")
    if not inside(grid):
        cell += f"  (upload {rel(grid)} to /content/gqa first: it is not in the repository)"
    return cell


def _add_sweep_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run a grid of training runs, one CSV row per run")
    p.add_argument("grid", help="grid file (.toml), e.g. data/sweeps/cpu-v1.toml")
    p.add_argument("--out", required=True, help="CSV to append rows to (created if missing)")
    p.add_argument("--shard", default="0/1",
                   help="run every n-th run starting at i (0-based): i/n, e.g. 0/2 and 1/2")
    p.add_argument("--runs-dir", help="folder for per-run checkpoints (default runs/GRID)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep each finished run's ckpt.pt (default: deleted once its row is "
                        "saved)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the runs and their estimated time without training")
    p.add_argument("--estimate-for", choices=["auto", "h200", "t4", "cpu"], default="auto",
                   help="device the time estimate is for (default: the one the runs would "
                   "use; t4 is a datasheet ratio)")
    p.add_argument("--threads", type=positive_int("--threads"), help="torch CPU threads")
    p.add_argument("--json", action="store_true",
                   help="print the counts (ok, failed, skipped) as JSON")


def add_parsers(sub: Any) -> None:
    _add_train_parser(sub)
    _add_sweep_parser(sub)
