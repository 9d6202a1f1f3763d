"""Training throughput and MFU against the machine's own matmul peak, measured in one run,
beside the plain reference implementation (and torch.compile where it works).

MFU counts model FLOPs the cost model's way: training_flops (6 N + 12 T_bar L d_h n_h per
token, causal T_bar = T/2) plus the LM head's 6 d V, over the fp32 (CPU) or bf16 (GPU)
matmul peak measured in the same process.
"""

from __future__ import annotations

from typing import Any

import torch

from gqa_lib import ModelConfig, cost

from .common import matmul_peak
from .steps import model_flops_per_token, step_times

SIZES = {  # name -> (n_layer, d_model, n_head, n_kv_head, d_head)
    "L2-d128": (2, 128, 8, 2, 16),
    "L4-d256": (4, 256, 8, 2, 32),
    "L4-d512": (4, 512, 8, 2, 64),
}


def run(quick: bool = False, compile_check: bool = True) -> dict[str, Any]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    peak = matmul_peak(device, dtype)
    sizes = ["L2-d128", "L4-d512"] if quick else list(SIZES)
    contexts = [256] if quick else [256, 1024]
    steps = 3 if quick else 6
    batch_tokens = 8192
    rows = []
    for name in sizes:
        L, d, h, kv, dh = SIZES[name]
        cfg = ModelConfig(n_layer=L, d_model=d, n_head=h, n_kv_head=kv, d_head=dh,
                          vocab_size=2048, rope_theta=10_000.0)
        for T in contexts:
            impls = ["gqa_lib", "reference"]
            if compile_check and name == sizes[-1] and T == contexts[0]:
                impls.append("compiled")
            secs = dict(zip(impls, step_times([(cfg, T, impl) for impl in impls],
                                              batch_tokens, steps, device)))
            tokens = (batch_tokens // T) * T
            flops = model_flops_per_token(cfg, T) * tokens
            row = {"model": name, "context": T, "params_non_embedding":
                   int(cost.params_non_embedding(cfg)), "tokens_per_step": tokens,
                   "step_s": secs["gqa_lib"], "tokens_per_s": tokens / secs["gqa_lib"],
                   "mfu": flops / secs["gqa_lib"] / peak,
                   "speedup_vs_reference": secs["reference"] / secs["gqa_lib"]
                   if secs["reference"] else None}
            if secs.get("compiled"):
                row["compile_speedup"] = secs["gqa_lib"] / secs["compiled"]
            rows.append(row)
            print(f"  {name} T={T}: {row['tokens_per_s']:,.0f} tok/s, MFU {row['mfu']:.1%}, "
                  f"x{row['speedup_vs_reference'] or float('nan'):.2f} vs reference"
                  + (f", compile x{row['compile_speedup']:.2f}" if "compile_speedup" in row
                     else ""))
    # the evidence for the small models' low MFU: where the smallest model's step time goes
    from .profile_step import describe, step_profile

    L, d, h, kv, dh = SIZES[sizes[0]]
    small = ModelConfig(n_layer=L, d_model=d, n_head=h, n_kv_head=kv, d_head=dh, vocab_size=2048,
                        rope_theta=10_000.0)
    prof = dict(step_profile(small, contexts[0], batch_tokens, device), model=sizes[0])
    print(f"  profile {sizes[0]} " + describe(prof))
    return {"device": str(device), "dtype": str(dtype).removeprefix("torch."),
            "matmul_peak_flops": peak, "rows": rows, "profile_smallest": prof}
