"""What every `gqa` subcommand shares: the command registry, JSON and table printing, argument
types whose errors name the flag, and the model options (--model / --hf-config / --config or
shape flags) with the one function that turns them into a ModelConfig."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gqa_lib.arch.config import FFN_KINDS, NORM_KINDS, ModelConfig, get_preset
from gqa_lib.errors import MAX_EXACT, GQAError, check_real
from gqa_lib.units import parse_context

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[fn.__name__.removeprefix("cmd_")] = fn
    return fn


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
        parse = positive_int(flag) if typ is int else finite_float(flag, lo=0.0, lo_open=True)
        src.add_argument(flag, dest=field, type=parse, help=hlp)
    src.add_argument("--ffn", choices=FFN_KINDS, help="FFN kind (swiglu/geglu/reglu are gated)")
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
        from gqa_lib.arch.hf import from_hf_config

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
    for flag in ("qkv_bias", "qk_norm"):
        if base.is_mla and overrides.get(flag):
            raise GQAError(f"--{flag.replace('_', '-')}: {base.name or 'the model'} has latent "
                           "attention (kv_lora_rank > 0), whose q/k/v are latent projections "
                           "without biases or a qk-norm; the flag applies to GQA models only")
    if base.is_mla and "n_head" in overrides:  # latent attention: one K/V per query head
        overrides.setdefault("n_kv_head", overrides["n_head"])
    name = base.name or "the model"
    if "d_ff" in overrides and base.is_moe and base.n_dense_layers == 0:
        raise GQAError(f"--d-ff sets the width of dense FFN layers, which {name} has none of "
                       f"(a mixture of experts of width {base.d_ff_expert:,} in every layer; no "
                       "flag changes it: edit a --config file's d_ff_expert)")
    if ("n_layer" in overrides and base.layer_types is not None
            and len(base.layer_types) != overrides["n_layer"]):
        raise GQAError(f"--n-layer {overrides['n_layer']}: {name} has a per-layer attention "
                       f"pattern (layer_types) of {len(base.layer_types)} layers that no flag "
                       "changes; give a --config file with its own layer_types")
    return dataclasses.replace(base, **overrides) if overrides else base


def context_arg(text: str) -> int:
    try:
        return parse_context(text)
    except GQAError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive_int(flag: str, *, zero: bool = False, hi: int = MAX_EXACT
                 ) -> Callable[[str], int]:
    """argparse type: an integer > 0 (>= 0 with ``zero``) and <= `hi`, the error naming
    ``flag``."""
    what = "a non-negative integer" if zero else "a positive integer"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be {what}, got {text!r}") from None
        if v < 0 or (v == 0 and not zero):
            raise argparse.ArgumentTypeError(f"{flag} must be {what}, got {text!r}")
        if v > hi:
            raise argparse.ArgumentTypeError(f"{flag} must be at most {hi_text}, got {text!r}")
        return v

    hi_text = "2**53" if hi == MAX_EXACT else f"{hi:,}"
    return parse


def finite_float(flag: str, *, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, hi_open: bool = False) -> Callable[[str], float]:
    """argparse type: a finite number (no nan/inf) in the given range, the error naming
    ``flag``."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {text!r}") from None
        try:
            return check_real(flag, v, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)
        except GQAError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse
