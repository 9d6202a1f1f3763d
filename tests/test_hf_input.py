"""config.json import: bad values are refused in one line naming the field, never guessed; the
two silent errors of issue 13 (Qwen's max_window_layers, transformers' defaults for omitted
fields) stay fixed, with the KV cache at 32K derived by hand."""

import json
from pathlib import Path

import pytest

from gqa_lib import GQAError, cost, get_preset
from gqa_lib.arch.hf import from_hf_config

HF = Path(__file__).parent / "data" / "hf"
T = 32_768


def base(name="llama-3.2-1b.json"):
    return json.loads((HF / name).read_text())


@pytest.mark.parametrize(
    "change, msg",
    [
        ({"tie_word_embeddings": "false"}, "'tie_word_embeddings' must be true or false, got "
                                           "'false'"),
        ({"tie_word_embeddings": 0}, "'tie_word_embeddings' must be true or false"),
        ({"num_key_value_heads": 0}, r"'num_key_value_heads' must be an integer in 1\.\."),
        ({"num_key_value_heads": -8}, "'num_key_value_heads' must be an integer in"),
        ({"num_key_value_heads": "8"}, "'num_key_value_heads' must be an integer, got '8'"),
        ({"num_key_value_heads": 8.5}, "'num_key_value_heads' must be an integer, got 8.5"),
        ({"hidden_size": 10**30}, "'hidden_size' must be an integer in 1..2147483647"),
        ({"hidden_size": float("inf")}, "'hidden_size' must be an integer, got inf"),
        ({"rope_theta": None}, "'rope_theta' must be a positive number, got None"),
        ({"rope_theta": "big"}, "'rope_theta' must be a positive number, got 'big'"),
        ({"rope_theta": -1}, "'rope_theta' must be a positive number"),
        ({"rope_parameters": {"rope_theta": "x"}}, "'rope_parameters.rope_theta' must be a "
                                                   "positive number"),
        ({"rope_parameters": [1]}, "'rope_parameters' must be an object"),
        ({"hidden_act": ["silu"]}, r"'hidden_act' must be a string, got \['silu'\]"),
        ({"layer_types": 3}, "layer_types=3 is not supported for llama"),
        ({"attention_bias": "yes"}, "'attention_bias' must be true or false"),
        ({"model_type": ["llama"]}, r"model_type=\['llama'\] is not supported"),
    ],
)
def test_bad_values_are_refused_naming_the_field(change, msg):
    cfg = base()
    cfg.update(change)
    with pytest.raises(GQAError, match=msg) as e:
        from_hf_config(cfg)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "name, change, msg",
    [
        ("qwen3-8b.json", {"layer_types": 28}, "'layer_types' must be a list of strings"),
        ("qwen3-8b.json", {"layer_types": ["full_attention"] * 3},
         "layer_types has 3 entries but num_hidden_layers=36"),
        ("qwen3-8b.json", {"layer_types": ["global"] * 36},
         "layer_types entry='global' is not allowed"),
        ("qwen3-8b.json", {"use_sliding_window": "true"}, "'use_sliding_window' must be true"),
        ("gemma-2-9b.json", {"sliding_window": None},
         "sliding_attention layers but sliding_window is null"),
        ("mixtral-8x7b-v0.1.json", {"num_experts_per_tok": 9},
         "num_experts_per_tok must be in 1..num_local_experts=8"),
        ("deepseek-v2-lite.json", {"kv_lora_rank": 0}, "'kv_lora_rank' must be an integer in 1"),
        ("deepseek-v2-lite.json", {"moe_layer_freq": 2}, "moe_layer_freq != 1"),
    ],
)
def test_bad_structure_is_refused(name, change, msg):
    cfg = base(name)
    cfg.update(change)
    with pytest.raises(GQAError, match=msg):
        from_hf_config(cfg)


@pytest.mark.parametrize(
    "data, msg",
    [
        ("\ufeff{}".encode("utf-16"), "not UTF-8 text"),
        (bytes(range(256)), "not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|not valid JSON"),
        (b'{"hidden_size": NaN}', "NaN is not a JSON number"),
        (b'{"vocab_size": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        (b"{not json", "not valid JSON"),
    ],
)
def test_bad_files(tmp_path, data, msg):
    p = tmp_path / "config.json"
    p.write_bytes(data)
    with pytest.raises(GQAError, match=msg) as e:
        from_hf_config(p)
    assert "\n" not in str(e.value)


def test_huge_float_is_refused(tmp_path):
    cfg = base()
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg).replace('"hidden_size": 2048', '"hidden_size": 1e400'))
    with pytest.raises(GQAError, match="'hidden_size' must be an integer, got inf"):
        from_hf_config(p)


# ----- the silent errors of issue 13 --------------------------------------------------------
def test_qwen_window_applies_from_max_window_layers():
    # Qwen2.5-7B with use_sliding_window=true: transformers windows layers >= 28 = none of
    # them; the old import windowed all 28 and its cache at 32K came out 87.5% too small.
    q = from_hf_config(HF / "oracle" / "qwen2.5-7b-swa-on.json")
    assert q.n_window_layers == 0
    full = 2 * 28 * 4 * 128 * T  # 2 (K, V) L n_kv d_h T
    assert cost.kv_cache_values(q, T) == full == cost.kv_cache_values(get_preset("qwen2.5-7b"), T)
    # windowed from layer 20 of 24: 20 full layers at T, 4 at W = 4096
    q = from_hf_config(HF / "oracle" / "qwen2-swa-from-layer-20.json")
    assert q.layer_windows == (None,) * 20 + (4096,) * 4
    assert cost.kv_cache_values(q, T) == 2 * 2 * 64 * (20 * T + 4 * 4096)


def test_omitted_fields_take_transformers_defaults():
    g = from_hf_config(HF / "oracle" / "gemma-no-head-dim.json")
    assert g.d_head == 256 != 2048 // 16  # GemmaConfig.head_dim = 256
    assert cost.kv_cache_values(g, T) == 2 * 18 * 1 * 256 * T
    q = from_hf_config(HF / "oracle" / "qwen3-no-head-dim.json")
    assert q.d_head == 128 != 2560 // 32  # Qwen3Config.head_dim = 128
    m = from_hf_config(HF / "oracle" / "mistral-defaults-omitted.json")
    assert (m.n_kv_head, m.sliding_window, m.d_head) == (8, 4096, 128)
    assert cost.kv_cache_values(m, T) == 2 * 32 * 8 * 128 * 4096  # window caps the cache
    assert cost.params_total(m) == cost.params_total(get_preset("mistral-7b-v0.1"))
    explicit_null = from_hf_config(HF / "oracle" / "mistral-7b-v0.3-minimal.json")
    assert explicit_null.sliding_window is None  # null means no window, not the default


def test_rope_parameters_of_transformers_5():
    q = from_hf_config(HF / "oracle" / "qwen3-0.6b-transformers5.json")
    assert q.rope_theta == 1e6 and q.layer_types is None
    g = from_hf_config(base("gemma-2-9b.json") | {
        "rope_parameters": {"full_attention": {"rope_theta": 1e6},
                            "sliding_attention": {"rope_theta": 1e4}}})
    assert g.rope_theta == 1e6  # the global layers' base


@pytest.mark.parametrize("name, kv_32k", [
    # sum over layers of min(T, W_l) x 2 n_kv d_h, by hand from each model card's shape
    ("gemma-2-9b.json", (21 * T + 21 * 4096) * 2 * 8 * 256),
    ("oracle/gemma-3-12b-it.json", (8 * T + 40 * 1024) * 2 * 8 * 256),
    ("oracle/gpt-oss-20b.json", (12 * T + 12 * 128) * 2 * 8 * 64),
    ("oracle/c4ai-command-r7b-12-2024.json", (8 * T + 24 * 4096) * 2 * 8 * 128),
    ("oracle/olmo-3-7b.json", (8 * T + 24 * 4096) * 2 * 32 * 128),
    ("oracle/llama-4-scout-17b-16e.json", (12 * T + 36 * 8192) * 2 * 8 * 128),
    ("oracle/phi-3-mini-4k-instruct.json", 32 * 2047 * 2 * 32 * 96),
    ("mixtral-8x7b-v0.1.json", 32 * T * 2 * 8 * 128),
    # MLA: the latent (kv_lora_rank + qk_rope_dim) per token and layer
    ("deepseek-v2-lite.json", 27 * T * (512 + 64)),
    ("oracle/deepseek-v3.json", 61 * T * (512 + 64)),
])
def test_kv_cache_at_32k(name, kv_32k):
    assert cost.kv_cache_values(from_hf_config(HF / name), T) == kv_32k


def test_mla_decompressed_cache_is_per_head():
    c = get_preset("deepseek-v2-lite")
    assert cost.kv_cache_values(c, T, mla="decompressed") == 27 * T * 16 * (192 + 128)
    with pytest.raises(GQAError, match="mla='compressed' is not allowed"):
        cost.kv_cache_values(c, T, mla="compressed")


# ----- fields transformers reads, or builds without reading (review 1) -----------------------
@pytest.mark.parametrize("name, total, kv_32k", [
    # FalconConfig: num_kv_heads = num_attention_heads when omitted (not Falcon-7B's 71)
    ("falcon-new-architecture-kv-heads-omitted.json", 997_976, 2 * 1 * 142 * 2 * T),
    # FalconConfig: n_embed is hidden_size (not the default 4544); multi-query, one KV head
    ("falcon-n-embed.json", 92_800, 2 * 2 * 1 * 16 * T),
    # Qwen2-MoE builds the shared expert's d -> 1 gate even at width 0
    ("qwen2-moe-shared-expert-0.json", 162_624, 2 * 4 * 2 * 16 * T),
    # Cohere2 reads an explicit head_dim (8, not 64 / 4); windows of 8 on 3 layers of 4
    ("cohere2-head-dim.json", 105_024, (3 * 8 + T) * 2 * 2 * 8),
    # Llama 4 as transformers saves it, with moe_layers; 3 of 4 layers chunked at 8192
    ("llama-4-moe-layers.json", 278_080, (3 * 8192 + T) * 2 * 2 * 16),
])
def test_counts_of_what_transformers_builds(name, total, kv_32k):
    # the totals are transformers' own (tests/test_hf_oracle.py checks them on the meta device)
    cfg = from_hf_config(HF / "oracle" / name)
    assert cost.params_total(cfg) == total
    assert cost.kv_cache_values(cfg, T) == kv_32k


@pytest.mark.parametrize("name, change, msg", [
    # builds (ln_attn, ln_mlp) but its forward pass reads input_layernorm
    ("oracle/falcon-7b.json", {"num_ln_in_parallel_attn": 2},
     "num_ln_in_parallel_attn=2 with new_decoder_architecture=false: transformers builds"),
    ("oracle/falcon-40b.json", {"parallel_attn": False},
     "parallel_attn=false with new_decoder_architecture=true: transformers builds"),
    ("oracle/falcon-40b.json", {"num_ln_in_parallel_attn": 3},
     "num_ln_in_parallel_attn=3 with new_decoder_architecture=true"),
    # look-alike keys transformers does not read: it builds its default instead
    ("oracle/granite-3.1-1b-a400m.json", {"num_experts": 4},
     "num_experts=4 is not read by transformers' granitemoe, which reads 'num_local_experts' "
     r"instead \(here 32\)"),
    ("oracle/falcon-7b.json", {"n_head": 4}, "n_head=4 is not read .* 'num_attention_heads'"),
    ("oracle/falcon-7b.json", {"n_layer": 2}, "n_layer=2 is not read .* 'num_hidden_layers'"),
    ("oracle/falcon-40b.json", {"num_attention_heads_kv": 4},
     r"num_attention_heads_kv=4 is not read .* 'num_kv_heads' instead \(here 8\)"),
    # a field given under two names that disagree: transformers keeps the alias for exaone,
    # the field for gpt2; refused rather than guessed
    ("oracle/exaone-3.5-2.4b-instruct.json", {"num_layers": 3, "num_hidden_layers": 4},
     "num_layers=3 and num_hidden_layers=4 name the same field and disagree; keep one"),
    # Cohere's attention builds n_head * head_dim: an explicit null fails there
    ("oracle/c4ai-command-r7b-12-2024.json", {"head_dim": None},
     "'head_dim' is null"),
])
def test_what_transformers_cannot_run_or_does_not_read_is_refused(name, change, msg):
    cfg = base(name)
    cfg.update(change)
    with pytest.raises(GQAError, match=msg) as e:
        from_hf_config(cfg)
    assert "\n" not in str(e.value)


def test_look_alike_keys_that_agree_are_harmless():
    g = base("oracle/granite-3.1-1b-a400m.json")
    assert from_hf_config(g | {"num_experts": 32}) == from_hf_config(g)
    f = base("oracle/falcon-40b.json")
    assert from_hf_config(f | {"n_layer": 60, "num_attention_heads_kv": 8}) == from_hf_config(f)
