"""transformers as the oracle of the config.json import: for every supported model type, the
config files in tests/data/hf (and one made of transformers' defaults alone) are built on the
meta device (no weights, no hub), and gqa's parameter total, active parameters and per-layer
attention windows must equal what transformers builds and what its cache allocates."""

import json
import re
from pathlib import Path

import pytest

from gqa_lib import GQAError, cost
from gqa_lib.arch import hf_families
from gqa_lib.arch.hf import SUPPORTED, from_hf_config

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

HF = Path(__file__).parent / "data" / "hf"
FILES = sorted(HF.glob("*.json")) + sorted((HF / "oracle").glob("*.json"))
_EXPERTS = re.compile(r"\.experts\.")  # routed experts' fused (n_experts, ...) tensors


def _hf_config(raw):
    raw = dict(raw)
    if raw.get("model_type") in hf_families.TEXT_CONFIGS:
        raw = {**raw["text_config"], "model_type": hf_families.TEXT_CONFIGS[raw["model_type"]]}
    kind = raw.pop("model_type")
    return transformers.AutoConfig.for_model(kind, **raw)


def _oracle(raw):
    """(total parameters, active parameters, per-layer cache windows) from transformers."""
    hf_cfg = _hf_config(raw)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(hf_cfg)
    k = getattr(hf_cfg, "num_experts_per_tok", None)
    total = active = 0
    for name, p in model.named_parameters():  # tied weights appear once
        total += p.numel()
        if _EXPERTS.search(name) and p.dim() >= 2:
            active += p.numel() // p.shape[0] * k  # only the routed experts a token uses
        else:
            active += p.numel()
    cache = transformers.DynamicCache(config=hf_cfg)
    windows = tuple(getattr(layer, "sliding_window", None) for layer in cache.layers)
    return total, active, windows


def _outside(cfg):
    p = cost.param_counts(cfg)
    return p["embedding"] + p["lm_head"] + p["pos_embedding"]


def _check(raw):
    cfg = from_hf_config(raw)
    total, active, windows = _oracle(raw)
    assert cost.params_total(cfg) == total
    assert cost.params_active(cfg) + _outside(cfg) == active
    assert cfg.layer_windows == windows


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_config_files_match_transformers(path):
    _check(json.loads(path.read_text()))


@pytest.mark.parametrize("model_type", SUPPORTED)
def test_defaults_match_transformers(model_type):
    """A config.json with nothing but its model_type: every field from transformers' defaults,
    or refused in one line (a required field transformers leaves null)."""
    raw = {"model_type": model_type}
    if model_type == "deepseek_v2":
        with pytest.raises(GQAError, match="'num_experts_per_tok' must be an integer"):
            from_hf_config(raw)
        raw["num_experts_per_tok"] = 6
    _check(raw)


def test_every_supported_type_has_a_config_file():
    types = {json.loads(p.read_text())["model_type"] for p in FILES}
    types = {hf_families.TEXT_CONFIGS.get(t, t) for t in types}
    assert set(SUPPORTED) <= types
