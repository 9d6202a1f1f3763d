"""`gqa cost` (parameters, KV cache, memory and FLOPs of one model at given contexts) and
`gqa models` (the presets with their published totals)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gqa_lib import cost
from gqa_lib.arch.config import PRESETS, PUBLISHED_PARAMS
from gqa_lib.cli.common import (add_model_args, command, context_arg, model_from_args, positive_int,
                                print_json, print_table)
from gqa_lib.errors import GQAError
from gqa_lib.units import format_bytes, format_context, format_count, format_flops


# Above this a context is more likely a typo than a model (10M tokens is the longest
# context window published, Llama 4 Scout's): `gqa cost` still counts it, and warns.
LONGEST_CONTEXT = 16 * 1024**2


@command
def cmd_cost(args: argparse.Namespace) -> int:
    if "rope_theta" in args.flags_given:  # refused, not ignored: the user meant something
        raise GQAError("--rope-theta changes no count (the RoPE base sets no parameter, FLOP "
                       "or cache size); it is a setting for gqa train")
    cfg = model_from_args(args)
    if "mla" in args.flags_given and not cfg.is_mla:
        raise GQAError(f"--mla applies to a model with latent attention (MLA, e.g. DeepSeek); "
                       f"{cfg.name or 'this model'} has none")
    for T in args.context:
        if T > LONGEST_CONTEXT:  # counted exactly, but more likely a slip ('128000k')
            print(f"gqa cost: warning: T = {format_context(T)} tokens ({T:,}) is over "
                  f"{format_context(LONGEST_CONTEXT)}, longer than any published model's "
                  "context window; the counts are exact for it, but check --context "
                  "(k = 1,024 tokens)", file=sys.stderr)
    results = [cost.summary(cfg, T, dtype=args.dtype, batch=args.batch, mla=args.mla)
               for T in args.context]
    if args.json:
        print_json(results[0] if len(results) == 1 else results)
        return 0
    p = results[0]["params"]
    print(f"{cfg.name or 'model'}: {cfg.label}, d_ff {cfg.d_ff}, V {cfg.vocab_size}, {cfg.ffn}, "
          f"{'tied' if cfg.tie_embeddings else 'untied'} embeddings"
          + (" (n_head*d_head != d_model)" if cfg.decoupled else ""))
    for line in _structure_lines(cfg, args.mla):
        print("  " + line)
    active = results[0]["params_active"]
    rows = [
        ["parameters, total", f"{p['total']:,}", format_count(p["total"])],
        ["  non-embedding (N)", f"{p['non_embedding']:,}", format_count(p["non_embedding"])],
        ["  embedding + LM head", f"{p['embedding'] + p['lm_head'] + p['pos_embedding']:,}",
         format_count(p["embedding"] + p["lm_head"] + p["pos_embedding"])],
        ["  attention Q,K,V,O", f"{p['attn_q'] + p['attn_k'] + p['attn_v'] + p['attn_o']:,}", ""],
        ["  FFN" + (" (all experts)" if cfg.is_moe else ""), f"{p['ffn']:,}", ""],
    ]
    if cfg.is_moe:
        rows.append(["  router", f"{p['router'] + p['router_bias']:,}", ""])
        rows.append(["active per token (non-emb.)", f"{active:,}", format_count(active)])
    print_table(rows)
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
        "FLOPs/token 2N", "+ attention", "= C_infer",
    ])
    experts = (" (every expert)", "active ") if cfg.is_moe else ("", "")
    print(f"\nmemory (eq. 4) = non-embedding weights{experts[0]} + KV cache; 2N counts the "
          f"{experts[1]}matrix parameters;\nattention = 2 n_h (d_k + d_v) per key attended, summed "
          "over layers (4 T L d_h n_h for full GQA);\nFLOPs exclude the LM head (--json has "
          "both variants).")
    return 0


def _structure_lines(cfg, mla: str) -> list[str]:
    """The per-layer attention, MoE and MLA structure in words (empty for a plain model)."""
    lines = []
    n_full = cfg.n_layer - cfg.n_window_layers - cfg.n_chunk_layers
    if cfg.n_window_layers or cfg.n_chunk_layers:
        parts = [f"{n_full} full"] if n_full else []
        if cfg.n_window_layers:
            parts.append(f"{cfg.n_window_layers} sliding-window ({cfg.sliding_window} tokens)")
        if cfg.n_chunk_layers:
            parts.append(f"{cfg.n_chunk_layers} chunked ({cfg.attention_chunk} tokens)")
        lines.append(f"attention layers: {', '.join(parts)}; a W-token layer caches "
                     "min(T, W) tokens")
    if cfg.is_moe:
        shared = f" + shared {cfg.d_ff_shared}" if cfg.d_ff_shared else ""
        dense = (f"; {cfg.n_dense_layers} dense layer(s) (d_ff {cfg.d_ff})"
                 if cfg.n_dense_layers else "")
        lines.append(f"mixture of experts: {cfg.n_moe_layers} layers x {cfg.n_experts} experts "
                     f"of {cfg.d_ff_expert}, {cfg.n_experts_active} per token{shared}{dense}; "
                     "memory counts every expert, FLOPs the active ones")
    if cfg.is_mla:
        if mla == "latent":
            kv = f"latent r + rope = {cfg.kv_lora_rank + cfg.qk_rope_dim} values/token/layer"
        else:
            kv = (f"decompressed n_h (d_qk + d_v) = "
                  f"{cfg.n_head * (cfg.d_head + cfg.v_head_dim)} values/token/layer")
        lines.append(f"latent attention (MLA): kv_lora_rank {cfg.kv_lora_rank}, q_lora_rank "
                     f"{cfg.q_lora_rank}, rope {cfg.qk_rope_dim}; KV cache {kv} (--mla {mla})")
    return lines


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


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("cost", help="parameters, KV cache, memory and FLOPs of one model")
    add_model_args(p)
    p.add_argument("--context", required=True, nargs="+", type=context_arg, metavar="T",
                   help="context length(s): 131072, 128k, 128K, 1M")
    p.add_argument("--dtype", default="bf16", choices=list(cost.DTYPE_BITS),
                   help="precision of weights and cache (default bf16)")
    p.add_argument("--batch", type=positive_int("--batch"), default=1,
                   help="sequences served at once")
    p.add_argument("--mla", default="latent", choices=list(cost.MLA_CONVENTIONS),
                   help="latent-attention models: cache and attention FLOPs of the compressed "
                        "latent (default; what serving systems and transformers 5 store) or of "
                        "the decompressed per-head K/V (a plain implementation)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("models", help="list the preset models")
    p.add_argument("--json", action="store_true")
