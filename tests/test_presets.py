"""Every published model's parameter count, computed from its shape, equals the published total."""

import dataclasses
import json

import pytest

from gqa_lib import cost
from gqa_lib.arch.config import PRESETS, PUBLISHED_PARAMS, get_preset, paper_family


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_published_total(name):
    pub = PUBLISHED_PARAMS[name]
    p = cost.param_counts(get_preset(name))
    if pub["exact"]:
        assert p["total"] == pub["total"]
    else:  # only the published rounding is known (e.g. "8.2B")
        assert round(p["total"] / 1e9, 1) == pytest.approx(pub["total"] / 1e9)
    if "non_embedding" in pub:  # model cards give it to 2 decimals in billions
        assert round(p["non_embedding"] / 1e9, 2) == pytest.approx(pub["non_embedding"] / 1e9)


def test_published_active_counts():
    for name, pub in PUBLISHED_PARAMS.items():
        if "active_total" in pub:  # published to 0.1B, embeddings included
            cfg = get_preset(name)
            outside = cost.params_total(cfg) - cost.params_non_embedding(cfg)
            assert round((cost.params_active(cfg) + outside) / 1e9, 1) == pub["active_total"] / 1e9


def test_hybrid_moe_and_mla_presets_for_the_cost_pages():
    # the where-cost-goes comparison needs one of each (issue 13)
    assert get_preset("gemma-2-9b").n_window_layers == 21
    assert get_preset("mixtral-8x7b-v0.1").is_moe and get_preset("qwen3-30b-a3b").is_moe
    assert get_preset("deepseek-v2-lite").is_mla


def test_every_real_model_has_a_published_count():
    real = [n for n in PRESETS if not n.startswith("paper-") and n != "tiny"]
    assert sorted(real) == sorted(PUBLISHED_PARAMS)


def test_gemma_is_decoupled():
    g = get_preset("gemma-7b")
    assert g.n_head * g.d_head == 4096 != g.d_model == 3072
    assert g.decoupled


def test_paper_family_matches_brief():
    # The paper's figures: N = L (2 d d_h (n_h + n_kv) + 3 d d_ff), norms ignored; the
    # largest Llama-3 GQA point (L=32, H=(32, 8)) is 1.409B by this formula ("1.2B" in the paper).
    cfg = paper_family(32)
    n = cost.params_non_embedding(cfg, include_norms=False)
    L, d, dff = 32, 2048, int(8 * 2048 / 3)
    assert n == L * (2 * d * 64 * (32 + 8) + 3 * d * dff)
    assert round(n / 1e9, 3) == 1.409


def test_paper_family_rejects_invalid_grouping():
    with pytest.raises(ValueError, match="n_head=12 is not a multiple of n_kv_head=8"):
        paper_family(12)


def test_table9_shapes_present():
    for L, d in [(4, 256), (36, 1536)]:
        cfg = get_preset(f"paper-t9-L{L}-d{d}")
        assert (cfg.n_layer, cfg.d_model, cfg.d_head) == (L, d, 64)


def test_presets_are_named_consistently():
    for name, cfg in PRESETS.items():
        assert cfg.name == name
        assert dataclasses.replace(cfg) == cfg


@pytest.mark.parametrize("name", ["gemma-2-9b", "mixtral-8x7b-v0.1", "deepseek-v2-lite"])
def test_extended_presets_roundtrip_through_json(name, tmp_path):
    cfg = get_preset(name)
    (tmp_path / "m.json").write_text(json.dumps(cfg.to_dict()))
    back = cfg.from_file(tmp_path / "m.json")
    assert back == cfg and cost.params_total(back) == cost.params_total(cfg)
