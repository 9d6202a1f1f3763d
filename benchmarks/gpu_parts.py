"""The measurements `benchmarks.gpu` runs, one function per part. Each takes the runner's
`Ctx` (device, dtype, sizes, the time left, a row sink that saves) and returns the part's
summary; rows go to ``ctx.add_row`` as they are measured, so a run killed mid-part keeps
them. Runs on a GPU and, at toy sizes, on a CPU (where the CUDA-graph rows are skipped)."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from gqa_lib import ModelConfig, cost
from gqa_lib.train.loop import TrainConfig, make_optimizer
from gqa_lib.train.model import GQATransformer, KVCache

from . import gpu_plan as plan
from .common import matmul_peak, timeit
from .steps import model_flops_per_token, optimizer_step

# aten ops that say which SDPA kernel ran (each once per call; inner ops are not counted)
SDPA_OPS = (("aten::_scaled_dot_product_cudnn_attention", "cudnn"),
            ("aten::_scaled_dot_product_flash_attention_for_cpu", "flash-cpu"),
            ("aten::_scaled_dot_product_flash_attention", "flash"),
            ("aten::_efficient_attention_forward", "efficient"),
            ("aten::_scaled_dot_product_attention_math", "math"))
GiB = 2**30


class OverBudget(Exception):
    """Raised (by the runner's alarm) in the main thread when a part runs past its budget."""


def attempt(ctx, what: str, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Run one measurement; a failure (an OOM at one size, say) becomes a note and the part
    goes on; the budget alarm goes through to the runner. Memory is freed either way."""
    try:
        fn(*args, **kwargs)
    except OverBudget:
        raise
    except Exception as e:  # noqa: BLE001
        # torch.compile wraps the alarm in its own error: past the deadline, say so
        kind = "stopped: budget" if ctx.left() <= 0 else "failed"
        ctx.note(f"{what}: {kind}: {type(e).__name__}: {e}"[:300])
    finally:
        free_memory(ctx.device)


def sdpa_calls(fn: Callable[[], Any]) -> dict[str, int]:
    """Run fn once under the profiler (CPU activity only: aten op names, no CUPTI) and count
    the SDPA kernels it called, by backend: what SDPA's dispatcher chose, not a guess."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    try:  # the raw events: key_averages() builds a Python object per event (~1 s a call)
        counts = Counter(e.name() for e in prof.profiler.kineto_results.events())
    except AttributeError:  # pragma: no cover - a torch without that attribute
        counts = Counter({e.key: e.count for e in prof.key_averages()})
    return {name: counts[op] for op, name in SDPA_OPS if counts.get(op)}


def backend_label(calls: dict[str, int]) -> str:
    if len(calls) == 1:
        return next(iter(calls))
    return ", ".join(f"{k} x{n}" for k, n in calls.items()) or "none"


def free_memory(device: torch.device, collect: bool = False) -> None:
    """Return freed blocks to the device (between parts also collect cycles: ~1 s on a
    loaded CPU, so not after every row, whose tensors go by reference counting)."""
    if collect:
        gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory(device: torch.device) -> int | None:
    return torch.cuda.max_memory_allocated() if device.type == "cuda" else None


def build(cfg: ModelConfig, device: torch.device, dtype: torch.dtype | None = None
          ) -> GQATransformer:
    """The model built on the device (no host copy); cast to ``dtype`` for inference."""
    torch.manual_seed(0)
    with torch.device(device):
        model = GQATransformer(cfg)
    return model.to(dtype).eval() if dtype is not None else model


def row(ctx, regime: str, cfg: ModelConfig, T: int, batch: int, seconds: float, method: str,
        calls: dict[str, int] | None, *, tokens: int, bytes_read: float | None = None,
        flops: float | None = None, **extra: Any) -> dict[str, Any]:
    """One measurement with its roofline bound: bytes read over the measured copy bandwidth
    (decode) or FLOPs over the measured matmul peak (prefill, training)."""
    r: dict[str, Any] = {
        "regime": regime, "model": cfg.name, "n_head": cfg.n_head, "n_kv_head": cfg.n_kv_head,
        "n_layer": cfg.n_layer, "d_model": cfg.d_model, "d_ff": cfg.d_ff, "context": T,
        "batch": batch, "seconds": seconds, "tokens_per_s": tokens / seconds,
        "method": method, "sdpa_backend": backend_label(calls) if calls is not None else None,
        "sdpa_calls": calls}
    bw, peak = ctx.res.get("copy_bandwidth_bytes_per_s"), ctx.res.get("matmul_peak_flops")
    if bytes_read is not None:
        r.update(bytes_read=bytes_read, bound_of="bytes read / measured copy bandwidth",
                 bound_s=bytes_read / bw if bw else None)
    if flops is not None:
        r.update(flops=flops, bound_of="FLOPs / measured matmul peak",
                 bound_s=flops / peak if peak else None,
                 mfu=flops / seconds / peak if peak else None)
    if r.get("bound_s"):
        r["measured_over_bound"] = seconds / r["bound_s"]
    r["peak_mem_bytes"] = peak_memory(ctx.device)
    return {**r, **extra}


# ----- calibrate ---------------------------------------------------------------------------
def copy_bandwidth(device: torch.device, n_bytes: int) -> float:
    """Bytes/s of a device-to-device copy (read + write counted)."""
    x = torch.empty(n_bytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    y = torch.empty_like(x)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    y.copy_(x)
    t = timeit(lambda: y.copy_(x), repeat=5, number=5, sync=sync)
    return 2 * n_bytes / t["best_s"]


def calibrate(ctx) -> dict[str, Any]:
    ctx.res["matmul_peak_flops"] = matmul_peak(ctx.device, ctx.dtype, n=ctx.sizes.matmul_n)
    ctx.res["copy_bandwidth_bytes_per_s"] = copy_bandwidth(ctx.device, ctx.sizes.copy_bytes)
    print(f"  matmul peak {ctx.res['matmul_peak_flops'] / 1e9:,.0f} GFLOP/s "
          f"({ctx.res['dtype']}), copy bandwidth "
          f"{ctx.res['copy_bandwidth_bytes_per_s'] / 1e9:,.0f} GB/s")
    return {}


# ----- decode ------------------------------------------------------------------------------
def largest_batch(ctx, cfg: ModelConfig, T: int) -> tuple[int, str]:
    """The most sequences of context T whose KV caches fit in the device memory free now
    (the pair's weights already loaded), leaving 6% of it and 2 GiB for activations."""
    cap = ctx.sizes.max_batch_cap
    if ctx.device.type != "cuda":
        return cap or 1, f"toy: {cap}"
    free, total = torch.cuda.mem_get_info()
    per_seq = float(cost.kv_cache_bytes(cfg, T + 1, dtype=ctx.res["dtype"]))
    per_seq += 4 * cfg.vocab_size * 2  # the step's logits, with room for a copy
    B = max(1, int((free - 0.06 * total - 2 * GiB) // per_seq))
    rule = (f"largest that fits: (free {free / GiB:.1f} GiB - 6% - 2 GiB) / "
            f"{per_seq / 2**20:.0f} MiB per sequence")
    if cap is not None and B > cap:
        return cap, rule + f", capped at {cap}"
    return B, rule


def cuda_graph_seconds(step: Callable[[], Any], replays: int) -> float:
    """Median seconds of one replay of a CUDA graph of ``step`` (3 rounds of replays/3)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    graph.replay()
    t = timeit(graph.replay, repeat=3, number=max(1, replays // 3),
               sync=torch.cuda.synchronize)
    del graph
    return t["median_s"]


@torch.no_grad()
def decode_rows(ctx, model: GQATransformer, cfg: ModelConfig, T: int, batch: int,
                rule: str) -> None:
    """Decode steps of ``batch`` sequences with T tokens in the cache (filled with random
    values: the cost does not depend on them), timed eagerly and as a CUDA graph of one
    step (the cache length fixed at T, so every replay is the step at context T)."""
    shape = (cfg.n_layer, batch, cfg.n_kv_head, T + 1, cfg.d_head)
    dev, dt = ctx.device, ctx.dtype
    cache = KVCache(torch.empty(shape, dtype=dt, device=dev).normal_(),
                    torch.empty(shape, dtype=dt, device=dev).normal_())
    x = torch.zeros(batch, 1, dtype=torch.long, device=dev)

    def step():
        cache.length = T
        return model(x, cache=cache)[0]

    calls = sdpa_calls(step)
    n = max(1, ctx.sizes.eager_steps // 3)
    eager = timeit(step, repeat=3, number=n, sync=ctx.sync)["median_s"]
    read = float(cost.inference_memory_bytes(cfg, T, dtype=ctx.res["dtype"], batch=batch,
                                             include_embeddings=True))
    common = dict(tokens=batch, bytes_read=read, batch_rule=rule)
    if dev.type == "cuda":
        graph = cuda_graph_seconds(step, ctx.sizes.graph_replays)
        ctx.add_row(row(ctx, "decode_step", cfg, T, batch, graph,
                        f"CUDA graph of one decode step replayed {ctx.sizes.graph_replays}x "
                        "(no Python launch cost), KV cache of random values", calls,
                        **common))
    ctx.add_row(row(ctx, "decode_step_eager", cfg, T, batch, eager,
                    f"eager loop, 3 rounds of {n} steps (median; Python launch cost "
                    "included), KV cache of random values", calls, **common))


def decode(ctx) -> dict[str, Any]:
    models = {cfg.name: build(cfg, ctx.device, ctx.dtype) for cfg in ctx.sizes.pair}
    if ctx.device.type != "cuda":
        ctx.note("decode_step (CUDA graph) rows skipped: CUDA graphs need a GPU")
    for T in ctx.sizes.contexts:
        for cfg in ctx.sizes.pair:
            for B, rule in ((1, "1"), largest_batch(ctx, cfg, T)):
                what = f"{cfg.name} T={T} B={B}"
                if not ctx.fits(plan.decode_row_s(cfg, T, B, ctx.sizes)):
                    ctx.note(f"{what}: skipped: budget")
                    continue
                attempt(ctx, what, decode_rows, ctx, models[cfg.name], cfg, T, B, rule)
    return {}


# ----- prefill -----------------------------------------------------------------------------
@torch.no_grad()
def chunked_vs_one_pass(ctx, model: GQATransformer, cfg: ModelConfig, n: int = 256
                        ) -> dict[str, Any]:
    """Logits of an n-token prompt prefilled in two chunks (the second through the
    lower-right bias) against one causal pass, on this device and dtype: the largest
    absolute difference, beside the largest logit."""
    x = torch.randint(0, cfg.vocab_size, (1, n), device=ctx.device)
    one = model(x, cache=KVCache.empty(cfg, 1, n, dtype=ctx.dtype, device=ctx.device))[0]
    cache = KVCache.empty(cfg, 1, n, dtype=ctx.dtype, device=ctx.device)
    model(x[:, :n // 2], cache=cache)
    two = model(x[:, n // 2:], cache=cache)[0]
    return {"tokens": n, "max_abs_diff": float((two - one[:, n // 2:]).abs().max()),
            "max_abs_logit": float(one.abs().max())}


@torch.no_grad()
def prefill_one(ctx, model: GQATransformer, cfg: ModelConfig, T: int, chunk: int | None
                ) -> None:
    """Prefill one prompt of T random tokens into an empty KV cache: one causal forward
    (``chunk`` None), or chunk by chunk through the model's own KVCache path (the first
    chunk causal, the others with a lower-right causal bias). The first run is profiled for
    the SDPA backend; on a GPU a short probe of the same form first makes sure that the
    kernel is not the math one, whose T x T scores would not fit at long context."""
    dev, label = ctx.device, "prefill" if chunk is None else "prefill_chunked"

    def runner(n: int, step: int | None) -> Callable[[], None]:
        cache = KVCache.empty(cfg, 1, n, dtype=ctx.dtype, device=dev)
        x = torch.randint(0, cfg.vocab_size, (1, n), device=dev)

        def run() -> None:
            cache.length = 0
            for i in range(0, n, step or n):
                model(x[:, i:i + (step or n)], cache=cache)
        return run

    if dev.type == "cuda":
        probe = sdpa_calls(runner(256, None if chunk is None else 128))
        if "math" in probe:
            ctx.note(f"{label} {cfg.name} T={T}: skipped: SDPA would use the math kernel "
                     f"({backend_label(probe)})")
            return
    run = runner(T, chunk)
    calls = sdpa_calls(run)  # also the warm-up
    timed = plan.prefill_runs(T, ctx.sizes) - 1
    s = timeit(run, repeat=timed, sync=ctx.sync)["median_s"]
    if chunk is None:
        method = ("one causal forward (is_causal=True) into an empty KV cache, logits for "
                  f"every position; median of {timed}")
    else:
        method = (f"{T // chunk} chunks of {chunk} through the KVCache forward: the first "
                  f"causal, the rest with a lower-right causal bias; median of {timed}")
    extra = {} if chunk is None else {"check": chunked_vs_one_pass(ctx, model, cfg)}
    ctx.add_row(row(ctx, label, cfg, T, 1, s, method, calls, tokens=T, chunk=chunk,
                    flops=float(cost.prefill_flops(cfg, T, lm_head=True)), **extra))


def prefill(ctx) -> dict[str, Any]:
    T_long = max(ctx.sizes.contexts)
    for cfg in ctx.sizes.pair:
        model = build(cfg, ctx.device, ctx.dtype)
        jobs = [(T, None) for T in ctx.sizes.contexts] + [(T_long, ctx.sizes.chunk)]
        for T, chunk in jobs:
            what = f"{'chunked ' if chunk else ''}prefill {cfg.name} T={T}"
            est = plan.prefill_runs(T, ctx.sizes) * plan.prefill_s(cfg, T, chunk is not None)
            if not ctx.fits(est):
                ctx.note(f"{what}: skipped: budget")
                continue
            attempt(ctx, what, prefill_one, ctx, model, cfg, T, chunk)
        del model
        free_memory(ctx.device)
    return {}


# ----- training ----------------------------------------------------------------------------
def train_row(ctx, cfg: ModelConfig, T: int, batch: int, steps: int, *,
              compiled: bool = False) -> None:
    """Median seconds of one optimizer step (forward, backward, clip, AdamW: fused on a
    GPU) on random tokens, fp32 weights under bf16 autocast on a GPU, after a warm-up step
    (the compilation, if any) and a profiled one."""
    model = build(cfg, ctx.device).train()
    opt = make_optimizer(model, TrainConfig())
    fwd = torch.compile(model) if compiled else model
    x = torch.randint(0, cfg.vocab_size, (batch, T), device=ctx.device)
    y = torch.randint(0, cfg.vocab_size, (batch, T), device=ctx.device)
    one = optimizer_step(model, fwd, opt, ctx.device)

    def step() -> None:
        one(x, y)

    step()
    calls = sdpa_calls(step)
    s = timeit(step, repeat=steps, sync=ctx.sync)["median_s"]
    amp_note = "bf16 autocast, fp32 weights" if ctx.device.type == "cuda" else "fp32"
    method = (f"{'torch.compile' if compiled else 'eager'}: forward+backward+clip+AdamW, "
              f"{amp_note}, {batch} x {T} random tokens; median of {steps}")
    ctx.add_row(row(ctx, "train_step", cfg, T, batch, s, method, calls, tokens=batch * T,
                    flops=model_flops_per_token(cfg, T) * batch * T,
                    impl="compiled" if compiled else "gqa_lib",
                    params_non_embedding=int(cost.params_non_embedding(cfg))))
    del model, opt, fwd


def train_pair(ctx) -> dict[str, Any]:
    T = ctx.sizes.train_context
    for cfg in ctx.sizes.pair:
        if not ctx.fits(2 * plan.BUILD_S + 5 * plan.train_step_s(cfg, T)):
            ctx.note(f"train {cfg.name}: skipped: budget")
            continue
        attempt(ctx, f"train {cfg.name}", train_row, ctx, cfg, T, 1, ctx.sizes.train_steps)
    return {}


def mfu(ctx) -> dict[str, Any]:
    s = ctx.sizes
    B = max(1, s.mfu_batch_tokens // s.mfu_context)
    step = s.mfu_batch_tokens
    for compiled, est in ((False, (2 + s.mfu_steps) * step / plan.MFU_EAGER_TOKENS_PER_S),
                          (True, plan.COMPILE_S + (2 + s.mfu_steps) * step
                           / plan.MFU_COMPILED_TOKENS_PER_S)):
        what = f"{'compiled' if compiled else 'eager'} {s.mfu.name}"
        if compiled and not s.mfu_compile:
            ctx.note(f"{what}: skipped: toy (torch.compile takes minutes on a loaded CPU)")
        elif not ctx.fits(plan.BUILD_S + est):
            ctx.note(f"{what}: skipped: budget")
        else:
            attempt(ctx, what, train_row, ctx, s.mfu, s.mfu_context, B, s.mfu_steps,
                    compiled=compiled)
    return {"config": s.mfu.to_dict(), "context": s.mfu_context,
            "batch_tokens": s.mfu_batch_tokens,
            "params_non_embedding": int(cost.params_non_embedding(s.mfu))}


PART_FUNCTIONS = {"calibrate": calibrate, "decode": decode, "prefill": prefill,
                  "train_pair": train_pair, "mfu": mfu}
