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
                                       (query t attends t keys); "full" makes every query attend
                                       all T keys (what a masked kernel computes; FlopCounterMode
                                       on SDPA's math backend counts this).
compute conv.     "per_token"          the C inside Z: "per_token" = eq. 3, 2N + 4 T L d_h n_h;
                                       "fig2" = T (N + 2 T L d_h n_h) = (T/2) C_infer, the
                                       convention of the paper's Fig. 2 axes; "fig1" = T N +
                                       T^2 L d_h n_h (Fig. 1 right); "prefill" = the exact causal
                                       prefill sum.
memory unit       values               eq. 4 counts values (the figures call them bytes);
                                       `*_bytes` functions multiply by the dtype's size.
================  ===================  ===========================================================

Attention FLOPs grow with n_head (every query head scores every key, even when K/V are shared);
the KV cache grows with n_kv_head. A sliding window W caps the attended context at min(T, W).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gqa_lib.arch.config import ModelConfig
from gqa_lib.errors import MAX_EXACT, GQAError, check_choice, check_real

# Bits per stored value for each dtype name accepted by the `*_bytes` functions.
DTYPE_BITS: dict[str, int] = {
    "fp32": 32, "float32": 32, "fp16": 16, "float16": 16, "bf16": 16, "bfloat16": 16,
    "fp8": 8, "int8": 8, "int4": 4,
}
COMPUTE_CONVENTIONS = ("per_token", "fig2", "fig1", "prefill")
DEFAULT_CONVENTION = "fig2"  # the recipe's default: the one that reproduces the paper's Table 4


@dataclass(frozen=True)
class ConfigBatch:
    """Many configurations as parallel numpy arrays (float allowed, e.g. a continuous n_layer).

    Build with :meth:`of`; every cost function accepts it wherever it accepts a ModelConfig.
    ``window`` is the sliding window with ``inf`` for none; ``norm_vectors`` is 1 for RMSNorm
    (a gain) and 2 for LayerNorm (gain and bias).
    """

    n_layer: np.ndarray
    d_model: np.ndarray
    n_head: np.ndarray
    n_kv_head: np.ndarray
    d_head: np.ndarray
    d_ff: np.ndarray
    vocab_size: np.ndarray
    ffn_gated: np.ndarray
    tie_embeddings: np.ndarray
    norm_vectors: np.ndarray
    qk_norm: np.ndarray
    qkv_bias: np.ndarray
    window: np.ndarray

    @classmethod
    def of(cls, cfgs: ModelConfig | Sequence[ModelConfig] | ConfigBatch) -> ConfigBatch:
        if isinstance(cfgs, ConfigBatch):
            return cfgs
        single = isinstance(cfgs, ModelConfig)
        items = [cfgs] if single else list(cfgs) if isinstance(cfgs, (list, tuple)) else []
        if not items or not all(isinstance(c, ModelConfig) for c in items):
            raise GQAError("cfg must be a ModelConfig, a non-empty list of them, or a ConfigBatch")

        def col(get):
            a = np.array([get(c) for c in items])
            return a[0] if single else a

        batch = cls(
            n_layer=col(lambda c: c.n_layer), d_model=col(lambda c: c.d_model),
            n_head=col(lambda c: c.n_head), n_kv_head=col(lambda c: c.n_kv_head),
            d_head=col(lambda c: c.d_head), d_ff=col(lambda c: c.d_ff),
            vocab_size=col(lambda c: c.vocab_size), ffn_gated=col(lambda c: c.ffn_gated),
            tie_embeddings=col(lambda c: c.tie_embeddings),
            norm_vectors=col(lambda c: 2 if c.norm == "layernorm" else 1),
            qk_norm=col(lambda c: c.qk_norm), qkv_bias=col(lambda c: c.qkv_bias),
            window=col(lambda c: np.inf if c.sliding_window is None else c.sliding_window),
        )
        _check_exact_params(batch)
        return batch

    @classmethod
    def from_arrays(cls, *, n_layer, d_model, n_head, n_kv_head, d_head, d_ff,
                    vocab_size=50_304, ffn_gated=True, tie_embeddings=True, norm_vectors=1,
                    qk_norm=False, qkv_bias=False, window=np.inf) -> ConfigBatch:
        """Build from broadcastable arrays (for sweeps over continuous sizes); no rounding."""
        kw = {k: np.asarray(v) for k, v in locals().items() if k != "cls"}
        for k in _SIZE_FIELDS:
            if kw[k].dtype.kind not in "iuf" or kw[k].size == 0:
                raise GQAError(f"{k} must be a number or array of numbers, got {kw[k]!r}")
            if not (np.all(kw[k] > 0) and np.all(kw[k] <= MAX_EXACT)):
                raise GQAError(f"{k} must be positive and at most 2**53 everywhere")
        if kw["window"].dtype.kind not in "iuf" or not np.all(kw["window"] > 0):
            raise GQAError("window must be a positive number of tokens (inf for none)")
        batch = cls(**kw)
        _check_exact_params(batch)
        return batch


_SIZE_FIELDS = ("n_layer", "d_model", "n_head", "n_kv_head", "d_head", "d_ff", "vocab_size")


def _check_exact_params(s: ConfigBatch) -> None:
    """Refuse integer configurations whose parameter count would exceed 2**53 (an int64
    product would wrap past 2**63; float64 consumers would round past 2**53). The bound is
    taken over the largest variant (3 FFN matrices, untied, LayerNorm, biases, qk-norm)."""
    if not any(np.asarray(getattr(s, k)).dtype.kind in "iu" for k in _SIZE_FIELDS):
        return  # a continuous batch: float counts by design
    if _params_bound({k: float(np.max(getattr(s, k))) for k in _SIZE_FIELDS}) <= MAX_EXACT:
        return  # the bound at every field's maximum holds: no elementwise pass needed
    f = {k: np.asarray(getattr(s, k), np.float64) for k in _SIZE_FIELDS}
    bound = _params_bound(f)
    if np.max(bound) > MAX_EXACT:
        i = int(np.argmax(np.ravel(bound)))
        shape = ", ".join(f"{k}={int(np.ravel(np.broadcast_to(v, np.shape(bound)))[i])}"
                          for k, v in f.items())
        raise GQAError(f"model too large to count exactly: ~{np.ravel(bound)[i]:.3g} "
                       f"parameters exceeds 2**53 ({shape})")


def _params_bound(f: dict[str, Any]) -> Any:
    """Parameters of the largest variant of these fields, in float64."""
    L, d, dh = f["n_layer"], f["d_model"], f["d_head"]
    return (L * d * (2 * dh * (f["n_head"] + f["n_kv_head"]) + 3 * f["d_ff"])
            + L * dh * (f["n_head"] + 2 * f["n_kv_head"] + 2) + 2 * (2 * L + 1) * d
            + 2 * f["vocab_size"] * d)


def _check_exact_product(what: str, factors: dict[str, Any]) -> None:
    """Refuse an integer product of `factors` above 2**53, naming them (cheap: the product
    of the maxima first; elementwise only when that bound is exceeded)."""
    arrays = [np.asarray(v) for v in factors.values()]
    if not all(a.dtype.kind in "iu" for a in arrays):
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


def _context(T: Any, name: str = "context_len") -> np.ndarray:
    """T as an array of positive token counts at most 2**53 (numbers only: no strings,
    bools or None)."""
    t = np.asarray(T) if not isinstance(T, (str, bytes)) else np.asarray(None)
    if t.dtype.kind not in "iuf" or t.size == 0:
        raise GQAError(f"{name} must be a positive number or array of them, got {T!r}")
    if not (t.min() > 0 and t.max() <= MAX_EXACT):  # reductions, no temporaries; NaN fails
        raise GQAError(f"{name} must be > 0 and at most 2**53 tokens, got {T!r}")
    return t


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


# ----- parameters --------------------------------------------------------------------------
def param_counts(
    cfg: ModelConfig | ConfigBatch, *, ffn_matrices: int | None = None, include_norms: bool = True
) -> dict[str, Any]:
    """Parameter breakdown in values: one entry per component, plus totals.

    Keys: ``embedding`` (V d), ``lm_head`` (V d, 0 when tied), ``attn_q``/``attn_o``
    (L d d_h n_h each), ``attn_k``/``attn_v`` (L d d_h n_kv each), ``attn_bias`` (Qwen2's q/k/v
    biases), ``qk_norm`` (2 L d_h), ``ffn`` (ffn_matrices L d d_ff), ``norms`` (2 L + 1 gains of
    size d; doubled for LayerNorm), ``non_embedding`` (all but embedding and lm_head), ``total``.
    """
    if ffn_matrices not in (None, 2, 3):
        raise GQAError(f"ffn_matrices must be None (from the architecture), 2 or 3, got "
                       f"{ffn_matrices!r}")
    s = ConfigBatch.of(cfg)
    L, d, dh, nh, nkv = s.n_layer, s.d_model, s.d_head, s.n_head, s.n_kv_head
    n_mat = np.where(s.ffn_gated, 3, 2) if ffn_matrices is None else ffn_matrices
    embedding = s.vocab_size * d
    out = {
        "embedding": embedding,
        "lm_head": np.where(s.tie_embeddings, 0, embedding),
        "attn_q": L * d * dh * nh,
        "attn_k": L * d * dh * nkv,
        "attn_v": L * d * dh * nkv,
        "attn_o": L * d * dh * nh,
        "attn_bias": np.where(s.qkv_bias, L * dh * (nh + 2 * nkv), 0),
        "qk_norm": np.where(s.qk_norm, 2 * L * dh, 0) * include_norms,
        "ffn": n_mat * L * d * s.d_ff,
        "norms": (2 * L + 1) * d * s.norm_vectors * include_norms,
    }
    out["non_embedding"] = sum(v for k, v in out.items() if k not in ("embedding", "lm_head"))
    out["total"] = out["non_embedding"] + out["embedding"] + out["lm_head"]
    return {k: _scalar(v) for k, v in out.items()}


def _where(flag: np.ndarray, value: Any) -> Any:
    """np.where(flag, value, 0), skipping the work when the flag is the same everywhere."""
    if not np.any(flag):
        return 0
    return value if np.all(flag) else np.where(flag, value, 0)


def _weights(s: ConfigBatch, ffn_matrices: int | None, include_norms: bool
             ) -> tuple[Any, Any]:
    """(matrix parameters, other non-embedding parameters): the totals of
    :func:`param_counts` without its breakdown, in a few array operations (the explorers and
    sweeps over millions of configurations call this)."""
    if ffn_matrices not in (None, 2, 3):
        raise GQAError(f"ffn_matrices must be None (from the architecture), 2 or 3, got "
                       f"{ffn_matrices!r}")
    L, d, dh = s.n_layer, s.d_model, s.d_head
    n_mat = np.where(s.ffn_gated, 3, 2) if ffn_matrices is None else ffn_matrices
    matmul = L * d * (2 * dh * (s.n_head + s.n_kv_head) + n_mat * s.d_ff)
    other = _where(s.qkv_bias, L * dh * (s.n_head + 2 * s.n_kv_head))
    if include_norms:
        other = other + _where(s.qk_norm, 2 * L * dh) + (2 * L + 1) * d * s.norm_vectors
    return matmul, other


def params_non_embedding(cfg: ModelConfig | ConfigBatch, *, ffn_matrices: int | None = None,
                         include_norms: bool = True) -> Any:
    """N of the paper: every parameter except the embedding table(s). See :func:`param_counts`."""
    matmul, other = _weights(ConfigBatch.of(cfg), ffn_matrices, include_norms)
    return _scalar(matmul + other)


def params_total(cfg: ModelConfig | ConfigBatch, *, ffn_matrices: int | None = None,
                 include_norms: bool = True) -> Any:
    """All parameters, the tied embedding counted once."""
    s = ConfigBatch.of(cfg)
    matmul, other = _weights(s, ffn_matrices, include_norms)
    embedding = s.vocab_size * s.d_model
    return _scalar(matmul + other + embedding + np.where(s.tie_embeddings, 0, embedding))


def matmul_params(cfg: ModelConfig | ConfigBatch, *, ffn_matrices: int | None = None) -> Any:
    """Non-embedding parameters that sit in matrix multiplies: Q, K, V, O and the FFN.

    2x this is the time-invariant FLOPs per token. Norm gains and biases are left out: they cost
    O(d) per token, the paper ignores them, and FlopCounterMode does not count them.
    """
    return _scalar(_weights(ConfigBatch.of(cfg), ffn_matrices, False)[0])


# ----- FLOPs -------------------------------------------------------------------------------
def attended_context(cfg: ModelConfig | ConfigBatch, T: Any) -> Any:
    """Keys one query attends at context T: min(T, sliding_window)."""
    s = ConfigBatch.of(cfg)
    t, w = _context(T), np.asarray(s.window)
    finite = np.isfinite(w)
    if not finite.any():
        return _scalar(t)  # keeps integer contexts integer (exact counts)
    w = np.where(finite, w, 0).astype(t.dtype) if t.dtype.kind in "iu" else w
    return _scalar(np.where(finite, np.minimum(t, w), t))


def inference_flops(
    cfg: ModelConfig | ConfigBatch, T: Any, *, lm_head: bool = False,
    ffn_matrices: int | None = None,
) -> dict[str, Any]:
    """FLOPs to process one token that attends a context of T tokens (decode step; eq. 3).

    ``time_invariant`` = 2 N (N = matrix parameters), ``time_variant`` = 4 T L d_h n_h
    (scores q.k and the weighted sum of values, 2 d_h FLOPs each per key per query head; no
    causal halving: the token attends all T), ``lm_head`` = 2 d V when requested, ``total``.
    """
    s = ConfigBatch.of(cfg)
    t = np.asarray(attended_context(s, T), dtype=np.float64)
    out = {
        "time_invariant": 2.0 * np.asarray(matmul_params(s, ffn_matrices=ffn_matrices), float),
        "time_variant": 4.0 * t * s.n_layer * s.d_head * s.n_head,
        "lm_head": (2.0 * s.d_model * s.vocab_size) if lm_head else 0.0,
    }
    out["total"] = out["time_invariant"] + out["time_variant"]
    if lm_head:
        out["total"] = out["total"] + out["lm_head"]
    return {k: _scalar(np.broadcast_to(v, np.shape(out["total"]))) for k, v in out.items()}


def flops_per_token(cfg: ModelConfig | ConfigBatch, T: Any, **conventions: Any) -> Any:
    """C_infer(T) = 2N + 4 T L d_h n_h (eq. 3); see :func:`inference_flops` for options."""
    return inference_flops(cfg, T, **conventions)["total"]


def _causal_key_sum(T: np.ndarray, W: np.ndarray) -> np.ndarray:
    """sum_{t=1}^{T} min(t, W): keys attended over a causal prefill with a sliding window W."""
    T = np.asarray(T, np.float64)
    W = np.minimum(np.asarray(W, np.float64), T)
    return W * (W + 1) / 2 + (T - W) * W


def prefill_flops(
    cfg: ModelConfig | ConfigBatch, T: Any, *, attention: str = "causal", lm_head: bool = False,
    ffn_matrices: int | None = None,
) -> Any:
    """FLOPs of one forward pass over a prompt of T tokens.

    2 N T + 4 L d_h n_h K, with K the keys attended summed over queries: T (T + 1) / 2 for
    ``attention="causal"`` (windowed when the model has a sliding window), T^2 for ``"full"``.
    """
    check_choice("attention", attention, ("causal", "full"))
    s = ConfigBatch.of(cfg)
    t = np.asarray(_context(T), np.float64)
    keys = _causal_key_sum(t, s.window) if attention == "causal" else t * np.minimum(t, s.window)
    n = np.asarray(matmul_params(s, ffn_matrices=ffn_matrices), np.float64)
    total = 2.0 * n * t + 4.0 * s.n_layer * s.d_head * s.n_head * keys
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
    ffn_matrices: int | None = None,
) -> Any:
    """C_train = 6 D N + 12 D T_bar L d_h n_h (eq. 10-11); D = training tokens.

    T_bar is the mean attended context: T_train / 2 for causal training (the paper's value; the
    exact mean is (T+1)/2), T_train for ``attention="full"``. Windowed models cap it.
    """
    check_choice("attention", attention, ("causal", "full"))
    s = ConfigBatch.of(cfg)
    D = _context(tokens, "tokens").astype(np.float64)
    t = np.minimum(np.asarray(_context(T_train, "T_train"), np.float64), s.window)
    t_bar = t / 2 if attention == "causal" else t
    n = np.asarray(matmul_params(s, ffn_matrices=ffn_matrices), np.float64)
    return _scalar(6.0 * D * n + 12.0 * D * t_bar * s.n_layer * s.d_head * s.n_head)


# ----- memory ------------------------------------------------------------------------------
def kv_cache_values(cfg: ModelConfig | ConfigBatch, T: Any, *, batch: Any = 1) -> Any:
    """Values in the KV cache after T tokens: 2 L n_kv d_h min(T, W) per sequence."""
    s = ConfigBatch.of(cfg)
    t, b = np.asarray(attended_context(s, T)), _batch_size(batch)
    _check_exact_product("KV cache", {"2": 2, "n_layer": s.n_layer, "n_kv_head": s.n_kv_head,
                                      "d_head": s.d_head, "context_len": t, "batch": b})
    return _scalar(2 * s.n_layer * s.n_kv_head * s.d_head * t * b)


def kv_cache_bytes(
    cfg: ModelConfig | ConfigBatch, T: Any, *, dtype: str = "bf16", batch: Any = 1
) -> Any:
    """KV cache size in bytes: :func:`kv_cache_values` times the dtype's size."""
    return _values_to_bytes(kv_cache_values(cfg, T, batch=batch), dtype)


def inference_memory_values(
    cfg: ModelConfig | ConfigBatch, T: Any, *, batch: Any = 1, include_embeddings: bool = False,
    **conventions: Any,
) -> Any:
    """M_infer(T) = N + 2 T L d_h n_kv (eq. 4), in values; activations are ignored (paper)."""
    s = ConfigBatch.of(cfg)
    weights = (params_total if include_embeddings else params_non_embedding)(s, **conventions)
    return _scalar(np.asarray(weights) + np.asarray(kv_cache_values(s, T, batch=batch)))


def inference_memory_bytes(
    cfg: ModelConfig | ConfigBatch, T: Any, *, dtype: str = "bf16", kv_dtype: str | None = None,
    batch: Any = 1, include_embeddings: bool = False, **conventions: Any,
) -> Any:
    """Eq. 4 in bytes: weights in `dtype`, cache in `kv_dtype` (default: same as weights)."""
    s = ConfigBatch.of(cfg)
    weights = (params_total if include_embeddings else params_non_embedding)(s, **conventions)
    kv = kv_cache_bytes(s, T, dtype=kv_dtype or dtype, batch=batch)
    return _scalar(np.asarray(_values_to_bytes(weights, dtype)) + np.asarray(kv))


def training_memory_values(
    cfg: ModelConfig | ConfigBatch, T_train: Any, *, batch: Any = 1, **conventions: Any
) -> Any:
    """M_train ~ 4 N + B T d L (eq. 12): weights, gradients, two Adam moments, and one
    d-vector of activations per token and layer (the paper's coarse activation term)."""
    s = ConfigBatch.of(cfg)
    n = np.asarray(params_non_embedding(cfg, **conventions))
    t, b = np.asarray(_context(T_train, "T_train")), _batch_size(batch)
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
    a = np.asarray(x) if not isinstance(x, (str, bytes)) else np.asarray(None)
    if a.dtype.kind not in "iuf" or a.size == 0:
        raise GQAError(f"{name} must be a number or array of numbers, got {x!r}")
    a = a.astype(np.float64, copy=False)
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
    cfg: ModelConfig, T: Any, *, dtype: str = "bf16", batch: int = 1
) -> dict[str, Any]:
    """Everything `gqa cost` reports for one config at context T, keyed as in its JSON."""
    p = param_counts(cfg)
    f = inference_flops(cfg, T)
    return {
        "params_total": p["total"],
        "params_non_embedding": p["non_embedding"],
        "params": p,
        "kv_cache_values": kv_cache_values(cfg, T, batch=batch),
        "kv_cache_bytes": kv_cache_bytes(cfg, T, dtype=dtype, batch=batch),
        "flops_per_token": f["total"],
        "flops_time_invariant": f["time_invariant"],
        "flops_time_variant": f["time_variant"],
        "flops_lm_head": inference_flops(cfg, T, lm_head=True)["lm_head"],
        "prefill_flops": prefill_flops(cfg, T),
        "memory_values": inference_memory_values(cfg, T, batch=batch),
        "memory_bytes": inference_memory_bytes(cfg, T, dtype=dtype, batch=batch),
        "memory_bytes_with_embeddings": inference_memory_bytes(
            cfg, T, dtype=dtype, batch=batch, include_embeddings=True
        ),
        "kv_cache_share_of_memory": float(
            kv_cache_values(cfg, T, batch=batch) / inference_memory_values(cfg, T, batch=batch)
        ),
        "context_len": T,
        "attended_context": attended_context(cfg, T),
        "dtype": dtype,
        "batch": batch,
        "config": dataclasses.asdict(cfg),
    }
