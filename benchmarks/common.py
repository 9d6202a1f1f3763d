"""Timing helpers shared by the benchmarks: best-of-k wall time, the machine's matmul peak,
and the provenance stamped on every result."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from gqa_lib.errors import GQAError, check_real


def timeit(fn: Callable[[], Any], *, repeat: int = 5, number: int = 1,
           sync: Callable[[], None] | None = None) -> dict[str, float]:
    """Median and best seconds per call of `fn` over `repeat` rounds of `number` calls."""
    times = []
    for _ in range(repeat):
        if sync:
            sync()
        t = time.perf_counter()
        for _ in range(number):
            fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t) / number)
    return {"median_s": statistics.median(times), "best_s": min(times)}


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, repeat: int = 5
                ) -> float:
    """Achieved FLOP/s of an n x n x n matmul: the machine's practical peak for this dtype."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    a @ b  # warm-up
    t = timeit(lambda: a @ b, repeat=repeat, number=3 if device.type == "cuda" else 1, sync=sync)
    return 2 * n**3 / t["best_s"]


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (Linux), else the architecture: 'x86_64'
    alone does not say which CPU a throughput was measured on."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    from gqa_lib.train.sweep import git_commit

    info = {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": git_commit(), "python": platform.python_version(),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def positive_seconds(text: str) -> float:
    """An argparse type for a time limit: a finite number of seconds > 0 (NaN or inf would
    disable every cap and put a number JSON cannot hold in the record)."""
    import argparse

    try:
        return check_real("seconds", float(text), lo=0.0, lo_open=True)
    except (ValueError, GQAError):
        raise argparse.ArgumentTypeError(
            f"must be a finite number of seconds > 0, got {text!r}") from None
