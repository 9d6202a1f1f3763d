"""Stage 2, what a model costs: parameters, FLOPs (per token, prefill, training), KV cache,
memory and the paper's cost Z, pure and vectorised over configurations and contexts
(:mod:`gqa_lib.cost.counts`; its docstring is the table of counting conventions)."""

from gqa_lib.cost.counts import (attended_context, bits_per_value, COMPUTE_CONVENTIONS,
                                 compute_flops, ConfigBatch, DEFAULT_CONVENTION, DTYPE_BITS,
                                 flops_per_token, hardware_cost, inference_flops,
                                 inference_memory_bytes, inference_memory_values, kv_cache_bytes,
                                 kv_cache_values, matmul_params, param_counts,
                                 params_non_embedding, params_total, prefill_flops, summary,
                                 training_flops, training_memory_values)
from gqa_lib.cost.serving import (accelerators_needed, attention_flops_per_token,
                                  BANDWIDTH_EFFICIENCY, cost_per_million_tokens,
                                  decode_seconds, decode_step, decode_throughput,
                                  FLOPS_EFFICIENCY, kv_bytes_per_sequence, matmul_flops_per_token,
                                  max_batch, MEMORY_FRACTION, objective_value, OBJECTIVES,
                                  prefill_seconds, prefill_step, serving_costs,
                                  weights_read_bytes, weights_stored_bytes)

__all__ = [
    "attended_context", "bits_per_value", "COMPUTE_CONVENTIONS", "compute_flops", "ConfigBatch",
    "DEFAULT_CONVENTION", "DTYPE_BITS", "flops_per_token", "hardware_cost", "inference_flops",
    "inference_memory_bytes", "inference_memory_values", "kv_cache_bytes", "kv_cache_values",
    "matmul_params", "param_counts", "params_non_embedding", "params_total", "prefill_flops",
    "summary", "training_flops", "training_memory_values",
    # serving (gqa_lib.cost.serving)
    "accelerators_needed", "attention_flops_per_token", "BANDWIDTH_EFFICIENCY",
    "cost_per_million_tokens", "decode_seconds", "decode_step", "decode_throughput",
    "FLOPS_EFFICIENCY", "kv_bytes_per_sequence", "matmul_flops_per_token", "max_batch",
    "MEMORY_FRACTION", "objective_value", "OBJECTIVES", "prefill_seconds", "prefill_step",
    "serving_costs", "weights_read_bytes", "weights_stored_bytes",
]
