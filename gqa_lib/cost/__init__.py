"""Stage 2, what a model costs: parameters, FLOPs (per token, prefill, training), KV cache,
memory and the paper's cost Z, pure and vectorised over configurations and contexts.

:mod:`~gqa_lib.cost.batch` holds ConfigBatch (one array per field), :mod:`~gqa_lib.cost.params`
the parameter counts (total, non-embedding, active), :mod:`~gqa_lib.cost.attention` the sums
over layers of each attention kind (full, sliding window, chunked; MLA's two conventions), and
:mod:`~gqa_lib.cost.counts` FLOPs, KV cache, memory and Z (its docstring is the table of
counting conventions)."""

from gqa_lib.cost.counts import (attended_context, bits_per_value, COMPUTE_CONVENTIONS,
                                 CONVENTION_LABELS, compute_flops, ConfigBatch, DEFAULT_CONVENTION, DTYPE_BITS,
                                 flops_per_token, hardware_cost, inference_flops,
                                 inference_memory_bytes, inference_memory_values, kv_cache_bytes,
                                 kv_cache_values, layer_summary, matmul_params, MLA_CONVENTIONS,
                                 param_counts, params_active, params_non_embedding, params_total,
                                 prefill_flops, summary, training_flops, training_memory_values)
from gqa_lib.cost.params import d_ff_for_params
from gqa_lib.cost.serving import (accelerators_needed, attention_flops_per_token,
                                  BANDWIDTH_EFFICIENCY, basis, basis_note, CALIBRATIONS,
                                  decode_work, memory_capacity_bytes, prefill_work,
                                  resolve_calibration, cost_per_million_tokens,
                                  decode_seconds, decode_step, decode_throughput,
                                  request_seconds, check_efficiency, check_output_tokens,
                                  FLOPS_EFFICIENCY, kv_bytes_per_sequence, matmul_flops_per_token,
                                  max_batch, MEMORY_FRACTION, MIN_EFFICIENCY, objective_value,
                                  OBJECTIVES,
                                  OBJECTIVE_NAMES, OBJECTIVE_SHORT,
                                  prefill_seconds, prefill_step, serving_costs,
                                  weights_read_bytes, weights_stored_bytes)

__all__ = [
    "attended_context", "bits_per_value", "d_ff_for_params", "COMPUTE_CONVENTIONS",
    "CONVENTION_LABELS", "compute_flops", "ConfigBatch",
    "DEFAULT_CONVENTION", "DTYPE_BITS", "flops_per_token", "hardware_cost", "inference_flops",
    "inference_memory_bytes", "inference_memory_values", "kv_cache_bytes", "kv_cache_values",
    "layer_summary", "matmul_params", "MLA_CONVENTIONS", "param_counts", "params_active",
    "params_non_embedding", "params_total", "prefill_flops", "summary", "training_flops",
    "training_memory_values",
    # serving (gqa_lib.cost.serving)
    "accelerators_needed", "attention_flops_per_token", "BANDWIDTH_EFFICIENCY", "basis",
    "basis_note", "CALIBRATIONS", "decode_work", "memory_capacity_bytes", "prefill_work",
    "resolve_calibration",
    "cost_per_million_tokens", "decode_seconds", "decode_step", "decode_throughput", "request_seconds",
    "check_efficiency", "check_output_tokens",
    "FLOPS_EFFICIENCY", "kv_bytes_per_sequence", "matmul_flops_per_token", "max_batch",
    "MEMORY_FRACTION", "MIN_EFFICIENCY", "objective_value", "OBJECTIVES", "OBJECTIVE_NAMES",
    "OBJECTIVE_SHORT", "prefill_seconds", "prefill_step",
    "serving_costs", "weights_read_bytes", "weights_stored_bytes",
]
