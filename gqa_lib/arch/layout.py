"""Validation of the ModelConfig fields beyond the paper's block: the per-layer attention
pattern (``layer_types``, ``attention_chunk``), the mixture of experts, multi-head latent
attention and the small parts (extra norms, biases, sinks). Each defaults to the plain GQA
block; :class:`gqa_lib.arch.config.ModelConfig` calls :func:`check_extensions` last.
"""

from __future__ import annotations

import numbers
from typing import Any

from gqa_lib.errors import MAX_EXACT, GQAError, check_choice, check_int

# Attention kinds of a layer, named as transformers' `layer_types`: every earlier key
# ("full"), the last `sliding_window` keys ("sliding"), or the keys of the current block of
# `attention_chunk` tokens ("chunked", Llama 4).
LAYER_TYPES = ("full_attention", "sliding_attention", "chunked_attention")


def _positive(param: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise GQAError(f"{param} must be a positive integer, got {value!r}")
    return int(value)


def _whole(v: Any) -> int | None:
    """``v`` as an int where it is a whole number of at most 2**53 in size (8 or 8.0, as
    n_layer takes them; never a bool: :func:`gqa_lib.errors.check_int`), else None."""
    try:
        return check_int("v", v, lo=-MAX_EXACT)
    except GQAError:
        return None


def norm_vectors_of(norm: str) -> int:
    """Vectors a norm of this kind learns: RMSNorm 1 (gain), LayerNorm 2 (gain, bias)."""
    return 2 if norm == "layernorm" else 1


def check_extensions(c: Any) -> None:
    """Validate the per-layer, MoE, MLA and small-part fields (all default to the plain block)."""
    def setf(f, v):
        object.__setattr__(c, f, v)

    def nonneg(f):
        v = getattr(c, f)
        n = _whole(v)
        if n is None or n < 0:
            raise GQAError(f"{f} must be a non-negative integer, got {v!r}")
        setf(f, n)

    for f in ("n_norms", "n_positions", "n_experts", "n_experts_active", "d_ff_shared",
              "kv_lora_rank", "q_lora_rank", "qk_rope_dim", "qk_nope_dim", "v_head_dim"):
        nonneg(f)
    for f in ("qk_norm_heads", "o_bias", "ffn_bias", "lm_head_bias", "attn_sinks",
              "router_bias", "expert_bias", "shared_expert_gate"):
        if not isinstance(getattr(c, f), bool):
            raise GQAError(f"{f} must be true or false, got {getattr(c, f)!r}")
    if c.norm_vectors is not None:  # canonical: None where it is the norm's own count
        if isinstance(c.norm_vectors, bool):
            raise GQAError(f"norm_vectors must be 0, 1 or 2, got {c.norm_vectors!r}")
        check_choice("norm_vectors", c.norm_vectors, (0, 1, 2))
        setf("norm_vectors", None if c.norm_vectors == norm_vectors_of(c.norm)
             else int(c.norm_vectors))
    if c.attention_chunk is not None:
        setf("attention_chunk", _positive("attention_chunk", c.attention_chunk))
    _check_layer_types(c, setf)
    # mixture of experts
    if c.n_experts:
        if not 1 <= c.n_experts_active <= c.n_experts:
            raise GQAError(f"n_experts_active must be in 1..n_experts={c.n_experts}, got "
                           f"{c.n_experts_active!r}")
        setf("d_ff_expert", _positive("d_ff_expert", c.d_ff_expert))
        dense = 0 if c.n_dense_layers is None else c.n_dense_layers
    else:
        for f in ("n_experts_active", "d_ff_shared"):
            if getattr(c, f):
                raise GQAError(f"{f}={getattr(c, f)} needs n_experts > 0")
        if c.d_ff_expert is not None:
            raise GQAError("d_ff_expert needs n_experts > 0")
        if c.n_dense_layers is not None and c.n_dense_layers != c.n_layer:
            raise GQAError(f"n_dense_layers must be None or n_layer={c.n_layer} when "
                           f"n_experts = 0, got {c.n_dense_layers!r}")
        # stored as None, so that dataclasses.replace(cfg, n_layer=...) stays valid
        setf("n_dense_layers", None)
        dense = None
    if dense is not None:
        n = _whole(dense)
        if n is None or not 0 <= n <= c.n_layer:
            raise GQAError(f"n_dense_layers must be an integer in 0..n_layer={c.n_layer}, "
                           f"got {c.n_dense_layers!r}")
        setf("n_dense_layers", n)
    # multi-head latent attention
    if c.kv_lora_rank:
        for f in ("qk_rope_dim", "qk_nope_dim", "v_head_dim"):
            if not getattr(c, f):
                raise GQAError(f"{f} must be a positive integer with kv_lora_rank > 0")
        if c.d_head != c.qk_rope_dim + c.qk_nope_dim:
            raise GQAError(f"d_head={c.d_head} must equal qk_nope_dim + qk_rope_dim = "
                           f"{c.qk_nope_dim + c.qk_rope_dim} with kv_lora_rank > 0")
        if c.n_kv_head != c.n_head:
            raise GQAError("multi-head latent attention decompresses to n_kv_head = n_head; "
                           f"got n_kv_head={c.n_kv_head}, n_head={c.n_head}")
        for f in ("qkv_bias", "qk_norm"):  # GQA-shaped parts: no latent model has them
            if getattr(c, f):
                raise GQAError(f"{f}=True is not supported with multi-head latent attention "
                               "(kv_lora_rank > 0): its q/k/v are the latent projections, "
                               "which have no bias or per-head norm to count")
    elif c.q_lora_rank or c.qk_rope_dim or c.qk_nope_dim or c.v_head_dim:
        raise GQAError("q_lora_rank, qk_rope_dim, qk_nope_dim and v_head_dim need "
                       "kv_lora_rank > 0 (multi-head latent attention)")


def _check_layer_types(c: Any, setf: Any) -> None:
    """Validate `layer_types` and store it in its canonical form (None when all alike)."""
    lt = c.layer_types
    if lt is None:
        return
    if isinstance(lt, (str, bytes)) or not isinstance(lt, (list, tuple)):
        raise GQAError(f"layer_types must be a list of {c.n_layer} layer kinds, got {lt!r}")
    lt = tuple(lt)
    if len(lt) != c.n_layer:
        raise GQAError(f"layer_types has {len(lt)} entries but n_layer={c.n_layer}")
    for t in lt:
        check_choice("layer_types entry", t, LAYER_TYPES)
    if "sliding_attention" in lt and c.sliding_window is None:
        raise GQAError("layer_types has sliding_attention layers but sliding_window is not set")
    if "chunked_attention" in lt and c.attention_chunk is None:
        raise GQAError("layer_types has chunked_attention layers but attention_chunk is not set")
    kinds = set(lt)
    if kinds == {"full_attention"}:  # no window anywhere: the plain form
        setf("sliding_window", None)
        setf("attention_chunk", None)
        lt = None
    elif kinds == {"sliding_attention"} and c.attention_chunk is None:
        lt = None  # every layer windowed: what sliding_window alone means
    setf("layer_types", lt)
