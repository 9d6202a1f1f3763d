"""What a model costs to serve on a named accelerator: a roofline in seconds, tokens per
second, accelerators and money.

Pure and vectorised like :mod:`gqa_lib.cost.counts`, on whose public counts it is built
(``cfg`` a ModelConfig or ConfigBatch; context T and batch B broadcast). Results in base
units: seconds, bytes, FLOPs, tokens per second, sequences.

The model (one accelerator holds one replica of the model; tensor parallelism and
inter-chip traffic are not modelled):

=================  ===========================================================================
quantity           formula
=================  ===========================================================================
decode step        t = max(bytes / (bw e_bw), flops / (F e_F)) for one step of B sequences:
                   bytes = W + B K(T): the weights read once per step (W = weights_read_bytes:
                   non-embedding parameters plus the LM head's V d matrix) and each sequence's
                   KV cache K(T) = kv_cache_bytes; flops = B (2 N_mm + 2 d V + 4 T L d_h n_h)
                   (matmul and LM head, plus attention over T keys)
prefill            T tokens of B prompts: flops = B (prefill_flops(causal) + 2 d V) (one row
                   of logits per prompt), bytes = W + B K(T) (weights read, cache written);
                   the same max
largest batch      B_max = floor((mem f_mem - S) / K(T)), S = all parameters stored (tied
                   embedding once); 0 when the weights alone do not fit
tokens/s           B / t per accelerator; latency per token = t
accelerators       ceil(target tokens/s / (tokens/s per accelerator))
cost               price per hour / 3600 / (tokens/s) * 1e6 per million generated tokens
=================  ===========================================================================

Efficiency factors are explicit arguments. Defaults, and where they come from:

* ``bandwidth_efficiency = 0.7``: achieved fraction of peak bandwidth in batch-1 decoding.
  gpt-fast (pytorch-labs/gpt-fast README, A100-80GB power-limited to 330 W, batch 1) reports
  1,397 GB/s for Llama-2-7B and 1,412 GB/s for Llama-3-8B in bf16: 0.69 of 2,039 GB/s.
* ``flops_efficiency = 0.5``: achieved fraction of peak FLOP/s (MFU) in prefill; an
  assumption near published large-scale MFU (PaLM, Chowdhery et al. 2022: 46.2% training).
* ``memory_fraction = 0.9``: share of device memory for weights and KV cache, the rest for
  activations and runtime; vLLM's default ``gpu_memory_utilization`` is 0.9.

Conventions: weights and cache in ``dtype`` / ``kv_dtype`` (bf16 default); the input
embedding's B row reads and all non-matmul work (norms, RoPE, softmax) are ignored; decoding
FLOPs have no causal halving (the new token attends all T), prefill's do (what
FlashAttention-style kernels compute). Sliding windows cap T through ``attended_context``
inside the counts, so they enter with no change here; mixture-of-experts and latent-KV
models enter through :func:`weights_read_bytes` and :func:`kv_bytes_per_sequence`, the two
places those counts are read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gqa_lib.arch.config import ModelConfig
from gqa_lib.arch.hardware import Accelerator, get_accelerator
from gqa_lib.cost.counts import (ConfigBatch, _batch_size, _context, _scalar, _values_to_bytes,
                                 inference_flops, kv_cache_bytes, params_active,
                                 params_non_embedding, params_total, prefill_flops)
from gqa_lib.errors import MAX_EXACT, GQAError

# Defaults of the efficiency factors (sources in the module docstring).
BANDWIDTH_EFFICIENCY = 0.7
FLOPS_EFFICIENCY = 0.5
MEMORY_FRACTION = 0.9
OBJECTIVES = ("z", "latency", "throughput", "cost")
Cfg = ModelConfig | ConfigBatch


def _fraction(name: str, v: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
        raise GQAError(f"{name} must be a fraction in (0, 1], got {v!r}")
    return float(v)


def _hw(hardware: str | Accelerator) -> Accelerator:
    return get_accelerator(hardware)


# ----- the pieces a step reads and computes -----------------------------------------------
def weights_read_bytes(cfg: Cfg, *, batch: Any = 1, dtype: str = "bf16") -> Any:
    """Bytes of weights one decode step of ``batch`` sequences reads: the non-embedding
    parameters its tokens use plus the LM head's V d matrix (the tied embedding, or the
    untied head); the input embedding's few rows are ignored.

    Dense models read every parameter. A mixture of experts reads its active parameters
    N_act plus the share of the other experts' weights that B tokens route to: with k of E
    experts per token and uniform routing, a layer touches E (1 - (1 - k/E)^B) experts in
    expectation, so W = N_act + (N - N_act) (E (1 - (1 - k/E)^B) - k) / (E - k): N_act at
    B = 1, tending to every expert as B grows."""
    s = ConfigBatch.of(cfg)
    total = np.asarray(params_non_embedding(s), np.float64)
    active = np.asarray(params_active(s), np.float64)
    E = np.asarray(s.n_experts, np.float64)
    k = np.asarray(s.n_experts_active, np.float64)
    B = np.asarray(_batch_size(batch), np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        touched = np.where(E > k, (E * (1 - (1 - k / np.where(E > 0, E, 1)) ** B) - k)
                           / np.where(E > k, E - k, 1), 1.0)
    values = active + (total - active) * touched + s.vocab_size * s.d_model
    return _values_to_bytes(_scalar(values), dtype)


def weights_stored_bytes(cfg: Cfg, *, dtype: str = "bf16") -> Any:
    """Bytes the weights occupy: all parameters, a tied embedding counted once."""
    return _values_to_bytes(params_total(cfg), dtype)


def kv_bytes_per_sequence(cfg: Cfg, T: Any, *, kv_dtype: str = "bf16") -> Any:
    """Bytes of one sequence's KV cache at context T (read whole by every decode step)."""
    return kv_cache_bytes(cfg, T, dtype=kv_dtype)


def matmul_flops_per_token(cfg: Cfg) -> Any:
    """2 N_mm + 2 d V: the time-invariant FLOPs of one token, LM head included."""
    f = inference_flops(cfg, 1, lm_head=True)
    return _scalar(np.asarray(f["time_invariant"]) + np.asarray(f["lm_head"]))


def attention_flops_per_token(cfg: Cfg, T: Any) -> Any:
    """4 min(T, W) L d_h n_h: scores and weighted values of one token over its context."""
    return inference_flops(cfg, T)["time_variant"]


# ----- roofline -----------------------------------------------------------------------------
def _roofline(flops: Any, bytes_: Any, hw: Accelerator, flops_efficiency: float,
              bandwidth_efficiency: float) -> dict[str, Any]:
    f_eff = _fraction("flops_efficiency", flops_efficiency)
    bw_eff = _fraction("bandwidth_efficiency", bandwidth_efficiency)
    with np.errstate(over="ignore"):  # an overflow is refused just below, by name
        compute_s = np.asarray(flops, np.float64) / (hw.bf16_flops_per_s * f_eff)
        memory_s = np.asarray(bytes_, np.float64) / (hw.memory_bandwidth_bytes_per_s * bw_eff)
    _refuse_overflow(compute_s, "bf16_flops_per_s", hw.bf16_flops_per_s, hw, "FLOP/s")
    _refuse_overflow(memory_s, "memory_bandwidth_bytes_per_s",
                     hw.memory_bandwidth_bytes_per_s, hw, "bytes/s")
    return {"flops": _scalar(np.asarray(flops, np.float64)),
            "bytes": _scalar(np.asarray(bytes_, np.float64)),
            "compute_s": _scalar(compute_s), "memory_s": _scalar(memory_s),
            "seconds": _scalar(np.maximum(compute_s, memory_s)),
            "memory_bound": _scalar(memory_s >= compute_s)}


def _refuse_overflow(seconds: np.ndarray, field: str, value: float, hw: Accelerator,
                     unit: str) -> None:
    """GQAError naming the accelerator's figure when a time overflows float64 (inf): an
    absurdly small rate, whose inf would print as a latency and 0 tokens/s."""
    if not np.all(np.isfinite(seconds)):
        raise GQAError(f"hardware {hw.key!r}: {field}={value:g} {unit} makes a step take "
                       "longer than float64 can hold (inf seconds); give a real rate")


def decode_step(cfg: Cfg, T: Any, hardware: str | Accelerator, *, batch: Any = 1,
                dtype: str = "bf16", kv_dtype: str | None = None,
                flops_efficiency: float = FLOPS_EFFICIENCY,
                bandwidth_efficiency: float = BANDWIDTH_EFFICIENCY) -> dict[str, Any]:
    """One decode step of ``batch`` sequences at context T: ``bytes`` read, ``flops``,
    ``memory_s`` and ``compute_s`` (each at its achieved rate), ``seconds`` (the larger) and
    ``memory_bound``. Formula in the module table."""
    hw, s = _hw(hardware), ConfigBatch.of(cfg)
    B = np.asarray(_batch_size(batch), np.float64)
    _context(T)
    bytes_ = (np.asarray(weights_read_bytes(s, batch=B, dtype=dtype), np.float64)
              + B * np.asarray(kv_bytes_per_sequence(s, T, kv_dtype=kv_dtype or dtype)))
    flops = B * (np.asarray(matmul_flops_per_token(s)) + np.asarray(
        attention_flops_per_token(s, T)))
    return _roofline(flops, bytes_, hw, flops_efficiency, bandwidth_efficiency)


def decode_seconds(cfg: Cfg, T: Any, hardware: str | Accelerator, **kw: Any) -> Any:
    """Seconds of one decode step (= latency per generated token); see :func:`decode_step`."""
    return decode_step(cfg, T, hardware, **kw)["seconds"]


def prefill_step(cfg: Cfg, T: Any, hardware: str | Accelerator, *, batch: Any = 1,
                 dtype: str = "bf16", kv_dtype: str | None = None,
                 flops_efficiency: float = FLOPS_EFFICIENCY,
                 bandwidth_efficiency: float = BANDWIDTH_EFFICIENCY) -> dict[str, Any]:
    """Prefill of ``batch`` prompts of T tokens (causal attention, one row of logits each):
    the same keys as :func:`decode_step`."""
    hw, s = _hw(hardware), ConfigBatch.of(cfg)
    B = np.asarray(_batch_size(batch), np.float64)
    lm_row = 2.0 * s.d_model * s.vocab_size
    flops = B * (np.asarray(prefill_flops(s, T, attention="causal"), np.float64) + lm_row)
    tokens = B * np.asarray(_context(T), np.float64)  # every prompt token routes (MoE)
    bytes_ = (np.asarray(weights_read_bytes(s, batch=tokens, dtype=dtype), np.float64)
              + B * np.asarray(kv_bytes_per_sequence(s, T, kv_dtype=kv_dtype or dtype)))
    return _roofline(flops, bytes_, hw, flops_efficiency, bandwidth_efficiency)


def prefill_seconds(cfg: Cfg, T: Any, hardware: str | Accelerator, **kw: Any) -> Any:
    """Seconds to prefill ``batch`` prompts of T tokens; see :func:`prefill_step`."""
    return prefill_step(cfg, T, hardware, **kw)["seconds"]


def max_batch(cfg: Cfg, T: Any, hardware: str | Accelerator, *, dtype: str = "bf16",
              kv_dtype: str | None = None, memory_fraction: float = MEMORY_FRACTION) -> Any:
    """Largest number of sequences of context T whose KV caches fit beside the weights:
    floor((capacity f_mem - weights stored) / KV per sequence), 0 where the weights alone
    do not fit (activations are inside the 1 - f_mem left over)."""
    hw, s = _hw(hardware), ConfigBatch.of(cfg)
    room = (hw.memory_capacity_bytes * _fraction("memory_fraction", memory_fraction)
            - np.asarray(weights_stored_bytes(s, dtype=dtype), np.float64))
    kv = np.asarray(kv_bytes_per_sequence(s, T, kv_dtype=kv_dtype or dtype), np.float64)
    b = np.floor(np.maximum(room, 0.0) / kv)
    if not np.all(b <= MAX_EXACT):  # int64 would wrap past 2**63; refused, not capped
        raise GQAError(f"hardware {hw.key!r}: memory_capacity_bytes="
                       f"{hw.memory_capacity_bytes:g} holds more than 2**53 sequences; the "
                       "largest batch is no exact count (give a real memory size)")
    return _scalar(b.astype(np.int64))


def decode_throughput(cfg: Cfg, T: Any, hardware: str | Accelerator, *, batch: Any = None,
                      dtype: str = "bf16", kv_dtype: str | None = None,
                      memory_fraction: float = MEMORY_FRACTION,
                      flops_efficiency: float = FLOPS_EFFICIENCY,
                      bandwidth_efficiency: float = BANDWIDTH_EFFICIENCY) -> Any:
    """Generated tokens per second per accelerator, B / t_step, at ``batch`` sequences
    (default: the largest batch that fits, :func:`max_batch`); 0 where nothing fits."""
    if batch is None:
        batch = max_batch(cfg, T, hardware, dtype=dtype, kv_dtype=kv_dtype,
                          memory_fraction=memory_fraction)
    B = np.asarray(batch, np.float64)
    if B.dtype.kind not in "iuf" or np.any(B < 0):
        raise GQAError(f"batch must be a non-negative number of sequences, got {batch!r}")
    t = decode_seconds(cfg, T, hardware, batch=np.maximum(B, 1.0), dtype=dtype,
                       kv_dtype=kv_dtype, flops_efficiency=flops_efficiency,
                       bandwidth_efficiency=bandwidth_efficiency)
    return _scalar(np.where(B >= 1, B / np.asarray(t), 0.0))


def accelerators_needed(target_tokens_per_s: Any, tokens_per_s_per_accelerator: Any) -> Any:
    """ceil(target / per-accelerator rate): replicas for a throughput (inf where the rate is
    0, i.e. the model does not fit)."""
    target = np.asarray(target_tokens_per_s, np.float64)
    rate = np.asarray(tokens_per_s_per_accelerator, np.float64)
    if np.any(~np.isfinite(target)) or np.any(target <= 0):
        raise GQAError(f"target throughput must be > 0 tokens/s, got {target_tokens_per_s!r}")
    with np.errstate(divide="ignore"):
        return _scalar(np.where(rate > 0, np.ceil(target / np.where(rate > 0, rate, 1.0)),
                                np.inf))


def cost_per_million_tokens(price_per_hour: float, tokens_per_s: Any) -> Any:
    """price per accelerator-hour / 3600 / (tokens/s) x 1e6: money per million generated
    tokens, in the price's currency (inf where the rate is 0). The price is a user input."""
    if isinstance(price_per_hour, bool) or not isinstance(price_per_hour, (int, float)) \
            or not np.isfinite(price_per_hour) or price_per_hour <= 0:
        raise GQAError(f"price_per_hour must be a number > 0, got {price_per_hour!r}")
    rate = np.asarray(tokens_per_s, np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        usd = np.where(rate > 0, price_per_hour / 3600.0 * 1e6 / np.where(
            rate > 0, rate, 1.0), np.inf)
    if np.any(~np.isfinite(usd) & (rate > 0)):  # overflow, not "does not fit"
        raise GQAError(f"price_per_hour={price_per_hour:g} overflows the cost per million "
                       "tokens (inf); give a real price per accelerator-hour")
    return _scalar(usd)


def serving_costs(cfg: Cfg, T: Any, hardware: str | Accelerator, *, batch: Any = 1,
                  price_per_hour: float | None = None, dtype: str = "bf16",
                  kv_dtype: str | None = None, memory_fraction: float = MEMORY_FRACTION,
                  flops_efficiency: float = FLOPS_EFFICIENCY,
                  bandwidth_efficiency: float = BANDWIDTH_EFFICIENCY) -> dict[str, Any]:
    """Everything the serving objectives use, as arrays broadcast over cfg and T:
    ``latency_s`` (decode step at ``batch``), ``max_batch``, ``tokens_per_s`` (per
    accelerator at the largest batch), ``prefill_s`` (one prompt of T tokens),
    ``usd_per_mtok`` (NaN without a price; currency = the price's), ``fits`` (1.0 where
    ``batch`` sequences fit in memory beside the weights, else 0.0)."""
    eff = {"flops_efficiency": flops_efficiency, "bandwidth_efficiency": bandwidth_efficiency}
    kv = {"dtype": dtype, "kv_dtype": kv_dtype}
    B_max = max_batch(cfg, T, hardware, memory_fraction=memory_fraction, **kv)
    tps = decode_throughput(cfg, T, hardware, batch=B_max, **kv, **eff)
    out = {"latency_s": decode_seconds(cfg, T, hardware, batch=batch, **kv, **eff),
           "max_batch": B_max, "tokens_per_s": tps,
           "prefill_s": prefill_seconds(cfg, T, hardware, **kv, **eff),
           "fits": np.asarray(B_max) >= np.asarray(batch)}
    out["usd_per_mtok"] = (np.full(np.shape(tps), np.nan) if price_per_hour is None
                           else cost_per_million_tokens(price_per_hour, tps))
    shape = np.broadcast_shapes(*(np.shape(v) for v in out.values()))
    return {k: _scalar(np.broadcast_to(np.asarray(v, np.float64), shape))
            for k, v in out.items()}


def objective_value(costs: dict[str, Any], objective: str) -> Any:
    """The quantity each serving objective minimises, from :func:`serving_costs`:
    ``latency`` -> seconds per token at the chosen batch (inf where that batch does not
    fit in memory); ``throughput`` -> accelerator-
    seconds per generated token at the largest batch (1 / tokens per s; inf if it does not
    fit); ``cost`` -> money per million tokens (needs a price)."""
    if objective == "latency":
        fits = np.asarray(costs["fits"]) > 0
        return _scalar(np.where(fits, np.asarray(costs["latency_s"], np.float64), np.inf))
    tps = np.asarray(costs["tokens_per_s"], np.float64)
    if objective == "throughput":
        with np.errstate(divide="ignore"):
            return _scalar(np.where(tps > 0, 1.0 / np.where(tps > 0, tps, 1.0), np.inf))
    if objective == "cost":
        usd = np.asarray(costs["usd_per_mtok"], np.float64)
        if np.all(np.isnan(usd)):
            raise GQAError("objective='cost' needs price_per_hour (a price per accelerator-"
                           "hour: a user input, no default)")
        return _scalar(usd)
    raise GQAError(f"objective={objective!r} is not a serving objective; choose one of "
                   f"{', '.join(map(repr, OBJECTIVES[1:]))}")
