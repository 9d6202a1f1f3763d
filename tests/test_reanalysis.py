"""The cpu-v2 reanalysis (gqa_lib.evidence.reanalysis): planted effects recovered, the
count-model comparison, and the numbers the pages and the scoreboard quote."""

import numpy as np
import pandas as pd
import pytest

from gqa_lib.errors import GQAError
from gqa_lib.evidence import reanalysis as ra

OFFSETS = {(8, 8): 0.0, (8, 1): 0.1, (1, 1): -0.05}
SIZES = [(1, 32), (2, 32), (2, 48), (2, 64)]


def planted(slope=-0.5, seed_shift=-0.03, noise=0.0, contexts=(128,)):
    rng = np.random.default_rng(0)  # noise only where asked
    rows = []
    for (h, k), off in OFFSETS.items():
        for i, (L, d) in enumerate(SIZES):
            N = 10_000 * 2 ** i * (1 + 0.1 * h + 0.05 * k)
            for seed in (0, 1):
                for T in contexts:
                    y = 5 + off + slope * np.log(N) + seed_shift * seed + 0.2 * (T > 128)
                    rows.append(dict(family="grid", n_layer=L, d_model=d, n_head=h,
                                     n_kv_head=k, params_non_embedding=N,
                                     params_total=N + 2048 * d, tokens=20 * N, context=T,
                                     seed=seed, val_loss_nats=y + noise * rng.normal()))
    return pd.DataFrame(rows)


def test_common_slope_recovers_planted_offsets_and_slope():
    fit = ra.common_slope(planted()).set_index("config")
    assert fit.slope.iloc[0] == pytest.approx(-0.5)
    for (h, k), off in OFFSETS.items():
        assert fit.loc[f"({h}, {k})", "offset"] == pytest.approx(off, abs=1e-9)
    covered = 0
    for s in range(40):  # the 95% intervals cover the planted offset about 95% of the time
        noisy = planted()
        noisy["val_loss_nats"] += 0.02 * np.random.default_rng(s).normal(size=len(noisy))
        f = ra.common_slope(noisy).set_index("config")
        covered += f.loc["(8, 1)", "lo"] < 0.1 < f.loc["(8, 1)", "hi"]
    assert covered >= 34
    both = ra.both_axes(planted())
    assert list(both.columns[:4]) == ["config", "offset_n", "lo_n", "hi_n"]
    with pytest.raises(GQAError, match="one context"):
        ra.common_slope(planted(contexts=(128, 512)))


def test_size_predicted_deltas_split_size_from_heads():
    d = ra.size_predicted_deltas(planted())
    d = d.groupby("config")[["delta", "predicted", "residual"]].mean()
    assert d.loc["(8, 1)", "residual"] == pytest.approx(0.1)
    assert d.loc["(1, 1)", "residual"] == pytest.approx(-0.05)
    assert (d.delta - d.predicted - d.residual).abs().max() < 1e-12


def test_context_gap_and_seed_offset():
    runs = planted(contexts=(128, 512))
    g = ra.context_gap(runs)
    assert g["mean"] == pytest.approx(0.2) and g["n_worse"] == g["n_pairs"] == 24
    s = ra.seed_offset(planted(noise=0.001))
    assert s["mean"] == pytest.approx(-0.03, abs=0.002) and s["p"] < 1e-6
    with pytest.raises(GQAError, match="both"):
        ra.context_gap(planted())


def test_runs_against_count_models():
    table = pd.DataFrame([dict(model=m, eval_set="first-65536", context=128, source="all",
                               first_position=0, last_position=127, tokens=65536,
                               val_loss_nats=v) for m, v in
                          (("unigram", 6.0), ("bigram", 4.0), ("trigram", 3.0))])
    runs = pd.DataFrame({"context": [128] * 3, "val_loss_nats": [3.5, 4.5, 2.9]})
    assert ra.baseline_counts(runs, table) == {"runs": 3, "unigram": 3, "bigram": 2,
                                               "trigram": 1}


def test_what_the_pages_quote_about_cpu_v2():
    """Issue 23's reanalysis, recomputed: most runs lose to the bigram, none reaches the
    trigram, T = 512 is worse than T = 128, and the axis decides the head ordering."""
    from gqa_lib.evidence import sweep_recipe
    from gqa_lib.fit import read_runs

    runs = read_runs(sweep_recipe.SWEEP_CSV)
    c = ra.baseline_counts(runs)
    assert c["runs"] == 100 and c["runs"] - c["bigram"] == 88 and c["trigram"] == 0
    g = ra.context_gap(runs)
    assert g["mean"] > 0.15 and g["n_worse"] >= g["n_pairs"] - 2
    both = ra.both_axes(runs[runs.context == 128]).set_index("config")
    assert both.offset_n.idxmin() == "(1, 1)" and both.offset_total.idxmin() == "(8, 8)"


def test_curvature_tells_a_floor_from_a_steepening_curve():
    runs = planted()
    N = runs.params_non_embedding
    floor = runs.assign(val_loss_nats=2.0 + 50 * N ** -0.3)  # flattens toward E = 2
    steep = runs.assign(val_loss_nats=8.0 - 0.02 * np.log(N) ** 2)  # bends down
    assert (ra.curvature(floor).curv > 0).all()
    assert (ra.curvature(steep).curv < 0).all()
    assert len(ra.curvature(floor)) == 6  # 3 configurations x 2 seeds, 4 sizes each
    # a Llama-3 style ladder (its own family, d_head 64) is a ladder too, labelled apart
    llama = floor[floor.n_head == 8].assign(family="llama3", n_kv_head=2)
    both = ra.curvature(pd.concat([floor, llama], ignore_index=True))
    assert len(both) == 8 and (both.config == "Llama-3 style").sum() == 2
