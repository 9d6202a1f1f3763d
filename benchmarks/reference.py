"""A plain reference implementation of the same architecture, for side-by-side timing.

It reuses a GQATransformer's weights but computes everything the textbook way: RMSNorm by
hand, K/V repeated to n_head with repeat_interleave, a materialised T x T score matrix with
a -inf mask and softmax, and a for-loop AdamW. The ratio against gqa_lib.train.model shows what
SDPA with enable_gqa and the loop design buy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gqa_lib.train.model import GQATransformer, apply_rope, rope_cos_sin


def _rms(x: torch.Tensor, w: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def naive_forward(m: GQATransformer, idx: torch.Tensor, targets: torch.Tensor | None = None):
    cfg = m.cfg
    B, T = idx.shape
    cos, sin = rope_cos_sin(torch.arange(T, device=idx.device), cfg.d_head, cfg.rope_theta)
    mask = torch.full((T, T), float("-inf"), device=idx.device).triu(1)
    g = cfg.n_head // cfg.n_kv_head
    x = m.tok_emb(idx)
    for blk in m.blocks:
        a = blk.attn
        h = _rms(x, blk.attn_norm.weight)
        q = (h @ a.wq.weight.T).view(B, T, cfg.n_head, cfg.d_head).transpose(1, 2)
        k = (h @ a.wk.weight.T).view(B, T, cfg.n_kv_head, cfg.d_head).transpose(1, 2)
        v = (h @ a.wv.weight.T).view(B, T, cfg.n_kv_head, cfg.d_head).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)  # (B, n_h, T, d_h)
        att = (q @ k.transpose(-1, -2)) / cfg.d_head**0.5 + mask  # (B, n_h, T, T)
        y = torch.softmax(att, -1) @ v
        x = x + y.transpose(1, 2).reshape(B, T, -1) @ a.wo.weight.T
        h = _rms(x, blk.ffn_norm.weight)
        f = blk.ffn
        x = x + (F.silu(h @ f.w1.weight.T) * (h @ f.w3.weight.T)) @ f.w2.weight.T
    logits = _rms(x, m.norm.weight) @ m.lm_head.weight.T
    loss = None if targets is None else F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                                                        targets.reshape(-1))
    return logits, loss


def naive_optimizer(m: GQATransformer, lr: float = 1e-3) -> torch.optim.Optimizer:
    """AdamW over all parameters, single-tensor (for-loop) implementation."""
    return torch.optim.AdamW(m.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1,
                             foreach=False)
