"""ConfigBatch: many model configurations as parallel numpy arrays, one per field.

Every cost function takes a :class:`~gqa_lib.arch.config.ModelConfig` or a ConfigBatch. The
layer pattern is held as counts per attention kind (``n_window_layers`` layers with window
``window``, ``n_chunk_layers`` with chunk ``chunk``, the rest full attention), a mixture of
experts as (``n_experts``, ``n_experts_active``, ``d_ff_expert``, ``d_ff_shared``,
``n_dense_layers``), multi-head latent attention as (``kv_lora_rank``, ``q_lora_rank``,
``qk_rope_dim``, ``qk_nope_dim``, ``v_head_dim``): sums over layers are then array arithmetic,
never Python loops, and every extra field defaults to the paper's dense GQA block.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gqa_lib.arch.config import ModelConfig
from gqa_lib.errors import MAX_EXACT, GQAError


@dataclass(frozen=True)
class ConfigBatch:
    """Many configurations as parallel numpy arrays (float allowed, e.g. a continuous n_layer).

    Build with :meth:`of` (from ModelConfigs) or :meth:`from_arrays` (broadcastable arrays).
    ``window`` and ``chunk`` are ``inf`` where a model has none; ``norm_vectors`` is 0, 1
    (gain) or 2 (gain and bias) per norm.
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
    n_window_layers: np.ndarray
    chunk: np.ndarray
    n_chunk_layers: np.ndarray
    n_norms: np.ndarray
    qk_norm_heads: np.ndarray
    o_bias: np.ndarray
    ffn_bias: np.ndarray
    lm_head_bias: np.ndarray
    n_positions: np.ndarray
    attn_sinks: np.ndarray
    n_experts: np.ndarray
    n_experts_active: np.ndarray
    d_ff_expert: np.ndarray
    d_ff_shared: np.ndarray
    n_dense_layers: np.ndarray
    router_bias: np.ndarray
    expert_bias: np.ndarray
    shared_expert_gate: np.ndarray
    kv_lora_rank: np.ndarray
    q_lora_rank: np.ndarray
    qk_rope_dim: np.ndarray
    qk_nope_dim: np.ndarray
    v_head_dim: np.ndarray

    @classmethod
    def of(cls, cfgs: ModelConfig | Sequence[ModelConfig] | ConfigBatch) -> ConfigBatch:
        if isinstance(cfgs, ConfigBatch):
            return cfgs
        if isinstance(cfgs, ModelConfig):
            return _of_one(cfgs)
        return cls._build(cfgs, single=False)

    @classmethod
    def _build(cls, cfgs: Any, single: bool) -> ConfigBatch:
        items = [cfgs] if single else list(cfgs) if isinstance(cfgs, (list, tuple)) else []
        if not items or not all(isinstance(c, ModelConfig) for c in items):
            raise GQAError("cfg must be a ModelConfig, a non-empty list of them, or a ConfigBatch")
        rows = [_row(c) for c in items]
        cols = {}
        for f in rows[0]:
            a = np.array([r[f] for r in rows])
            cols[f] = a[0] if single else a
        batch = cls(**cols)
        _check_exact_params(batch)
        return batch

    @classmethod
    def from_arrays(cls, *, n_layer, d_model, n_head, n_kv_head, d_head, d_ff,
                    vocab_size=50_304, ffn_gated=True, tie_embeddings=True, norm_vectors=1,
                    qk_norm=False, qkv_bias=False, window=np.inf, n_window_layers=None,
                    chunk=np.inf, n_chunk_layers=0, n_norms=2, qk_norm_heads=False,
                    o_bias=False, ffn_bias=False, lm_head_bias=False, n_positions=0,
                    attn_sinks=False, n_experts=0, n_experts_active=0, d_ff_expert=0,
                    d_ff_shared=0, n_dense_layers=None, router_bias=False, expert_bias=False,
                    shared_expert_gate=False, kv_lora_rank=0, q_lora_rank=0, qk_rope_dim=0,
                    qk_nope_dim=0, v_head_dim=0) -> ConfigBatch:
        """Build from broadcastable arrays (for sweeps over continuous sizes); no rounding.

        ``n_window_layers`` defaults to every layer where ``window`` is finite (the old
        one-window-for-all meaning), ``n_dense_layers`` to every layer where ``n_experts`` is 0
        and none elsewhere. "Which layers are global" is then a knob: pass n_window_layers.
        """
        kw = {k: np.asarray(v) for k, v in locals().items() if k != "cls" and v is not None}
        for k in _SIZE_FIELDS:
            if kw[k].dtype.kind not in "iuf" or kw[k].size == 0:
                raise GQAError(f"{k} must be a number or array of numbers, got {kw[k]!r}")
            if not (np.all(kw[k] > 0) and np.all(kw[k] <= MAX_EXACT)):
                raise GQAError(f"{k} must be positive and at most 2**53 everywhere")
        if kw["window"].dtype.kind not in "iuf" or not np.all(kw["window"] > 0):
            raise GQAError("window must be a positive number of tokens (inf for none)")
        if n_window_layers is None:
            kw["n_window_layers"] = _where_else(np.isfinite(kw["window"]), kw["n_layer"], 0)
        if n_dense_layers is None:
            kw["n_dense_layers"] = _where_else(kw["n_experts"] > 0, 0, kw["n_layer"])
        elif np.any((kw["n_experts"] == 0) & (kw["n_dense_layers"] != kw["n_layer"])):
            raise GQAError("n_dense_layers must equal n_layer where n_experts = 0")
        local = kw["n_window_layers"] + kw["n_chunk_layers"]
        if np.any(local < 0) or np.any(local > kw["n_layer"]):
            raise GQAError("n_window_layers + n_chunk_layers must lie in 0..n_layer everywhere")
        if np.any(kw["n_dense_layers"] < 0) or np.any(kw["n_dense_layers"] > kw["n_layer"]):
            raise GQAError("n_dense_layers must lie in 0..n_layer everywhere")
        batch = cls(**kw)
        _check_exact_params(batch)
        return batch

    @property
    def n_full_layers(self) -> np.ndarray:
        """Layers attending every earlier token."""
        return self.n_layer - self.n_window_layers - self.n_chunk_layers

    @property
    def n_moe_layers(self) -> np.ndarray:
        return self.n_layer - self.n_dense_layers


_SIZE_FIELDS = ("n_layer", "d_model", "n_head", "n_kv_head", "d_head", "d_ff", "vocab_size")
# Extra fields that enter the parameter bound (experts, latent attention, learned positions)
_EXTRA_FIELDS = ("n_experts", "d_ff_expert", "d_ff_shared", "kv_lora_rank", "q_lora_rank",
                 "qk_rope_dim", "qk_nope_dim", "v_head_dim", "n_positions", "ffn_bias",
                 "o_bias", "lm_head_bias")


def _check_exact_params(s: ConfigBatch) -> None:
    """Refuse integer configurations whose parameter count could exceed 2**53 (an int64
    product would wrap past 2**63; float64 consumers round past 2**53). The bound is the
    count of the largest variant of the fields (every layer both dense and with all its
    experts, latent attention on top of the GQA projections, untied, every bias and norm),
    so it holds for every element; computed on the fields' maxima first, elementwise only
    when that bound is exceeded. (tests/test_hostile.py checks it against an exact count.)"""
    fields = _SIZE_FIELDS + _EXTRA_FIELDS
    if not any(np.asarray(getattr(s, k)).dtype.kind in "iu" for k in _SIZE_FIELDS):
        return  # a continuous batch: float counts by design
    if _params_bound({k: float(np.max(getattr(s, k))) for k in fields}) <= MAX_EXACT:
        return
    f = {k: np.asarray(getattr(s, k), np.float64) for k in fields}
    bound = _params_bound(f)
    if np.max(bound) > MAX_EXACT:
        i = int(np.argmax(np.ravel(bound)))
        shape = ", ".join(f"{k}={int(np.ravel(np.broadcast_to(v, np.shape(bound)))[i])}"
                          for k, v in f.items() if np.any(v))
        raise GQAError(f"model too large to count exactly: ~{np.ravel(bound)[i]:.3g} "
                       f"parameters exceeds 2**53 ({shape})")


def _params_bound(f: dict[str, Any]) -> Any:
    """Parameters of the largest variant of these fields, in float64: the dense block with
    3 FFN matrices, untied, LayerNorm, q/k/v biases and qk-norm, plus every extra part the
    fields switch on (FFN and output biases, learned positions, experts with their router,
    shared experts, latent attention); each extra term is 0 for a model without it."""
    L, d, dh, h, kv = f["n_layer"], f["d_model"], f["d_head"], f["n_head"], f["n_kv_head"]
    dense = (L * d * (2 * dh * (h + kv) + 3 * f["d_ff"]) + L * dh * (h + 2 * kv + 2)
             + 2 * (2 * L + 1) * d + 2 * f["vocab_size"] * d)
    biases = (f["ffn_bias"] * L * (2 * f["d_ff"] + d) + f["o_bias"] * L * d
              + f["lm_head_bias"] * f["vocab_size"] + f["n_positions"] * d)
    E, dfe, dfs = f["n_experts"], f["d_ff_expert"], f["d_ff_shared"]
    experts = L * E * (3 * d * dfe + 2 * dfe + 2 * d + 1) + L * (3 * d * dfs + np.sign(dfs) * (d + 1))
    heads = f["qk_rope_dim"] + f["qk_nope_dim"] + f["v_head_dim"]
    latent = (L * (f["kv_lora_rank"] + f["q_lora_rank"]) * (d + h * (heads + dh) + 1)
              + L * d * h * heads)
    return dense + biases + experts + latent


def model_config(cfg: Any, fn: str) -> ModelConfig:
    """`cfg` where it is a ModelConfig, for the functions that take one configuration only
    (`fn` names the function); GQAError naming `cfg` otherwise."""
    if not isinstance(cfg, ModelConfig):
        raise GQAError(f"{fn}: cfg must be a ModelConfig (a preset: get_preset('llama-3.2-1b'), "
                       f"or from_hf_config(path)), got {type(cfg).__name__} {cfg!r:.60}")
    return cfg


def _where_else(flag: np.ndarray, a: Any, b: Any) -> Any:
    """np.where(flag, a, b) without building an array when the flag is uniform."""
    if np.all(flag):
        return np.asarray(a)
    return np.asarray(b) if not np.any(flag) else np.where(flag, a, b)


@functools.lru_cache(maxsize=4096)
def _of_one(cfg: ModelConfig) -> ConfigBatch:
    """One ModelConfig as 0-d arrays, cached: configs are frozen, and a loop over a few presets
    would otherwise rebuild the same 36 arrays on every call."""
    return ConfigBatch._build(cfg, single=True)


def _row(c: ModelConfig) -> dict[str, Any]:
    """One ModelConfig as the ConfigBatch fields (scalars)."""
    return dict(
        n_layer=c.n_layer, d_model=c.d_model, n_head=c.n_head, n_kv_head=c.n_kv_head,
        d_head=c.d_head, d_ff=c.d_ff, vocab_size=c.vocab_size, ffn_gated=c.ffn_gated,
        tie_embeddings=c.tie_embeddings, norm_vectors=c.n_norm_vectors, qk_norm=c.qk_norm,
        qkv_bias=c.qkv_bias,
        window=np.inf if c.sliding_window is None else c.sliding_window,
        n_window_layers=c.n_window_layers,
        chunk=np.inf if c.attention_chunk is None else c.attention_chunk,
        n_chunk_layers=c.n_chunk_layers, n_norms=c.n_norms, qk_norm_heads=c.qk_norm_heads,
        o_bias=c.o_bias, ffn_bias=c.ffn_bias, lm_head_bias=c.lm_head_bias,
        n_positions=c.n_positions, attn_sinks=c.attn_sinks, n_experts=c.n_experts,
        n_experts_active=c.n_experts_active, d_ff_expert=c.d_ff_expert or 0,
        d_ff_shared=c.d_ff_shared, n_dense_layers=c.n_layer - c.n_moe_layers,
        router_bias=c.router_bias, expert_bias=c.expert_bias,
        shared_expert_gate=c.shared_expert_gate, kv_lora_rank=c.kv_lora_rank,
        q_lora_rank=c.q_lora_rank, qk_rope_dim=c.qk_rope_dim, qk_nope_dim=c.qk_nope_dim,
        v_head_dim=c.v_head_dim,
    )


def scalar(x: Any) -> Any:
    """Unwrap 0-d arrays so scalar inputs give numpy scalars, not 0-d arrays."""
    x = np.asarray(x)
    return x[()] if x.ndim == 0 else x


def where(flag: Any, value: Any) -> Any:
    """np.where(flag, value, 0), skipping the work when the flag is the same everywhere."""
    if not np.any(flag):
        return 0
    return value if np.all(flag) else np.where(flag, value, 0)


def product(first: Any, *factors: Any, dtype: Any = None) -> Any:
    """first * factors[0] * ..., multiplying in place where the running product already has the
    broadcast shape and dtype: one result array instead of one per factor. (On arrays of 64K
    configurations each fresh temporary costs page faults, not arithmetic.)"""
    out = np.multiply(first, factors[0], dtype=dtype) if dtype else np.multiply(first, factors[0])
    for f in factors[1:]:
        if (isinstance(out, np.ndarray) and out.ndim
                and np.broadcast_shapes(out.shape, np.shape(f)) == out.shape
                and np.result_type(out, f) == out.dtype):
            np.multiply(out, f, out=out)
        else:
            out = out * f
    return out
