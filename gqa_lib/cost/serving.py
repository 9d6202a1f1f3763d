"""What a model costs to serve on a named accelerator: step times in seconds, tokens per
second, accelerators and money, calibrated on measurements where they exist.

Pure and vectorised like :mod:`gqa_lib.cost.counts`, on whose public counts it is built
(``cfg`` a ModelConfig or ConfigBatch; context T and batch B broadcast). Results in base
units: seconds, bytes, FLOPs, tokens per second, sequences.

The model (one accelerator holds one replica of the model; tensor parallelism and
inter-chip traffic are not modelled):

=================  ===========================================================================
quantity           formula
=================  ===========================================================================
decode step        t = L c + max(bytes / BW, F_mm / R_mm + F_att / R_att) for one step of B
                   sequences: bytes = W + B K(T), the weights read once per step (W =
                   weights_read_bytes: non-embedding parameters plus the LM head's V d
                   matrix) and each sequence's KV cache K(T) = kv_cache_bytes; F_mm = B (2 N_mm
                   + 2 d V) (matmuls and LM head); F_att = B 4 T L d_h n_h (attention over T
                   keys)
prefill            T tokens of B prompts: F_mm = B (2 N_mm T + 2 d V) (one row of logits per
                   prompt), F_att = the causal attention sum, bytes = W + B K(T) (weights
                   read, cache written); the same formula
largest batch      B_max = floor((mem f_mem - S) / K(T)), S = all parameters stored (tied
                   embedding once); 0 when the weights alone do not fit
tokens/s           B / t per accelerator (decode only: every prompt already in the
                   cache); latency per token = t
requests           with G generated tokens per request of a T-token prompt: one accelerator
                   spends t_prefill(T) + G t(B_max, T) / B_max seconds per request, so it
                   serves G / that tokens/s (prefill and decode not overlapped; decode priced
                   at context T, though it runs from T to T + G)
accelerators       ceil(target tokens/s / (tokens/s per accelerator))
cost               price per hour / 3600 / (tokens/s) x 1e6 per million generated tokens
=================  ===========================================================================

The constants, and where they come from (argument ``calibration``):

=========  ===========================  ==============================================
constant   calibrated (measured)        datasheet roofline
=========  ===========================  ==============================================
c          per-layer floor, fitted      0
BW         achieved bandwidth, fitted   datasheet bandwidth x ``bandwidth_efficiency``
R_mm       achieved matmul FLOP/s       datasheet FLOP/s x ``flops_efficiency``
R_att      achieved attention FLOP/s    datasheet FLOP/s x ``flops_efficiency``
mem        memory the device exposes    the datasheet's capacity
=========  ===========================  ==============================================

* ``"auto"`` (default): a **measured** accelerator (data/hardware/calibration.toml; today
  the H200) uses its fitted constants, fitted by :mod:`gqa_lib.cost.calibrate` on the step
  times of data/bench/ with their leave-one-out error per regime; results carry
  ``basis = "calibrated"``. An unmeasured accelerator uses the datasheet roofline,
  ``basis = "datasheet"``.
* ``"datasheet"``: the plain roofline, for every accelerator. Its efficiency defaults:
  ``bandwidth_efficiency = 0.7`` from gpt-fast (pytorch-labs/gpt-fast README, A100-80GB
  power-limited to 330 W, batch 1: 1,397 GB/s for Llama-2-7B in bf16, 0.69 of 2,039 GB/s);
  ``flops_efficiency = 0.5``, an assumption near published large-scale MFU (PaLM, Chowdhery
  et al. 2022: 46.2% training).
* a :class:`~gqa_lib.arch.hardware.Calibration` of your own.

The efficiencies belong to the datasheet roofline: giving one for a calibrated accelerator
is refused (pass ``calibration="datasheet"``). ``memory_fraction = 0.9``, the share of
device memory for weights and KV cache (vLLM's default ``gpu_memory_utilization``), applies
to both.

Conventions: weights and cache in ``dtype`` / ``kv_dtype`` (bf16 default); the input
embedding's B row reads and the non-matmul work (norms, RoPE, softmax) are not counted (on
a measured accelerator the floor and the fitted rates absorb them); decoding FLOPs have no
causal halving (the new token attends all T), prefill's do (what FlashAttention-style
kernels compute). The calibration was fitted on aligned shapes (d_ff a multiple of 256): an
unaligned shape ran up to 2.8x slower than that (:func:`gqa_lib.arch.aligned`). Sliding
windows cap T through ``attended_context`` inside the counts; mixture-of-experts and
latent-KV models enter through :func:`weights_read_bytes` and :func:`kv_bytes_per_sequence`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gqa_lib.arch.config import ModelConfig
from gqa_lib.arch.hardware import Accelerator, Calibration, get_accelerator
from gqa_lib.arch.hardware import calibration as measured_calibration
from gqa_lib.cost.counts import (ConfigBatch, _batch_size, _context, _scalar, _values_to_bytes,
                                 inference_flops, kv_cache_bytes, matmul_params, params_active,
                                 params_non_embedding, params_total, prefill_flops)
from gqa_lib.errors import MAX_EXACT, GQAError, check_numbers, check_real

# Defaults of the datasheet roofline's efficiency factors (sources in the module docstring).
BANDWIDTH_EFFICIENCY = 0.7
FLOPS_EFFICIENCY = 0.5
CALIBRATIONS = ("auto", "datasheet")
MEMORY_FRACTION = 0.9
# The least achieved fraction of a peak taken as an efficiency: below 1% no kernel runs (a
# slower device is its own peak figures, not an efficiency), and the printouts, in whole
# percent, would show 0% beside latencies of 1e297 ms.
MIN_EFFICIENCY = 0.01
OBJECTIVES = ("z", "latency", "throughput", "cost")
# What a reader sees for each objective: in a sentence or a menu (NAMES), in a label (SHORT).
OBJECTIVE_NAMES = {"z": "the paper's Z", "latency": "decode latency at batch 1",
                   "throughput": "decode tokens/s per accelerator at the largest batch",
                   "cost": "cost per million tokens"}
OBJECTIVE_SHORT = {"z": "Z", "latency": "latency", "throughput": "throughput", "cost": "cost"}
Cfg = ModelConfig | ConfigBatch


def _fraction(name: str, v: float) -> float:
    return check_real(name, v, lo=0.0, hi=1.0, lo_open=True)


def check_efficiency(name: str, v: Any) -> float:
    """An achieved fraction of peak in [MIN_EFFICIENCY, 1]; GQAError naming `name`."""
    v = check_real(name, v, lo=0.0, hi=1.0, lo_open=True)
    if v < MIN_EFFICIENCY:
        raise GQAError(f"{name}={v:g} is below {MIN_EFFICIENCY:.0%} of peak, the least taken "
                       "as an efficiency (no kernel runs slower; it would print as 0%): give "
                       "a slower device its own peak figures instead")
    return v


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


# ----- the step model -----------------------------------------------------------------------
def resolve_calibration(hardware: str | Accelerator, calibration: Any = "auto"
                        ) -> Calibration | None:
    """The constants a serving function uses: the accelerator's measured calibration for
    ``"auto"`` (None where it has none), None for ``"datasheet"``, or a Calibration given."""
    if isinstance(calibration, Calibration):
        return calibration
    if isinstance(calibration, str) and calibration == "auto":
        return measured_calibration(hardware)
    if isinstance(calibration, str) and calibration == "datasheet":
        return None
    raise GQAError(f"calibration must be one of {', '.join(map(repr, CALIBRATIONS))} or a "
                   f"Calibration, got {calibration!r}")


def basis(hardware: str | Accelerator, calibration: Any = "auto") -> str:
    """"calibrated" where the serving functions use measured constants, else "datasheet"."""
    return "datasheet" if resolve_calibration(hardware, calibration) is None else "calibrated"


def _rates(hardware: str | Accelerator, calibration: Any, flops_efficiency: float | None,
           bandwidth_efficiency: float | None) -> tuple[Calibration, str]:
    """(the constants as a Calibration, basis) for one call."""
    hw = _hw(hardware)
    cal = resolve_calibration(hw, calibration)
    if cal is not None:
        given = [n for n, v in (("flops_efficiency", flops_efficiency),
                                ("bandwidth_efficiency", bandwidth_efficiency)) if v is not None]
        if given:
            raise GQAError(f"{given[0]} applies to the datasheet roofline; {hw.key} is "
                           f"calibrated on measurements ({cal.source}): pass "
                           "calibration='datasheet' (CLI: --datasheet) to set efficiencies")
        return cal, "calibrated"
    e_f = check_efficiency("flops_efficiency",
                           FLOPS_EFFICIENCY if flops_efficiency is None else flops_efficiency)
    e_bw = check_efficiency("bandwidth_efficiency",
                            BANDWIDTH_EFFICIENCY if bandwidth_efficiency is None
                            else bandwidth_efficiency)
    rate = hw.bf16_flops_per_s * e_f
    return Calibration(hw.key, 1.0, hw.memory_bandwidth_bytes_per_s * e_bw, rate, rate,
                       source="datasheet"), "datasheet"


def _step(w: dict[str, Any], cal: Calibration, basis: str, hw: Accelerator) -> dict[str, Any]:
    """Seconds of a step from its work (the module's formula); no floor on the datasheet. A
    time that overflows float64 is refused naming the accelerator's figure."""
    layers = np.asarray(w["layers"], np.float64)
    floor = layers * (cal.layer_floor_s if basis == "calibrated" else 0.0)
    mm = np.asarray(w["matmul_flops"], np.float64)
    att = np.asarray(w["attention_flops"], np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        compute_s = mm / cal.matmul_flops_per_s + att / cal.attention_flops_per_s
        memory_s = np.asarray(w["bytes"], np.float64) / cal.bandwidth_bytes_per_s
        seconds = floor + np.maximum(compute_s, memory_s)
    _refuse_overflow(compute_s, "bf16_flops_per_s", hw.bf16_flops_per_s, hw, "FLOP/s")
    _refuse_overflow(memory_s, "memory_bandwidth_bytes_per_s",
                     hw.memory_bandwidth_bytes_per_s, hw, "bytes/s")
    return {"flops": _scalar(mm + att), "bytes": _scalar(np.asarray(w["bytes"], np.float64)),
            "floor_s": _scalar(floor), "compute_s": _scalar(compute_s),
            "memory_s": _scalar(memory_s), "seconds": _scalar(seconds),
            "memory_bound": _scalar(memory_s >= compute_s), "basis": basis}


def decode_work(cfg: Cfg, T: Any, *, batch: Any = 1, dtype: str = "bf16",
                kv_dtype: str | None = None) -> dict[str, Any]:
    """What one decode step of ``batch`` sequences at context T does: ``layers``, ``bytes``
    read, ``matmul_flops`` and ``attention_flops`` (the module's table)."""
    s = ConfigBatch.of(cfg)
    B = np.asarray(_batch_size(batch), np.float64)
    _context(T)
    kv = np.asarray(kv_bytes_per_sequence(s, T, kv_dtype=kv_dtype or dtype), np.float64)
    return {"layers": np.asarray(s.n_layer, np.float64),
            "bytes": np.asarray(weights_read_bytes(s, batch=B, dtype=dtype), np.float64) + B * kv,
            "matmul_flops": B * np.asarray(matmul_flops_per_token(s), np.float64),
            "attention_flops": B * np.asarray(attention_flops_per_token(s, T), np.float64)}


def prefill_work(cfg: Cfg, T: Any, *, batch: Any = 1, dtype: str = "bf16",
                 kv_dtype: str | None = None, logits: str = "last") -> dict[str, Any]:
    """What a prefill of ``batch`` prompts of T tokens does (keys as :func:`decode_work`);
    ``logits="last"`` computes one row of logits per prompt (serving), ``"all"`` every
    position's (a plain forward pass, as the H200 benchmark timed it)."""
    if logits not in ("last", "all"):
        raise GQAError(f"logits must be 'last' or 'all', got {logits!r}")
    s = ConfigBatch.of(cfg)
    B = np.asarray(_batch_size(batch), np.float64)
    t = np.asarray(_context(T), np.float64)
    mm = 2.0 * np.asarray(matmul_params(s), np.float64) * t
    att = np.asarray(prefill_flops(s, T, attention="causal"), np.float64) - mm
    rows = t if logits == "all" else 1.0
    head = 2.0 * np.asarray(s.d_model, np.float64) * np.asarray(s.vocab_size, np.float64)
    kv = np.asarray(kv_bytes_per_sequence(s, T, kv_dtype=kv_dtype or dtype), np.float64)
    return {"layers": np.asarray(s.n_layer, np.float64),
            "bytes": (np.asarray(weights_read_bytes(s, batch=B * t, dtype=dtype), np.float64)
                      + B * kv),
            "matmul_flops": B * (mm + head * rows), "attention_flops": B * att}


def _refuse_overflow(seconds: np.ndarray, field: str, value: float, hw: Accelerator,
                     unit: str) -> None:
    """GQAError naming the accelerator's figure when a time overflows float64 (inf): an
    absurdly small rate, whose inf would print as a latency and 0 tokens/s."""
    if not np.all(np.isfinite(seconds)):
        raise GQAError(f"hardware {hw.key!r}: {field}={value:g} {unit} makes a step take "
                       "longer than float64 can hold (inf seconds); give a real rate")


def decode_step(cfg: Cfg, T: Any, hardware: str | Accelerator, *, batch: Any = 1,
                dtype: str = "bf16", kv_dtype: str | None = None, calibration: Any = "auto",
                flops_efficiency: float | None = None,
                bandwidth_efficiency: float | None = None) -> dict[str, Any]:
    """One decode step of ``batch`` sequences at context T: ``bytes`` read, ``flops``,
    ``floor_s``, ``memory_s`` and ``compute_s`` (each at its achieved rate), ``seconds``,
    ``memory_bound`` and ``basis`` ("calibrated" or "datasheet"). Formula and constants in
    the module docstring."""
    cal, b = _rates(hardware, calibration, flops_efficiency, bandwidth_efficiency)
    return _step(decode_work(cfg, T, batch=batch, dtype=dtype, kv_dtype=kv_dtype), cal, b,
                 _hw(hardware))


def decode_seconds(cfg: Cfg, T: Any, hardware: str | Accelerator, **kw: Any) -> Any:
    """Seconds of one decode step (= latency per generated token); see :func:`decode_step`."""
    return decode_step(cfg, T, hardware, **kw)["seconds"]


def prefill_step(cfg: Cfg, T: Any, hardware: str | Accelerator, *, batch: Any = 1,
                 dtype: str = "bf16", kv_dtype: str | None = None, logits: str = "last",
                 calibration: Any = "auto", flops_efficiency: float | None = None,
                 bandwidth_efficiency: float | None = None) -> dict[str, Any]:
    """Prefill of ``batch`` prompts of T tokens (causal attention; ``logits`` as in
    :func:`prefill_work`): the same keys as :func:`decode_step`."""
    cal, b = _rates(hardware, calibration, flops_efficiency, bandwidth_efficiency)
    w = prefill_work(cfg, T, batch=batch, dtype=dtype, kv_dtype=kv_dtype, logits=logits)
    return _step(w, cal, b, _hw(hardware))


def prefill_seconds(cfg: Cfg, T: Any, hardware: str | Accelerator, **kw: Any) -> Any:
    """Seconds to prefill ``batch`` prompts of T tokens; see :func:`prefill_step`."""
    return prefill_step(cfg, T, hardware, **kw)["seconds"]


def memory_capacity_bytes(hardware: str | Accelerator, calibration: Any = "auto") -> float:
    """Device memory the serving model fills: as measured on a calibrated accelerator (what
    the device exposes: 139.8 GiB of an H200 sold as 141 GB), else the datasheet's."""
    hw = _hw(hardware)
    cal = resolve_calibration(hw, calibration)
    if cal is not None and cal.memory_capacity_bytes is not None:
        return cal.memory_capacity_bytes
    return hw.memory_capacity_bytes


def max_batch(cfg: Cfg, T: Any, hardware: str | Accelerator, *, dtype: str = "bf16",
              kv_dtype: str | None = None, memory_fraction: float = MEMORY_FRACTION,
              calibration: Any = "auto") -> Any:
    """Largest number of sequences of context T whose KV caches fit beside the weights:
    floor((capacity f_mem - weights stored) / KV per sequence), 0 where the weights alone
    do not fit (activations are inside the 1 - f_mem left over); capacity as in
    :func:`memory_capacity_bytes`. Refused above 2**53 sequences, never wrapped."""
    s = ConfigBatch.of(cfg)
    room = (memory_capacity_bytes(hardware, calibration)
            * _fraction("memory_fraction", memory_fraction)
            - np.asarray(weights_stored_bytes(s, dtype=dtype), np.float64))
    kv = np.asarray(kv_bytes_per_sequence(s, T, kv_dtype=kv_dtype or dtype), np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        b = np.floor(np.maximum(room, 0.0) / kv)
    if not np.all(b <= MAX_EXACT):  # int64 would wrap past 2**63; refused, not capped
        raise GQAError(f"hardware {_hw(hardware).key!r}: memory_capacity_bytes="
                       f"{memory_capacity_bytes(hardware, calibration):g} holds more than "
                       "2**53 sequences; the largest batch is no exact count (give a real "
                       "memory size)")
    return _scalar(b.astype(np.int64))


def decode_throughput(cfg: Cfg, T: Any, hardware: str | Accelerator, *, batch: Any = None,
                      dtype: str = "bf16", kv_dtype: str | None = None,
                      memory_fraction: float = MEMORY_FRACTION, calibration: Any = "auto",
                      flops_efficiency: float | None = None,
                      bandwidth_efficiency: float | None = None) -> Any:
    """Generated tokens per second per accelerator, B / t_step, at ``batch`` sequences
    (default: the largest batch that fits, :func:`max_batch`); 0 where nothing fits."""
    if batch is None:
        batch = max_batch(cfg, T, hardware, dtype=dtype, kv_dtype=kv_dtype,
                          memory_fraction=memory_fraction, calibration=calibration)
    B = check_numbers("batch", batch, "a non-negative number of sequences")
    if np.any(~(B >= 0)):
        raise GQAError(f"batch must be a non-negative number of sequences, got {batch!r}")
    t = decode_seconds(cfg, T, hardware, batch=np.maximum(B, 1.0), dtype=dtype,
                       kv_dtype=kv_dtype, calibration=calibration,
                       flops_efficiency=flops_efficiency,
                       bandwidth_efficiency=bandwidth_efficiency)
    return _scalar(np.where(B >= 1, B / np.asarray(t), 0.0))


def request_seconds(cfg: Cfg, T: Any, hardware: str | Accelerator, *, output_tokens: Any,
                    dtype: str = "bf16", kv_dtype: str | None = None,
                    memory_fraction: float = MEMORY_FRACTION, calibration: Any = "auto",
                    flops_efficiency: float | None = None,
                    bandwidth_efficiency: float | None = None) -> Any:
    """Accelerator-seconds one request costs: the prefill of its T-token prompt plus its
    share of G = ``output_tokens`` decode steps at the largest batch, t_prefill(T) +
    G t_step(B_max, T) / B_max (inf where nothing fits). A long prompt and a short answer
    make this prefill-bound, where :func:`decode_throughput` alone would say decode."""
    G = check_output_tokens(output_tokens)
    kv = {"dtype": dtype, "kv_dtype": kv_dtype}
    eff = {"calibration": calibration, "flops_efficiency": flops_efficiency,
           "bandwidth_efficiency": bandwidth_efficiency}
    return _request_seconds(prefill_seconds(cfg, T, hardware, **kv, **eff),
                            decode_throughput(cfg, T, hardware, memory_fraction=memory_fraction,
                                              **kv, **eff), G)


def check_output_tokens(output_tokens: Any) -> np.ndarray:
    """``output_tokens`` as float64, or GQAError unless every value is a whole number >= 1."""
    what = "a whole number of tokens >= 1"
    G = check_numbers("output_tokens", output_tokens, what)
    if np.any(~np.isfinite(G)) or np.any(G < 1) or np.any(G != np.floor(G)):
        raise GQAError(f"output_tokens must be a whole number of tokens >= 1, got "
                       f"{output_tokens!r}")
    return G


def _request_seconds(prefill_s: Any, decode_tokens_per_s: Any, G: np.ndarray) -> Any:
    """t_prefill + G / (decode tokens/s): the module's request formula (inf where nothing
    fits, i.e. no decode rate)."""
    decode = np.asarray(decode_tokens_per_s, np.float64)
    with np.errstate(divide="ignore"):
        return _scalar(np.where(decode > 0, np.asarray(prefill_s, np.float64)
                                + G / np.where(decode > 0, decode, 1.0), np.inf))


def accelerators_needed(target_tokens_per_s: Any, tokens_per_s_per_accelerator: Any) -> Any:
    """ceil(target / per-accelerator rate): replicas for a throughput (inf where the rate is
    0, i.e. the model does not fit); a count above 2**53 (no exact integer) is refused."""
    target = check_numbers("target_tokens_per_s", target_tokens_per_s, "a number of tokens/s")
    rate = check_numbers("tokens_per_s_per_accelerator", tokens_per_s_per_accelerator,
                         "a number of tokens/s")
    if np.any(~np.isfinite(target)) or np.any(target <= 0):
        raise GQAError(f"target throughput must be > 0 tokens/s, got {target_tokens_per_s!r}")
    if np.any(~(rate >= 0)) or np.any(np.isinf(rate)):
        raise GQAError(f"tokens_per_s_per_accelerator must be finite numbers >= 0 (0: does "
                       f"not fit), got {tokens_per_s_per_accelerator!r}")
    with np.errstate(divide="ignore", over="ignore"):
        n = np.where(rate > 0, np.ceil(target / np.where(rate > 0, rate, 1.0)), np.inf)
    if np.any((rate > 0) & ~(n <= MAX_EXACT)):
        raise GQAError(f"a target of {np.max(target):g} tokens/s needs more than 2**53 "
                       "accelerators (no exact count); give a real target throughput")
    return _scalar(n)


def cost_per_million_tokens(price_per_hour: float, tokens_per_s: Any) -> Any:
    """price per accelerator-hour / 3600 / (tokens/s) x 1e6: money per million generated
    tokens, in the price's currency (inf where the rate is 0). The price is a user input."""
    price_per_hour = check_real("price_per_hour", price_per_hour, lo=0.0, lo_open=True)
    rate = np.asarray(tokens_per_s, np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        usd = np.where(rate > 0, price_per_hour / 3600.0 * 1e6 / np.where(
            rate > 0, rate, 1.0), np.inf)
    if np.any(~np.isfinite(usd) & (rate > 0)):  # overflow, not "does not fit"
        raise GQAError(f"price_per_hour={price_per_hour:g} overflows the cost per million "
                       "tokens (inf); give a real price per accelerator-hour")
    return _scalar(usd)


def serving_costs(cfg: Cfg, T: Any, hardware: str | Accelerator, *, batch: Any = 1,
                  price_per_hour: float | None = None, output_tokens: int | None = None,
                  dtype: str = "bf16",
                  kv_dtype: str | None = None, memory_fraction: float = MEMORY_FRACTION,
                  calibration: Any = "auto", flops_efficiency: float | None = None,
                  bandwidth_efficiency: float | None = None) -> dict[str, Any]:
    """Everything the serving objectives use, as arrays broadcast over cfg and T:
    ``latency_s`` (decode step at ``batch``), ``max_batch``, ``decode_tokens_per_s`` (per
    accelerator at the largest batch, prompts already cached), ``tokens_per_s`` (the rate
    the throughput and cost objectives use: with ``output_tokens`` = G, generated tokens/s
    with each request's prompt prefilled, G / :func:`request_seconds`; without, the decode
    rate), ``prefill_s`` (one prompt of T tokens), ``usd_per_mtok`` (per million generated
    tokens at ``tokens_per_s``; NaN without a price; currency = the price's), ``fits`` (1.0
    where ``batch`` sequences fit in memory beside the weights, else 0.0)."""
    eff = {"flops_efficiency": flops_efficiency, "bandwidth_efficiency": bandwidth_efficiency,
           "calibration": calibration}
    kv = {"dtype": dtype, "kv_dtype": kv_dtype}
    B_max = max_batch(cfg, T, hardware, memory_fraction=memory_fraction,
                      calibration=calibration, **kv)
    decode = decode_throughput(cfg, T, hardware, batch=B_max, **kv, **eff)
    prefill = prefill_seconds(cfg, T, hardware, **kv, **eff)
    tps = decode
    if output_tokens is not None:  # the request formula on the figures just computed
        G = check_output_tokens(output_tokens)
        tps = G / np.asarray(_request_seconds(prefill, decode, G), np.float64)
    out = {"latency_s": decode_seconds(cfg, T, hardware, batch=batch, **kv, **eff),
           "max_batch": B_max, "decode_tokens_per_s": decode, "tokens_per_s": tps,
           "prefill_s": prefill, "fits": np.asarray(B_max) >= np.asarray(batch)}
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


def basis_note(hardware: str | Accelerator, calibration: Any = "auto", *,
               flops_efficiency: float | None = None,
               bandwidth_efficiency: float | None = None) -> str:
    """One line saying where a serving figure's constants come from: measured (calibrated,
    with the fit's leave-one-out error) or datasheet peaks at assumed efficiencies."""
    hw = _hw(hardware)
    cal = resolve_calibration(hw, calibration)
    if cal is not None:
        worst = max((e for _, e in cal.loo_max_error), default=float("nan"))
        return (f"calibrated on {cal.points} measured step times ({cal.source}): per-layer "
                f"floor {cal.layer_floor_s * 1e3:.3g} ms, {cal.bandwidth_bytes_per_s / 1e12:.3g} "
                f"TB/s, matmuls {cal.matmul_flops_per_s / 1e12:,.0f} TFLOP/s, attention "
                f"{cal.attention_flops_per_s / 1e12:,.0f} TFLOP/s; leave-one-out error of step "
                f"time <= {worst:.0%} per regime")
    e_f = FLOPS_EFFICIENCY if flops_efficiency is None else flops_efficiency
    e_bw = BANDWIDTH_EFFICIENCY if bandwidth_efficiency is None else bandwidth_efficiency
    return (f"datasheet peaks, not measured: a roofline at {e_f:.0%} of peak FLOP/s and "
            f"{e_bw:.0%} of peak bandwidth, no per-layer floor")
