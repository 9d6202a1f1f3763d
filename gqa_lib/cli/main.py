"""The `gqa` command line: a thin argparse layer over the library.

Every subcommand prints a readable table by default and JSON with ``--json``. Bad input exits
with status 2 and a one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import cost
from .config import FFN_KINDS, NORM_KINDS, PRESETS, PUBLISHED_PARAMS, ModelConfig, get_preset
from .errors import GQAError
from .units import format_bytes, format_context, format_count, format_flops, parse_context

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[fn.__name__.removeprefix("cmd_")] = fn
    return fn


# ----- shared helpers -----------------------------------------------------------------------
def jsonable(x: Any) -> Any:
    """numpy scalars/arrays -> Python numbers; integral floats below 2**53 -> int."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if not math.isfinite(x):
            return None
        return int(x) if x.is_integer() and abs(x) < 2**53 else x
    return x


def print_json(obj: Any) -> None:
    print(json.dumps(jsonable(obj), indent=2))


def print_table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> None:
    """Left-align text, right-align numbers; no dependencies."""
    table = [list(map(str, r)) for r in ([header] if header else []) + list(rows)]
    if not table:
        return
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]

    def fmt(r):
        return "  ".join(
            c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(r, widths)
        ).rstrip()

    for i, r in enumerate(table):
        print(fmt(r))
        if header and i == 0:
            print("  ".join("-" * w for w in widths))


def _numeric(s: str) -> bool:
    return bool(s) and (s[0].isdigit() or s[0] in "-+.") and any(ch.isdigit() for ch in s)


SHAPE_FLAGS = {  # flag -> (field, type, help)
    "--n-layer": ("n_layer", int, "layers L"),
    "--d-model": ("d_model", int, "hidden size d"),
    "--n-head": ("n_head", int, "query heads n_h"),
    "--n-kv-head": ("n_kv_head", int, "key/value heads n_kv (divides n_head)"),
    "--d-head": ("d_head", int, "head size d_h (free of d_model; default d_model/n_head)"),
    "--d-ff": ("d_ff", int, "FFN width (default int(8 d / 3))"),
    "--vocab-size": ("vocab_size", int, "vocabulary V"),
    "--sliding-window": ("sliding_window", int, "attention window (tokens)"),
    "--rope-theta": ("rope_theta", float, "RoPE base"),
}


def add_model_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """--model / --hf-config / --config, plus shape flags that override any of them."""
    src = p.add_argument_group("model (a preset, an HF config.json, a TOML/JSON file, or flags)")
    src.add_argument("--model", help="preset name (see `gqa models`)")
    src.add_argument("--hf-config", metavar="PATH", help="Hugging Face config.json (offline)")
    src.add_argument("--config", metavar="FILE", help="TOML/JSON file of ModelConfig fields")
    for flag, (field, typ, hlp) in SHAPE_FLAGS.items():
        src.add_argument(flag, dest=field, type=typ, help=hlp)
    src.add_argument("--ffn", choices=FFN_KINDS, help="FFN kind (swiglu/geglu are gated)")
    src.add_argument("--norm", choices=NORM_KINDS)
    src.add_argument("--untied", dest="tie_embeddings", action="store_false", default=None,
                     help="separate output embedding")
    src.add_argument("--qk-norm", action="store_true", default=None)
    src.add_argument("--qkv-bias", action="store_true", default=None)
    p.set_defaults(_model_required=required)


def model_from_args(args: argparse.Namespace) -> ModelConfig | None:
    sources = [s for s in ("model", "hf_config", "config") if getattr(args, s, None)]
    if len(sources) > 1:
        raise GQAError("give at most one of --model, --hf-config, --config")
    fields = [f.name for f in dataclasses.fields(ModelConfig)]
    overrides = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    if args.model:
        base = get_preset(args.model)
    elif args.hf_config:
        from .hf import from_hf_config

        base = from_hf_config(args.hf_config)
    elif args.config:
        base = ModelConfig.from_file(args.config)
    else:
        if not overrides and not args._model_required:
            return None
        missing = [f"--{f.replace('_', '-')}" for f in ("n_layer", "d_model", "n_head",
                                                        "n_kv_head") if f not in overrides]
        if missing:
            raise GQAError("give --model, --hf-config or --config, or the shape flags "
                           + ", ".join(missing))
        return ModelConfig(**overrides, name="custom")
    if overrides and "d_head" not in overrides and ("d_model" in overrides or "n_head" in
                                                    overrides):
        overrides.setdefault("d_head", base.d_head)
    return dataclasses.replace(base, **overrides) if overrides else base


def context_arg(text: str) -> int:
    try:
        return parse_context(text)
    except GQAError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# ----- gqa cost -----------------------------------------------------------------------------
@command
def cmd_cost(args: argparse.Namespace) -> int:
    cfg = model_from_args(args)
    results = [cost.summary(cfg, T, dtype=args.dtype, batch=args.batch) for T in args.context]
    if args.json:
        print_json(results[0] if len(results) == 1 else results)
        return 0
    p = results[0]["params"]
    print(f"{cfg.name or 'model'}: {cfg.label}, d_ff {cfg.d_ff}, V {cfg.vocab_size}, {cfg.ffn}, "
          f"{'tied' if cfg.tie_embeddings else 'untied'} embeddings"
          + (f", window {cfg.sliding_window}" if cfg.sliding_window else "")
          + (" (n_head*d_head != d_model)" if cfg.decoupled else ""))
    print_table([
        ["parameters, total", f"{p['total']:,}", format_count(p["total"])],
        ["  non-embedding (N)", f"{p['non_embedding']:,}", format_count(p["non_embedding"])],
        ["  embedding + LM head", f"{p['embedding'] + p['lm_head']:,}",
         format_count(p["embedding"] + p["lm_head"])],
        ["  attention Q,K,V,O", f"{p['attn_q'] + p['attn_k'] + p['attn_v'] + p['attn_o']:,}", ""],
        ["  FFN", f"{p['ffn']:,}", ""],
    ])
    print()
    rows = []
    for r in results:
        rows.append([
            format_context(r["context_len"]),
            format_bytes(r["kv_cache_bytes"]),
            format_bytes(r["memory_bytes"]),
            f"{100 * r['kv_cache_share_of_memory']:.1f}%",
            format_flops(r["flops_time_invariant"]),
            format_flops(r["flops_time_variant"]),
            format_flops(r["flops_per_token"]),
        ])
    print_table(rows, [
        "context", f"KV cache ({args.dtype}, batch {args.batch})", "memory (eq. 4)", "KV share",
        "FLOPs/token 2N", "+ 4TL d_h n_h", "= C_infer",
    ])
    print("\nmemory (eq. 4) = non-embedding weights + KV cache; FLOPs exclude the LM head "
          "(--json has both variants).")
    return 0


@command
def cmd_models(args: argparse.Namespace) -> int:
    rows = []
    for name, cfg in PRESETS.items():
        p = cost.param_counts(cfg)
        pub = PUBLISHED_PARAMS.get(name)
        rows.append({
            "name": name, "n_layer": cfg.n_layer, "d_model": cfg.d_model, "n_head": cfg.n_head,
            "n_kv_head": cfg.n_kv_head, "d_head": cfg.d_head, "d_ff": cfg.d_ff,
            "vocab_size": cfg.vocab_size, "params_total": p["total"],
            "params_non_embedding": p["non_embedding"],
            "published_total": pub["total"] if pub else None,
            "kv_bytes_per_token_bf16": cost.kv_cache_bytes(cfg, 1),
        })
    if args.json:
        print_json(rows)
        return 0
    print_table(
        [[r["name"], r["n_layer"], r["d_model"], r["n_head"], r["n_kv_head"], r["d_head"],
          r["d_ff"], r["vocab_size"], format_count(r["params_total"]),
          format_count(r["params_non_embedding"]), format_bytes(r["kv_bytes_per_token_bf16"])]
         for r in rows],
        ["name", "L", "d", "n_h", "n_kv", "d_h", "d_ff", "V", "params", "non-emb",
         "KV/token bf16"],
    )
    return 0


# ----- gqa train ----------------------------------------------------------------------------
@command
def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .train import TrainConfig, train

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


def add_train_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a GQA transformer on the shipped corpus or yours")
    add_model_args(p)
    p.add_argument("--out", required=True, help="run folder (metrics.jsonl, final.json, ckpt)")
    p.add_argument("--steps", type=_positive_int("--steps"))
    p.add_argument("--tokens", type=_positive_int("--tokens"), help="token budget")
    p.add_argument("--tokens-per-param", type=float, help="budget as tokens per non-embedding "
                   "parameter (paper: 20)")
    p.add_argument("--batch-size", type=_positive_int("--batch-size"))
    p.add_argument("--context", dest="context_len", type=context_arg, help="training context")
    p.add_argument("--lr", type=float, help="max learning rate of the WSD schedule")
    p.add_argument("--seed", type=int)
    p.add_argument("--eval-every", type=_positive_int("--eval-every"))
    p.add_argument("--data", help="'web' (shipped), a .txt/.jsonl file or folder, or hf:NAME")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--probe-samples", type=int, help="recall-probe samples at the end")
    p.add_argument("--threads", type=_positive_int("--threads"), help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--json", action="store_true")


# ----- gqa sweep ----------------------------------------------------------------------------
@command
def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import parse_shard, run_sweep

    shard = parse_shard(args.shard)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    counts = run_sweep(args.grid, args.out, runs_dir=args.runs_dir, shard=shard,
                       keep_checkpoints=args.keep_checkpoints, dry_run=args.dry_run)
    print(json.dumps(counts) if args.json else
          f"done: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped "
          f"of {counts['total']}")
    return 1 if counts["failed"] else 0


def add_sweep_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run a grid of training runs, one CSV row per run")
    p.add_argument("grid", help="grid file (.toml), e.g. data/sweeps/cpu-v1.toml")
    p.add_argument("--out", required=True, help="CSV to append rows to (created if missing)")
    p.add_argument("--shard", default="0/1", help="run every n-th run starting at i: i/n")
    p.add_argument("--runs-dir", help="folder for per-run checkpoints (default runs/GRID)")
    p.add_argument("--keep-checkpoints", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="list the runs without training")
    p.add_argument("--threads", type=_positive_int("--threads"), help="torch CPU threads")
    p.add_argument("--json", action="store_true")


# ----- parser -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gqa", description="Cost model and cost-optimal recipe for grouped-query attention "
        "(companion to Chen et al., EMNLP 2025).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("cost", help="parameters, KV cache, memory and FLOPs of one model")
    add_model_args(p)
    p.add_argument("--context", required=True, nargs="+", type=context_arg, metavar="T",
                   help="context length(s): 131072, 128k, 128K, 1M")
    p.add_argument("--dtype", default="bf16", choices=list(cost.DTYPE_BITS),
                   help="precision of weights and cache (default bf16)")
    p.add_argument("--batch", type=_positive_int("--batch"), default=1,
                   help="sequences served at once")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("models", help="list the preset models")
    p.add_argument("--json", action="store_true")

    for register in _EXTRA_PARSERS:
        register(sub)
    return parser


def _positive_int(flag: str, *, zero: bool = False) -> Callable[[str], int]:
    """argparse type: an integer > 0 (>= 0 with ``zero``), the error naming ``flag``."""
    what = "a non-negative integer" if zero else "a positive integer"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be {what}, got {text!r}") from None
        if v < 0 or (v == 0 and not zero):
            raise argparse.ArgumentTypeError(f"{flag} must be {what}, got {text!r}")
        return v

    return parse


def add_recipe_parsers(sub):
    from .recipe_cli import add_parsers
    add_parsers(sub)


# Subcommands whose parsers live below the core ones (their handlers import torch lazily).
_EXTRA_PARSERS: list[Callable[[Any], None]] = [add_train_parser, add_sweep_parser,
                                               add_recipe_parsers]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except GQAError as e:
        print(f"gqa {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `gqa models | head`
        return 0


if __name__ == "__main__":
    # `python -m gqa_lib.cli` runs this file as a second module named __main__; dispatch
    # through the package's copy, where every subcommand registered itself.
    from gqa_lib.cli import main as _main

    sys.exit(_main())
