"""How transformers 5 lays out each supported decoder, as ModelConfig fields.

One entry per ``model_type``: the defaults transformers applies to fields a config.json omits
and the key aliases (both in :mod:`gqa_lib.arch.hf_defaults`), and a builder that reads a
:class:`gqa_lib.arch.hf.Reader` into ModelConfig fields: which biases and norms the
architecture has, how it derives its per-layer attention pattern, its mixture of experts or
latent attention. tests/test_hf_oracle.py checks every entry against transformers itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gqa_lib.arch.hf_defaults import ALIASES, DEFAULTS, NOT_READ

_GATED = {"silu": "swiglu", "swish": "swiglu", "gelu": "geglu", "gelu_new": "geglu",
          "gelu_pytorch_tanh": "geglu", "gelu_fast": "geglu", "relu": "reglu"}
_PLAIN = {"gelu": "gelu", "gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "gelu_fast": "gelu",
          "relu": "relu"}


@dataclass(frozen=True)
class Family:
    build: Callable[[Any], dict[str, Any]]
    defaults: Mapping[str, Any]
    aliases: Mapping[str, str] = field(default_factory=dict)
    not_read: Mapping[str, str] = field(default_factory=dict)  # look-alike key -> field read


def _act(r, gated: bool = True) -> str:
    key = "hidden_activation" if r.raw("hidden_activation", None) is not None else "hidden_act"
    act = r.str(key)
    table = _GATED if gated else _PLAIN
    if act not in table:
        kind = "gated FFN" if gated else "two-matrix FFN"
        raise r.fail(f"{key}={act!r} is not supported for {r.model_type} ({kind}); supported: "
                     f"{', '.join(sorted(table))}")
    return table[act]


def _refuse_true(r, *keys: str, why: str = "") -> None:
    for k in keys:
        if r.has(k) and r.raw(k) not in (None, False, 0, [], {}):
            raise r.fail(f"{k}={r.raw(k)!r} is not supported for {r.model_type}"
                         + (f" ({why})" if why else ""))


def _core(r, *, head_dim: str = "config", gated: bool = True) -> dict[str, Any]:
    """The fields every decoder has: shape, vocabulary, tying, FFN kind, RoPE base.

    ``head_dim``: "config" reads it, "given" reads it where the file has it (null refused),
    "derived" ignores it. A head_dim that is null or missing is transformers' floor
    d_model // n_head: a hidden size that is no multiple of the heads builds and runs
    (Mistral, Qwen2, OLMo, Cohere...; q_proj maps d_model to n_head * d_head < d_model);
    the types whose transformers refuses it are in hf_defaults.HIDDEN_DIVISIBLE.
    """
    n_head = r.int("num_attention_heads")
    d_model = r.int("hidden_size")
    dh = (r.int("head_dim", null=None, default=None) if head_dim == "config" else
          r.int("head_dim") if head_dim == "given" and r.has("head_dim") else None)
    if dh is None and d_model % n_head and d_model >= n_head:
        dh = d_model // n_head
    return dict(
        n_layer=r.int("num_hidden_layers"), d_model=d_model, n_head=n_head,
        n_kv_head=r.int("num_key_value_heads", null=n_head, default=None),
        d_head=dh, d_ff=r.int("intermediate_size"), vocab_size=r.int("vocab_size"),
        ffn=_act(r, gated), tie_embeddings=r.bool("tie_word_embeddings"),
        rope_theta=r.rope_theta(),
    )


# ----- per-layer attention ---------------------------------------------------------------
def _pattern(r, n_layer: int, rule: Callable[[int], str] | None, window: int | None,
             chunk: int | None = None) -> dict[str, Any]:
    """layer_types from the file if given, else from the architecture's rule."""
    given = r.raw("layer_types", None)
    if given is not None:
        if not isinstance(given, list) or not all(isinstance(t, str) for t in given):
            raise r.fail(f"field 'layer_types' must be a list of strings, got {given!r:.60}")
        types = given
    elif rule is None:
        types = ["sliding_attention" if window else "full_attention"] * n_layer
    else:
        types = [rule(i) for i in range(n_layer)]
    if "sliding_attention" in types and window is None:
        raise r.fail("layer_types has sliding_attention layers but sliding_window is null")
    return dict(layer_types=tuple(types), sliding_window=window, attention_chunk=chunk)


def _no_pattern(r) -> dict[str, Any]:
    """Architectures whose layers all attend fully: a window or pattern field is refused, and
    a layer_types of another length than the layers (transformers' check refuses it)."""
    _refuse_true(r, "sliding_window", why="transformers' implementation has no window")
    lt = r.raw("layer_types", None)
    if lt is not None and (not isinstance(lt, list) or set(lt) != {"full_attention"}):
        raise r.fail(f"layer_types={lt!r:.60} is not supported for {r.model_type} (every layer "
                     "attends fully in transformers' implementation)")
    if lt is not None and len(lt) != (L := r.int("num_hidden_layers")):
        raise r.fail(f"layer_types has {len(lt)} entries but num_hidden_layers={L}")
    return {}


def _all_windowed(r) -> dict[str, Any]:
    """Mistral, Phi-3, Starcoder2, Mixtral: one optional window for every layer."""
    if r.raw("layer_types", None) is not None:
        raise r.fail(f"layer_types is not read by transformers' {r.model_type} (every layer "
                     "shares sliding_window); remove it")
    return dict(sliding_window=r.opt_int("sliding_window"))


def _every(k: int, first: str = "sliding_attention") -> Callable[[int], str]:
    """Layers (i + 1) % k != 0 get `first`, every k-th is full attention."""
    return lambda i: first if (i + 1) % k else "full_attention"


def _qwen_pattern(r, n_layer: int, moe: bool = False) -> dict[str, Any]:
    use = r.bool("use_sliding_window")
    window = r.opt_int("sliding_window") if use else None
    given = r.raw("layer_types", None)
    if not use and isinstance(given, list) and "sliding_attention" in given:
        default = "" if r.has("use_sliding_window") else f" (transformers' {r.model_type} default)"
        raise r.fail(f"layer_types has sliding_attention layers but use_sliding_window=false"
                     f"{default}, with which transformers sets sliding_window to null (its "
                     "cache then fails); set use_sliding_window to true, or make every layer "
                     "full_attention")
    if moe:  # Qwen2-MoE: odd-numbered (1-based) layers below max_window_layers
        mwl = r.int("max_window_layers", minimum=0)
        rule = lambda i: ("sliding_attention" if use and (i + 1) % 2 and i < mwl  # noqa: E731
                          else "full_attention")
        if use and window is None:
            raise r.fail("use_sliding_window=true needs an integer sliding_window")
    else:  # Qwen2/Qwen3: the window applies from layer max_window_layers on
        mwl = r.int("max_window_layers", minimum=0)
        rule = lambda i: ("sliding_attention" if window is not None and i >= mwl  # noqa: E731
                          else "full_attention")
    return _pattern(r, n_layer, rule, window)


# ----- mixture of experts ----------------------------------------------------------------
def _moe(r, n_layer: int, experts_key: str, *, width_key: str = "moe_intermediate_size",
         dense: int = 0, shared: int = 0, zero_is_dense: bool = False) -> dict[str, Any]:
    """The expert fields; {} (a dense model) for 0 experts where transformers then builds
    the dense MLP (Qwen MoE, ``zero_is_dense``). Elsewhere 0 experts is refused: transformers
    builds an empty sparse block, (0, ...) expert tensors and no FFN, whose forward pass
    fails choosing the top k of 0 experts; it is no model to cost."""
    n = r.int(experts_key, minimum=0)
    if n == 0:
        if zero_is_dense:
            return {}
        raise r.fail(f"{experts_key}=0 is not a model: transformers builds an empty expert "
                     "block for it (no FFN weights; its forward pass fails choosing the top "
                     f"k of 0 experts); give {experts_key} >= num_experts_per_tok, or cost "
                     "the dense model with the shape flags")
    k = r.int("num_experts_per_tok")
    return dict(n_experts=n, n_experts_active=k, d_ff_expert=r.int(width_key),
                n_dense_layers=dense, d_ff_shared=shared)


def _qwen_dense_layers(r, n_layer: int) -> int:
    step = r.int("decoder_sparse_step")
    only = set(r.int_list("mlp_only_layers") or [])
    return sum(1 for i in range(n_layer) if i in only or (i + 1) % step)


# ----- the builders ----------------------------------------------------------------------
def _llama(r) -> dict[str, Any]:
    f = _core(r)
    bias = r.bool("attention_bias")
    return {**f, **_no_pattern(r), "qkv_bias": bias, "o_bias": bias,
            "ffn_bias": r.bool("mlp_bias")}


def _mistral(r) -> dict[str, Any]:
    return {**_core(r), **_all_windowed(r)}


def _mixtral(r) -> dict[str, Any]:
    f = _core(r)
    return {**f, **_all_windowed(r),
            **_moe(r, f["n_layer"], "num_local_experts", width_key="intermediate_size")}


def _qwen2(r) -> dict[str, Any]:
    f = _core(r)
    return {**f, **_qwen_pattern(r, f["n_layer"]), "qkv_bias": True}


def _qwen3(r) -> dict[str, Any]:
    f = _core(r)
    bias = r.bool("attention_bias")
    return {**f, **_qwen_pattern(r, f["n_layer"]), "qk_norm": True, "qkv_bias": bias,
            "o_bias": bias}


def _qwen2_moe(r) -> dict[str, Any]:
    f = _core(r)
    moe = _moe(r, f["n_layer"], "num_experts", dense=_qwen_dense_layers(r, f["n_layer"]),
               shared=r.int("shared_expert_intermediate_size", minimum=0), zero_is_dense=True)
    if moe:  # Qwen2MoeSparseMoeBlock builds its Linear(d, 1) gate even for a 0-wide shared expert
        moe["shared_expert_gate"] = True
    return {**f, **_qwen_pattern(r, f["n_layer"], moe=True), **moe,
            "qkv_bias": r.bool("qkv_bias")}


def _qwen3_moe(r) -> dict[str, Any]:
    f = _core(r)
    bias = r.bool("attention_bias")
    moe = _moe(r, f["n_layer"], "num_local_experts", dense=_qwen_dense_layers(r, f["n_layer"]),
               zero_is_dense=True)
    window = r.opt_int("sliding_window") if r.bool("use_sliding_window") else None
    if r.raw("layer_types", None) is not None:
        raise r.fail("layer_types is not read by transformers' qwen3_moe; remove it")
    return {**f, **moe, "sliding_window": window, "qk_norm": True, "qkv_bias": bias,
            "o_bias": bias}


def _gemma(r) -> dict[str, Any]:
    bias = r.bool("attention_bias")
    return {**_core(r), **_no_pattern(r), "qkv_bias": bias, "o_bias": bias}


def _gemma2(r, qk_norm: bool = False, pattern: int = 2) -> dict[str, Any]:
    f = _core(r)
    _refuse_true(r, "attention_bias", "use_bidirectional_attention")
    if qk_norm:
        pattern = r.int("sliding_window_pattern", default=pattern)
    window = r.opt_int("sliding_window")
    return {**f, **_pattern(r, f["n_layer"], _every(pattern), window), "n_norms": 4,
            "qk_norm": qk_norm}


def _gemma3(r) -> dict[str, Any]:
    return _gemma2(r, qk_norm=True, pattern=6)


def _phi3(r) -> dict[str, Any]:
    return {**_core(r), **_all_windowed(r)}


def _phi(r) -> dict[str, Any]:
    _refuse_true(r, "qk_layernorm", why="per-head LayerNorms with biases are not modelled")
    f = _core(r, gated=False)
    return {**f, **_no_pattern(r), "norm": "layernorm", "n_norms": 1, "qkv_bias": True,
            "o_bias": True, "ffn_bias": True, "lm_head_bias": True}


def _granitemoe(r) -> dict[str, Any]:
    f = _core(r)
    bias = r.bool("attention_bias")
    moe = _moe(r, f["n_layer"], "num_local_experts", width_key="intermediate_size")
    return {**f, **_no_pattern(r), **moe, "qkv_bias": bias, "o_bias": bias}


def _smollm3(r) -> dict[str, Any]:
    f = _core(r)
    L = f["n_layer"]
    interval = r.int("no_rope_layer_interval")
    no_rope = r.int_list("no_rope_layers") or [int((i + 1) % interval != 0) for i in range(L)]
    if len(no_rope) != L:
        raise r.fail(f"no_rope_layers has {len(no_rope)} entries but num_hidden_layers={L}")
    use = r.bool("use_sliding_window")
    window = r.opt_int("sliding_window")
    rule = lambda i: ("sliding_attention" if use and window is not None  # noqa: E731
                      and not no_rope[i] else "full_attention")
    bias = r.bool("attention_bias")
    return {**f, **_pattern(r, L, rule, window), "qkv_bias": bias, "o_bias": bias,
            "ffn_bias": r.bool("mlp_bias")}


def _olmo(r) -> dict[str, Any]:
    bias = r.bool("attention_bias")
    return {**_core(r), **_no_pattern(r), "norm": "layernorm", "norm_vectors": 0,
            "qkv_bias": bias, "o_bias": bias}


def _olmo2(r, pattern: bool = False) -> dict[str, Any]:
    f = _core(r)
    bias = r.bool("attention_bias")
    layers = (_pattern(r, f["n_layer"], _every(4), r.opt_int("sliding_window")) if pattern
              else _no_pattern(r))
    return {**f, **layers, "qk_norm": True, "qk_norm_heads": True, "qkv_bias": bias,
            "o_bias": bias}


def _olmo3(r) -> dict[str, Any]:
    return _olmo2(r, pattern=True)


def _cohere(r, pattern: bool = False) -> dict[str, Any]:
    # Neither config class has a head_dim field (Cohere2Config's __post_init__ sets it to
    # d / n_head, then a head_dim from the file overrides it); the attention reads
    # getattr(config, "head_dim", d / n_head), so a given head_dim counts and an explicit
    # null fails there (None ** -0.5): refused rather than read as d / n_head.
    f = _core(r, head_dim="given")
    bias = r.bool("attention_bias")
    out = {**f, "norm": "layernorm", "norm_vectors": 1, "n_norms": 1, "qkv_bias": bias,
           "o_bias": bias}
    if pattern:
        pat = r.int("sliding_window_pattern", default=4)
        out.update(_pattern(r, f["n_layer"], _every(pat), r.opt_int("sliding_window")))
    else:
        out.update(_no_pattern(r), qk_norm=r.bool("use_qk_norm"), qk_norm_heads=True)
    return out


def _cohere2(r) -> dict[str, Any]:
    return _cohere(r, pattern=True)


def _starcoder2(r) -> dict[str, Any]:
    bias = r.bool("use_bias")
    return {**_core(r, gated=False), **_all_windowed(r), "norm": "layernorm",
            "qkv_bias": bias, "o_bias": bias, "ffn_bias": bias}


def _stablelm(r) -> dict[str, Any]:
    if r.raw("head_dim", None) is not None and (
            r.int("head_dim") != r.int("hidden_size") // r.int("num_attention_heads")):
        raise r.fail("head_dim other than hidden_size / num_attention_heads: transformers' "
                     "stablelm builds it but its forward pass fails (its rotary embedding "
                     "reads head_dim, its projections do not); no model to cost")
    parallel = r.bool("use_parallel_residual")
    return {**_core(r, head_dim="derived"), **_no_pattern(r), "norm": "layernorm",
            "n_norms": 1 if parallel else 2, "qkv_bias": r.bool("use_qkv_bias"),
            "qk_norm": r.bool("qk_layernorm"), "qk_norm_heads": True}


def _gpt_neox(r) -> dict[str, Any]:
    bias = r.bool("attention_bias")
    f = _core(r, head_dim="derived", gated=False)
    return {**f, **_no_pattern(r), "n_kv_head": f["n_head"], "norm": "layernorm",
            "qkv_bias": bias, "o_bias": bias, "ffn_bias": True}


def _gpt2(r) -> dict[str, Any]:
    _refuse_true(r, "add_cross_attention")
    d = r.int("hidden_size")
    act = r.str("activation_function")
    if act not in _PLAIN:
        raise r.fail(f"activation_function={act!r} is not supported; supported: "
                     f"{', '.join(sorted(_PLAIN))}")
    n_head = r.int("num_attention_heads")
    return dict(
        n_layer=r.int("num_hidden_layers"), d_model=d, n_head=n_head, n_kv_head=n_head,
        d_ff=r.int("n_inner", null=4 * d, default=None), vocab_size=r.int("vocab_size"),
        ffn=_PLAIN[act], tie_embeddings=r.bool("tie_word_embeddings"), norm="layernorm",
        qkv_bias=True, o_bias=True, ffn_bias=True, n_positions=r.int("n_positions"),
        rope_theta=10_000.0,  # unused: GPT-2 learns absolute positions
        **_no_pattern(r),
    )


def _falcon(r) -> dict[str, Any]:
    if "head_dim" in r.cfg:  # FalconConfig.head_dim is a property without a setter
        raise r.fail("field 'head_dim' cannot be set for falcon (transformers derives it from "
                     "hidden_size / num_attention_heads and refuses the key); remove it")
    # FalconConfig: n_embed, unless null, replaces hidden_size (even where both are given)
    key = "n_embed" if r.cfg.get("n_embed") is not None else "hidden_size"
    d, n_head = r.int(key), r.int("num_attention_heads")
    if d % n_head:  # its attention derives the head width; the key head_dim is refused above
        raise r.fail(f"{key}={d} is not a multiple of num_attention_heads={n_head}, which "
                     "transformers' falcon refuses")
    new = r.bool("new_decoder_architecture")
    if new:  # FalconConfig: num_kv_heads = num_attention_heads when it is null or omitted
        n_kv = r.int("num_kv_heads", null=n_head)
    else:
        n_kv = 1 if r.bool("multi_query") else n_head
    parallel = r.bool("parallel_attn")
    n_ln = r.int("num_ln_in_parallel_attn", null=None, default=None)
    if new and n_ln is None:
        n_ln = 2  # as FalconDecoderLayer sets it
    # FalconDecoderLayer builds ln_attn and ln_mlp for a parallel block with n_ln == 2, else
    # input_layernorm, and input_ and post_attention_layernorm for a sequential block; but
    # its forward pass reads ln_attn/ln_mlp only in the new architecture, input_layernorm
    # otherwise, and has no sequential block in the new one. Those other combinations build
    # and cannot run: no model to cost, refused.
    if new and not parallel:
        raise r.fail("parallel_attn=false with new_decoder_architecture=true: transformers "
                     "builds it but its forward pass fails (the new architecture has only a "
                     "parallel block); no model to cost")
    if new and n_ln not in (1, 2):
        raise r.fail(f"num_ln_in_parallel_attn={n_ln} with new_decoder_architecture=true: "
                     "transformers builds it but its forward pass fails (it reads 1 or 2); no "
                     "model to cost")
    if not new and parallel and n_ln == 2:
        raise r.fail("num_ln_in_parallel_attn=2 with new_decoder_architecture=false: "
                     "transformers builds ln_attn and ln_mlp but its forward pass reads "
                     "input_layernorm, which it does not build; no model to cost (the old "
                     "parallel block has one norm: omit the field)")
    n_norms = 2 if (not parallel or n_ln == 2) else 1
    act = r.str("activation")
    if act not in _PLAIN:
        raise r.fail(f"activation={act!r} is not supported; supported: {', '.join(_PLAIN)}")
    bias = r.bool("bias")
    return dict(
        n_layer=r.int("num_hidden_layers"), d_model=d, n_head=n_head, n_kv_head=n_kv,
        d_ff=r.int("ffn_hidden_size", null=4 * d, default=None), vocab_size=r.int("vocab_size"),
        ffn=_PLAIN[act], tie_embeddings=r.bool("tie_word_embeddings"), norm="layernorm",
        n_norms=n_norms, qkv_bias=bias, o_bias=bias, ffn_bias=bias, rope_theta=r.rope_theta(),
        **_no_pattern(r),
    )


def _deepseek(r) -> dict[str, Any]:
    _refuse_true(r, "attention_bias", "mlp_bias")
    if r.int("moe_layer_freq", default=1) != 1:
        raise r.fail("moe_layer_freq != 1 is not read by transformers' DeepSeek; not supported")
    n_head = r.int("num_attention_heads")
    # unused by latent attention, but transformers repeats the decompressed keys n_head / n_kv
    # times: its forward pass runs only with n_kv = n_head (0 does not even build)
    n_kv = r.int("num_key_value_heads", null=n_head, default=None)
    if n_kv != n_head:
        given = "" if r.has("num_key_value_heads") else f" (transformers' {r.model_type} default)"
        raise r.fail(f"num_key_value_heads={n_kv}{given} with num_attention_heads={n_head}: "
                     "transformers builds it but its latent attention's forward pass fails "
                     "(it repeats keys n_head / n_kv times); give num_key_value_heads equal "
                     "to num_attention_heads")
    nope, rope = r.int("qk_nope_head_dim"), r.int("qk_rope_head_dim")
    L = r.int("num_hidden_layers")
    dense = min(r.int("first_k_dense_replace", minimum=0), L)
    n_shared = r.int("n_shared_experts", minimum=0, null=0)
    width = r.int("moe_intermediate_size")
    # V3's e_score_correction_bias (n_experts per MoE layer) is a buffer in transformers, set
    # by load balancing rather than learned, so it is not counted (safetensors does store it).
    moe = _moe(r, L, "n_routed_experts", dense=dense, shared=n_shared * width)
    return dict(
        n_layer=L, d_model=r.int("hidden_size"), n_head=n_head, n_kv_head=n_head,
        d_head=nope + rope, d_ff=r.int("intermediate_size"), vocab_size=r.int("vocab_size"),
        ffn=_act(r), tie_embeddings=r.bool("tie_word_embeddings"), rope_theta=r.rope_theta(),
        kv_lora_rank=r.int("kv_lora_rank"), q_lora_rank=r.int("q_lora_rank", null=0),
        qk_rope_dim=rope, qk_nope_dim=nope, v_head_dim=r.int("v_head_dim"), **moe,
        **_no_pattern(r),
    )


def _gpt_oss(r) -> dict[str, Any]:
    f = _core(r)
    bias = r.bool("attention_bias")
    moe = _moe(r, f["n_layer"], "num_local_experts", width_key="intermediate_size")
    moe.update(router_bias=True, expert_bias=True)
    return {**f, **moe, **_pattern(r, f["n_layer"], _every(2), r.opt_int("sliding_window")),
            "qkv_bias": bias, "o_bias": bias, "attn_sinks": True}


def _llama4(r) -> dict[str, Any]:
    f = _core(r)
    L = f["n_layer"]
    _refuse_true(r, "attention_bias")
    interval = r.int("no_rope_layer_interval")
    no_rope = r.int_list("no_rope_layers") or [int((i + 1) % interval != 0) for i in range(L)]
    if len(no_rope) != L:
        raise r.fail(f"no_rope_layers has {len(no_rope)} entries but num_hidden_layers={L}")
    step = r.int("interleave_moe_layer_step")
    moe_layers = r.int_list("moe_layers")
    moe_layers = set(range(step - 1, L, step) if moe_layers is None else moe_layers)
    n_moe = sum(1 for i in range(L) if i in moe_layers)
    chunk = r.opt_int("attention_chunk_size")
    rule = lambda i: ("chunked_attention" if no_rope[i] and chunk is not None  # noqa: E731
                      else "full_attention")
    out = {**f, **_pattern(r, L, rule, None, chunk), "d_ff": r.int("intermediate_size_mlp")}
    if n_moe:
        out.update(n_experts=r.int("num_local_experts"),
                   n_experts_active=r.int("num_experts_per_tok"),
                   d_ff_expert=r.int("intermediate_size"), d_ff_shared=r.int("intermediate_size"),
                   n_dense_layers=L - n_moe)
    return out


def _glm4(r) -> dict[str, Any]:
    return {**_core(r), **_no_pattern(r), "n_norms": 4, "qkv_bias": r.bool("attention_bias")}


def _exaone4(r) -> dict[str, Any]:
    f = _core(r)
    window = r.opt_int("sliding_window")
    if window is None and r.raw("layer_types", None) is None:
        raise r.fail("sliding_window=null needs layer_types for exaone4 (transformers derives "
                     "the pattern from the window and divides by zero without one)")
    pat = r.raw("sliding_window_pattern", None)
    if r.raw("layer_types", None) is None and window is not None:
        if isinstance(pat, bool) or not isinstance(pat, int) or pat < 1:
            raise r.fail(f"sliding_window_pattern must be a positive integer, got {pat!r}")
    rule = _every(pat) if window is not None else (lambda i: "full_attention")
    return {**f, **_pattern(r, f["n_layer"], rule, window), "qk_norm": True}


def _exaone(r) -> dict[str, Any]:  # EXAONE 3.x, built by transformers as a Llama
    f = _core(r)
    bias = r.bool("attention_bias")
    return {**f, **_no_pattern(r), "qkv_bias": bias, "o_bias": bias,
            "ffn_bias": r.bool("mlp_bias")}


_BUILDERS = {
    "llama": _llama,
    "granite": _llama,
    "mistral": _mistral,
    "mixtral": _mixtral,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "qwen2_moe": _qwen2_moe,
    "qwen3_moe": _qwen3_moe,
    "gemma": _gemma,
    "gemma2": _gemma2,
    "gemma3_text": _gemma3,
    "phi3": _phi3,
    "phi": _phi,
    "granitemoe": _granitemoe,
    "smollm3": _smollm3,
    "olmo": _olmo,
    "olmo2": _olmo2,
    "olmo3": _olmo3,
    "cohere": _cohere,
    "cohere2": _cohere2,
    "starcoder2": _starcoder2,
    "stablelm": _stablelm,
    "gpt_neox": _gpt_neox,
    "gpt2": _gpt2,
    "falcon": _falcon,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "gpt_oss": _gpt_oss,
    "llama4_text": _llama4,
    "glm4": _glm4,
    "exaone4": _exaone4,
    "exaone": _exaone,
}
FAMILIES: dict[str, Family] = {
    t: Family(b, DEFAULTS[t], ALIASES.get(t, {}), NOT_READ.get(t, {}))
    for t, b in _BUILDERS.items()
}

# Multimodal configs costed through their language model.
TEXT_CONFIGS = {"gemma3": "gemma3_text", "llama4": "llama4_text"}
# ... of which transformers ties the LM head by the wrapper's tie_word_embeddings (default):
# AutoModelForCausalLM builds Gemma 3's whole multimodal model, Llama 4's text model alone
TIED_BY_WRAPPER = {"gemma3": True}

# Known model types that are refused, with the reason.
UNSUPPORTED = {
    "granitemoeshared": "shared experts of Granite MoE are not modelled yet",
    "granitemoehybrid": "Mamba layers are not attention",
    "jamba": "Mamba layers are not attention", "mamba": "a state-space model, no attention",
    "falcon_h1": "Mamba layers are not attention", "qwen3_next": "linear-attention layers",
    "mllama": "cross-attention layers", "t5": "an encoder-decoder", "bert": "an encoder",
}
