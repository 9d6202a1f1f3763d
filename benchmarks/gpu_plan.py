"""What `benchmarks.gpu` measures, at which sizes, and how long each part should take on one
H200, sized from the measurements of 2026-12-04 (one H200 SXM, torch 2.11.0+cu130, the
project's model at commit d91c2f4: data/bench/h200-2026-12-04.json, with its provenance).
The estimates are what the plan prints before it starts; the budgets are what the
runner enforces (a part that starts with less than its estimate left is skipped, one that
runs past its budget is stopped, and the whole run stops at `RUN_BUDGET_S`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gqa_lib import ModelConfig, cost
from gqa_lib.arch import aligned, paper_family, round_up

from .steps import model_flops_per_token

# The equal-loss pair at T = 128K (gqa_lib.evidence.serving.equal_loss_pair, tied to these
# layer counts by a test): the paper's (32, 8) point, L = 32, d = 2048, and the recipe's
# (8, 1) of equal fitted loss, L = 39, d = 2496; d_ff rounded up to a multiple of 256
# (data/bench/h200-2026-12-04.json: d_ff = 5461 prefills 8K tokens 2.8x slower than 5632).
# Hard-coded so that the GPU run neither fits the loss law (seconds) nor imports the fit
# stack.
PAIR_LAYERS = (32, 39)

# ----- measured on one H200 (2026-12-04), each with where it comes from ------------------
STARTUP_S = 10.0            # python + torch import + CUDA context (not measured: assumed)
DECODE_FLOOR_S_PER_LAYER = 0.11e-3   # CUDA-graph decode at batch 1: 3.6 ms / 32, 4.4 ms / 39
DECODE_BYTES_PER_S = 3.85e12         # (32, 8) batch 8 at 128K: 71.7 GB per step in 18.6 ms
EAGER_S_PER_LAYER = 1.2e-3           # slowest eager decode: 45.9 ms / 39 layers
PREFILL_FLOPS_PER_S = 420e12         # aligned (32, 8) 8K: 421 TFLOP/s ((8, 1) and 128K: 450-495)
FLASH_FLOPS_PER_S = 270e12           # causal SDPA on flash alone at 8K (cuDNN: 408-432)
TRAIN_FLOPS_PER_S = 350e12           # aligned pair, 1 x 8192 tokens: 355 and 376 TFLOP/s
MFU_EAGER_TOKENS_PER_S = 372_615     # the 75M model at T = 4K, eager
MFU_COMPILED_TOKENS_PER_S = 461_466  # ... torch.compile
COMPILE_S = 60.0            # torch.compile of the 75M model, cold (not measured: assumed)
BUILD_S = 2.0               # build a model on the GPU (not measured: assumed)
FILL_BYTES_PER_S = 1e12     # random fill of the KV cache (not measured: assumed, low)

RUN_BUDGET_S = 330.0        # the whole run, from process start: 6 minutes less a margin


@dataclass(frozen=True)
class Sizes:
    """Every size the run uses; `REAL` on a GPU, `TOY` on a CPU (the tests)."""

    pair: tuple[ModelConfig, ModelConfig]
    contexts: tuple[int, ...]     # decode and one-pass prefill
    chunk: int                    # chunked prefill at the longest context, chunk tokens
    eager_steps: int              # eager decode steps timed (3 rounds)
    graph_replays: int            # CUDA-graph replays timed (3 rounds)
    max_batch_cap: int | None     # cap on the largest batch that fits (None: none)
    train_context: int            # the pair's training step: 1 sequence of this length
    train_steps: int
    mfu: ModelConfig              # the MFU model (75M non-embedding parameters)
    mfu_context: int
    mfu_batch_tokens: int
    mfu_steps: int
    mfu_compile: bool             # also time torch.compile (minutes of compilation on a CPU)
    matmul_n: int                 # calibration: n x n x n matmul
    copy_bytes: int               # calibration: device copy


def equal_loss_pair() -> tuple[ModelConfig, ModelConfig]:
    L_base, L_opt = PAIR_LAYERS
    return aligned(paper_family(L_base)), aligned(paper_family(L_opt, n_head=8, n_kv_head=1))


def _toy(cfg: ModelConfig, n_layer: int) -> ModelConfig:
    """The same head layout in miniature: n_layer layers, d = 32 L, d_head 8, vocab 512."""
    d = 32 * n_layer
    return dataclasses.replace(cfg, n_layer=n_layer, d_model=d, d_head=8, vocab_size=512,
                               d_ff=round_up(int(8 * d / 3), 64),
                               name=f"toy-({cfg.n_head},{cfg.n_kv_head})")


REAL = Sizes(pair=equal_loss_pair(), contexts=(8192, 32768, 131072), chunk=16384,
             eager_steps=12, graph_replays=30, max_batch_cap=None,
             train_context=8192, train_steps=3,
             mfu=aligned(ModelConfig(n_layer=12, d_model=768, n_head=12, n_kv_head=4, d_head=64,
                                     vocab_size=2048, name="mfu-75M")),
             mfu_context=4096, mfu_batch_tokens=65536, mfu_steps=10, mfu_compile=True,
             matmul_n=8192, copy_bytes=2**30)

TOY = Sizes(pair=(_toy(REAL.pair[0], 4), _toy(REAL.pair[1], 5)), contexts=(64, 128, 256),
            chunk=64, eager_steps=3, graph_replays=3, max_batch_cap=4,
            train_context=128, train_steps=2,
            mfu=ModelConfig(n_layer=2, d_model=128, n_head=8, n_kv_head=2, d_head=16,
                            vocab_size=2048, name="toy-mfu"),
            mfu_context=128, mfu_batch_tokens=1024, mfu_steps=2, mfu_compile=False,
            matmul_n=512, copy_bytes=2**22)

# (part, budget in seconds, what it measures), in order of value
PARTS = (
    ("calibrate", 20, "bf16 matmul peak and device copy bandwidth (for MFU and the bounds)"),
    ("decode", 75, "equal-loss pair, batch 1 and the largest that fits, each context: "
                   "CUDA graph of one step and eager"),
    ("prefill", 100, "one causal pass per context, and chunked (lower-right bias) at the "
                     "longest; the SDPA backend that ran"),
    ("train_pair", 40, "one training step of each model of the pair"),
    ("mfu", 150, "training MFU of the 75M model, eager then torch.compile"),
)


# ----- estimates on one H200 ---------------------------------------------------------------
def decode_step_s(cfg: ModelConfig, T: int, batch: int) -> tuple[float, float]:
    """(CUDA-graph step, eager step) seconds: the graph step is the larger of the per-layer
    floor and the bytes read at the measured decode bandwidth; eager adds Python."""
    read = float(cost.inference_memory_bytes(cfg, T, batch=batch, include_embeddings=True))
    graph = max(DECODE_FLOOR_S_PER_LAYER * cfg.n_layer, read / DECODE_BYTES_PER_S)
    return graph, max(EAGER_S_PER_LAYER * cfg.n_layer, graph)


def decode_row_s(cfg: ModelConfig, T: int, batch: int, sizes: Sizes) -> float:
    """One (model, context, batch): fill the cache, time eager steps (after a profiled one),
    warm up and capture the graph, replay it."""
    graph, eager = decode_step_s(cfg, T, batch)
    fill = float(cost.kv_cache_bytes(cfg, T, batch=batch)) / FILL_BYTES_PER_S
    return fill + (2 + sizes.eager_steps + 4) * eager + sizes.graph_replays * graph


def prefill_s(cfg: ModelConfig, T: int, chunked: bool = False) -> float:
    """One prefill of T tokens: the FLOPs at the measured prefill rate; a chunked prefill's
    attention at flash's rate (the lower-right bias does not reach cuDNN)."""
    flops = float(cost.prefill_flops(cfg, T, lm_head=True))
    if not chunked:
        return flops / PREFILL_FLOPS_PER_S
    matmul = 2.0 * float(cost.params_total(cfg)) * T
    return matmul / PREFILL_FLOPS_PER_S + (flops - matmul) / FLASH_FLOPS_PER_S


def prefill_runs(T: int, sizes: Sizes) -> int:
    """A profiled run (the warm-up) and one timed run at the longest context, two below."""
    return 2 if T == max(sizes.contexts) else 3


def train_step_s(cfg: ModelConfig, T: int) -> float:
    return model_flops_per_token(cfg, T) * T / TRAIN_FLOPS_PER_S


def part_estimates(sizes: Sizes, max_batches: dict | None = None) -> dict[str, float]:
    """Seconds per part on one H200. ``max_batches`` maps (model name, T) to the largest
    batch; by default the cost model's on an H200 (its 90% of 141 GB)."""
    est = {"calibrate": 3.0}
    dec = 2 * BUILD_S
    for cfg in sizes.pair:
        for T in sizes.contexts:
            B = (max_batches or {}).get((cfg.name, T)) or int(cost.max_batch(cfg, T, "h200"))
            dec += decode_row_s(cfg, T, 1, sizes) + decode_row_s(cfg, T, B, sizes)
    est["decode"] = dec
    pre = 2 * BUILD_S
    for cfg in sizes.pair:
        pre += sum(prefill_runs(T, sizes) * prefill_s(cfg, T) for T in sizes.contexts)
        pre += 2 * prefill_s(cfg, max(sizes.contexts), chunked=True)
    est["prefill"] = pre
    est["train_pair"] = sum(2 * BUILD_S + (2 + sizes.train_steps) * train_step_s(
        cfg, sizes.train_context) for cfg in sizes.pair)
    steps = 2 + sizes.mfu_steps
    est["mfu"] = (2 * BUILD_S + COMPILE_S + steps * sizes.mfu_batch_tokens * (
        1 / MFU_EAGER_TOKENS_PER_S + 1 / MFU_COMPILED_TOKENS_PER_S))
    return est


def plan_table(sizes: Sizes, toy: bool, budget_s: float) -> str:
    """The plan as printed at the start: part, budget, estimate on one H200, what."""
    est = part_estimates(REAL)
    lines = [f"plan ({'toy sizes on this device; ' if toy else ''}estimates on one H200 "
             f"from the 2026-12-04 measurements; whole run capped at {budget_s:.0f} s):"]
    for name, budget, what in PARTS:
        lines.append(f"  {name:<11} budget {budget:>4} s  est {est[name]:>5.0f} s  {what}")
    total = STARTUP_S + sum(est.values())
    lines.append(f"  {'total':<11} {'':>13}  est {total:>5.0f} s  (start-up {STARTUP_S:.0f} s "
                 f"included)")
    return "\n".join(lines)
