"""Oracle tests: the torch model agrees with the analytic cost model and with references."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from gqa_lib import GQAError, ModelConfig, cost, get_preset
from gqa_lib.train.model import GQATransformer, KVCache, sdpa_gqa

CONFIGS = {
    "tiny": get_preset("tiny"),
    # decoupled heads, every optional feature on
    "odd": ModelConfig(n_layer=2, d_model=48, n_head=6, n_kv_head=3, d_head=20, vocab_size=97,
                       qk_norm=True, qkv_bias=True, tie_embeddings=False, ffn="gelu",
                       norm="layernorm"),
    "mqa-geglu": ModelConfig(n_layer=3, d_model=64, n_head=4, n_kv_head=1, d_head=8,
                             vocab_size=50, ffn="geglu"),
    "gqa-reglu": ModelConfig(n_layer=2, d_model=32, n_head=4, n_kv_head=2, d_head=8,
                             vocab_size=50, ffn="reglu"),
}


@pytest.fixture(params=sorted(CONFIGS))
def cfg(request):
    return CONFIGS[request.param]


def model_of(cfg, seed=0):
    torch.manual_seed(seed)
    return GQATransformer(cfg).eval()


def test_param_count_equals_cost_model(cfg):
    m = model_of(cfg)
    assert m.num_params() == cost.params_total(cfg)
    emb = cfg.vocab_size * cfg.d_model * (1 if cfg.tie_embeddings else 2)
    assert m.num_params() - emb == cost.params_non_embedding(cfg)


def test_forward_flops_equal_cost_model(cfg):
    # FlopCounterMode counts matmuls only, and SDPA only on its math backend (facts.md); the
    # math kernel computes the full T x T scores even when causal -> attention="full".
    B, T = 2, 24
    x = torch.randint(0, cfg.vocab_size, (B, T))
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        model_of(cfg)(x)
    expected = B * cost.prefill_flops(cfg, T, attention="full", lm_head=True)
    assert counter.get_total_flops() == expected


def test_kv_cache_bytes_equal_cost_model(cfg):
    B, T = 3, 17
    m = model_of(cfg)
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        cache = KVCache.empty(cfg, B, T, dtype=dtype)
        m.to(dtype)(torch.randint(0, cfg.vocab_size, (B, T)), cache=cache)
        assert cache.length == T
        assert cache.nbytes == cost.kv_cache_bytes(cfg, T, dtype=name, batch=B)


def test_cached_decode_equals_full_forward(cfg):
    B, T = 2, 20
    m = model_of(cfg)
    x = torch.randint(0, cfg.vocab_size, (B, T))
    full, _ = m(x)
    cache = KVCache.empty(cfg, B, T, dtype=torch.float32)
    parts = [m(x[:, :7], cache=cache)[0], m(x[:, 7:12], cache=cache)[0]]  # prefill, chunk
    parts += [m(x[:, t:t + 1], cache=cache)[0] for t in range(12, T)]  # one token at a time
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=1e-5, atol=1e-5)


def reference_attention(q, k, v):
    """Explicit GQA: repeat each KV head over its group, then causal softmax attention."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
    T = q.shape[2]
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return F.softmax(scores, -1) @ v


@pytest.mark.parametrize("n_head, n_kv_head", [(8, 8), (8, 2), (8, 1), (6, 3)])
def test_gqa_equals_repeat_interleave_reference(n_head, n_kv_head):
    torch.manual_seed(0)
    q = torch.randn(2, n_head, 16, 8)
    k, v = torch.randn(2, n_kv_head, 16, 8), torch.randn(2, n_kv_head, 16, 8)
    torch.testing.assert_close(sdpa_gqa(q, k, v, is_causal=True), reference_attention(q, k, v),
                               rtol=1e-5, atol=1e-5)


def test_mha_when_n_kv_equals_n_head():
    # With n_kv_head == n_head the model is standard multi-head attention: the attention output
    # equals torch's own MultiheadAttention-free reference with no sharing at all.
    cfg = dataclasses.replace(CONFIGS["tiny"], n_kv_head=8)
    m = model_of(cfg)
    attn = m.blocks[0].attn
    x = torch.randn(2, 10, cfg.d_model)
    from gqa_lib.train.model import apply_rope, rope_cos_sin

    cos, sin = rope_cos_sin(torch.arange(10), cfg.d_head, cfg.rope_theta)
    q = apply_rope(attn.wq(x).view(2, 10, 8, 16).transpose(1, 2), cos, sin)
    k = apply_rope(attn.wk(x).view(2, 10, 8, 16).transpose(1, 2), cos, sin)
    v = attn.wv(x).view(2, 10, 8, 16).transpose(1, 2)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    want = attn.wo(want.transpose(1, 2).reshape(2, 10, 128))
    torch.testing.assert_close(attn(x, cos, sin), want)


def test_tied_embeddings_share_storage():
    m = model_of(CONFIGS["tiny"])
    assert m.lm_head.weight.data_ptr() == m.tok_emb.weight.data_ptr()
    assert model_of(CONFIGS["odd"]).lm_head.weight.data_ptr() != model_of(
        CONFIGS["odd"]).tok_emb.weight.data_ptr()


def test_generate_greedy_matches_argmax_of_full_forward():
    m = model_of(CONFIGS["tiny"])
    prompt = torch.randint(0, 2048, (1, 5))
    out = m.generate(prompt, 6, temperature=0)
    for t in range(5, 11):
        logits, _ = m(out[:, :t])
        assert out[0, t] == logits[0, -1].argmax()


def test_model_rejects_sliding_window_and_overfull_cache():
    with pytest.raises(GQAError, match="sliding_window"):
        GQATransformer(dataclasses.replace(CONFIGS["tiny"], sliding_window=64))
    m = model_of(CONFIGS["tiny"])
    cache = KVCache.empty(CONFIGS["tiny"], 1, 4, dtype=torch.float32)
    with pytest.raises(GQAError, match="KV cache holds 4 tokens"):
        m(torch.zeros(1, 5, dtype=torch.long), cache=cache)


def test_configs_the_model_does_not_build_are_refused_not_trained_as_dense():
    for name in ("mixtral-8x7b-v0.1", "deepseek-v2-lite", "gemma-2-9b"):
        with pytest.raises(GQAError, match="cost model only"):
            GQATransformer(get_preset(name))
