"""Parameter counts of a decoder: the breakdown, N (non-embedding), totals, and the matrix
parameters whose 2x is the time-invariant FLOPs per token (active experts only).

Per layer, with d = d_model, d_h = d_head, n_h, n_kv, d_ff:

- attention: Q and O are d d_h n_h each, K and V d d_h n_kv each. Multi-head latent attention
  (DeepSeek V2/V3; r = kv_lora_rank, r_q = q_lora_rank, d_qk = qk_nope_dim + qk_rope_dim =
  d_head, d_v = v_head_dim) replaces them by Q = d r_q + r_q n_h d_qk (or d n_h d_qk when
  r_q = 0), "K" = the down-projection d (r + qk_rope_dim), "V" = the up-projection
  r n_h (qk_nope_dim + d_v), O = n_h d_v d; its two latent norms (r_q + r) count as norms.
- FFN: m d d_ff with m = 3 (gated) or 2. A mixture of experts has, in each of its
  L - n_dense_layers layers, n_experts experts of width d_ff_expert, a shared expert of total
  width d_ff_shared and a router of d n_experts; the dense layers keep width d_ff.
  ``active_*`` counts only the n_experts_active routed experts a token uses.
- small parts, each off by default: q/k/v biases d_h (n_h + 2 n_kv), output bias d, FFN biases
  (m - 1) d_ff + d, qk-norm gains 2 d_h (or (n_h + n_kv) d_h per head), n_norms norms of d
  per layer plus a final one (x norm_vectors), attention sinks n_h, router and expert biases.
Outside the layers: embedding V d, LM head V d unless tied (+ V with a bias), a learned
position table n_positions d. Tied weights count once (what safetensors stores).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gqa_lib.arch.config import ModelConfig
from gqa_lib.cost.batch import ConfigBatch, model_config, scalar, where
from gqa_lib.errors import GQAError, check_int


def _check_ffn_matrices(ffn_matrices: int | None) -> None:
    if ffn_matrices not in (None, 2, 3):
        raise GQAError(f"ffn_matrices must be None (from the architecture), 2 or 3, got "
                       f"{ffn_matrices!r}")


def _attention(s: ConfigBatch) -> tuple[Any, Any, Any, Any]:
    """(Q, K, V, O) matrix parameters of one layer; the MLA projections where kv_lora_rank > 0."""
    d, dh, nh, nkv = s.d_model, s.d_head, s.n_head, s.n_kv_head
    q, k, o = d * dh * nh, d * dh * nkv, d * dh * nh
    v = k
    mla = s.kv_lora_rank > 0
    if np.any(mla):
        r, rq = s.kv_lora_rank, s.q_lora_rank
        q = np.where(mla, np.where(rq > 0, d * rq + rq * nh * dh, q), q)
        k = np.where(mla, d * (r + s.qk_rope_dim), k)
        v = np.where(mla, r * nh * (s.qk_nope_dim + s.v_head_dim), v)
        o = np.where(mla, nh * s.v_head_dim * d, o)
    return q, k, v, o


def _ffn(s: ConfigBatch, n_mat: Any, active: bool) -> Any:
    """FFN matrix parameters of all layers: dense layers, then experts (all or active)."""
    dense = s.n_dense_layers * n_mat * s.d_model * s.d_ff
    if not np.any(s.n_experts):
        return dense
    experts = s.n_experts_active if active else s.n_experts
    width = experts * s.d_ff_expert + s.d_ff_shared
    return dense + s.n_moe_layers * n_mat * s.d_model * width


def _router(s: ConfigBatch) -> Any:
    """Router matrices d n_experts and Qwen2-MoE's shared-expert gates d, per MoE layer."""
    if not np.any(s.n_experts):
        return 0
    return s.n_moe_layers * s.d_model * (s.n_experts + s.shared_expert_gate)


def _if(flag: Any, value: Callable[[], Any]) -> Any:
    """value() where flag, else 0; value is not computed at all when no flag is set (the
    explorers call these on millions of configurations that have none of the small parts)."""
    if not np.any(flag):
        return 0
    v = value()
    return v if np.all(flag) else np.where(flag, v, 0)


def _small(s: ConfigBatch, n_mat: Any, include_norms: bool, active: bool = False
           ) -> dict[str, Any]:
    """The O(d) parts: biases, norms, sinks, router biases (see the module docstring)."""
    L, d, dh, nh, nkv = s.n_layer, s.d_model, s.d_head, s.n_head, s.n_kv_head
    experts = s.n_experts_active if active else s.n_experts
    out = {
        "attn_bias": (_if(s.qkv_bias, lambda: L * dh * (nh + 2 * nkv))
                      + _if(s.o_bias, lambda: L * d)),
        "ffn_bias": (_if(s.ffn_bias, lambda: s.n_dense_layers * ((n_mat - 1) * s.d_ff + d))
                     + _if(s.expert_bias, lambda: s.n_moe_layers * experts
                           * ((n_mat - 1) * s.d_ff_expert + d))),
        "attn_sinks": _if(s.attn_sinks, lambda: L * nh),
        "router_bias": _if(s.router_bias, lambda: s.n_moe_layers * s.n_experts),
        "qk_norm": 0, "norms": 0,
    }
    if include_norms:
        out["qk_norm"] = _if(s.qk_norm, lambda: L * np.where(s.qk_norm_heads, (nh + nkv) * dh,
                                                              2 * dh))
        out["norms"] = (s.n_norms * L + 1) * d * s.norm_vectors + _if(
            s.kv_lora_rank > 0, lambda: L * (s.kv_lora_rank + s.q_lora_rank))
    return out


def param_counts(
    cfg: ModelConfig | ConfigBatch, *, ffn_matrices: int | None = None, include_norms: bool = True
) -> dict[str, Any]:
    """Parameter breakdown in values: one entry per component, plus totals.

    Keys: ``embedding`` (V d), ``lm_head`` (V d, 0 when tied; + V for a bias),
    ``pos_embedding`` (n_positions d), ``attn_q``/``attn_k``/``attn_v``/``attn_o`` (see the
    module docstring for MLA), ``attn_bias``, ``attn_sinks``, ``qk_norm``, ``ffn`` (every
    expert), ``ffn_bias``, ``router`` (router and shared-expert gate matrices),
    ``router_bias``, ``norms``, ``non_embedding`` (all but the three embedding tables),
    ``total``. The components sum to the total; :func:`params_active` counts only the experts
    a token is routed to.
    """
    _check_ffn_matrices(ffn_matrices)
    s = ConfigBatch.of(cfg)
    L = s.n_layer
    n_mat = np.where(s.ffn_gated, 3, 2) if ffn_matrices is None else ffn_matrices
    embedding = s.vocab_size * s.d_model
    q, k, v, o = _attention(s)
    small = _small(s, n_mat, include_norms)
    out = {
        "embedding": embedding,
        "lm_head": np.where(s.tie_embeddings, 0, embedding) + where(s.lm_head_bias,
                                                                      s.vocab_size),
        "pos_embedding": s.n_positions * s.d_model,
        "attn_q": L * q, "attn_k": L * k, "attn_v": L * v, "attn_o": L * o,
        "attn_bias": small["attn_bias"], "attn_sinks": small["attn_sinks"],
        "qk_norm": small["qk_norm"],
        "ffn": _ffn(s, n_mat, active=False), "ffn_bias": small["ffn_bias"],
        "router": _router(s), "router_bias": small["router_bias"],
        "norms": small["norms"],
    }
    outside = out["embedding"] + out["lm_head"] + out["pos_embedding"]
    out["non_embedding"] = sum(v for k, v in out.items()
                               if k not in ("embedding", "lm_head", "pos_embedding"))
    out["total"] = out["non_embedding"] + outside
    return {k: scalar(v) for k, v in out.items()}


def _weights(s: ConfigBatch, ffn_matrices: int | None, include_norms: bool,
             active: bool = False, small: bool = True) -> tuple[Any, Any]:
    """(matrix parameters, other non-embedding parameters): the totals of
    :func:`param_counts` without its breakdown, in a few array operations (the explorers and
    sweeps over millions of configurations call this); ``small=False`` skips the second."""
    _check_ffn_matrices(ffn_matrices)
    n_mat = np.where(s.ffn_gated, 3, 2) if ffn_matrices is None else ffn_matrices
    if not np.any(s.n_experts) and not np.any(s.kv_lora_rank):  # the paper's dense block
        matmul = s.n_layer * s.d_model * (2 * s.d_head * (s.n_head + s.n_kv_head)
                                          + n_mat * s.d_ff)
    else:
        q, k, v, o = _attention(s)
        matmul = s.n_layer * (q + k + v + o) + _ffn(s, n_mat, active) + _router(s)
    other = _sum(_small(s, n_mat, include_norms, active).values()) if small else 0
    return matmul, other


def _sum(values: Any) -> Any:
    """sum(values) without the copies that adding the zeros of absent parts would make."""
    parts = [v for v in values if not (np.ndim(v) == 0 and v == 0)]
    out = parts[0] if parts else 0
    for v in parts[1:]:
        out = out + v
    return out


def params_non_embedding(cfg: ModelConfig | ConfigBatch, *, ffn_matrices: int | None = None,
                         include_norms: bool = True) -> Any:
    """N of the paper: every parameter except the embedding table(s), every expert counted
    (what memory holds). See :func:`param_counts`."""
    matmul, other = _weights(ConfigBatch.of(cfg), ffn_matrices, include_norms)
    return scalar(matmul + other)


def params_total(cfg: ModelConfig | ConfigBatch, *, ffn_matrices: int | None = None,
                 include_norms: bool = True) -> Any:
    """All parameters, the tied embedding counted once."""
    s = ConfigBatch.of(cfg)
    matmul, other = _weights(s, ffn_matrices, include_norms)
    embedding = s.vocab_size * s.d_model
    head = np.where(s.tie_embeddings, 0, embedding) + where(s.lm_head_bias, s.vocab_size)
    return scalar(matmul + other + embedding + head + s.n_positions * s.d_model)


def params_active(cfg: ModelConfig | ConfigBatch, *, ffn_matrices: int | None = None,
                  include_norms: bool = True) -> Any:
    """Non-embedding parameters one token uses: the routed experts it is sent to, the shared
    expert(s) and every dense part (= :func:`params_non_embedding` for dense models)."""
    matmul, other = _weights(ConfigBatch.of(cfg), ffn_matrices, include_norms, active=True)
    return scalar(matmul + other)


def matmul_params(cfg: ModelConfig | ConfigBatch, *, ffn_matrices: int | None = None) -> Any:
    """Non-embedding parameters in the matrix multiplies one token runs: Q, K, V, O (or MLA's
    projections), the FFN with only the active experts, and the router.

    2x this is the time-invariant FLOPs per token. Norm gains and biases are left out: they cost
    O(d) per token, the paper ignores them, and FlopCounterMode does not count them. For MLA
    the count is the same whether the up-projection is applied to each new token (decompressed)
    or absorbed into the query and output projections (latent).
    """
    return scalar(_weights(ConfigBatch.of(cfg), ffn_matrices, False, active=True,
                           small=False)[0])


def d_ff_for_params(cfg: ModelConfig, target_non_embedding: int) -> int:
    """The FFN width that brings a dense config's non-embedding parameters closest to a
    target (they are linear in d_ff): how an equal-size comparison of head configurations
    moves the parameters that fewer heads save into the FFN. Refuses a target the config
    cannot reach with d_ff >= 1, and a mixture of experts (its width is not one number)."""
    import dataclasses

    cfg = model_config(cfg, "d_ff_for_params")
    target = check_int("target_non_embedding", target_non_embedding, lo=1)
    if cfg.n_experts:
        raise GQAError(f"{cfg.name or 'config'}: d_ff_for_params needs a dense config "
                       f"(n_experts={cfg.n_experts})")
    p1 = int(params_non_embedding(dataclasses.replace(cfg, d_ff=1)))
    slope = int(params_non_embedding(dataclasses.replace(cfg, d_ff=2))) - p1
    d_ff = 1 + round((target - p1) / slope)
    if d_ff < 1:
        raise GQAError(f"target_non_embedding={target:,} is below what "
                       f"{cfg.name or 'this config'} has with d_ff = 1 ({p1:,})")
    return d_ff
