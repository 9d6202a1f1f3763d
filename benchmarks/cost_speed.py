"""Speed of the cost model and the recipe: what makes the explorer feel instant.

Ratios are measured side by side in one run: the vectorised cost model against a Python loop
over ModelConfigs (configurations per second), and the recipe's timings: the whole Table 4
grid (8 targets x 5 contexts x every candidate) in one call, one explorer update end to end,
and the bootstrap of the recommendation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gqa_lib import ModelConfig, cost

from .common import timeit


def _random_batch(n: int, seed: int = 0) -> cost.ConfigBatch:
    rng = np.random.default_rng(seed)
    kv = 2 ** rng.integers(0, 4, n)
    return cost.ConfigBatch.from_arrays(
        n_layer=rng.integers(4, 64, n), d_model=64 * rng.integers(4, 128, n),
        n_head=kv * 2 ** rng.integers(0, 4, n), n_kv_head=kv, d_head=np.full(n, 64),
        d_ff=rng.integers(512, 16384, n), vocab_size=np.full(n, 50_304))


def _mixed_batch(n: int, seed: int = 0) -> cost.ConfigBatch:
    """Random configurations with every extension set per element: a local/global layer split
    (window 4096), a mixture of experts (or none), latent attention (or none)."""
    rng = np.random.default_rng(seed)
    b = _random_batch(n, seed)
    experts = np.where(rng.random(n) < 0.5, 0, 2 ** rng.integers(3, 8, n))
    mla = rng.random(n) < 0.3
    return cost.ConfigBatch.from_arrays(
        n_layer=b.n_layer, d_model=b.d_model, n_head=b.n_head,
        n_kv_head=np.where(mla, b.n_head, b.n_kv_head), d_head=np.where(mla, 192, 64),
        d_ff=b.d_ff, vocab_size=b.vocab_size, window=4096,
        n_window_layers=rng.integers(0, 4, n) * b.n_layer // 4, n_experts=experts,
        n_experts_active=np.where(experts > 0, 2, 0), d_ff_expert=np.where(experts > 0, 1024, 0),
        kv_lora_rank=np.where(mla, 512, 0), qk_rope_dim=np.where(mla, 64, 0),
        qk_nope_dim=np.where(mla, 128, 0), v_head_dim=np.where(mla, 128, 0))


def _all_costs(b, T):
    m = cost.inference_memory_values(b, T)
    c = cost.compute_flops(b, T, "per_token")
    return cost.hardware_cost(m, c), cost.kv_cache_bytes(b, T)


CHUNK = 65_536  # configurations per array: big enough to amortise numpy's call overhead,
# small enough that the ~15 temporaries of one evaluation stay in cache (measured: 16K-64K
# configs per array run ~2x faster per config than one array of 2M, which streams from RAM)


def run(quick: bool = False) -> dict[str, Any]:
    n = 262_144 if quick else 2_097_152
    T = 131_072
    chunks = [_random_batch(CHUNK, seed=i) for i in range(n // CHUNK)]
    one = _random_batch(n)
    vec = timeit(lambda: [_all_costs(b, T) for b in chunks], repeat=3)["best_s"]
    vec_one = timeit(lambda: _all_costs(one, T), repeat=3)["best_s"]
    mixed = [_mixed_batch(CHUNK, seed=i) for i in range(n // CHUNK)]
    vec_mixed = timeit(lambda: [_all_costs(b, T) for b in mixed], repeat=3)["best_s"]
    n_loop = 300
    cfgs = [ModelConfig(n_layer=int(one.n_layer[i]), d_model=int(one.d_model[i]),
                        n_head=int(one.n_head[i]), n_kv_head=int(one.n_kv_head[i]),
                        d_head=64, d_ff=int(one.d_ff[i])) for i in range(n_loop)]
    loop = timeit(lambda: [_all_costs(c, T) for c in cfgs], repeat=3)["best_s"]
    # per configuration: memory (eq. 4), compute (eq. 3), Z and the KV cache in bytes
    out = {"configs_per_s_vectorised": n / vec, "configs_per_s_one_array": n / vec_one,
           "configs_per_s_loop": n_loop / loop, "vectorised_over_loop": (n / vec) / (n_loop / loop),
           "configs_per_s_mixed": n / vec_mixed, "chunk": CHUNK, "batch": n}
    print(f"  cost model: {out['configs_per_s_vectorised']:,.0f} configs/s vectorised "
          f"({CHUNK:,} per array; {out['configs_per_s_one_array']:,.0f} as one array of {n:,}) "
          f"vs {out['configs_per_s_loop']:,.0f} in a loop (x{out['vectorised_over_loop']:,.0f}); "
          f"{out['configs_per_s_mixed']:,.0f}/s with local/global layers, experts and MLA")

    from gqa_lib.evidence import paper
    from gqa_lib.fit.recipe import bootstrap_choice, cost_grid
    from gqa_lib.evidence.paper import joint_model, paper_table4

    def fresh_fit():  # joint_model() is cached per process: time a real fit
        paper.clear_fit_cache()
        return joint_model()

    fit = timeit(fresh_fit, repeat=1 if quick else 3)["best_s"]
    model = joint_model()
    t4 = paper_table4()
    targets = np.sort(t4["target_loss"].unique())
    contexts = np.sort(t4["context"].unique())
    grid = timeit(lambda: cost_grid(model, targets, contexts), repeat=5)["best_s"]
    n_cand = len(cost_grid(model, targets, contexts).configs)
    boot_n = 50 if quick else 200
    boot = timeit(lambda: bootstrap_choice(model, 2.615, 131072, n_boot=boot_n), repeat=1)["best_s"]
    out.update({"joint_fit_s": fit, "table4_grid_s": grid, "table4_candidates": n_cand,
                "table4_cells": len(targets) * len(contexts), "bootstrap_s": boot,
                "bootstrap_samples": boot_n})
    print(f"  Table 4 grid ({len(targets)}x{len(contexts)} cells x {n_cand} candidates): "
          f"{grid * 1e3:.1f} ms; joint fit {fit:.2f} s; bootstrap x{boot_n}: {boot:.2f} s")
    try:
        from gqa_lib.book.widgets import ExplorerState, explore
    except ImportError:
        out["explorer_update_s"] = None
    else:
        state = ExplorerState()
        upd = timeit(lambda: explore(state), repeat=10)["median_s"]
        out["explorer_update_s"] = upd
        print(f"  explorer update: {upd * 1e3:.1f} ms (target < 50 ms)")
    return out
