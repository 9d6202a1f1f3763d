"""Our sweep through the recipe (gqa_lib.evidence.sweep_recipe) and the fit reports (gqa_lib.fit.per_head), on a
synthetic runs CSV with planted laws and planted seed noise: independent of how far the real
sweep has got."""

import numpy as np
import pandas as pd
import pytest

from gqa_lib.evidence import sweep_recipe
from gqa_lib.errors import GQAError
from gqa_lib.fit.per_head import fit_curves, fit_runs, interval_table, quality_table, read_runs
from gqa_lib.fit.recipe import bootstrap_choice
from gqa_lib.fit.shapes import paper_params
from gqa_lib.train.sweep import llama3_heads

GRID = ((8, 8), (8, 4), (8, 2), (8, 1), (4, 1), (2, 1), (1, 1))
CONTEXTS = (512, 2048, 8192, 32768, 131072)
E_TRUE, B_TRUE, A0 = 3.5, 0.3, 1.5e6


def planted_a(h, k, head_effect=0.1):
    """a_H: fewer query and KV heads need a bigger model for the same loss."""
    return A0 * (1 + head_effect * (3 - np.log2(h)) + 0.5 * head_effect * (3 - np.log2(k)))


def sweep_rows(*, sizes=(2, 3, 4, 5), contexts=(128, 512), noise=0.01, head_effect=0.1,
               seeds=((8, 8), (8, 1)), n_seeds=2, rng_seed=0):
    """Rows shaped like cpu-v1.csv: the grid and the Llama-3 family at seed 0 for every
    context; ``seeds`` repeated with seeds 1 .. n_seeds-1 at the shortest context."""
    rng = np.random.default_rng(rng_seed)
    rows = []

    def add(L, h, k, fam, T, seed):
        d = 64 * L
        N = int(paper_params(L, d, h, k, 16))
        loss = (planted_a(h, k, head_effect) / N) ** B_TRUE + E_TRUE + 0.1 * (T > 128)
        rows.append({"run_id": f"L{L}-h{h}-kv{k}-T{T}-s{seed}", "status": "ok", "family": fam,
                     "n_layer": L, "d_model": d, "n_head": h, "n_kv_head": k, "d_head": 16,
                     "params_non_embedding": N, "tokens": 327680, "context": T, "seed": seed,
                     "val_loss_nats": loss + rng.normal(0, noise)})

    for L in sizes:
        base = llama3_heads(64 * L, 16)
        for T in contexts:
            for h, k in GRID:
                add(L, h, k, "grid+llama3" if (h, k) == base else "grid", T, 0)
            if base not in GRID:
                add(L, *base, "llama3", T, 0)
        for h, k in seeds:
            for s in range(1, n_seeds):
                add(L, h, k, "grid", contexts[0], s)
    return pd.DataFrame(rows)


def write_sweep(path, **kw):
    df = sweep_rows(**kw)
    pd.concat([df, df.iloc[:1].assign(status="failed", val_loss_nats="")]).to_csv(path,
                                                                                 index=False)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return read_runs(write_sweep(tmp_path_factory.mktemp("sweep") / "runs.csv"))


@pytest.fixture(scope="module")
def fit512(runs):
    return sweep_recipe.fit_context(runs, 512, n_boot=40)


# ----- progress -------------------------------------------------------------------------------
def test_planned_runs_expand_the_real_grid_file():
    plan = sweep_recipe.planned_runs()
    assert len(plan) == len(plan.drop_duplicates())
    assert set(plan["context"]) == {128, 512}
    assert set(zip(plan["n_layer"], plan["d_model"])) == {(1, 32), (2, 32), (2, 48), (2, 64),
                                                          (3, 80)}
    seed1 = plan[plan["seed"] == 1]
    at = {T: set(zip(g["n_head"], g["n_kv_head"], g["d_model"])) for T, g in seed1.groupby("context")}
    grid = [(8, 8), (8, 4), (8, 2), (8, 1), (4, 1), (2, 1), (1, 1)]
    assert {(h, k) for h, k, _ in at[128]} >= set(grid) and {d for *_, d in at[128]} == {32, 48, 64}
    assert at[512] == {(h, k, d) for h, k in ((8, 8), (8, 2), (4, 1), (1, 1)) for d in (32, 48, 64)}
    v1 = sweep_recipe.planned_runs(sweep_recipe.V1_GRID)
    assert set(v1["context"]) == {128, 512} and set(v1["n_layer"]) == {2, 3, 4, 5}
    seed1 = v1[v1["seed"] == 1]
    at = {T: set(zip(g["n_head"], g["n_kv_head"], g["n_layer"])) for T, g in seed1.groupby("context")}
    assert at[128] == {(h, k, L) for h, k in ((8, 8), (8, 1)) for L in (2, 3, 4, 5)}
    assert at[512] == {(h, k, L) for h, k in ((8, 8), (8, 4), (8, 1), (1, 1)) for L in (4, 5)}
    assert (v1["family"] == "grid+llama3").sum() == 2   # (8, 8) is the baseline at d = 128


def test_progress_names_what_is_missing(runs):
    plan = runs[["family", "n_layer", "d_model", "n_head", "n_kv_head", "context", "seed"]]
    partial = runs[~((runs["n_layer"] == 5) & (runs["n_head"] == 4))]
    p = sweep_recipe.progress(partial, plan).set_index(["config", "context", "seed"])
    assert p.loc[("(4, 1)", 512, 0), "missing"] == "L5 d320"
    assert p.loc[("(4, 1)", 512, 0), ["done", "planned"]].tolist() == [3, 4]
    assert p.loc[("(8, 1)", 128, 1), "missing"] == ""
    assert p.loc[("Llama-3 style", 128, 0), "planned"] == 3  # L = 2 is the grid's (8, 8)


# ----- step 2 -----------------------------------------------------------------------------------
def test_fit_context_recovers_the_planted_laws(fit512):
    assert fit512.note == "" and fit512.sizes["fitted"].all()
    assert sorted(fit512.model.configs()) == sorted(GRID) and fit512.model.baseline is not None
    iv = interval_table(fit512.boot).set_index("config")
    assert list(iv.columns) == ["a", "a_lo", "a_hi", "b", "b_lo", "b_hi", "E", "E_lo", "E_hi"]
    assert (iv["E_lo"] <= iv["E"]).all() and (iv["E"] <= iv["E_hi"]).all()
    assert iv.loc["(8, 1)", "E"] == pytest.approx(E_TRUE + 0.1, abs=0.3)
    assert iv.loc["(8, 1)", "b"] == pytest.approx(B_TRUE, rel=0.5)


def test_fit_context_on_a_partial_sweep_says_what_waits(runs):
    partial = runs[~((runs["n_layer"] >= 4) & (runs["n_kv_head"] == 1) & (runs["n_head"] < 8))]
    cf = sweep_recipe.fit_context(partial, 128, n_boot=5)
    assert cf.model is not None
    assert sorted(cf.model.configs()) == [(8, 1), (8, 2), (8, 4), (8, 8)]
    assert cf.note.startswith("not fitted yet at T = 128") and "(4, 1) (2 sizes)" in cf.note
    nothing = sweep_recipe.fit_context(runs[runs["n_layer"] <= 3], 128, n_boot=5)
    assert nothing.model is None and nothing.boot is None
    assert "no configuration has the 3 or more sizes" in nothing.note
    empty = sweep_recipe.fit_context(runs, 2048)
    assert empty.model is None and "no finished runs at training context 2048" in empty.note
    assert sweep_recipe.longest_fitted({128: cf, 2048: empty}) == 128
    with pytest.raises(GQAError, match="no fit yet at any training context: no fit at T = 128"):
        sweep_recipe.longest_fitted({128: nothing, 2048: empty})


def test_fit_reports(fit512):
    fit = fit512.model.fit
    curves = fit_curves(fit, n=11)
    assert set(curves["source"]) == {"measured", "fitted"}
    assert set(curves["config"]) == {*(f"({h}, {k})" for h, k in GRID), "Llama-3 style"}
    assert (curves["source"] == "measured").sum() == fit.N.size
    q = quality_table({"T = 512": fit}).iloc[0]
    assert q["dof"] == fit.N.size - fit.theta.size > 0
    assert q["r2"] > 0.9 and 0 < q["rmse"] <= q["loo_rmse"] < 0.1
    one = sweep_rows(sizes=(2, 3, 4)).query("n_head == 8 and n_kv_head == 8 and seed == 0")
    exact = fit_runs(one, loo=True)                   # 3 sizes, 3 parameters: no dof left
    assert np.isnan(quality_table({"one H": exact.fit}).iloc[0]["loo_rmse"])


# ----- seed noise -------------------------------------------------------------------------------
def test_seed_noise_recovers_the_planted_noise():
    many = sweep_rows(noise=0.02, n_seeds=6, contexts=(128,), rng_seed=3)
    noise = sweep_recipe.seed_noise(many)
    assert noise.n_groups == 8 and noise.dof == 8 * 5
    assert noise.lo < 0.02 < noise.hi and noise.lo < noise.sd < noise.hi
    assert noise.diff_sd == pytest.approx(np.sqrt(2) * noise.sd)
    groups = sweep_recipe.seed_groups(many)
    assert set(groups["config"]) == {"(8, 8)", "(8, 1)"} and (groups["n_seeds"] == 6).all()


def test_seed_noise_without_repeats_says_so(runs):
    noise = sweep_recipe.seed_noise(runs[runs["seed"] == 0])
    assert np.isnan(noise.sd) and noise.n_groups == 0 and "second seed" in noise.note


def test_differences_between_heads_against_seed_noise():
    df = sweep_rows(contexts=(128,), noise=0.005, head_effect=0.5, n_seeds=3)
    d = sweep_recipe.loss_differences(df, 128)
    heads, seeds = d[d["kind"] == sweep_recipe.HEAD_KIND], d[d["kind"] == sweep_recipe.SEED_KIND]
    assert len(heads) == 4 * (21 + 2)          # 7 grid H per size; (8, 8), (8, 1) at seeds 1, 2
    assert len(seeds) == 4 * 2 * 3              # two configurations, 3 pairs of 3 seeds, 4 sizes
    s = sweep_recipe.noise_summary(d, sweep_recipe.seed_noise(df))
    assert s["share_resolved"] > 0.8 and s["ratio"] > 5
    flat = sweep_rows(contexts=(128,), n_seeds=6)       # H and size do not matter: noise only
    flat["val_loss_nats"] = 4.0 + np.random.default_rng(1).normal(0, 0.02, len(flat))
    s = sweep_recipe.noise_summary(sweep_recipe.loss_differences(flat), sweep_recipe.seed_noise(flat))
    assert s["share_resolved"] < 0.2 and s["ratio"] < 1.5
    with pytest.raises(GQAError, match="no two head configurations"):
        sweep_recipe.noise_summary(d[d["kind"] == sweep_recipe.SEED_KIND], sweep_recipe.seed_noise(df))


# ----- step 3 -----------------------------------------------------------------------------------
def test_target_grid_stays_inside_the_measurements(fit512):
    targets, inside = sweep_recipe.target_grid(fit512.model, 4)
    assert inside and len(targets) == 4 and np.all(np.diff(targets) < 0)
    ev = sweep_recipe.recipe_evidence(fit512.model, targets, CONTEXTS, n_boot=3)
    assert ev.table()["in_range"].all()


def test_evidence_shares_are_bootstrap_choice(fit512):
    targets, _ = sweep_recipe.target_grid(fit512.model, 3)
    ev = sweep_recipe.recipe_evidence(fit512.model, targets, CONTEXTS[::2], n_boot=20, seed=4)
    ref = bootstrap_choice(fit512.model, targets, CONTEXTS[::2], n_boot=20, seed=4)
    pd.testing.assert_frame_equal(ev.shares(), ref)
    table = ev.table()
    assert len(table) == 3 * 3 and table["share"].between(0, 1).all()
    mine = ref[ref["point"]].reset_index(drop=True)
    np.testing.assert_allclose(table["share"], mine["share"])


def test_planted_long_context_effect_is_detected(fit512):
    """The planted laws make fewer heads worse at equal N, so cheaper caches must buy a
    bigger model: the claim holds, and the bootstrap agrees."""
    targets, _ = sweep_recipe.target_grid(fit512.model, 3)
    trend = sweep_recipe.recipe_evidence(fit512.model, targets, CONTEXTS, n_boot=20).trend()
    assert trend["claim"].all() and (trend["share_claim"] > 0.8).all()
    assert trend["choices"].str.contains(" > ").all()
    assert sweep_recipe.claim_verdict(trend) == "holds at every target"


def test_trend_directions():
    assert sweep_recipe._direction(sweep_recipe._head_steps(np.array([8, 8, 4, 1]), np.array([4, 1, 1, 1]))) \
        == "fewer"
    assert sweep_recipe._direction(sweep_recipe._head_steps(np.array([8, 8]), np.array([1, 1]))) == "same"
    assert sweep_recipe._direction(sweep_recipe._head_steps(np.array([1, 8]), np.array([1, 1]))) == "more"
    assert sweep_recipe._direction(sweep_recipe._head_steps(np.array([8, 1, 8]), np.array([1, 1, 1]))) == "mixed"
    assert sweep_recipe._direction(sweep_recipe._head_steps(np.array([8, 4]), np.array([1, 2]))) == "mixed"
    same = pd.DataFrame({"heads": ["same", "same"], "size": ["same", "same"],
                         "claim": [False, False]})
    assert sweep_recipe.claim_verdict(same).startswith("cannot be tested")
    some = same.assign(heads=["fewer", "same"], size=["larger", "same"], claim=[True, False])
    assert sweep_recipe.claim_verdict(some) == "holds at 1 of 2 targets"
    smaller = same.assign(heads=["fewer", "fewer"], size=["smaller", "smaller"])
    assert sweep_recipe.claim_verdict(smaller) == "holds for the heads but not for the model size"


# ----- the checks the cpu-v2 pages make -------------------------------------------------------------
def test_leave_one_size_out_on_planted_laws(runs):
    loso = sweep_recipe.leave_one_size_out(runs, 512)
    assert list(loso["size"]) == ["L2 d128", "L3 d192", "L4 d256", "L5 d320"]  # by N
    assert loso["extrapolation"].tolist() == [True, False, False, True]
    fitted = loso[loso["note"] == ""]
    assert len(fitted) == 4 and (fitted["n_runs"] == len(GRID)).all()
    # noise 0.01: the planted law predicts a left-out size inside the range closely, and one
    # beyond it (from 3 sizes left) less closely
    assert (fitted.loc[~fitted.extrapolation, "rmse"] < 0.03).all()
    assert (fitted["rmse"] < 0.15).all()
    # a size whose losses are off the law is predicted badly, and the table says so
    bent = runs.copy()
    bent.loc[(bent.n_layer == 5) & (bent.context == 512), "val_loss_nats"] += 0.3
    off = sweep_recipe.leave_one_size_out(bent, 512).set_index("size")
    assert off.loc["L5 d320", "bias"] == pytest.approx(-0.3, abs=0.08)
    assert off.loc["L5 d320", "rmse"] > 2 * fitted["rmse"].max()


def test_leave_one_size_out_needs_three_sizes_left(runs):
    three = runs[runs.n_layer <= 4]
    loso = sweep_recipe.leave_one_size_out(three, 512)
    assert (loso["n_runs"] == 0).all() and loso["note"].str.contains("3 or more sizes").all()


def test_floor_check_finds_the_planted_floor_and_a_missing_one(fit512, runs):
    f = sweep_recipe.floor_check(fit512, runs)
    assert f["E"] == pytest.approx(E_TRUE + 0.1, abs=0.3) and not f["at_bound"]
    assert f["largest"] == "L5 d320" and f["margin"] == pytest.approx(f["best_loss"] - f["E"])
    assert f["spread_largest"] > 0
    # a pure power law (E = 0): the fit pins E at its bound and the check says so
    pure = runs.assign(val_loss_nats=lambda d: (planted_a(d.n_head, d.n_kv_head) /
                                                d.params_non_embedding) ** B_TRUE)
    fp = sweep_recipe.fit_context(pure, 512, n_boot=5)
    g = sweep_recipe.floor_check(fp, pure)
    assert g["at_bound"] and g["E"] < 1e-6 and not g["hugs"]
    with pytest.raises(GQAError, match="no fit"):
        sweep_recipe.floor_check(sweep_recipe.fit_context(runs, 999), runs)


def test_widest_fitted_prefers_more_sizes_then_the_longer_context(runs):
    fits = {T: sweep_recipe.fit_context(runs[(runs.context == 128) | (runs.n_layer <= 4)], T,
                                        n_boot=2) for T in (128, 512)}
    assert sweep_recipe.longest_fitted(fits) == 512 and sweep_recipe.widest_fitted(fits) == 128
    both = {T: sweep_recipe.fit_context(runs, T, n_boot=2) for T in (128, 512)}
    assert sweep_recipe.widest_fitted(both) == 512


def test_targets_stay_above_the_smallest_shape_step3_can_build(fit512):
    model = fit512.model
    floor = {k: sweep_recipe.smallest_shape_N(k, model.d_head) for k in model.configs()}
    assert floor[(8, 8)] == pytest.approx(2 * 64 * 16 * 16 + 8 * 64 ** 2)  # L = 1, d = 64
    targets, _ = sweep_recipe.target_grid(model, 5)
    for k, n_min in floor.items():
        assert model.fit.law(k).loss(n_min) >= targets.max() - 1e-3


def test_the_committed_evidence_sweep_is_in_the_papers_regime():
    """Issue 12's contract for data/sweeps/cpu-v2.csv: 20 tokens per parameter (>= 19 for every
    ok run), >= 5 sizes spanning >= 8x in N, batches of >= 4,096 tokens."""
    from gqa_lib.book.pages import regime_table

    runs = read_runs(sweep_recipe.SWEEP_CSV)
    assert (runs.tokens / runs.params_non_embedding >= 19).all()
    sizes = runs.groupby(["n_layer", "d_model"]).params_non_embedding.median()
    assert len(sizes) >= 5 and sizes.max() / sizes.min() >= 8
    assert (runs.batch_size * runs.context >= 4096).all()
    table = regime_table({"v1": read_runs(sweep_recipe.V1_CSV), "v2": runs}).set_index("")
    assert table.loc["tokens per parameter", "v2"].startswith("19.")
    assert table.loc["runs", "v2"] == str(len(runs))
