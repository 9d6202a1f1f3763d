"""How training time grows with context length and n_head (the time-variant term), measured
against the cost model's prediction.

Every configuration trains on the same tokens per step. The prediction is the cost model's
FLOPs per step divided by one rate, calibrated on the configuration with the smallest
attention share; measured/predicted > 1 then says how much more the attention term costs
on this machine than its FLOP count suggests. A two-rate fit (matmul FLOPs and attention
FLOPs each at their own speed) is reported beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gqa_lib import ModelConfig

from .profile_step import causal_kernel_probe, describe, step_profile
from .steps import model_flops_per_token, step_times


def _config(n_head: int) -> ModelConfig:
    """The benchmark's model: 4 layers, d = 256, one KV head of 32, n_head query heads."""
    return ModelConfig(n_layer=4, d_model=256, n_head=n_head, n_kv_head=1, d_head=32,
                       vocab_size=2048, rope_theta=10_000.0)


def run(quick: bool = False) -> dict[str, Any]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    heads = [1, 4, 16] if not quick else [1, 16]
    contexts = [256, 1024, 2048] if not quick else [256, 1024]
    batch_tokens, steps = 8192, (5 if not quick else 3)
    grid = [(_config(n_head), T) for n_head in heads for T in contexts]
    # every configuration timed side by side (round-robin), so drift moves them alike
    secs = step_times([(cfg, T, "gqa_lib") for cfg, T in grid], batch_tokens, steps, device)
    rows = []
    for (cfg, T), sec in zip(grid, secs):
        tokens = (batch_tokens // T) * T
        total = model_flops_per_token(cfg, T) * tokens
        attn = 12.0 * tokens * (T / 2) * cfg.n_layer * cfg.d_head * cfg.n_head
        rows.append({"n_head": cfg.n_head, "context": T, "flops_per_step": total,
                     "attention_flops_per_step": attn, "step_s": sec})
        print(f"  n_head={cfg.n_head:2d} T={T:5d}: {sec * 1e3:7.1f} ms/step, attention "
              f"{attn / total:.0%} of FLOPs")
    ref = min(rows, key=lambda r: r["attention_flops_per_step"] / r["flops_per_step"])
    rate = ref["flops_per_step"] / ref["step_s"]
    A = np.array([[r["flops_per_step"] - r["attention_flops_per_step"],
                   r["attention_flops_per_step"]] for r in rows])
    inv_rates, *_ = np.linalg.lstsq(A, np.array([r["step_s"] for r in rows]), rcond=None)
    for r in rows:
        r["predicted_s"] = r["flops_per_step"] / rate
        r["measured_over_predicted"] = r["step_s"] / r["predicted_s"]
        r["two_rate_predicted_s"] = float(A[rows.index(r)] @ inv_rates)
    # the evidence for the gap: where the time goes in the calibration step, in the most
    # heads at the shortest context (attention a small share of FLOPs), and in the worst step
    worst = max(rows, key=lambda r: r["measured_over_predicted"])
    many = min((r for r in rows if r["n_head"] == max(heads)), key=lambda r: r["context"])
    chosen = []
    for r in (ref, many, worst):
        if not any(r is c for c in chosen):
            chosen.append(r)
    profiles = []
    for r in chosen:
        profiles.append(step_profile(_config(r["n_head"]), r["context"], batch_tokens, device))
        print("  profile " + describe(profiles[-1]))
    kernel = causal_kernel_probe(n_head=worst["n_head"], T=worst["context"], d_head=32,
                                 batch=max(1, batch_tokens // worst["context"]), device=device)
    print(f"  attention kernel alone (n_head={kernel['n_head']}, T={kernel['context']}): full/causal "
          f"time x{kernel['full_over_causal']:.2f} (x2 if every masked key were skipped), "
          f"{kernel['full_flops_per_s'] / 1e9:.0f} GFLOP/s over the full square")
    return {"device": str(device), "profiles": profiles, "kernel": kernel,
            "calibration": {"n_head": ref["n_head"],
            "context": ref["context"], "flops_per_s": rate},
            "two_rate_fit": {"matmul_flops_per_s": 1 / inv_rates[0] if inv_rates[0] > 0 else None,
                             "attention_flops_per_s": 1 / inv_rates[1] if inv_rates[1] > 0
                             else None},
            "rows": rows}
