"""One training step of the project's model (or of the plain reference), ready to time, and
the timers that run several configurations side by side. Shared by train_speed, profile_step,
step_scaling and gpu, which import it and not each other."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch

from gqa_lib import ModelConfig, cost
from gqa_lib.train.data import batch_windows, prepare
from gqa_lib.train.loop import TrainConfig, make_optimizer
from gqa_lib.train.model import GQATransformer

from .reference import naive_forward, naive_optimizer


def model_flops_per_token(cfg: ModelConfig, T: int) -> float:
    return float(cost.training_flops(cfg, 1, T)) + 6.0 * cfg.d_model * cfg.vocab_size


def optimizer_step(model: torch.nn.Module, fwd: Callable, opt: Any, device: torch.device,
                   sync: bool = False) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """``step(x, y)``: one optimizer step (forward under bf16 autocast on a GPU, fp32
    elsewhere; backward; gradient clipping at 1.0; the optimizer), synchronised on a GPU
    after the step when ``sync``."""
    cuda = device.type == "cuda"

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext():
            _, loss = fwd(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if sync and cuda:
            torch.cuda.synchronize()

    return step


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

    def batch(s: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch_windows(data.train, B, T, seed=0, step=s)
        x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return x, y

    return batch, optimizer_step(model, fwd, opt, device, sync=True)


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
