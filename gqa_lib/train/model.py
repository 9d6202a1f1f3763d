"""A decoder-only GQA transformer built from the same ModelConfig as the cost model.

The paper's architecture: pre-norm RMSNorm, RoPE, SwiGLU, no biases, tied embeddings, and
n_head * d_head free of d_model. Attention runs through `F.scaled_dot_product_attention`
with ``enable_gqa=True``, so K/V are never repeated in memory. `KVCache` holds exactly
2 L B n_kv T d_h values, which tests compare with `cost.kv_cache_bytes`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from gqa_lib.arch.config import ModelConfig
from gqa_lib.errors import GQAError

# The ModelConfig fields this module builds; any other field set away from its default (a
# window or layer pattern, experts, latent attention, extra biases or norms) is refused, not
# ignored: every layer attends fully.
_IMPLEMENTED = frozenset({"name", "n_layer", "d_model", "n_head", "n_kv_head", "d_head", "d_ff",
                          "vocab_size", "ffn", "tie_embeddings", "norm", "qk_norm", "qkv_bias",
                          "rope_theta"})
_HAS_ENABLE_GQA = tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 5)


def check_buildable(cfg: ModelConfig) -> None:
    """GQAError naming the first field of `cfg` that GQATransformer does not build (set away
    from the value it takes in the plain block); what a grid checks before any run trains."""
    plain = ModelConfig(**{f: getattr(cfg, f) for f in _IMPLEMENTED})  # the dense block
    for f in dataclasses.fields(ModelConfig):  # windows, experts, MLA, biases...
        if f.name not in _IMPLEMENTED and getattr(cfg, f.name) != getattr(plain, f.name):
            raise GQAError(f"{f.name}={getattr(cfg, f.name)!r} is supported by the cost "
                           "model only; GQATransformer builds the dense GQA block, full "
                           "attention in every layer, from "
                           f"{', '.join(sorted(_IMPLEMENTED - {'name'}))}")


@functools.cache
def _causal_lower_right():
    """torch's `causal_lower_right` (torch >= 2.2), or None. Imported on first use: the
    module imports torch._dynamo, seconds that a model without chunked prefill never needs."""
    try:
        from torch.nn.attention.bias import causal_lower_right
    except ImportError:  # pragma: no cover - older torch: the boolean mask instead
        return None
    return causal_lower_right


def chunk_causal_mask(T: int, T_kv: int, device: torch.device | str = "cpu"):
    """Causal attention of T queries that are the last T of T_kv positions (a prefill chunk
    after T_kv - T cached tokens): query i sees keys 0 .. T_kv - T + i.

    torch's lower-right `CausalBias`, which SDPA routes to the flash kernel (whose causal
    flag means lower-right) or the memory-efficient one without building a mask, and
    materialises only where neither can run; on torch < 2.2, the explicit (T, T_kv) boolean
    mask, which rules out flash and cuDNN (data/bench/h200-2026-12-04.json, note_sdpa).
    """
    lower_right = _causal_lower_right()
    if lower_right is not None:
        return lower_right(T, T_kv)
    i = torch.arange(T, device=device)[:, None]
    return torch.arange(T_kv, device=device)[None, :] <= T_kv - T + i


def _no_flash(q: torch.Tensor) -> bool:
    """True on a CUDA GPU older than compute capability 8.0 (no flash attention)."""
    return q.is_cuda and torch.cuda.get_device_capability(q.device) < (8, 0)


def sdpa_gqa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, is_causal: bool = False,
             attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Grouped-query attention. q: (B, n_h, Tq, d_h); k, v: (B, n_kv, Tk, d_h). ``attn_mask``
    may be a boolean mask or a torch `CausalBias` (:func:`chunk_causal_mask`)."""
    if k.shape[1] == q.shape[1]:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
    if _HAS_ENABLE_GQA and not _no_flash(q):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                              enable_gqa=True)
    # torch < 2.5, or a GPU without flash attention (compute capability < 8.0, e.g. Colab's
    # T4), whose memory-efficient kernel refuses n_kv != n_h and would fall back to the math
    # kernel (a T x T score matrix per head): materialise the shared heads instead
    g = q.shape[1] // k.shape[1]
    return F.scaled_dot_product_attention(q, k.repeat_interleave(g, 1), v.repeat_interleave(g, 1),
                                          attn_mask=attn_mask, is_causal=is_causal)


def _norm(kind: str, dim: int) -> nn.Module:
    return nn.RMSNorm(dim, eps=1e-6) if kind == "rmsnorm" else nn.LayerNorm(dim, eps=1e-6)


def rope_cos_sin(positions: torch.Tensor, d_head: int, theta: float) -> tuple[torch.Tensor, ...]:
    """cos, sin of shape (T, d_head / 2) for integer positions (T,)."""
    inv_freq = theta ** (-torch.arange(0, d_head, 2, device=positions.device,
                                       dtype=torch.float32) / d_head)
    angles = positions.float()[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :d/2], x[..., d/2:]) of x: (B, H, T, d_head)."""
    x1, x2 = x.float().chunk(2, dim=-1)
    out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.type_as(x)


@dataclass
class KVCache:
    """Preallocated keys and values for every layer: 2 x (L, B, n_kv, max_len, d_head)."""

    k: torch.Tensor
    v: torch.Tensor
    length: int = 0

    @classmethod
    def empty(cls, cfg: ModelConfig, batch: int, max_len: int, *, dtype: torch.dtype,
              device: torch.device | str = "cpu") -> KVCache:
        shape = (cfg.n_layer, batch, cfg.n_kv_head, max_len, cfg.d_head)
        return cls(torch.zeros(shape, dtype=dtype, device=device),
                   torch.zeros(shape, dtype=dtype, device=device))

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head, self.n_kv_head, self.d_head = cfg.n_head, cfg.n_kv_head, cfg.d_head
        self.wq = nn.Linear(cfg.d_model, cfg.n_head * cfg.d_head, bias=cfg.qkv_bias)
        self.wk = nn.Linear(cfg.d_model, cfg.n_kv_head * cfg.d_head, bias=cfg.qkv_bias)
        self.wv = nn.Linear(cfg.d_model, cfg.n_kv_head * cfg.d_head, bias=cfg.qkv_bias)
        self.wo = nn.Linear(cfg.n_head * cfg.d_head, cfg.d_model, bias=False)
        self.q_norm = _norm("rmsnorm", cfg.d_head) if cfg.qk_norm else None
        self.k_norm = _norm("rmsnorm", cfg.d_head) if cfg.qk_norm else None

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_head, self.d_head).transpose(1, 2)  # (B, n_h, T, d_h)
        k = self.wk(x).view(B, T, self.n_kv_head, self.d_head).transpose(1, 2)  # (B, n_kv, T, d_h)
        v = self.wv(x).view(B, T, self.n_kv_head, self.d_head).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        mask, causal = None, T > 1
        if cache is not None:
            pos = cache.length
            cache.k[layer, :, :, pos:pos + T] = k
            cache.v[layer, :, :, pos:pos + T] = v
            k, v = cache.k[layer, :, :, :pos + T], cache.v[layer, :, :, :pos + T]
            if pos > 0:  # queries at pos..pos+T-1 see keys 0..pos+i: causal, lower-right
                causal = False
                if T > 1:
                    mask = chunk_causal_mask(T, pos + T, x.device)
        y = sdpa_gqa(q, k, v, is_causal=causal, attn_mask=mask)  # (B, n_h, T, d_h)
        return self.wo(y.transpose(1, 2).reshape(B, T, self.n_head * self.d_head))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.kind = cfg.ffn
        self.w1 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)  # gate (or the only input proj)
        self.w2 = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)  # down
        self.w3 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False) if cfg.ffn_gated else None  # up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "swiglu":
            h = F.silu(self.w1(x)) * self.w3(x)
        elif self.kind == "geglu":
            h = F.gelu(self.w1(x), approximate="tanh") * self.w3(x)
        elif self.kind == "reglu":
            h = F.relu(self.w1(x)) * self.w3(x)
        elif self.kind == "gelu":
            h = F.gelu(self.w1(x))
        else:
            h = F.relu(self.w1(x))
        return self.w2(h)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn_norm = _norm(cfg.norm, cfg.d_model)
        self.attn = Attention(cfg)
        self.ffn_norm = _norm(cfg.norm, cfg.d_model)
        self.ffn = FeedForward(cfg)

    def forward(self, x, cos, sin, cache=None, layer=0):
        x = x + self.attn(self.attn_norm(x), cos, sin, cache, layer)
        return x + self.ffn(self.ffn_norm(x))


class GQATransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        check_buildable(cfg)
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = _norm(cfg.norm, cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith(("wo.weight", "w2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())  # tied weights are yielded once

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx: (B, T) token ids -> logits (B, T, V) and, with targets, the mean CE loss."""
        B, T = idx.shape
        pos0 = cache.length if cache is not None else 0
        if cache is not None and pos0 + T > cache.k.shape[3]:
            raise GQAError(f"KV cache holds {cache.k.shape[3]} tokens; cannot add {T} at {pos0}")
        cos, sin = rope_cos_sin(torch.arange(pos0, pos0 + T, device=idx.device),
                                self.cfg.d_head, self.cfg.rope_theta)
        x = self.tok_emb(idx)  # (B, T, d)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, cache, i)
        if cache is not None:
            cache.length += T
        logits = self.lm_head(self.norm(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """Sample with a KV cache: one prefill of the prompt, then one token per step."""
        B, T = idx.shape
        dtype = next(self.parameters()).dtype
        cache = KVCache.empty(self.cfg, B, T + max_new_tokens, dtype=dtype, device=idx.device)
        logits, _ = self(idx, cache=cache)
        out = [idx]
        for step in range(max_new_tokens):
            last = logits[:, -1, :].float()
            if temperature == 0:
                nxt = last.argmax(-1, keepdim=True)
            else:
                last = last / temperature
                if top_k is not None:
                    kth = torch.topk(last, min(top_k, last.size(-1))).values[:, -1:]
                    last = last.masked_fill(last < kth, float("-inf"))
                nxt = torch.multinomial(F.softmax(last, -1), 1, generator=generator)
            out.append(nxt)
            if step + 1 < max_new_tokens:
                logits, _ = self(nxt, cache=cache)
        return torch.cat(out, dim=1)
