"""Training throughput and MFU against the machine's own matmul peak, measured in one run,
beside the plain reference implementation (and torch.compile where it works).

MFU counts model FLOPs the cost model's way: training_flops (6 N + 12 T_bar L d_h n_h per
token, causal T_bar = T/2) plus the LM head's 6 d V, over the fp32 (CPU) or bf16 (GPU)
matmul peak measured in the same process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch

from gqa_lib import ModelConfig, cost
from gqa_lib.data import batch_windows, prepare
from gqa_lib.model import GQATransformer
from gqa_lib.train import TrainConfig, make_optimizer

from .common import matmul_peak
from .reference import naive_forward, naive_optimizer

SIZES = {  # name -> (n_layer, d_model, n_head, n_kv_head, d_head)
    "L2-d128": (2, 128, 8, 2, 16),
    "L4-d256": (4, 256, 8, 2, 32),
    "L4-d512": (4, 512, 8, 2, 64),
}


def model_flops_per_token(cfg: ModelConfig, T: int) -> float:
    return float(cost.training_flops(cfg, 1, T)) + 6.0 * cfg.d_model * cfg.vocab_size


def make_step(cfg: ModelConfig, T: int, batch_tokens: int, impl: str, device: torch.device
              ) -> tuple[Callable[[int], tuple[torch.Tensor, torch.Tensor]],
                         Callable[[torch.Tensor, torch.Tensor], None]]:
    """(batch, step): ``batch(s)`` is step s's (x, y) on the device; ``step(x, y)`` one
    optimizer step of impl in {"gqa_lib", "reference", "compiled"}, synchronised on a GPU so
    wall time is honest."""
    torch.manual_seed(0)
    model = GQATransformer(cfg).to(device)
    data = prepare()
    B = max(1, batch_tokens // T)
    if impl == "reference":
        opt = naive_optimizer(model)
        fwd = lambda x, y: naive_forward(model, x, y)  # noqa: E731
    else:
        opt = make_optimizer(model, TrainConfig())
        fwd = torch.compile(model) if impl == "compiled" else model
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    def batch(s: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch_windows(data.train, B, T, seed=0, step=s)
        x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return x, y

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with amp:
            _, loss = fwd(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return batch, step


def step_times(specs: Sequence[tuple[ModelConfig, int, str]], batch_tokens: int, steps: int,
               device: torch.device, warmup: int = 2) -> list[float | None]:
    """Median seconds per optimizer step of each (config, context, impl) in ``specs``, timed
    side by side: after ``warmup`` steps each, the specs take turns, one step per round, for
    ``steps`` rounds, so a machine that speeds up or slows down during the measurement moves
    every median alike and their ratios stay honest. A spec that fails to build or run (say
    torch.compile without a compiler) gives None, with the reason printed."""
    runners: list[Any] = []
    for cfg, T, impl in specs:
        try:
            batch, step = make_step(cfg, T, batch_tokens, impl, device)
            for s in range(warmup):
                step(*batch(s))
            runners.append((batch, step))
        except Exception as e:  # noqa: BLE001 -- report and go on: the other specs still run
            print(f"  {impl} failed on {cfg.n_layer}x{cfg.d_model} T={T}: "
                  f"{type(e).__name__}: {e}"[:300])
            runners.append(None)
    times: list[list[float]] = [[] for _ in specs]
    for s in range(warmup, warmup + steps):
        for i, r in enumerate(runners):
            if r is None:
                continue
            x, y = r[0](s)
            t = time.perf_counter()
            r[1](x, y)
            times[i].append(time.perf_counter() - t)
    return [sorted(t)[len(t) // 2] if t else None for t in times]


def step_time(cfg: ModelConfig, T: int, batch_tokens: int, impl: str, steps: int,
              device: torch.device) -> float:
    """Median seconds per optimizer step (after 2 warm-up steps) for impl in
    {"gqa_lib", "reference", "compiled"}."""
    secs = step_times([(cfg, T, impl)], batch_tokens, steps, device)[0]
    if secs is None:
        raise RuntimeError(f"{impl} failed to run (see the message above)")
    return secs


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
