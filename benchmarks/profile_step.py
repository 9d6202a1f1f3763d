"""Where a training step's time goes, by torch.profiler: the evidence behind the MFU and
step-scaling gaps, not a guess.

Every aten op's self time in one profiled step falls into one of four groups: the matrix
multiplies of the weights (``matmul``), the fused attention kernels (``attention``, forward
and backward of scaled_dot_product_attention), the optimizer and gradient clipping
(``optimizer``), and everything else (``other``: norms, RoPE, softmax cross-entropy,
elementwise ops, copies). Dividing each group's FLOPs (the cost model's count) by its time
gives the rate each group actually runs at on this machine.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from gqa_lib import ModelConfig, cost

from .steps import make_step

GROUPS = ("matmul", "attention", "optimizer", "other")
_MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")
_ATTENTION = ("scaled_dot_product", "flash_attention", "efficient_attention", "cudnn_attention")
_OPTIMIZER = ("adam", "_foreach", "clip_grad", "lerp")


def op_group(name: str) -> str:
    """The group of one profiler event name (see the module docstring)."""
    n = name.lower()
    if any(k in n for k in _ATTENTION):
        return "attention"
    if n in _MATMUL:
        return "matmul"
    if any(k in n for k in _OPTIMIZER):
        return "optimizer"
    return "other"


def step_profile(cfg: ModelConfig, T: int, batch_tokens: int = 8192,
                 device: torch.device | None = None, warmup: int = 2) -> dict[str, Any]:
    """Profile one training step of ``cfg`` at context ``T`` after ``warmup`` steps: each
    group's share of the summed op self time, and the FLOP/s of the matmul and attention
    groups (FLOPs as the cost model counts them: 6 per matrix parameter per token plus the
    LM head's 6 d V; 12 T/2 L d_h n_h per token for attention)."""
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch, step = make_step(cfg, T, batch_tokens, "gqa_lib", device)
    for s in range(warmup):
        step(*batch(s))
    x, y = batch(warmup)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        step(x, y)
    use_cuda = device.type == "cuda"
    seconds = dict.fromkeys(GROUPS, 0.0)
    for ev in prof.key_averages():
        us = ev.self_device_time_total if use_cuda else ev.self_cpu_time_total
        seconds[op_group(ev.key)] += us / 1e6
    total = sum(seconds.values())
    tokens = (batch_tokens // T) * T
    mm_flops = tokens * (6.0 * float(cost.matmul_params(cfg)) + 6.0 * cfg.d_model * cfg.vocab_size)
    attn_flops = tokens * 12.0 * (T / 2) * cfg.n_layer * cfg.d_head * cfg.n_head
    return {
        "n_head": cfg.n_head, "context": T, "tokens": tokens, "op_seconds": total,
        "share": {g: seconds[g] / total for g in GROUPS},
        "attention_flop_share": attn_flops / (attn_flops + mm_flops),
        "matmul_flops_per_s": mm_flops / seconds["matmul"] if seconds["matmul"] else None,
        "attention_flops_per_s": attn_flops / seconds["attention"] if seconds["attention"] else None,
    }


def describe(p: dict[str, Any]) -> str:
    """One line: the time shares and the two groups' rates."""
    sh = p["share"]
    rates = ", ".join(f"{g} {p[f'{g}_flops_per_s'] / 1e9:.0f} GFLOP/s"
                      for g in ("matmul", "attention") if p[f"{g}_flops_per_s"])
    return (f"n_head={p['n_head']} T={p['context']}: time in matmul {sh['matmul']:.0%}, "
            f"attention {sh['attention']:.0%} (for {p['attention_flop_share']:.0%} of FLOPs), "
            f"optimizer {sh['optimizer']:.0%}, other {sh['other']:.0%}; {rates}")


def causal_kernel_probe(n_head: int = 16, T: int = 2048, d_head: int = 32, batch: int = 4,
                        device: torch.device | None = None, repeat: int = 5) -> dict[str, Any]:
    """The fused attention kernel alone, forward, causal vs full (non-causal) at the same
    shape: how much of the causal halving the cost model assumes the kernel realises
    (full/causal time = 2 if it skips every masked key), and its FLOP/s counted both ways."""
    import torch.nn.functional as F

    from .common import timeit

    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    g = torch.Generator(device="cpu").manual_seed(0)
    q = torch.randn(batch, n_head, T, d_head, generator=g).to(device, dtype)
    k = torch.randn(batch, 1, T, d_head, generator=g).to(device, dtype)
    v = torch.randn(batch, 1, T, d_head, generator=g).to(device, dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else None

    def run(causal: bool) -> float:
        def f():
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
        f()
        return timeit(f, repeat=repeat, sync=sync)["best_s"]

    causal, full = run(True), run(False)
    square = 4.0 * batch * n_head * T * T * d_head  # q.k and p.v over every (query, key)
    return {"n_head": n_head, "context": T, "d_head": d_head, "batch": batch,
            "causal_s": causal, "full_s": full, "full_over_causal": full / causal,
            "full_flops_per_s": square / full, "causal_flops_per_s_halved_count": square / 2 / causal}
