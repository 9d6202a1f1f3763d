"""ModelConfig validates itself and says what is wrong in words."""

import dataclasses
import json

import pytest

from gqa_lib import GQAError, ModelConfig, get_preset


def cfg(**kw):
    base = dict(n_layer=2, d_model=64, n_head=4, n_kv_head=2)
    base.update(kw)
    return ModelConfig(**base)


def test_defaults():
    c = cfg()
    assert c.d_head == 16 and c.d_ff == int(8 * 64 / 3) and c.group_size == 2
    assert not c.decoupled
    assert cfg(d_head=32).decoupled


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(n_head=12, n_kv_head=8), "n_head=12 is not a multiple of n_kv_head=8"),
        (dict(n_layer=0), "n_layer must be a positive integer"),
        (dict(d_model=-3), "d_model must be a positive integer"),
        (dict(n_kv_head=1.5), "n_kv_head must be a positive integer"),
        (dict(n_layer=True), "n_layer must be a positive integer"),
        (dict(d_head=0), "d_head must be a positive integer"),
        (dict(n_head=3, n_kv_head=1), "d_model=64 is not a multiple of n_head=3"),
        (dict(ffn="swiglo"), "ffn='swiglo' is not allowed.*did you mean 'swiglu'"),
        (dict(norm="batchnorm"), "norm='batchnorm' is not allowed"),
        (dict(tie_embeddings="yes"), "tie_embeddings must be true or false"),
        (dict(rope_theta=-1.0), "rope_theta must be a positive number"),
        (dict(sliding_window=0), "sliding_window must be a positive integer"),
    ],
)
def test_bad_fields(kw, msg):
    with pytest.raises(GQAError, match=msg):
        cfg(**kw)


def test_replace_revalidates():
    c = cfg()
    assert dataclasses.replace(c, n_kv_head=1).group_size == 4
    with pytest.raises(GQAError, match="not a multiple"):
        dataclasses.replace(c, n_kv_head=3)


def test_integral_floats_are_accepted():
    assert cfg(n_layer=2.0).n_layer == 2


def test_roundtrip_dict_and_files(tmp_path):
    c = get_preset("qwen2.5-0.5b")
    assert ModelConfig.from_dict(c.to_dict()) == c
    (tmp_path / "m.json").write_text(json.dumps({"model": c.to_dict()}))
    assert ModelConfig.from_file(tmp_path / "m.json") == c
    (tmp_path / "m.toml").write_text("n_layer = 2\nd_model = 64\nn_head = 4\nn_kv_head = 1\n")
    assert ModelConfig.from_file(tmp_path / "m.toml").n_kv_head == 1


def test_file_errors(tmp_path):
    with pytest.raises(GQAError, match="does not exist"):
        ModelConfig.from_file(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("n_layer = = 2")
    with pytest.raises(GQAError, match="cannot parse TOML"):
        ModelConfig.from_file(tmp_path / "bad.toml")
    (tmp_path / "x.yaml").write_text("n_layer: 2")
    with pytest.raises(GQAError, match="must end in .toml or .json"):
        ModelConfig.from_file(tmp_path / "x.yaml")
    (tmp_path / "u.json").write_text(json.dumps({"n_layers": 2}))
    with pytest.raises(GQAError, match="unknown model config field 'n_layers'.*'n_layer'"):
        ModelConfig.from_file(tmp_path / "u.json")
    with pytest.raises(GQAError, match="missing required field"):
        ModelConfig.from_dict({"n_layer": 2})


def test_config_files_are_data_not_code(tmp_path):
    # A TOML/JSON config is parsed, never executed: a Python expression is just a bad value.
    (tmp_path / "evil.json").write_text(json.dumps(
        {"n_layer": "__import__('os').system('touch pwned')", "d_model": 64, "n_head": 4,
         "n_kv_head": 1}))
    with pytest.raises(GQAError, match="n_layer must be a positive integer"):
        ModelConfig.from_file(tmp_path / "evil.json")
    assert not (tmp_path / "pwned").exists()


def test_unknown_preset_suggests():
    with pytest.raises(GQAError, match="did you mean 'llama-3.1-8b'"):
        get_preset("llama-3.1-8")
    assert get_preset("  Llama-3.2-1B ") is get_preset("llama-3.2-1b")
