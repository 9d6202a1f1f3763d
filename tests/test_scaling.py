"""Loss laws and fitting: planted parameters come back, within their bootstrap intervals."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gqa_lib.errors import GQAError
from gqa_lib.fit.scaling import (HeadCountLaw, PowerLaw, bootstrap_fit, fit_head_count_law, loo_unpredictable,
                             fit_power_laws)

E_TRUE = 2.05
PLANTED = {(8, 8): (8.5e7, 0.22), (8, 1): (9.5e7, 0.21), (4, 1): (1.05e8, 0.20),
           (1, 1): (1.5e8, 0.19)}
SIZES = np.array([7.5e7, 1.6e8, 3.0e8, 5.2e8, 8.2e8, 1.2e9])


def synthetic(noise=0.003, seed=0, planted=PLANTED, E=E_TRUE):
    rng = np.random.default_rng(seed)
    N, y, keys = [], [], []
    for key, (a, b) in planted.items():
        N += list(SIZES)
        y += list((a / SIZES) ** b + E + rng.normal(0, noise, SIZES.size))
        keys += [key] * SIZES.size
    return np.array(N), np.array(y), keys


def test_power_law_inverts_and_refuses_targets_below_E():
    law = PowerLaw(a=9e7, b=0.21, E=2.05)
    N = np.geomspace(1e7, 1e11, 9)
    np.testing.assert_allclose(law.params_for_loss(law.loss(N)), N, rtol=1e-10)
    with pytest.raises(GQAError, match="above the fitted irreducible loss E = 2.0500"):
        law.params_for_loss(2.0)


@given(st.floats(2.2, 4.0), st.floats(0.01, 0.1))
def test_params_for_loss_falls_as_the_target_rises(target, step):
    law = PowerLaw(a=9e7, b=0.21, E=2.05)
    assert law.params_for_loss(target + step) < law.params_for_loss(target)


@pytest.mark.parametrize("method", ["lsq", "huber"])
def test_fitter_recovers_planted_parameters_within_bootstrap_intervals(method):
    N, y, keys = synthetic()
    fit = fit_power_laws(N, y, keys, method=method, loo=False)
    boot = bootstrap_fit(fit, n_boot=100, level=0.95, seed=1)
    assert boot.n_failed == 0
    truth = {(k, "a"): a for k, (a, _) in PLANTED.items()}
    truth |= {(k, "b"): b for k, (_, b) in PLANTED.items()}
    truth |= {(k, "E"): E_TRUE for k in PLANTED}
    for r in boot.intervals.itertuples():
        assert r.lo <= truth[(r.key, r.param)] <= r.hi, (r.key, r.param, r.lo, r.hi)
        assert r.lo <= r.estimate <= r.hi
    assert abs(fit.E - E_TRUE) < 0.05


def test_goodness_of_fit_and_leave_one_out():
    N, y, keys = synthetic(noise=0.002)
    fit = fit_power_laws(N, y, keys, method="lsq")
    q = fit.quality
    assert q.r2 > 0.999 and q.n_points == 24 and q.n_params == 9
    assert 0.001 < q.rmse < 0.003
    assert q.loo_rmse > q.rmse  # held-out points are predicted worse than fitted ones
    # the fitted curves stay within a few noise sd of the planted laws at every point
    truth = np.array([(PLANTED[k][0] / n) ** PLANTED[k][1] + E_TRUE for n, k in zip(N, keys)])
    assert np.max(np.abs(fit.predict() - truth)) < 4 * 0.002
    assert list(fit.table()["key"]) == list(PLANTED)


def test_free_floor_per_configuration():
    N, y, keys = synthetic(noise=0.0005)
    fit = fit_power_laws(N, y, keys, shared_E=False, method="lsq", loo=False)
    assert fit.quality.n_params == 12 and not fit.shared_E
    for k in PLANTED:
        assert abs(fit.law(k).E - E_TRUE) < 0.1
    with pytest.raises(GQAError, match="no fitted law for"):
        fit.law((32, 32))


def test_cases_bootstrap_runs():
    N, y, keys = synthetic()
    fit = fit_power_laws(N, y, keys, method="lsq", loo=False)
    boot = bootstrap_fit(fit, n_boot=20, scheme="cases", seed=3)
    assert len(boot.fits) + boot.n_failed == 20 and len(boot.fits) >= 2


@pytest.mark.parametrize("N, y, keys, msg", [
    ([1e8, 2e8], [3.0, 2.9], [(8, 1)] * 2, r"too few model sizes .*\(8, 1\) \(2 sizes\)"),
    ([1e8, -2e8, 3e8], [3.0, 2.9, 2.8], ["x"] * 3, "must be finite and > 0"),
    ([1e8, 2e8, 3e8], [3.0, np.nan, 2.8], ["x"] * 3, "loss must be finite"),
    ([1e8, 2e8, 3e8], [3.0, 2.9], ["x"] * 3, "equal length"),
    ([], [], [], "no data points"),
])
def test_bad_data_is_refused(N, y, keys, msg):
    with pytest.raises(GQAError, match=msg):
        fit_power_laws(N, y, keys)


def test_non_convergence_and_rising_loss_are_refused():
    N, y, keys = synthetic()
    with pytest.raises(GQAError, match="did not converge"):
        fit_power_laws(N, y, keys, method="huber", max_iter=1, loo=False)
    with pytest.raises(GQAError, match="does not fall with N|did not converge"):
        fit_power_laws(SIZES, 2.5 + 0.1 * np.log(SIZES / 1e8), ["up"] * 6, method="lsq",
                       loo=False)
    with pytest.raises(GQAError, match="method='fast' is not allowed"):
        fit_power_laws(N, y, keys, method="fast")


def test_head_count_law_fit_recovers_app_i_form():
    truth = HeadCountLaw(a=0.301, b=0.227, c=2.622)  # the paper's 1.2B law (App. I)
    h = np.array([1, 2, 4, 8, 16, 32, 64])
    law = fit_head_count_law(h, truth.loss(h))
    assert law.a == pytest.approx(0.301, rel=1e-4) and law.b == pytest.approx(0.227, rel=1e-4)
    assert law.c == pytest.approx(2.622, rel=1e-5)
    fixed = fit_head_count_law(h, HeadCountLaw(1.356, 0.044, 1.53).loss(h), c=1.53)
    assert fixed.b == pytest.approx(0.044, rel=1e-4) and fixed.c == 1.53
    with pytest.raises(GQAError, match="distinct head counts"):
        fit_head_count_law([1, 2, 4], [3.0, 2.9, 2.8])


def test_loo_names_the_configuration_it_cannot_predict():
    """Left without its smallest size, 'b' no longer falls with N: no leave-one-out RMSE,
    and loo_unpredictable says which configuration is to blame."""
    N = np.array([1e5, 3e5, 1e6, 3e6] * 2)
    a = 2.0 + 30 * N[:4] ** -0.3
    f = fit_power_laws(N, np.r_[a, [4.30, 4.15, 4.12, 4.16]], ["a"] * 4 + ["b"] * 4)
    assert f.quality.loo_rmse is None and loo_unpredictable(f) == ["b"]
    g = fit_power_laws(N[:4], a + np.array([1, -1, 1, -1]) * 1e-3, ["a"] * 4)
    assert g.quality.loo_rmse is not None and loo_unpredictable(g) == []


def test_coupling_reads_how_the_refits_trade_E_against_b():
    """per_head.coupling on refits built by hand: E = 2.5 - b exactly gives a correlation
    of -1; the spreads are those of E and of (a / N)^b + E over the refits, worked out here
    without the library's law; an unknown configuration is refused naming the fitted ones."""
    from types import SimpleNamespace

    from gqa_lib.fit.per_head import coupling
    from gqa_lib.fit.scaling import Bootstrap

    bs = [0.20, 0.25, 0.30, 0.35]
    refits = tuple(SimpleNamespace(law=lambda key, b=b: PowerLaw(a=1e6, b=b, E=2.5 - b)
                                   if key == (8, 1) else (_ for _ in ()).throw(
                                       GQAError(f"no fitted law for {key!r}; fitted: (8, 1)")))
                   for b in bs)
    boot = Bootstrap(intervals=None, fits=refits, level=0.95, scheme="residual", n_failed=0)
    N = 5e5  # a / N = 2: a larger b raises the power term about as much as it lowers E
    out = coupling(boot, (8, 1), N)
    assert out["corr_E_b"] == pytest.approx(-1.0)
    Es = [2.5 - b for b in bs]
    mean_E = sum(Es) / 4
    assert out["E_sd"] == pytest.approx((sum((e - mean_E) ** 2 for e in Es) / 3) ** 0.5)
    losses = [2.0 ** b + 2.5 - b for b in bs]  # (1e6 / 5e5)^b + E
    mean_l = sum(losses) / 4
    assert out["loss_sd"] == pytest.approx((sum((x - mean_l) ** 2 for x in losses) / 3) ** 0.5)
    # E and the power term move against each other: the loss is far better known than E
    assert out["loss_sd"] < 0.25 * out["E_sd"]
    with pytest.raises(GQAError, match=r"\(8, 1\)"):
        coupling(boot, (4, 1), N)


def _scattered_refits(fit, rng, n=4):
    from dataclasses import replace

    for _ in range(n):
        start = replace(fit, theta=fit.theta + rng.normal(0, 0.05, fit.theta.size))
        yield fit_power_laws(fit.N, fit.loss_nats, list(fit.keys), loo=False, start=start)


def test_a_noisy_fit_has_one_answer_from_any_start():
    """Residuals far above delta make the Huber loss a least-absolute-deviation loss, whose
    minimum is a flat set where a law has two seeds at a size: the curve may pass anywhere
    between them at one objective. Without the least-squares tie-break the optimiser stopped
    anywhere on that set (b of one of our T = 512 laws anywhere in 0.758-0.791, the number
    printed set by floating-point noise, so it changed between CPUs). Refits warm-started
    from scattered points must land on one fit."""
    rng = np.random.default_rng(1)
    N, y, keys = [], [], []
    for key, (a, b) in PLANTED.items():
        sizes = np.repeat(SIZES[:3], 2)  # two seeds per size
        N += list(sizes)
        y += list((a / sizes) ** b + E_TRUE + rng.normal(0, 0.03, sizes.size))
        keys += [key] * sizes.size
    fit = fit_power_laws(np.array(N), np.array(y), keys, loo=False)
    for again in _scattered_refits(fit, rng):
        for key, law in fit.laws.items():
            assert again.laws[key].b == pytest.approx(law.b, rel=1e-5), key
            assert again.laws[key].loss(1e9) == pytest.approx(law.loss(1e9), rel=1e-6), key


def test_our_sweep_fit_has_one_answer_from_any_start():
    """The same on the fit the book shows at T = 512 (cpu-v2: 3 to 6 runs per law)."""
    from gqa_lib.evidence import sweep_recipe
    from gqa_lib.fit import fit_runs, read_runs

    fit = fit_runs(read_runs(sweep_recipe.SWEEP_CSV), train_context=512, allow_partial=True).fit
    for again in _scattered_refits(fit, np.random.default_rng(0)):
        for key, law in fit.laws.items():
            # one start of four stops 1.2e-5 (relative) from the others in (8, 8)'s b on one
            # 2-core CPU (2026-12-07), < 1e-7 elsewhere: far below the 4% spread (0.758-0.791)
            # this guards against, and below the digits the book prints
            assert again.laws[key].b == pytest.approx(law.b, rel=1e-4), key
