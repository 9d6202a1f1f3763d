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

__all__ = [
    "attended_context", "bits_per_value", "COMPUTE_CONVENTIONS", "compute_flops", "ConfigBatch",
    "DEFAULT_CONVENTION", "DTYPE_BITS", "flops_per_token", "hardware_cost", "inference_flops",
    "inference_memory_bytes", "inference_memory_values", "kv_cache_bytes", "kv_cache_values",
    "matmul_params", "param_counts", "params_non_embedding", "params_total", "prefill_flops",
    "summary", "training_flops", "training_memory_values",
]
