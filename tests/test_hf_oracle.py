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
from gqa_lib.arch.hf_defaults import NOT_READ

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
from huggingface_hub.errors import StrictDataclassClassValidationError  # noqa: E402

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


# torch warns while initialising a 0-wide layer (Qwen2-MoE's shared expert of width 0)
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors:UserWarning")
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


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors:UserWarning")
@pytest.mark.parametrize("model_type", SUPPORTED)
def test_hidden_size_no_multiple_of_the_heads(model_type):
    """hidden_size 66 with 4 heads and no head_dim: where transformers builds and runs it
    (head_dim = 66 // 4 = 16, q_proj 66 -> 64), gqa counts exactly what it builds; where
    transformers refuses it (a configuration check, a division check), gqa refuses it too."""
    raw = {"num_hidden_layers": 2, "hidden_size": 66, "num_attention_heads": 4,
           "num_key_value_heads": 2, "intermediate_size": 64, "vocab_size": 128,
           "pad_token_id": None}
    raw = ({"model_type": model_type, "text_config": raw} if model_type in hf_families.TEXT_CONFIGS
           else {"model_type": model_type, **raw})
    runs = True
    try:
        model = transformers.AutoModelForCausalLM.from_config(
            _hf_config(raw), experts_implementation="eager").eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, dtype=torch.long))
    except (ValueError, RuntimeError, StrictDataclassClassValidationError):  # a check, a forward
        runs = False
    if runs:
        _check(raw)
    else:
        with pytest.raises(GQAError, match="hidden_size=66 is not a multiple|num_key_value_heads"):
            from_hf_config(raw)


# ----- what gqa refuses: transformers builds it but cannot run it, or does not read it ---------
_SMALL = dict(hidden_size=64, intermediate_size=96, num_attention_heads=4, num_hidden_layers=2,
              vocab_size=100)


@pytest.mark.parametrize("change", [
    dict(num_ln_in_parallel_attn=2),  # old architecture: builds ln_attn, ln_mlp, reads neither
    dict(new_decoder_architecture=True, parallel_attn=False),
    dict(new_decoder_architecture=True, num_ln_in_parallel_attn=3),
])
def test_falcon_blocks_transformers_cannot_run_are_refused(change):
    raw = {"model_type": "falcon", **_SMALL, **change}
    with pytest.raises(GQAError, match="its forward pass fails|its forward pass reads"):
        from_hf_config(raw)
    model = transformers.AutoModelForCausalLM.from_config(_hf_config(raw)).eval()
    with torch.no_grad(), pytest.raises((AttributeError, UnboundLocalError)):
        model(torch.zeros(1, 3, dtype=torch.long))


@pytest.mark.parametrize("model_type", ["cohere", "cohere2"])
def test_null_head_dim_of_cohere_is_refused(model_type):
    raw = {"model_type": model_type, **_SMALL, "head_dim": None}
    with pytest.raises(GQAError, match="'head_dim' is null"):
        from_hf_config(raw)
    with torch.device("meta"), pytest.raises(TypeError):  # n_head * None, None ** -0.5
        transformers.AutoModelForCausalLM.from_config(_hf_config(raw))


@pytest.mark.parametrize("model_type, key, read",
                         [(t, k, f) for t, keys in NOT_READ.items() for k, f in keys.items()])
def test_look_alike_keys_transformers_does_not_read_are_refused(model_type, key, read):
    built = getattr(transformers.AutoConfig.for_model(model_type), read)
    assert getattr(transformers.AutoConfig.for_model(model_type, **{key: 2}), read) == built != 2
    with pytest.raises(GQAError, match=f"{key}=2 is not read by transformers' {model_type}, "
                                       f"which reads '{read}' instead"):
        from_hf_config({"model_type": model_type, key: 2})


# ----- the cache a real forward pass allocates ------------------------------------------------
_TINY = dict(hidden_size=64, intermediate_size=96, num_attention_heads=4, num_key_value_heads=2,
             num_hidden_layers=4, vocab_size=128, head_dim=16)
_CACHE_CASES = {
    "mistral": dict(sliding_window=8),
    "gemma2": dict(sliding_window=8),
    "gpt_oss": dict(sliding_window=8, num_local_experts=4, num_experts_per_tok=2,
                    intermediate_size=32),
    "llama4_text": dict(attention_chunk_size=8, num_local_experts=2, intermediate_size_mlp=64),
    "qwen2": dict(use_sliding_window=True, sliding_window=8, max_window_layers=2),
    "deepseek_v2": dict(kv_lora_rank=32, q_lora_rank=None, qk_rope_head_dim=8,
                        qk_nope_head_dim=16, v_head_dim=16, n_routed_experts=4,
                        num_experts_per_tok=2, moe_intermediate_size=16, n_shared_experts=1,
                        num_key_value_heads=4),
}


@pytest.mark.parametrize("model_type", sorted(_CACHE_CASES))
def test_cache_tensors_of_a_forward_pass(model_type):
    """A tiny model's prefill of T = 21 tokens on CPU: each layer's cached tokens and values per
    token equal ours, up to the stated window convention (transformers keeps W - 1 tokens in
    a W-window or W-chunk layer between steps; we count the W the next query attends). For
    DeepSeek, transformers 5 caches the compressed latent: our default ``mla="latent"``."""
    raw = {"model_type": model_type, **_TINY, **_CACHE_CASES[model_type]}
    cfg = from_hf_config(raw)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(_hf_config(raw)).eval()
    T = 21
    with torch.no_grad():
        cache = model(torch.randint(0, 128, (1, T)), use_cache=True).past_key_values
    width = cost.kv_cache_values(cfg, 1) // cfg.n_layer  # values per token and layer
    stored = 0
    for layer, w in zip(cache.layers, cfg.layer_windows):
        k, v = layer.keys, layer.values  # (B, heads, tokens, dim)
        assert k.shape[1] * k.shape[-1] + v.shape[1] * v.shape[-1] == width
        assert k.shape[-2] == (T if w is None else min(T, w) - 1)
        stored += k[0].numel() + v[0].numel()
    n_capped = sum(w is not None and T >= w for w in cfg.layer_windows)
    assert cost.kv_cache_values(cfg, T) == stored + n_capped * width


# ----- FLOPs against execution -------------------------------------------------------------
_TINY = {"hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4,
         "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 128}
_EXECUTED = {
    "llama": {"model_type": "llama", **_TINY, "attention_bias": True},
    "mixtral": {"model_type": "mixtral", **_TINY, "num_local_experts": 4,
                "num_experts_per_tok": 2},
    "qwen2_moe": {"model_type": "qwen2_moe", **_TINY, "num_experts": 4, "num_experts_per_tok": 2,
                  "moe_intermediate_size": 32, "shared_expert_intermediate_size": 48},
    "deepseek_v3": {"model_type": "deepseek_v3", **_TINY, "num_key_value_heads": 4,
                    "kv_lora_rank": 32, "q_lora_rank": 24,
                    "qk_rope_head_dim": 8, "qk_nope_head_dim": 16, "v_head_dim": 16,
                    "n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16,
                    "n_shared_experts": 1, "first_k_dense_replace": 1, "n_group": 1,
                    "topk_group": 1},
    "gpt2": {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 128},
    "falcon": {"model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2,
               "num_attention_heads": 4, "vocab_size": 128, "new_decoder_architecture": True,
               "num_kv_heads": 2},
}


@pytest.mark.parametrize("name", _EXECUTED)
def test_prefill_flops_equal_what_transformers_executes(name):
    """One forward pass of a 16-token prompt under torch's FlopCounterMode (eager attention,
    eager experts: a token runs through the k experts it is routed to) against
    ``prefill_flops(attention="full", lm_head=True)``: FlopCounterMode counts every query
    against every key (T^2: the mask is applied after the product), latent attention runs
    decompressed in transformers' prefill, and the rotary embedding's angle product is not
    the model's (left out). Linear layers, routers, shared experts and their gates, Conv1D
    and parallel blocks are all in the count."""
    from torch.utils.flop_counter import FlopCounterMode

    raw, T = _EXECUTED[name], 16
    hf_cfg = _hf_config(raw)
    torch.manual_seed(0)
    kw = {"attn_implementation": "eager"}
    try:
        model = transformers.AutoModelForCausalLM.from_config(hf_cfg, experts_implementation="eager",
                                                              **kw).eval()
    except (TypeError, ValueError):  # a model without an experts implementation to choose
        model = transformers.AutoModelForCausalLM.from_config(hf_cfg, **kw).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randint(0, 128, (1, T)))
    rotary = sum(sum(ops.values()) for module, ops in counter.get_flop_counts().items()
                 if module.endswith("rotary_emb"))
    measured = counter.get_total_flops() - rotary
    cfg = from_hf_config(raw)
    assert measured == cost.prefill_flops(cfg, T, attention="full", lm_head=True,
                                          mla="decompressed")
