"""Hugging Face config.json import: real configs reproduce the presets; bad ones fail clearly."""

import json
from pathlib import Path

import pytest

from gqa_lib import GQAError, get_preset
from gqa_lib.arch.hf import from_hf_config

HF = Path(__file__).parent / "data" / "hf"


@pytest.mark.parametrize("name", sorted(p.stem for p in HF.glob("*.json")))
def test_real_configs_match_presets(name):
    assert from_hf_config(HF / f"{name}.json") == get_preset(name)


def test_directory_and_dict(tmp_path):
    (tmp_path / "config.json").write_text((HF / "qwen3-8b.json").read_text())
    assert from_hf_config(tmp_path) == get_preset("qwen3-8b")
    assert from_hf_config(json.loads((HF / "gemma-7b.json").read_text())).d_head == 256


def base():
    return json.loads((HF / "llama-3.2-1b.json").read_text())


@pytest.mark.parametrize(
    "change, msg",
    [
        ({"model_type": "mamba"}, "model_type='mamba' is not supported .*; supported: cohere, "
                                  "cohere2, deepseek_v2.*point|shape flags"),
        ({"model_type": "unknown_arch"}, "llama-shaped model can be costed with the shape flags"),
        ({"num_local_experts": 8}, "mixture-of-experts field, but transformers' llama has no"),
        ({"kv_lora_rank": 512}, "latent-attention field"),
        ({"num_hidden_layers": None}, "num_hidden_layers' must be an integer"),
        ({"hidden_act": "tanh"}, "hidden_act='tanh' is not supported"),
        ({"num_key_value_heads": 7}, "num_attention_heads=32 is not a multiple of num_key_value_heads=7"),
        ({"layer_types": ["sliding_attention", "full_attention"]},
         "layer_types=.* is not supported for llama"),
        ({"sliding_window": 4096}, "sliding_window=4096 is not supported for llama"),
    ],
)
def test_unsupported(change, msg):
    cfg = base()
    cfg.update(change)
    with pytest.raises(GQAError, match=msg):
        from_hf_config(cfg)


def test_missing_field_and_files(tmp_path):
    cfg = base()
    cfg["model_type"] = "deepseek_v2"  # transformers leaves its experts per token null
    cfg["num_key_value_heads"] = cfg["num_attention_heads"]  # as latent attention runs
    with pytest.raises(GQAError, match="'num_experts_per_tok' must be an integer, got None"):
        from_hf_config(cfg)
    with pytest.raises(GQAError, match="not found"):
        from_hf_config(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(GQAError, match="not valid JSON"):
        from_hf_config(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(GQAError, match="JSON object"):
        from_hf_config(tmp_path / "list.json")
