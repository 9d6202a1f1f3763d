"""Independent oracles for what a hand mutation of the library left untested (a review of
2026-12-06: dropping the LM head from a decode step, ignoring the batch or the cache's dtype
in memory, averaging attended keys off by one, widening bootstrap intervals, a wrong
leave-one-out error, the default training context, a build with one layer too many, the
headline's savings). Every expected value is computed here from the configuration's fields in
Python integers, or by a direct loop, never copied from the library's output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gqa_lib import GQAError, cost, get_preset
from gqa_lib.evidence.paper import headline, joint_model
from gqa_lib.fit.per_head import fit_runs, read_runs
from gqa_lib.fit.scaling import bootstrap_fit, fit_power_laws
from gqa_lib.fit.shapes import build_config, build_for_target, shape_for_params

from tests.test_recipe import write_runs

LLAMA = get_preset("llama-3.1-8b")


def llama_matmul(c) -> int:
    """Q, O (d x d_h n_h each), K, V (d x d_h n_kv each) and a SwiGLU FFN (3 d d_ff) per layer."""
    per_layer = (2 * c.d_model * c.d_head * c.n_head + 2 * c.d_model * c.d_head * c.n_kv_head
                 + 3 * c.d_model * c.d_ff)
    return c.n_layer * per_layer


def kv_values(c, T: int, batch: int = 1) -> int:
    return batch * 2 * c.n_layer * c.n_kv_head * c.d_head * T


# ----- cost: a decode step and memory, by hand ----------------------------------------------
@pytest.mark.parametrize("T", [1, 8192, 131072])
def test_a_decode_step_with_the_lm_head(T):
    c = LLAMA
    assert cost.matmul_params(c) == llama_matmul(c)
    body = 2 * llama_matmul(c) + 4 * T * c.n_layer * c.d_head * c.n_head
    assert cost.flops_per_token(c, T) == body
    assert cost.flops_per_token(c, T, lm_head=True) == body + 2 * c.d_model * c.vocab_size
    # fig1: T/2 tokens, attention halved, LM head with the time-invariant part
    fig1 = (T / 2 * (2 * llama_matmul(c) + 2 * c.d_model * c.vocab_size)
            + T / 4 * 4 * T * c.n_layer * c.d_head * c.n_head)
    assert cost.compute_flops(c, T, "fig1", lm_head=True) == pytest.approx(fig1, rel=1e-15)


@pytest.mark.parametrize("T, B", [(8192, 1), (8192, 7), (131072, 64)])
def test_memory_counts_every_sequence_of_the_batch(T, B):
    c = LLAMA
    N = cost.params_non_embedding(c)
    assert cost.inference_memory_values(c, T, batch=B) == N + kv_values(c, T, B)
    assert cost.training_memory_values(c, T, batch=B) == 4 * N + B * T * c.d_model * c.n_layer
    # weights in bf16 (2 bytes), the cache in fp8 (1 byte) when asked
    assert cost.inference_memory_bytes(c, T, batch=B, kv_dtype="fp8") == (
        2 * N + kv_values(c, T, B))
    assert cost.inference_memory_bytes(c, T, batch=B) == 2 * N + 2 * kv_values(c, T, B)


@pytest.mark.parametrize("T", [1, 100, 4096, 4097, 10_000])
def test_attended_context_exactly_at_small_contexts(T):
    """Full attention: T keys; Gemma-2 (half its layers windowed at W = 4,096): the mean over
    layers of min(T, W) and T."""
    assert cost.attended_context(LLAMA, T) == T
    g = get_preset("gemma-2-9b")
    windows = [min(T, g.sliding_window) if t == "sliding_attention" else T
               for t in g.layer_types]
    assert cost.attended_context(g, T) == pytest.approx(sum(windows) / g.n_layer, abs=0.5)


# ----- fits: intervals and leave-one-out by direct computation ------------------------------
@pytest.fixture(scope="module")
def small_fit():
    rng = np.random.default_rng(3)
    N = np.repeat([1e6, 2e6, 4e6, 8e6, 16e6], 2)
    keys = [(8, 1), (8, 8)] * 5
    y = np.array([(2e5 * (1.1 if k == (8, 1) else 1.0) / n) ** 0.3 + 2.0
                  for n, k in zip(N, keys)]) + rng.normal(0, 0.003, N.size)
    return fit_power_laws(N, y, keys, loo=True), N, y, keys


def test_bootstrap_intervals_are_the_percentiles_of_the_refits(small_fit):
    fit = small_fit[0]
    boot = bootstrap_fit(fit, n_boot=40, level=0.9, seed=1)
    for r in boot.intervals.itertuples():
        vals = [getattr(f.laws[r.key], r.param) for f in boot.fits]
        assert (r.lo, r.hi) == pytest.approx(tuple(np.percentile(vals, [5, 95])), rel=1e-12)


def test_leave_one_out_rmse_is_a_direct_loop(small_fit):
    fit, N, y, keys = small_fit
    errs = []
    for i in range(N.size):
        keep = np.arange(N.size) != i
        f = fit_power_laws(N[keep], y[keep], [k for k, m in zip(keys, keep) if m], loo=False)
        law = f.laws[keys[i]]
        errs.append((law.a / N[i]) ** law.b + law.E - y[i])
    assert fit.quality.loo_rmse == pytest.approx(float(np.sqrt(np.mean(np.square(errs)))),
                                                 rel=1e-3)


def test_a_runs_fit_defaults_to_the_longest_training_context(tmp_path):
    path = write_runs(tmp_path / "runs.csv")
    runs = pd.read_csv(path)
    short = runs.assign(context=128, val_loss_nats=runs["val_loss_nats"] + 0.5)
    pd.concat([runs, short]).to_csv(path, index=False)
    model = fit_runs(read_runs(path))
    assert model.loss_contexts == (512, 512) and model.fit.E < 3.2  # not the +0.5 runs
    assert fit_runs(read_runs(path), train_context=128).fit.E > 3.3


# ----- the shape to build: the fewest whole layers ------------------------------------------
@pytest.mark.parametrize("target, T", [(2.6, 8192), (2.615, 131072), (3.04, 131072),
                                       (2.5, 32768)])
def test_the_build_has_the_fewest_whole_layers_that_reach_the_target(target, T):
    from gqa_lib.fit.recipe import optimize

    m = joint_model()
    best = {**optimize(m, target, T).best, "d_head": m.d_head}
    cfg, loss = build_for_target(best, m, target)
    assert loss <= target
    fewer = build_config(best, n_layer=cfg.n_layer - 1)
    n = cost.params_non_embedding(fewer, include_norms=False)
    assert float(m.loss(n, fewer.n_head, fewer.n_kv_head)) > target
    assert shape_for_params(best["params_non_embedding"], best["n_head"], best["n_kv_head"])[0] \
        == pytest.approx(best["n_layer"])


# ----- the headline's savings, from its two shapes ------------------------------------------
def test_the_headline_savings_follow_from_its_two_shapes():
    """The paper's N (no norms): N = L (2 d d_h (n_h + n_kv) + 3 d d_ff), d_ff = 8 d / 3 on
    the continuous shape of the (8, 1), int(8 d / 3) = 5,461 on the paper's real (32, 8); M =
    N + 2 T L d_h n_kv; fig2 C = T/2 (2 N + 4 T L d_h n_h); fig1 C = T/2 (2 N) + T/4 (4 T L
    d_h n_h)."""
    h = headline()
    T, dh = h["context"], 64

    def figures(s, real):
        L, d, nh, nkv = s["n_layer"], s["d_model"], s["n_head"], s["n_kv_head"]
        N = L * (2 * d * dh * (nh + nkv) + 3 * d * ((8 * d) // 3 if real else 8 * d / 3))
        att = 4 * T * L * dh * nh
        return N + 2 * T * L * dh * nkv, T / 2 * (2 * N + att), T / 2 * 2 * N + T / 4 * att

    (m1, f2_1, f1_1), (m0, f2_0, f1_0) = figures(h["ours"], False), figures(h["baseline"], True)
    assert h["memory_pct"] == pytest.approx(100 * (1 - m1 / m0), abs=1e-6)
    assert h["flops_pct"]["fig2"] == pytest.approx(100 * (1 - f2_1 / f2_0), abs=1e-6)
    assert h["flops_pct"]["fig1"] == pytest.approx(100 * (1 - f1_1 / f1_0), abs=1e-6)


# ----- Z's refusals name the argument that is wrong -----------------------------------------
@pytest.mark.parametrize("kwargs, word", [
    ({"memory": -1.0, "flops": 1.0}, "memory"), ({"memory": 1.0, "flops": -1.0}, "flops"),
    ({"memory": 1.0, "flops": 1.0, "alpha": 0.0}, "alpha"),
    ({"memory": 1.0, "flops": 1.0, "beta": 0.0}, "beta"),
    ({"memory": 1.0, "flops": 1.0, "lam": 1.5}, "lam"),
    ({"memory": "x", "flops": 1.0}, "memory"), ({"memory": 1.0, "flops": None}, "flops"),
])
def test_z_refusals_name_the_argument(kwargs, word):
    with pytest.raises(GQAError, match=f"^{word}"):
        cost.hardware_cost(**kwargs)


def test_a_python_integer_past_int64_is_a_number():
    """Was: 'flops must be a number or array of numbers, got 18446744073709551616' (found by
    the property test with 2,000 examples)."""
    assert cost.hardware_cost(0.0, 2**64, lam=0.0, alpha=1.0, beta=1.0) == float(2**64)


def test_a_pick_far_above_the_fitted_sizes_is_warned_about():
    """The paper's fit spans 63M to 1.4B non-embedding parameters: a target far below its
    largest model's loss needs an N* more than twice the largest (2.30 nats: 71B), and says
    so; the headline's 2.615 (the largest model's own loss) does not."""
    from gqa_lib.fit.recipe import EXTRAPOLATION_FACTOR, optimize

    m = joint_model()
    top = float(np.max(m.fit.N))
    for target, warned in ((2.615, False), (2.30, True)):
        rec = optimize(m, target, 131072)
        far = rec.best["params_non_embedding"] > EXTRAPOLATION_FACTOR * top
        assert far == warned
        assert any("above the largest" in w for w in rec.warnings) == warned
