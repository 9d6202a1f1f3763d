"""transformers' defaults for the fields a config.json may omit, per model type, the key
aliases its configuration classes accept (``attribute_map``) and the look-alike keys they do
not read, and what transformers refuses that a count would not notice: an explicit null where
its field takes none (:data:`NULL_REFUSED`), a hidden size its check wants divisible by the
head count (:data:`HIDDEN_DIVISIBLE`), a pad token outside the vocabulary. Copied from the
``configuration_*.py`` files of transformers 5.24 and checked against 5.25;
tests/test_hf_oracle.py builds each type from a config.json holding nothing but its
``model_type`` (and the cases of tests/test_hf_refusals.py) and checks the result against
these.
"""

from __future__ import annotations

from typing import Any

_BASE = dict(hidden_act="silu", tie_word_embeddings=False, rope_theta=10_000.0,
             attention_bias=False, mlp_bias=False, num_key_value_heads=None, head_dim=None)
_LLAMA = dict(_BASE, vocab_size=32_000, hidden_size=4096, intermediate_size=11_008,
              num_hidden_layers=32, num_attention_heads=32)
# num_key_value_heads: None means "num_attention_heads"; a number is the class's own default,
# kept by a file that omits the field whatever its head count (Qwen2Config's 32)
_QWEN = dict(_BASE, vocab_size=151_936, hidden_size=4096, intermediate_size=22_016,
             num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
             use_sliding_window=False,
             sliding_window=4096, max_window_layers=28)
_QWEN_MOE = dict(_QWEN, hidden_size=2048, num_hidden_layers=24, decoder_sparse_step=1,
                 moe_intermediate_size=1408, mlp_only_layers=[])
_GEMMA2 = dict(_BASE, vocab_size=256_000, hidden_size=2304, intermediate_size=9216,
               num_hidden_layers=26, num_attention_heads=8, num_key_value_heads=4,
               head_dim=256, hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
               sliding_window=4096, pad_token_id=0)
_OLMO = dict(_LLAMA, vocab_size=50_304, pad_token_id=1)

DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": _LLAMA,
    "granite": _LLAMA,
    "mistral": dict(_LLAMA, intermediate_size=14_336, num_key_value_heads=8,
        sliding_window=4096),
    "mixtral": dict(_LLAMA, intermediate_size=14_336, num_key_value_heads=8,
        sliding_window=None, rope_theta=1e6,
        num_local_experts=8, num_experts_per_tok=2),
    "qwen2": _QWEN,
    "qwen3": dict(_QWEN, head_dim=128),
    "qwen2_moe": dict(_QWEN_MOE, intermediate_size=5632,
        num_attention_heads=16, num_key_value_heads=16,
        shared_expert_intermediate_size=5632,
        num_experts_per_tok=4, num_experts=60, qkv_bias=True),
    "qwen3_moe": dict(_QWEN_MOE, intermediate_size=6144,
        num_attention_heads=32, num_key_value_heads=4,
        moe_intermediate_size=768, num_experts_per_tok=8,
        num_local_experts=128, sliding_window=4096),
    "gemma": dict(_BASE, vocab_size=256_000, hidden_size=3072,
        intermediate_size=24_576, num_hidden_layers=28,
        num_attention_heads=16, num_key_value_heads=16, head_dim=256,
        hidden_act="gelu_pytorch_tanh", tie_word_embeddings=True, pad_token_id=0),
    "gemma2": _GEMMA2,
    "gemma3_text": dict(_GEMMA2, vocab_size=262_208),
    "phi3": dict(_BASE, vocab_size=32_064, hidden_size=3072,
        intermediate_size=8192, num_hidden_layers=32,
        num_attention_heads=32, sliding_window=None, pad_token_id=32_000),
    "phi": dict(_BASE, vocab_size=51_200, hidden_size=2048, intermediate_size=8192,
        num_hidden_layers=24, num_attention_heads=32,
        hidden_act="gelu_new", qk_layernorm=False),
    "granitemoe": dict(_LLAMA, num_local_experts=8, num_experts_per_tok=2),
    "smollm3": dict(_BASE, vocab_size=128_256, hidden_size=2048,
        intermediate_size=11_008, num_hidden_layers=36,
        num_attention_heads=16, num_key_value_heads=4,
        rope_theta=2e6, use_sliding_window=False,
        sliding_window=None, no_rope_layer_interval=4,
        tie_word_embeddings=True, pad_token_id=128_004),
    "olmo": _OLMO,
    "olmo2": _OLMO,
    "olmo3": dict(_OLMO, rope_theta=500_000.0, sliding_window=4096),
    "cohere": dict(_BASE, vocab_size=256_000, hidden_size=8192,
        intermediate_size=22_528, num_hidden_layers=40,
        num_attention_heads=64, tie_word_embeddings=True,
        rope_theta=500_000.0, use_qk_norm=False, pad_token_id=0),
    "cohere2": dict(_BASE, vocab_size=256_000, hidden_size=8192,
        intermediate_size=22_528, num_hidden_layers=40,
        num_attention_heads=64, tie_word_embeddings=True,
        sliding_window=4096, pad_token_id=0),
    "starcoder2": dict(_BASE, vocab_size=49_152, hidden_size=3072,
        intermediate_size=12_288, num_hidden_layers=30,
        num_attention_heads=24, num_key_value_heads=2,
        hidden_act="gelu_pytorch_tanh", sliding_window=None,
        use_bias=True, tie_word_embeddings=True),
    "stablelm": dict(_BASE, vocab_size=50_304, intermediate_size=6912,
        hidden_size=2560, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=32, use_qkv_bias=False,
        qk_layernorm=False, use_parallel_residual=False),
    "gpt_neox": dict(_BASE, vocab_size=50_432, hidden_size=6144,
        num_hidden_layers=44, num_attention_heads=64,
        intermediate_size=24_576, hidden_act="gelu",
        attention_bias=True),
    "gpt2": dict(vocab_size=50_257, n_positions=1024, hidden_size=768,
        num_hidden_layers=12, num_attention_heads=12, n_inner=None,
        activation_function="gelu_new", tie_word_embeddings=True),
    "falcon": dict(vocab_size=65_024, hidden_size=4544, num_hidden_layers=32,
        num_attention_heads=71, num_kv_heads=None, alibi=False,
        new_decoder_architecture=False, multi_query=True,
        parallel_attn=True, bias=False, ffn_hidden_size=None,
        activation="gelu", tie_word_embeddings=True,
        num_ln_in_parallel_attn=None),
    "deepseek_v2": dict(
        _LLAMA, vocab_size=102_400, first_k_dense_replace=0, kv_lora_rank=512,
        q_lora_rank=1536, n_routed_experts=64, n_shared_experts=2, qk_nope_head_dim=128,
        qk_rope_head_dim=64, v_head_dim=128, num_experts_per_tok=None,
        moe_intermediate_size=1407),
    "deepseek_v3": dict(
        _BASE, vocab_size=129_280, hidden_size=7168, intermediate_size=18_432,
        moe_intermediate_size=2048, num_hidden_layers=61, num_attention_heads=128,
        num_key_value_heads=128,
        n_shared_experts=1, n_routed_experts=256, kv_lora_rank=512, q_lora_rank=1536,
        qk_rope_head_dim=64, v_head_dim=128, qk_nope_head_dim=128, num_experts_per_tok=8,
        first_k_dense_replace=3),
    "gpt_oss": dict(_BASE, num_hidden_layers=36, num_local_experts=128,
        vocab_size=201_088, hidden_size=2880,
        intermediate_size=2880, head_dim=64,
        num_attention_heads=64, num_key_value_heads=8,
        sliding_window=128, num_experts_per_tok=4,
        rope_theta=150_000.0, attention_bias=True),
    "llama4_text": dict(_BASE, vocab_size=202_048, hidden_size=5120,
        intermediate_size=8192, intermediate_size_mlp=16_384,
        num_hidden_layers=48, num_attention_heads=40,
        num_key_value_heads=8, head_dim=128,
        num_experts_per_tok=1, num_local_experts=16,
        interleave_moe_layer_step=1, moe_layers=None, no_rope_layer_interval=4,
        attention_chunk_size=8192, rope_theta=500_000.0),
    "glm4": dict(_BASE, vocab_size=151_552, hidden_size=4096,
        intermediate_size=13_696, num_hidden_layers=40,
        num_attention_heads=32, num_key_value_heads=2, head_dim=128,
        attention_bias=True, pad_token_id=151_329),
    "exaone4": dict(_BASE, vocab_size=102_400, hidden_size=4096,
        intermediate_size=16_384, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=32, sliding_window=4096,
        sliding_window_pattern=4),
    "exaone": dict(_BASE, vocab_size=102_400, hidden_size=4096,
        intermediate_size=14_336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8,
        rope_theta=500_000.0, pad_token_id=0),
}

ALIASES: dict[str, dict[str, str]] = {
    "mixtral": {"num_experts": "num_local_experts"},
    "qwen3_moe": {"num_experts": "num_local_experts"},
    "gpt2": {"n_embd": "hidden_size", "n_layer": "num_hidden_layers",
        "n_head": "num_attention_heads", "max_position_embeddings": "n_positions"},
    "deepseek_v2": {"num_experts": "n_routed_experts"},
    "deepseek_v3": {"num_local_experts": "n_routed_experts"},
    "gpt_oss": {"num_experts": "num_local_experts"},
    "exaone": {"num_layers": "num_hidden_layers", "activation_function": "hidden_act"},
}

# Keys that look like aliases but that the type's configuration class does not read (no
# attribute_map entry, no __post_init__ rename): transformers keeps them as inert attributes
# and builds the named field's value instead. hf.py refuses them where the two differ.
NOT_READ: dict[str, dict[str, str]] = {
    "granitemoe": {"num_experts": "num_local_experts"},
    "falcon": {"n_layer": "num_hidden_layers", "n_head": "num_attention_heads",
        "num_attention_heads_kv": "num_kv_heads"},
}

# Fields whose explicit null transformers refuses (a strict type, or a division by None) in
# these model types, where gqa would otherwise read null as a default: refused by name.
NULL_REFUSED: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in {
    "num_key_value_heads": "mistral mixtral qwen2_moe qwen3_moe gemma gemma2 gemma3_text "
                           "starcoder2 stablelm gpt_oss llama4_text glm4 exaone4",
    "head_dim": "qwen2 qwen2_moe qwen3_moe qwen3 phi3 phi granite granitemoe smollm3 olmo "
                "olmo2 olmo3 exaone4 gemma gemma2 gemma3_text glm4 gpt_oss llama4_text "
                "cohere cohere2",
    "attention_bias": "gemma gemma2 gemma3_text deepseek_v2 deepseek_v3 llama4_text",
    "mlp_bias": "deepseek_v2",
    "hidden_activation": "gemma2 gemma3_text",
    "qk_layernorm": "phi",
    "n_shared_experts": "deepseek_v2 deepseek_v3",
}.items()}

# Types whose transformers wants hidden_size a multiple of num_attention_heads, whatever
# head_dim: a configuration check (validate_architecture), or an attention that derives its
# head width (GPT-2, GPT-NeoX, StableLM). Falcon derives it too, from n_embed where given:
# hf_families._falcon refuses it.
HIDDEN_DIVISIBLE = frozenset("llama gemma2 gemma3_text exaone deepseek_v2 gpt2 gpt_neox "
                             "stablelm".split())

# Types whose token embedding has no padding_idx (any pad_token_id builds).
NO_PADDING_IDX = frozenset("falcon gpt2 gpt_neox".split())
