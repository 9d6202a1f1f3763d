"""Speed of the cost model and the recipe: what makes the explorer feel instant.

Ratios are measured side by side in one run: the vectorised cost model against a Python loop
over ModelConfigs (configurations per second), and the recipe's timings: the whole Table 4
grid (8 targets x 5 contexts x 21 candidates) in one call, one explorer update end to end,
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


def _all_costs(b, T):
    m = cost.inference_memory_values(b, T)
    c = cost.compute_flops(b, T, "per_token")
    return cost.hardware_cost(m, c), cost.kv_cache_bytes(b, T)


def run(quick: bool = False) -> dict[str, Any]:
    n = 200_000 if quick else 2_000_000
    batch = _random_batch(n)
    T = 131_072
    vec = timeit(lambda: _all_costs(batch, T), repeat=3)["best_s"]
    n_loop = 300
    cfgs = [ModelConfig(n_layer=int(batch.n_layer[i]), d_model=int(batch.d_model[i]),
                        n_head=int(batch.n_head[i]), n_kv_head=int(batch.n_kv_head[i]),
                        d_head=64, d_ff=int(batch.d_ff[i])) for i in range(n_loop)]
    loop = timeit(lambda: [_all_costs(c, T) for c in cfgs], repeat=3)["best_s"]
    out = {"configs_per_s_vectorised": n / vec, "configs_per_s_loop": n_loop / loop,
           "vectorised_over_loop": (n / vec) / (n_loop / loop), "batch": n}
    print(f"  cost model: {out['configs_per_s_vectorised']:,.0f} configs/s vectorised vs "
          f"{out['configs_per_s_loop']:,.0f} in a loop (x{out['vectorised_over_loop']:,.0f})")

    from gqa_lib.recipe import bootstrap_choice, cost_grid
    from gqa_lib.reproduce import joint_model, paper_table4

    fit = timeit(joint_model, repeat=1 if quick else 3)["best_s"]
    model = joint_model()
    t4 = paper_table4()
    targets = np.sort(t4["target_loss"].unique())
    contexts = np.sort(t4["context"].unique())
    grid = timeit(lambda: cost_grid(model, targets, contexts), repeat=5)["best_s"]
    boot_n = 50 if quick else 200
    boot = timeit(lambda: bootstrap_choice(model, 2.615, 131072, n_boot=boot_n), repeat=1)["best_s"]
    out.update({"joint_fit_s": fit, "table4_grid_s": grid, "table4_cells": len(targets) *
                len(contexts), "bootstrap_s": boot, "bootstrap_samples": boot_n})
    print(f"  Table 4 grid ({len(targets)}x{len(contexts)} cells x 21 candidates): "
          f"{grid * 1e3:.1f} ms; joint fit {fit:.2f} s; bootstrap x{boot_n}: {boot:.2f} s")
    try:
        from gqa_lib.widgets import ExplorerState, explore
    except ImportError:
        out["explorer_update_s"] = None
    else:
        state = ExplorerState()
        upd = timeit(lambda: explore(state), repeat=10)["median_s"]
        out["explorer_update_s"] = upd
        print(f"  explorer update: {upd * 1e3:.1f} ms (target < 50 ms)")
    return out
