"""Parameters, FLOPs, KV cache, memory and the hardware-aware cost Z of a GQA transformer.

Every function is pure and vectorised: `cfg` is a :class:`~gqa_lib.arch.config.ModelConfig` or a
:class:`ConfigBatch` (one array per field), and the context length ``T`` may be an array.
Inputs broadcast with numpy rules, so ``kv_cache_values(batch_of_8, T[:, None])`` is a
(len(T), 8) table. Results are in base units: parameters and cache in *values* (numbers
stored), bytes where the name says so, FLOPs as float64 (exact integers below 2**53).

Bounds, so that no count is ever wrapped or rounded: a configuration's parameters, a KV cache
(per config x context x batch) and training activations are integers of at most 2**53
(:data:`~gqa_lib.errors.MAX_EXACT`, the largest integer float64 holds exactly); inputs that
would exceed it, contexts or batches above it, and non-finite or non-numeric inputs are refused
with a GQAError naming them. Memory (weights + cache, <= 2**54) and bytes stay exact in int64.
FLOPs are float64: exact below 2**53, relative rounding of 2**-53 above (a 1e24-FLOP training
run is a float, not a count). Continuous (float) ConfigBatches give float counts throughout.

Counting conventions (all explicit keyword arguments; defaults reproduce the paper's equations):

================  ===================  ===========================================================
argument          default              meaning
================  ===================  ===========================================================
ffn_matrices      None (architecture)  FFN matrices per layer: 3 for gated (SwiGLU/GeGLU), 2 for
                                       GELU/ReLU. The paper's Table 1 writes 2 for its SwiGLU
                                       models; pass 2 to reproduce that table.
include_norms     True                 count RMSNorm/LayerNorm gains (and qk-norm) in parameters.
                                       The paper's figures ignore them (False).
lm_head           False                add the output projection's 2 d V FLOPs per token. The
                                       paper's C_infer (eq. 3) counts non-embedding work only.
include_embed.    False                add the embedding table(s) to inference memory. Eq. 4's N
                                       is non-embedding.
attention         "causal" (prefill)   prefill: "causal" sums the exact per-position cost
                                       (query t attends t keys, min(t, W) in a window); "full"
                                       makes every query attend all T keys, min(T, W) in a
                                       window (a masked kernel without windows computes this;
                                       FlopCounterMode counts T^2 in every layer, windows too).
compute conv.     "per_token"          the C inside Z: "per_token" = eq. 3, 2N + 4 T L d_h n_h;
                                       "fig2" = T (N + 2 T L d_h n_h) = (T/2) C_infer, the
                                       convention of the paper's Fig. 2 axes; "fig1" = T N +
                                       T^2 L d_h n_h (Fig. 1 right); "prefill" = the exact causal
                                       prefill sum.
memory unit       values               eq. 4 counts values (the figures call them bytes);
                                       `*_bytes` functions multiply by the dtype's size.
mla               "latent"             multi-head latent attention: cache and attend the
                                       compressed latent (r + r_d values per token and layer);
                                       "decompressed" = per-head K and V (see cost.attention).
================  ===================  ===========================================================

Attention FLOPs grow with n_head (every query head scores every key, even when K/V are shared);
the KV cache grows with n_kv_head. Layers differ: each is full attention, a sliding window W
(attends and caches min(T, W) tokens, its own included; transformers stores W - 1 between
steps) or chunked (Llama 4); KV cache and attention FLOPs are sums over layers
(:mod:`gqa_lib.cost.attention`). A mixture of experts counts every expert in memory
(:func:`params_non_embedding`, N in eq. 4) and only the routed ones a token uses in the
time-invariant FLOPs 2N (:func:`matmul_params`, eq. 3).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from gqa_lib.arch.config import ModelConfig
from gqa_lib.cost.attention import (attention_flops, KEY_SUMS, kv_width, layer_key_sum,
                                    MLA_CONVENTIONS)
from gqa_lib.cost.batch import ConfigBatch, model_config, product, scalar
from gqa_lib.cost.params import (matmul_params, param_counts, params_active,
                                 params_non_embedding, params_total)
from gqa_lib.errors import MAX_EXACT, GQAError, check_choice, check_int, check_numbers, check_real
from gqa_lib.units import format_context, format_tokens

__all__ = [  # the parameter counts and ConfigBatch are re-exported from here as before
    "attended_context", "bits_per_value", "COMPUTE_CONVENTIONS", "compute_flops", "ConfigBatch",
    "DEFAULT_CONVENTION", "DTYPE_BITS", "flops_per_token", "hardware_cost", "inference_flops",
    "inference_memory_bytes", "inference_memory_values", "KEY_SUMS", "kv_cache_bytes",
    "kv_cache_values", "layer_summary", "matmul_params", "MLA_CONVENTIONS", "param_counts",
    "params_active",
    "params_non_embedding", "params_total", "prefill_flops", "summary", "training_flops",
    "CONVENTION_LABELS",
    "training_memory_values",
]
_scalar = scalar

# Bits per stored value for each dtype name accepted by the `*_bytes` functions.
DTYPE_BITS: dict[str, int] = {
    "fp32": 32, "float32": 32, "fp16": 16, "float16": 16, "bf16": 16, "bfloat16": 16,
    "fp8": 8, "int8": 8, "int4": 4,
}
COMPUTE_CONVENTIONS = ("per_token", "fig2", "fig1", "prefill")
# What each convention counts, in words (menus and tables; the module table has the formulas)
CONVENTION_LABELS = {
    "per_token": "one generated token, eq. 3",
    "fig2": "T/2 tokens at eq. 3's rate, Fig. 2",  # the paper's figures
    "fig1": "T/2 tokens, attention halved, Fig. 1",
    "prefill": "a causal prefill of T tokens",
}
DEFAULT_CONVENTION = "fig2"  # the recipe's default: the one that reproduces the paper's Table 4


def _check_exact_product(what: str, factors: dict[str, Any], *,
                         integers_only: bool = True) -> None:
    """Refuse a product of `factors` above 2**53, naming them (cheap: the product of the
    maxima first; elementwise only when that bound is exceeded). With ``integers_only`` a
    product with a float factor (a continuous batch) is not checked."""
    arrays = [np.asarray(v) for v in factors.values()]
    if integers_only and not all(a.dtype.kind in "iu" for a in arrays):
        return
    if math.prod(float(a.max()) for a in arrays) <= MAX_EXACT:
        return  # the product of the maxima bounds every element: no elementwise pass
    prod = np.ones((), np.float64)
    for a in arrays:
        prod = prod * a.astype(np.float64)
    if np.max(prod) > MAX_EXACT:
        shown = ", ".join(f"{k}={int(np.max(v)):,}" for k, v in factors.items()
                          if np.size(v) == 1)
        raise GQAError(f"{what} of ~{float(np.max(prod)):.3g} values exceeds 2**53, the "
                       f"largest count the cost model holds exactly ({shown}); refusing "
                       "rather than returning a wrapped or rounded number")


def _scalar(x: Any) -> Any:
    """Unwrap 0-d arrays so scalar inputs give numpy scalars, not 0-d arrays."""
    x = np.asarray(x)
    return x[()] if x.ndim == 0 else x


def _context(T: Any, name: str = "context_len", s: ConfigBatch | None = None) -> np.ndarray:
    """T as an array of positive token counts at most 2**53 (numbers only: no strings,
    bools or None); with the configurations `s`, also within their learned positions."""
    t = np.asarray(T) if not isinstance(T, (str, bytes)) else np.asarray(None)
    if t.dtype.kind not in "iuf" or t.size == 0:
        raise GQAError(f"{name} must be a positive number or array of them, got {T!r}")
    if not (t.min() > 0 and t.max() <= MAX_EXACT):  # reductions, no temporaries; NaN fails
        raise GQAError(f"{name} must be > 0 and at most 2**53 tokens, got {T!r}")
    if s is not None and np.any(s.n_positions):
        _check_positions(s, t, name)
    return t


def _check_positions(s: ConfigBatch, t: np.ndarray, name: str) -> None:
    """Refuse a context past a learned position table (GPT-2's n_positions rows): the model
    has no position for those tokens, and transformers' forward pass fails on them (an
    IndexError). RoPE models have no such table, and are costed at any context."""
    n = np.asarray(s.n_positions)
    over = (n > 0) & (t > n)
    if np.any(over):
        i = np.unravel_index(int(np.argmax(over)), over.shape)
        t_bad = float(np.broadcast_to(t, over.shape)[i])
        n_bad = int(np.broadcast_to(n, over.shape)[i])
        shown = format_context(int(t_bad)) if t_bad.is_integer() else format_tokens(t_bad)
        raise GQAError(f"{name}={shown} exceeds n_positions={n_bad}, the rows of the model's "
                       "learned position embedding: it has no position past them "
                       "(transformers cannot run it); give a context of at most "
                       f"{format_context(n_bad)}")


def _batch_size(batch: Any) -> np.ndarray:
    """Sequences served at once: positive numbers at most 2**53."""
    b = np.asarray(batch) if not isinstance(batch, (str, bytes)) else np.asarray(None)
    if b.dtype.kind not in "iuf" or b.size == 0 or not (b.min() > 0 and b.max() <= MAX_EXACT):
        raise GQAError(f"batch must be a positive number of sequences (at most 2**53), "
                       f"got {batch!r}")
    return b


def bits_per_value(dtype: str) -> int:
    """Bits per stored value for a dtype name (see DTYPE_BITS)."""
    check_choice("dtype", dtype, DTYPE_BITS)
    return DTYPE_BITS[dtype]


def _values_to_bytes(values: Any, dtype: str) -> Any:
    bits = bits_per_value(dtype)
    v = np.asarray(values)
    if v.dtype.kind in "iu" and (bits % 8 == 0 or np.all((v * bits) % 8 == 0)):
        return _scalar(v * bits // 8)
    return _scalar(v * bits / 8)


# ----- FLOPs -------------------------------------------------------------------------------
def attended_context(cfg: ModelConfig | ConfigBatch, T: Any) -> Any:
    """Keys one query attends at context T, averaged over layers: min(T, W) for a model windowed
    in every layer, T for full attention (see :mod:`gqa_lib.cost.attention`)."""
    s = ConfigBatch.of(cfg)
    t = _context(T, s=s)
    keys = np.asarray(layer_key_sum(s, t, "decode"))
    L = np.asarray(s.n_layer)
    if keys.dtype.kind in "iu" and L.dtype.kind in "iu" and np.all(keys % L == 0):
        return _scalar(keys // L)
    return _scalar(keys / L)


def inference_flops(
    cfg: ModelConfig | ConfigBatch, T: Any, *, lm_head: bool = False,
    ffn_matrices: int | None = None, mla: str = "latent",
) -> dict[str, Any]:
    """FLOPs to process one token that attends a context of T tokens (decode step; eq. 3).

    ``time_invariant`` = 2 N_active (the matrix parameters one token uses: active experts
    only), ``time_variant`` = 2 n_h (d_k + d_v) K(T), K the keys attended summed over layers:
    4 T L d_h n_h for full GQA attention (scores q.k and the weighted sum of values, 2 d_h
    FLOPs each per key per query head; no causal halving: the token attends all T), with T
    capped at W (or C) in window (chunked) layers; ``mla`` picks MLA's convention.
    ``lm_head`` = 2 d V when requested, ``total``.
    """
    s = ConfigBatch.of(cfg)
    keys = layer_key_sum(s, _context(T, s=s), "decode")
    out = {
        "time_invariant": 2.0 * np.asarray(matmul_params(s, ffn_matrices=ffn_matrices), float),
        "time_variant": attention_flops(s, keys, mla),
        "lm_head": (2.0 * s.d_model * s.vocab_size) if lm_head else 0.0,
    }
    out["total"] = out["time_invariant"] + out["time_variant"]
    if lm_head:
        out["total"] = out["total"] + out["lm_head"]
    return {k: _scalar(np.broadcast_to(v, np.shape(out["total"]))) for k, v in out.items()}


def flops_per_token(cfg: ModelConfig | ConfigBatch, T: Any, **conventions: Any) -> Any:
    """C_infer(T) = 2N + 4 T L d_h n_h (eq. 3); see :func:`inference_flops` for options."""
    return inference_flops(cfg, T, **conventions)["total"]


def prefill_flops(
    cfg: ModelConfig | ConfigBatch, T: Any, *, attention: str = "causal", lm_head: bool = False,
    ffn_matrices: int | None = None, mla: str = "latent",
) -> Any:
    """FLOPs of one forward pass over a prompt of T tokens.

    2 N_active T + 2 n_h (d_k + d_v) K, with K the keys attended summed over queries and
    layers: T (T + 1) / 2 per full layer for ``attention="causal"`` (windowed and chunked
    layers see fewer), T^2 for ``"full"`` (T min(T, W) with a window).
    """
    check_choice("attention", attention, ("causal", "full"))
    s = ConfigBatch.of(cfg)
    t = np.asarray(_context(T, s=s), np.float64)
    keys = layer_key_sum(s, t, attention)
    n = np.asarray(matmul_params(s, ffn_matrices=ffn_matrices), np.float64)
    total = 2.0 * n * t + attention_flops(s, keys, mla)
    total = total + (2.0 * s.d_model * s.vocab_size * t) * float(lm_head)
    return _scalar(total)


def compute_flops(
    cfg: ModelConfig | ConfigBatch, T: Any, convention: str = "per_token", **conventions: Any
) -> Any:
    """The compute term C that enters Z, under a named convention (see the module table)."""
    check_choice("convention", convention, COMPUTE_CONVENTIONS)
    if convention == "prefill":
        return prefill_flops(cfg, T, attention="causal", **conventions)
    f = inference_flops(cfg, T, **conventions)
    t = np.asarray(_context(T), np.float64)
    if convention == "per_token":
        return f["total"]
    if convention == "fig2":
        return _scalar(t / 2 * f["total"])
    return _scalar(t / 2 * (f["time_invariant"] + f["lm_head"]) + t / 4 * f["time_variant"])


def training_flops(
    cfg: ModelConfig | ConfigBatch, tokens: Any, T_train: Any, *, attention: str = "causal",
    ffn_matrices: int | None = None, mla: str = "latent",
) -> Any:
    """C_train = 6 D N + 12 D T_bar L d_h n_h (eq. 10-11); D = training tokens.

    T_bar is the mean attended context: T_train / 2 for causal training (the paper's value; the
    exact mean is (T+1)/2), T_train for ``attention="full"``. A window or chunked layer's is its
    exact causal mean less the same half key (about W - 1/2 for a window W << T_train: a
    query attends W keys once past the first W, not W/2); L T_bar is the sum over layers.
    """
    check_choice("attention", attention, ("causal", "full"))
    s = ConfigBatch.of(cfg)
    D = _context(tokens, "tokens").astype(np.float64)
    t = np.asarray(_context(T_train, "T_train", s), np.float64)
    keys = layer_key_sum(s, t, "half" if attention == "causal" else "decode")
    n = np.asarray(matmul_params(s, ffn_matrices=ffn_matrices), np.float64)
    return _scalar(6.0 * D * n + 3.0 * D * attention_flops(s, keys, mla))


# ----- memory ------------------------------------------------------------------------------
def kv_cache_values(cfg: ModelConfig | ConfigBatch, T: Any, *, batch: Any = 1,
                    mla: str = "latent") -> Any:
    """Values in the KV cache after T tokens, summed over layers: 2 n_kv d_h min(T, W_l) per
    layer l and sequence (W_l = inf for full attention); MLA's per ``mla`` (latent r + r_d
    values per token and layer by default, or the decompressed per-head K and V)."""
    s = ConfigBatch.of(cfg)
    t, b = _context(T, s=s), _batch_size(batch)
    keys = layer_key_sum(s, t, "decode")  # keys cached, summed over layers
    width = kv_width(s, mla) if np.any(s.kv_lora_rank) else 2 * s.n_kv_head * s.d_head
    _check_exact_product("KV cache", {"cached keys over layers": keys, "values per key": width,
                                      "batch": b}, integers_only=False)
    if not np.any(s.kv_lora_rank):  # 2 n_kv d_h per token and layer, one result array
        return _scalar(product(keys, 2, s.n_kv_head, s.d_head, b))
    return _scalar(kv_width(s, mla) * np.asarray(keys) * b)


def kv_cache_bytes(
    cfg: ModelConfig | ConfigBatch, T: Any, *, dtype: str = "bf16", batch: Any = 1,
    mla: str = "latent",
) -> Any:
    """KV cache size in bytes: :func:`kv_cache_values` times the dtype's size."""
    return _values_to_bytes(kv_cache_values(cfg, T, batch=batch, mla=mla), dtype)


def inference_memory_values(
    cfg: ModelConfig | ConfigBatch, T: Any, *, batch: Any = 1, include_embeddings: bool = False,
    mla: str = "latent", **conventions: Any,
) -> Any:
    """M_infer(T) = N + 2 T L d_h n_kv (eq. 4), in values; activations are ignored (paper).
    N holds every expert of a mixture (memory), not only the active ones."""
    s = ConfigBatch.of(cfg)
    weights = (params_total if include_embeddings else params_non_embedding)(s, **conventions)
    return _scalar(np.asarray(weights) + np.asarray(kv_cache_values(s, T, batch=batch, mla=mla)))


def inference_memory_bytes(
    cfg: ModelConfig | ConfigBatch, T: Any, *, dtype: str = "bf16", kv_dtype: str | None = None,
    batch: Any = 1, include_embeddings: bool = False, mla: str = "latent", **conventions: Any,
) -> Any:
    """Eq. 4 in bytes: weights in `dtype`, cache in `kv_dtype` (default: same as weights)."""
    s = ConfigBatch.of(cfg)
    weights = (params_total if include_embeddings else params_non_embedding)(s, **conventions)
    kv = kv_cache_bytes(s, T, dtype=kv_dtype or dtype, batch=batch, mla=mla)
    return _scalar(np.asarray(_values_to_bytes(weights, dtype)) + np.asarray(kv))


def training_memory_values(
    cfg: ModelConfig | ConfigBatch, T_train: Any, *, batch: Any = 1, **conventions: Any
) -> Any:
    """M_train ~ 4 N + B T d L (eq. 12): weights, gradients, two Adam moments, and one
    d-vector of activations per token and layer (the paper's coarse activation term)."""
    s = ConfigBatch.of(cfg)
    n = np.asarray(params_non_embedding(cfg, **conventions))
    t, b = np.asarray(_context(T_train, "T_train", s)), _batch_size(batch)
    _check_exact_product("training activations", {"batch": b, "T_train": t,
                                                   "d_model": s.d_model, "n_layer": s.n_layer})
    return _scalar(4 * n + b * t * s.d_model * s.n_layer)


# ----- the hardware-aware cost -------------------------------------------------------------
def hardware_cost(
    memory: Any, flops: Any, *, lam: float = 0.9, alpha: float = 0.5, beta: float = 1 / 3
) -> Any:
    """Z = lam M^alpha + (1 - lam) C^beta (eq. 5). Not scale-free when alpha != beta, so the
    units and convention of M and C matter: the paper's defaults use values and eq. 3 or Fig. 2."""
    lam = check_real("lam (lambda)", lam, lo=0.0, hi=1.0)
    alpha = check_real("alpha", alpha, lo=0.0, lo_open=True)
    beta = check_real("beta", beta, lo=0.0, lo_open=True)
    m, c = _nonneg("memory", memory), _nonneg("flops", flops)
    with np.errstate(over="ignore", invalid="ignore"):  # refused just below, not warned
        z = lam * _power(m, alpha) + (1.0 - lam) * _power(c, beta)
    if not np.max(z) < np.inf:  # one reduction: NaN and inf both fail it
        raise GQAError(f"Z overflows float64 (memory or flops infinite, or alpha={alpha:g} / "
                       f"beta={beta:g} too large for these magnitudes)")
    return _scalar(z)


def _nonneg(name: str, x: Any) -> np.ndarray:
    a = check_numbers(name, x, "a number")
    if not a.min() >= 0:  # also false for NaN
        raise GQAError(f"{name} must be non-negative numbers (no NaN), got {x!r}")
    return a


def _power(x: np.ndarray, p: float) -> np.ndarray:
    """x**p, through the dedicated (faster) ufuncs for the paper's exponents 1/2 and 1/3."""
    if p == 0.5:
        return np.sqrt(x)
    if p == 1 / 3:
        return np.cbrt(x)
    return x**p


def summary(
    cfg: ModelConfig, T: Any, *, dtype: str = "bf16", batch: int = 1, mla: str = "latent"
) -> dict[str, Any]:
    """Everything `gqa cost` reports for one config at context T, keyed as in its JSON.

    One context and one batch, whole numbers of tokens and sequences: arrays are refused (the
    counts it gathers take them, and fractional values for continuous shapes)."""
    cfg = model_config(cfg, "summary")
    for name, v in (("context_len", T), ("batch", batch)):
        if np.ndim(v) != 0:
            raise GQAError(f"summary takes one {name}, got {v!r}; kv_cache_values, "
                           "inference_flops and the other counts take arrays")
    T, batch = check_int("context_len", T), check_int("batch", batch)
    p = param_counts(cfg)
    f = inference_flops(cfg, T, mla=mla)
    kv = kv_cache_values(cfg, T, batch=batch, mla=mla)
    memory = inference_memory_values(cfg, T, batch=batch, mla=mla)
    return {
        "params_total": p["total"],
        "params_non_embedding": p["non_embedding"],
        "params_active": params_active(cfg),
        "params": p,
        "layers": layer_summary(cfg),
        "kv_cache_values": kv,
        "kv_cache_bytes": kv_cache_bytes(cfg, T, dtype=dtype, batch=batch, mla=mla),
        "kv_convention": mla if cfg.is_mla else "gqa",
        "flops_per_token": f["total"],
        "flops_time_invariant": f["time_invariant"],
        "flops_time_variant": f["time_variant"],
        "flops_lm_head": inference_flops(cfg, T, lm_head=True)["lm_head"],
        "prefill_flops": prefill_flops(cfg, T, mla=mla),
        "memory_values": memory,
        "memory_bytes": inference_memory_bytes(cfg, T, dtype=dtype, batch=batch, mla=mla),
        "memory_bytes_with_embeddings": inference_memory_bytes(
            cfg, T, dtype=dtype, batch=batch, include_embeddings=True, mla=mla
        ),
        "kv_cache_share_of_memory": float(kv / memory),
        "context_len": T,
        "attended_context": attended_context(cfg, T),
        "dtype": dtype,
        "batch": batch,
        "config": dataclasses.asdict(cfg),
    }


def layer_summary(cfg: ModelConfig) -> dict[str, Any]:
    """Layers per attention kind and FFN kind: what `gqa cost` prints above its table."""
    cfg = model_config(cfg, "layer_summary")
    out: dict[str, Any] = {
        "full_attention": cfg.n_layer - cfg.n_window_layers - cfg.n_chunk_layers,
        "sliding_attention": cfg.n_window_layers, "window": cfg.sliding_window,
        "chunked_attention": cfg.n_chunk_layers, "chunk": cfg.attention_chunk,
        "dense_ffn": cfg.n_layer - cfg.n_moe_layers, "moe_ffn": cfg.n_moe_layers,
    }
    if cfg.is_moe:
        out.update(n_experts=cfg.n_experts, n_experts_active=cfg.n_experts_active,
                   d_ff_expert=cfg.d_ff_expert, d_ff_shared=cfg.d_ff_shared)
    if cfg.is_mla:
        out.update(kv_lora_rank=cfg.kv_lora_rank, q_lora_rank=cfg.q_lora_rank,
                   qk_rope_dim=cfg.qk_rope_dim, qk_nope_dim=cfg.qk_nope_dim,
                   v_head_dim=cfg.v_head_dim)
    return out
