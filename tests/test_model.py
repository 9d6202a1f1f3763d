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


def reference_attention(q, k, v, offset=0):
    """Explicit GQA: repeat each KV head over its group, then causal softmax attention; the
    queries are the last of offset + Tq positions (offset > 0: a chunk after a cache)."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
    T = q.shape[2]
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    future = torch.ones(T, offset + T, dtype=torch.bool).triu(offset + 1)
    scores = scores.masked_fill(future, float("-inf"))
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


@pytest.mark.parametrize("n_head, n_kv_head", [(4, 4), (4, 2), (4, 1)])  # MHA, GQA, MQA
def test_chunked_prefill_equals_one_pass(n_head, n_kv_head):
    cfg = ModelConfig(n_layer=2, d_model=32, n_head=n_head, n_kv_head=n_kv_head, d_head=8,
                      vocab_size=61)
    m = model_of(cfg)
    x = torch.randint(0, cfg.vocab_size, (2, 24))
    full, _ = m(x)
    cache = KVCache.empty(cfg, 2, 24, dtype=torch.float32)
    chunks = [m(x[:, i:j], cache=cache)[0] for i, j in ((0, 8), (8, 13), (13, 14), (14, 24))]
    torch.testing.assert_close(torch.cat(chunks, 1), full, rtol=1e-5, atol=1e-5)


def test_chunk_after_the_cache_uses_a_lower_right_bias_not_a_mask(monkeypatch):
    from torch.nn.attention.bias import CausalBias

    from gqa_lib.train import model as model_mod

    seen = []
    real = model_mod.sdpa_gqa

    def spy(q, k, v, **kw):
        seen.append((q.shape[2], k.shape[2], kw["is_causal"], kw["attn_mask"]))
        return real(q, k, v, **kw)

    monkeypatch.setattr(model_mod, "sdpa_gqa", spy)
    cfg = CONFIGS["tiny"]
    m, cache = model_of(cfg), KVCache.empty(cfg, 1, 12, dtype=torch.float32)
    m(torch.zeros(1, 5, dtype=torch.long), cache=cache)  # prefill: plain causal
    m(torch.zeros(1, 4, dtype=torch.long), cache=cache)  # a chunk at pos 5
    m(torch.zeros(1, 1, dtype=torch.long), cache=cache)  # one decoded token: no mask at all
    first, chunk, token = seen[0], seen[cfg.n_layer], seen[2 * cfg.n_layer]
    assert first == (5, 5, True, None) and token == (1, 10, False, None)
    assert chunk[:3] == (4, 9, False) and isinstance(chunk[3], CausalBias)


def test_chunk_mask_fallbacks_agree(monkeypatch):
    """torch < 2.2 gets the explicit boolean mask, torch < 2.5 repeats K/V: same attention."""
    from gqa_lib.train import model as model_mod

    torch.manual_seed(0)
    q, k, v = torch.randn(2, 6, 3, 8), torch.randn(2, 2, 7, 8), torch.randn(2, 2, 7, 8)
    bias = model_mod.chunk_causal_mask(3, 7)
    want = reference_attention(q, k, v, offset=4)
    torch.testing.assert_close(sdpa_gqa(q, k, v, attn_mask=bias), want, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(model_mod, "_causal_lower_right", lambda: None)
    mask = model_mod.chunk_causal_mask(3, 7)
    assert mask.dtype == torch.bool and mask.tolist() == bias._materialize().tolist()
    monkeypatch.setattr(model_mod, "_HAS_ENABLE_GQA", False)
    for m in (mask, bias):
        torch.testing.assert_close(sdpa_gqa(q, k, v, attn_mask=m), want, rtol=1e-5, atol=1e-5)


def test_gqa_materialises_shared_heads_on_a_gpu_without_flash(monkeypatch):
    """On a T4 (compute capability 7.5) SDPA's memory-efficient kernel refuses n_kv != n_h:
    sdpa_gqa repeats K/V there instead of falling to the math kernel; same numbers."""
    from gqa_lib.train import model as m

    q, k, v = torch.randn(2, 8, 16, 8), torch.randn(2, 2, 16, 8), torch.randn(2, 2, 16, 8)
    want = m.sdpa_gqa(q, k, v, is_causal=True)
    calls = []
    real = m.F.scaled_dot_product_attention

    def spy(q_, k_, v_, **kw):
        calls.append((k_.shape[1], kw.get("enable_gqa", False)))
        return real(q_, k_, v_, **kw)

    monkeypatch.setattr(m, "_no_flash", lambda q_: True)
    monkeypatch.setattr(m.F, "scaled_dot_product_attention", spy)
    got = m.sdpa_gqa(q, k, v, is_causal=True)
    assert calls == [(8, False)] and torch.allclose(got, want, atol=1e-6)


# our block against transformers' implementation of the same architecture, weight for weight
_HF_NAMES = {"tok_emb": "model.embed_tokens", "norm": "model.norm", "lm_head": "lm_head",
             "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
             "attn.wq": "self_attn.q_proj", "attn.wk": "self_attn.k_proj",
             "attn.wv": "self_attn.v_proj", "attn.wo": "self_attn.o_proj",
             "attn.q_norm": "self_attn.q_norm", "attn.k_norm": "self_attn.k_norm",
             "ffn.w1": "mlp.gate_proj", "ffn.w3": "mlp.up_proj", "ffn.w2": "mlp.down_proj"}


def _hf_name(ours: str) -> str:
    if ours.startswith("blocks."):
        _, i, rest = ours.split(".", 2)
        module, leaf = rest.rsplit(".", 1)
        return f"model.layers.{i}.{_HF_NAMES[module]}.{leaf}"
    module, leaf = ours.rsplit(".", 1)
    return f"{_HF_NAMES[module]}.{leaf}"


@pytest.mark.parametrize("model_type,cfg", [
    ("llama", ModelConfig(n_layer=2, d_model=64, n_head=8, n_kv_head=2, d_head=16, d_ff=96,
                          vocab_size=101, rope_theta=5e5, tie_embeddings=False)),
    ("llama", ModelConfig(n_layer=2, d_model=48, n_head=4, n_kv_head=1, d_head=20, d_ff=80,
                          vocab_size=64)),  # MQA, decoupled head width, tied
    ("qwen2", ModelConfig(n_layer=2, d_model=64, n_head=4, n_kv_head=2, d_head=16, d_ff=96,
                          vocab_size=80, qkv_bias=True, tie_embeddings=False)),
    ("qwen3", ModelConfig(n_layer=2, d_model=64, n_head=4, n_kv_head=2, d_head=16, d_ff=96,
                          vocab_size=80, qk_norm=True)),
], ids=["llama-gqa", "llama-mqa-tied", "qwen2-qkv-bias", "qwen3-qk-norm"])
def test_same_logits_as_transformers_with_the_same_weights(model_type, cfg):
    """GQATransformer is the Llama (Qwen2 with q/k/v biases, Qwen3 with q/k norms) block that
    transformers implements: with our weights copied in by name, its eager forward gives our
    logits (fp32). What the cost model counts is what these architectures compute."""
    transformers = pytest.importorskip("transformers")
    ours = model_of(cfg, seed=3)
    for p in ours.parameters():  # norms and biases start at 1 and 0: make them matter
        p.data.add_(0.05 * torch.randn_like(p))
    hf_cfg = transformers.AutoConfig.for_model(
        model_type, hidden_size=cfg.d_model, intermediate_size=cfg.d_ff,
        num_attention_heads=cfg.n_head, num_key_value_heads=cfg.n_kv_head,
        head_dim=cfg.d_head, num_hidden_layers=cfg.n_layer, vocab_size=cfg.vocab_size,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        rms_norm_eps=1e-6, tie_word_embeddings=cfg.tie_embeddings, hidden_act="silu",
        attn_implementation="eager", **({"attention_bias": False} if model_type != "qwen2"
                                        else {}))
    hf = transformers.AutoModelForCausalLM.from_config(hf_cfg).eval()
    theirs = dict(hf.named_parameters())
    mine = dict(ours.named_parameters())
    assert sorted(map(_hf_name, mine)) == sorted(theirs)  # the same tensors, no more, no less
    with torch.no_grad():
        for name, p in mine.items():
            theirs[_hf_name(name)].copy_(p)
    idx = torch.randint(0, cfg.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = hf(idx).logits
        got, _ = ours(idx)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
