"""transformers as the oracle of what the config.json import refuses and of the defaults a
count would not notice: each config below is read the way a real file is (written to a
folder, AutoConfig.from_pretrained, built on the meta device). Where transformers builds it,
gqa's total and cache windows equal transformers'; where transformers refuses it, gqa refuses
it too, in one line naming the config.json's field. Found by a review of 3,200 configs
against transformers 5.25 (silently wrong before: a Qwen2 file without num_key_value_heads,
Gemma's attention_bias, Gemma 3's wrapper tying, Qwen3-MoE's default window)."""

import json
import logging

import pytest

from gqa_lib import GQAError, cost
from gqa_lib.arch.hf import from_hf_config

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

SMALL = {"hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4,
         "num_key_value_heads": 2, "num_hidden_layers": 4, "vocab_size": 128}
MLA = {**SMALL, "num_key_value_heads": 4, "kv_lora_rank": 32, "q_lora_rank": 24, "qk_rope_head_dim": 8,
       "qk_nope_head_dim": 16, "v_head_dim": 16, "n_routed_experts": 4,
       "num_experts_per_tok": 2, "moe_intermediate_size": 16, "n_shared_experts": 1,
       "first_k_dense_replace": 1}
WIDE = {"hidden_size": 1024, "intermediate_size": 96, "num_attention_heads": 64,
        "num_hidden_layers": 2, "vocab_size": 128}  # no num_key_value_heads


def _from_file(raw, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(raw))
    return transformers.AutoConfig.from_pretrained(tmp_path)


def _build(raw, tmp_path):
    """(language-model parameters, cache windows) as transformers builds the file; a
    multimodal wrapper's vision tower and projector are left out."""
    cfg = _from_file(raw, tmp_path)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    total = sum(p.numel() for n, p in model.named_parameters()
                if "vision" not in n and "multi_modal_projector" not in n)
    text = cfg.get_text_config()
    cache = transformers.DynamicCache(config=text)
    return total, tuple(getattr(layer, "sliding_window", None) for layer in cache.layers)


BUILDS = {  # transformers builds these: gqa must count them as it does
    "qwen2 without num_key_value_heads (its default is 32)": {"model_type": "qwen2", **WIDE},
    "qwen3 without num_key_value_heads": {"model_type": "qwen3", **WIDE, "head_dim": 16},
    "stablelm without num_key_value_heads": {"model_type": "stablelm", **WIDE},
    "exaone4 without num_key_value_heads": {"model_type": "exaone4", **WIDE},
    "gemma without num_key_value_heads (its default is 16)": {"model_type": "gemma", **WIDE,
                                                              "head_dim": 16},
    "gemma with attention_bias": {"model_type": "gemma", **SMALL, "head_dim": 16,
                                  "attention_bias": True},
    "qwen3_moe's default window": {"model_type": "qwen3_moe", **SMALL, "head_dim": 16,
                                   "num_experts": 4, "num_experts_per_tok": 2,
                                   "moe_intermediate_size": 32, "use_sliding_window": True},
    "gemma3 wrapper untied at the top": {
        "model_type": "gemma3", "tie_word_embeddings": False,
        "text_config": {"model_type": "gemma3_text", **SMALL, "head_dim": 16,
                        "sliding_window": 8}},
    "gemma3 wrapper tied by default, text_config untied": {
        "model_type": "gemma3",
        "text_config": {"model_type": "gemma3_text", **SMALL, "head_dim": 16,
                        "sliding_window": 8, "tie_word_embeddings": False}},
    "llama with pad_token_id -1": {"model_type": "llama", **SMALL, "pad_token_id": -1},
}

REFUSED = {  # transformers refuses these: gqa must too, naming the field
    "phi3's default pad_token_id 32000 with vocab_size 32000":
        ({"model_type": "phi3", **SMALL, "vocab_size": 32_000},
         r"pad_token_id=32000 \(transformers' phi3 default\) is outside"),
    "pad_token_id above the vocabulary": ({"model_type": "llama", **SMALL, "pad_token_id": 200},
                                          r"pad_token_id=200 is outside"),
    "qwen2 head_dim null": ({"model_type": "qwen2", **SMALL, "head_dim": None},
                            "'head_dim' is null"),
    "qwen3 head_dim null": ({"model_type": "qwen3", **SMALL, "head_dim": None},
                            "'head_dim' is null"),
    "llama hidden_size not a multiple of heads, head_dim given":
        ({"model_type": "llama", **SMALL, "hidden_size": 66, "head_dim": 16},
         "hidden_size=66 is not a multiple of num_attention_heads=4"),
    "deepseek_v2 hidden_size not a multiple of heads":
        ({"model_type": "deepseek_v2", **MLA, "hidden_size": 66, "num_key_value_heads": 4},
         "hidden_size=66 is not a multiple"),
    "mistral num_key_value_heads null": ({"model_type": "mistral", **SMALL,
                                          "num_key_value_heads": None},
                                         "'num_key_value_heads' is null"),
    "gemma2 attention_bias null": ({"model_type": "gemma2", **SMALL, "head_dim": 16,
                                    "attention_bias": None}, "'attention_bias' is null"),
    "deepseek_v3 n_shared_experts null": ({"model_type": "deepseek_v3", **MLA,
                                           "n_shared_experts": None},
                                          "'n_shared_experts' is null"),
    "deepseek_v3 num_key_value_heads 0": ({"model_type": "deepseek_v3", **MLA,
                                           "num_key_value_heads": 0},
                                          "'num_key_value_heads' must be an integer in 1"),

    "exaone4 sliding_window null without layer_types":
        ({"model_type": "exaone4", **SMALL, "sliding_window": None},
         "sliding_window=null needs layer_types"),
    "falcon with head_dim": ({"model_type": "falcon", **SMALL, "head_dim": 16},
                             "'head_dim' cannot be set for falcon"),
    "a whole number as a float": ({"model_type": "llama", **SMALL, "hidden_size": 64.0},
                                  r"'hidden_size' must be an integer, got 64.0 \(transformers"),
    "a float in a field gqa does not read": ({"model_type": "qwen2", **SMALL,
                                              "sliding_window": 4096.0},
                                             "'sliding_window' must be an integer, got 4096.0"),
    "layer_types of the wrong length": ({"model_type": "llama", **SMALL,
                                         "layer_types": ["full_attention"] * 3},
                                        "layer_types has 3 entries but num_hidden_layers=4"),
    # were ignored: GPT-2 and Falcon have no window (their configs no sliding_window field)
    "gpt2 with sliding layer_types": ({"model_type": "gpt2", "n_layer": 2, "n_embd": 64,
                                       "n_head": 4, "vocab_size": 128,
                                       "layer_types": ["sliding_attention"] * 2},
                                      "layer_types=.* is not supported for gpt2"),
    "falcon with sliding layer_types": ({"model_type": "falcon", **SMALL,
                                         "layer_types": ["sliding_attention"] * 4},
                                        "layer_types=.* is not supported for falcon"),
    # was "sliding_window is null": transformers nulls it for use_sliding_window=false
    "qwen2 sliding layer_types with use_sliding_window false":
        ({"model_type": "qwen2", **SMALL, "sliding_window": 8, "use_sliding_window": False,
          "layer_types": ["sliding_attention", "full_attention"] * 2},
         "sliding_attention layers but use_sliding_window=false"),
}


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)  # transformers' warnings about the odd configs
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.parametrize("name", BUILDS)
def test_what_transformers_builds_is_counted_as_it_builds_it(name, tmp_path):
    raw = BUILDS[name]
    total, windows = _build(raw, tmp_path)
    cfg = from_hf_config(raw)
    assert cost.params_total(cfg) == total
    assert cfg.layer_windows == windows


@pytest.mark.parametrize("name", REFUSED)
def test_what_transformers_refuses_is_refused_by_name(name, tmp_path):
    raw, message = REFUSED[name]
    with pytest.raises(Exception):  # the oracle: transformers will not build it
        _build(raw, tmp_path)
    with pytest.raises(GQAError, match=message) as e:
        from_hf_config(raw)
    assert "\n" not in str(e.value)


RUN_FAILS = {  # transformers builds these but their forward pass fails: no model to cost
    "stablelm head_dim other than hidden / heads (its rotary step reads it)":
        ({"model_type": "stablelm", **SMALL, "head_dim": 8},
         "head_dim other than hidden_size / num_attention_heads"),
    "deepseek_v2 num_key_value_heads below the heads":
        ({"model_type": "deepseek_v2", **MLA, "num_key_value_heads": 2},
         "num_key_value_heads=2 with num_attention_heads=4: transformers builds it but"),
    "deepseek_v3 omitting num_key_value_heads with 4 heads (its default is 128)":
        ({"model_type": "deepseek_v3", **{k: v for k, v in MLA.items()
                                          if k != "num_key_value_heads"}},
         r"num_key_value_heads=128 \(transformers' deepseek_v3 default\)"),
}


@pytest.mark.parametrize("name", RUN_FAILS)
def test_what_transformers_builds_but_cannot_run_is_refused(name, tmp_path):
    raw, message = RUN_FAILS[name]
    model = transformers.AutoModelForCausalLM.from_config(_from_file(raw, tmp_path))
    with pytest.raises(Exception):
        model(torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(GQAError, match=message):
        from_hf_config(raw)


def test_the_runnable_neighbours_of_those_are_counted(tmp_path):
    for raw in ({"model_type": "stablelm", **SMALL, "head_dim": 16},  # the derived width
                {"model_type": "deepseek_v3", **MLA}):
        assert cost.params_total(from_hf_config(raw)) == _build(raw, tmp_path)[0]


def test_refusals_name_the_files_fields_and_the_default_they_came_from():
    """ModelConfig's own refusals come back in the config.json's names (num_key_value_heads,
    not n_kv_head), with the default a field the file omits took."""
    with pytest.raises(GQAError, match=r"num_attention_heads=4 is not a multiple of "
                       r"num_key_value_heads=32 \(num_key_value_heads omitted: transformers' "
                       r"qwen2 default is 32\)"):
        from_hf_config({"model_type": "qwen2", **{k: v for k, v in SMALL.items()
                                                  if k != "num_key_value_heads"}})
    moe = {"model_type": "qwen3_moe", **SMALL, "head_dim": 16, "num_experts": 4,
           "num_experts_per_tok": 5, "moe_intermediate_size": 32}
    with pytest.raises(GQAError, match=r"num_experts_per_tok must be in 1..num_experts=4"):
        from_hf_config(moe)  # the file's own name for the expert count (an alias)
    with pytest.raises(GQAError, match=r"num_kv_heads=3"):
        from_hf_config({"model_type": "falcon", **SMALL, "new_decoder_architecture": True,
                        "num_kv_heads": 3})
    with pytest.raises(GQAError, match=r"hidden_size=2 is not a multiple of "
                       r"num_attention_heads=4; give head_dim$"):  # 2 // 4 heads: no width
        from_hf_config({"model_type": "mistral", **SMALL, "hidden_size": 2})
    with pytest.raises(GQAError, match=r"hidden_size=66 is not a multiple of num_attention_heads"
                       r"=4, which transformers' gpt_neox refuses \(head_dim does not change that\)$"):
        from_hf_config({"model_type": "gpt_neox", **SMALL, "hidden_size": 66})
