"""Read a Hugging Face `config.json` into a ModelConfig, offline and without `transformers`.

Supports dense Llama/Mistral/Qwen2/Qwen3/Gemma-style decoders. Anything that would change the
cost model's counts and that it cannot represent (mixture of experts, output-projection or MLP
biases, per-layer window patterns) is rejected with a message naming the field, never silently
dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gqa_lib.arch.config import ModelConfig
from gqa_lib.errors import GQAError

# model_type -> defaults that transformers applies when config.json omits a field.
_FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {"tie_word_embeddings": False, "rope_theta": 10_000.0},
    "mistral": {"tie_word_embeddings": False, "rope_theta": 10_000.0},
    "qwen2": {"tie_word_embeddings": False, "rope_theta": 10_000.0, "qkv_bias": True},
    "qwen3": {"tie_word_embeddings": False, "rope_theta": 10_000.0, "qk_norm": True},
    "gemma": {"tie_word_embeddings": True, "rope_theta": 10_000.0},
}
_ACTIVATIONS = {"silu": "swiglu", "swish": "swiglu", "gelu": "geglu",
                "gelu_pytorch_tanh": "geglu", "gelu_new": "geglu"}
_MOE_FIELDS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_intermediate_size")


def from_hf_config(source: str | Path | Mapping[str, Any]) -> ModelConfig:
    """Build a ModelConfig from a config.json path, a directory holding one, or its dict."""
    cfg, origin = _load(source)
    model_type = cfg.get("model_type")
    if model_type not in _FAMILIES:
        raise GQAError(
            f"{origin}: model_type={model_type!r} is not supported; supported: "
            f"{', '.join(sorted(_FAMILIES))} (dense decoders with grouped-query attention)"
        )
    fam = _FAMILIES[model_type]
    for k in _MOE_FIELDS:
        if cfg.get(k):
            raise GQAError(f"{origin}: {k}={cfg[k]!r}: mixture-of-experts models are not "
                           "supported by the cost model")
    for k in ("attention_bias", "mlp_bias"):
        if cfg.get(k):
            raise GQAError(f"{origin}: {k}=true is not supported (the cost model counts only "
                           "the q/k/v biases of Qwen2-style attention)")
    if cfg.get("layer_types") and len(set(cfg["layer_types"])) > 1:
        raise GQAError(f"{origin}: layer_types mixes {sorted(set(cfg['layer_types']))}; "
                       "per-layer attention patterns are not supported")

    def need(key: str) -> int:
        if key not in cfg:
            raise GQAError(f"{origin}: required field {key!r} is missing")
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise GQAError(f"{origin}: field {key!r} must be an integer, got {v!r}")
        return v

    n_head = need("num_attention_heads")
    d_model = need("hidden_size")
    act = cfg.get("hidden_activation") or cfg.get("hidden_act") or "silu"
    if act not in _ACTIVATIONS:
        raise GQAError(f"{origin}: hidden_act={act!r} is not supported; supported: "
                       f"{', '.join(sorted(_ACTIVATIONS))} (gated FFN)")
    window = cfg.get("sliding_window")
    if model_type in ("qwen2", "qwen3") and not cfg.get("use_sliding_window", False):
        window = None  # Qwen ships a window value but disables it by default
    head_dim = cfg.get("head_dim")
    fields = dict(
        n_layer=need("num_hidden_layers"),
        d_model=d_model,
        n_head=n_head,
        n_kv_head=cfg.get("num_key_value_heads") or n_head,
        d_head=head_dim if head_dim is not None else None,
        d_ff=need("intermediate_size"),
        vocab_size=need("vocab_size"),
        ffn=_ACTIVATIONS[act],
        tie_embeddings=bool(cfg.get("tie_word_embeddings", fam["tie_word_embeddings"])),
        norm="rmsnorm",
        qk_norm=fam.get("qk_norm", False),
        qkv_bias=fam.get("qkv_bias", False),
        rope_theta=float(cfg.get("rope_theta", fam["rope_theta"])),
        sliding_window=window,
        name=str(cfg.get("_name_or_path") or origin),
    )
    try:
        return ModelConfig(**fields)
    except GQAError as e:
        raise GQAError(f"{origin}: {e}") from None


def _load(source: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(source, Mapping):
        return dict(source), "HF config"
    p = Path(source)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise GQAError(f"HF config {str(source)!r} not found (give a config.json or its folder)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise GQAError(f"{p}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise GQAError(f"{p}: expected a JSON object at the top level")
    return data, str(p)
