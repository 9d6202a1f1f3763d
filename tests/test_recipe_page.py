"""What the recipe page computes: Fig. 2 redrawn, Table 4 with bootstrap shares, sensitivity
of the choice to Z's settings, and the display formats of those frames."""

import numpy as np
import pandas as pd
import pytest

from gqa_lib.book import tables
from gqa_lib.errors import GQAError
from gqa_lib.fit.recipe import CostSettings, cost_grid, optimize
from gqa_lib.evidence.paper import (LLAMA3_LABEL, MEASURED, PAPER_HEADLINE, fig2_frame, headline,
                               joint_model, mismatches, paper_runs, table4_comparison,
                               table4_summary)
from gqa_lib.evidence.sensitivity import choice_across, settings_variants

K128 = 131072


@pytest.fixture(scope="module")
def model():
    return joint_model()


@pytest.fixture(scope="module")
def fig2(model):
    return fig2_frame(model, context=K128)


# ----- Fig. 2 -------------------------------------------------------------------------------
def test_fig2_points_are_the_digitised_runs_at_their_shapes(fig2):
    pts = fig2[fig2["source"] == "digitised"].reset_index(drop=True)
    runs = paper_runs()
    assert len(pts) == len(runs)
    assert np.array_equal(pts["loss_nats"], runs["loss_nats"])
    assert np.array_equal(pts["params_non_embedding"], runs["params_non_embedding"])
    assert set(pts["config"]) == {f"({h}, {k})" for h, k in MEASURED} | {LLAMA3_LABEL}


def test_fig2_axes_follow_the_figure_conventions(fig2):
    """M = N + 2 T L d_h n_kv (values); C = T (N + 2 T L d_h n_h); Z = 0.9 M^.5 + 0.1 C^(1/3),
    by hand for the largest Llama-3 point (L = 32, d = 2048, H = (32, 8))."""
    top = fig2[(fig2["config"] == LLAMA3_LABEL) & (fig2["source"] == "digitised")
               & (fig2["n_layer"] == 32)].iloc[0]
    N, T, L = 1_409_220_608, K128, 32
    M = N + 2 * T * L * 64 * 8
    C = T * (N + 2 * T * L * 64 * 32)
    assert top["params_non_embedding"] == N
    assert top["memory_values"] == M
    assert top["flops"] == pytest.approx(C, rel=1e-12)
    assert top["z"] == pytest.approx(0.9 * M**0.5 + 0.1 * C ** (1 / 3), rel=1e-12)
    assert top["memory_values"] == headline()["baseline"]["memory_values"]


def test_fig2_curves_fit_the_points_and_reach_the_headline_target(fig2, model):
    pts = fig2[fig2["source"] == "digitised"]
    fitted = [model.baseline.loss(r.params_non_embedding) if r.config == LLAMA3_LABEL
              else model.loss(r.params_non_embedding, r.n_head, r.n_kv_head)
              for r in pts.itertuples()]
    assert np.sqrt(np.mean((np.asarray(fitted, float) - pts["loss_nats"]) ** 2)) < 0.01
    for name, curve in fig2[fig2["source"] == "fitted"].groupby("config"):
        assert (np.diff(curve["params_non_embedding"]) > 0).all()
        assert (np.diff(curve["loss_nats"]) < 0).all(), name  # loss falls with size
        assert (np.diff(curve["memory_values"]) > 0).all() and (np.diff(curve["z"]) > 0).all()
    best = fig2[(fig2["config"] == "(8, 1)") & (fig2["source"] == "fitted")]
    assert best["loss_nats"].min() < PAPER_HEADLINE["target_loss"] < best["loss_nats"].max()


def test_fig2_convention_and_range_are_options(model):
    df = fig2_frame(model, context=8192, settings=CostSettings(convention="per_token"),
                    n_layer=(12, 32), n_curve=3)
    assert (df["convention"] == "per_token").all() and (df["context"] == 8192).all()
    fitted = df[df["source"] == "fitted"]
    assert sorted(set(fitted["n_layer"])) == [12, 22, 32]
    per_token = 2 * fitted["params_non_embedding"] + 4 * 8192 * fitted["n_layer"] * 64 \
        * fitted["n_head"]                                        # eq. 3
    assert np.allclose(fitted["flops"], per_token, rtol=1e-12)
    with pytest.raises(GQAError, match="n_layer"):
        fig2_frame(model, n_layer=(32, 12))


# ----- Table 4 with bootstrap shares ----------------------------------------------------------
def test_table4_bootstrap_shares_of_ours_and_the_papers(model):
    df = table4_comparison(model, n_boot=3, seed=1)
    for col in ("share", "paper_share"):
        assert df[col].between(0, 1).all()
        assert np.allclose(df[col] * 3, np.round(df[col] * 3))  # counts of 3 refits
    assert (df.loc[df["match"], "share"] == df.loc[df["match"], "paper_share"]).all()
    assert (df.loc[~df["match"], "share"] + df.loc[~df["match"], "paper_share"] <= 1).all()
    miss = mismatches(df)
    assert {"share", "paper_share"} <= set(miss.columns) and len(miss) == (~df["match"]).sum()
    assert "share" not in mismatches(table4_comparison(model)).columns


# ----- sensitivity ----------------------------------------------------------------------------
def test_choice_across_is_the_grid_per_value(model):
    lams, targets, contexts = [0.5, 0.9], [2.9, 2.6], [8192, K128]
    df = choice_across(model, targets, contexts, "lam", lams)
    assert len(df) == len(lams) * len(targets) * len(contexts)
    assert list(df.columns[:3]) == ["lam", "target_loss", "context"]
    for lam in lams:
        ref = cost_grid(model, targets, contexts, settings=CostSettings(lam=lam)).cells()
        got = df[df["lam"] == lam].drop(columns="lam").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, ref)
    # the paper's point, and the page's reading of its heat map: whatever lam, a longer
    # context never asks for more query or KV heads
    wide = choice_across(model, 2.615, [2**k for k in range(12, 21)], "lam",
                         [0.5, 0.7, 0.8, 0.9, 0.95, 0.99])
    for _, cells in wide.sort_values("context").groupby("lam"):
        assert (np.diff(cells["n_head"]) <= 0).all() and (np.diff(cells["n_kv_head"]) <= 0).all()


def test_choice_across_rejects_unknown_fields(model):
    with pytest.raises(GQAError, match="not a CostSettings field"):
        choice_across(model, 2.6, K128, "gamma", [1])
    with pytest.raises(GQAError, match="no values"):
        choice_across(model, 2.6, K128, "lam", [])
    with pytest.raises(GQAError, match="convention"):
        choice_across(model, 2.6, K128, "convention", ["per_second"])


def test_settings_variants_start_from_the_papers(model):
    df = settings_variants(model, {"convention": ("per_token",), "aspect": ("paper",)})
    assert list(df["field"]) == ["paper's settings", "convention", "aspect"]
    paper, per_token, table9 = (r for _, r in df.iterrows())
    s = table4_summary(table4_comparison(model))
    assert (paper["matches"], paper["measured_matches"]) == (s["matches"],
                                                             s["measured_matches"])
    h = headline(model, baseline="fit")  # the one headline: the baseline of the same loss
    assert (paper["n_head"], paper["n_kv_head"]) == h["recipe_choice"] == (8, 1)
    assert paper["equal_z_loss_gain"] == pytest.approx(h["equal_z_loss_gain"])
    assert paper["memory_pct"] == pytest.approx(h["memory_pct"])
    assert paper["flops_pct"] == pytest.approx(h["flops_pct"]["fig2"])
    # per-token C: Z ignores compute, n_h stays 32, the measured cells are lost
    assert per_token["n_head"] == 32 and per_token["measured_matches"] < 9
    # the savings are those of the configuration each row chose, not of (8, 1)
    rec = optimize(model, 2.615, K128, baseline="llama3",
                   settings=CostSettings(convention="per_token"))
    assert per_token["memory_pct"] == pytest.approx(rec.savings["memory_pct"])
    assert per_token["memory_pct"] != pytest.approx(paper["memory_pct"])
    assert table9["memory_pct"] != paper["memory_pct"]  # the shape moves the KV cache
    with pytest.raises(GQAError, match="not a CostSettings field"):
        settings_variants(model, {"gamma": (1,)})


def test_no_convention_gives_the_papers_flops_saving(model):
    h = headline(model)
    gaps = [abs(p - PAPER_HEADLINE["flops_pct"]) for p in h["flops_pct"].values()]
    assert min(gaps) > 2  # 57.8% lies between the conventions, at none of them


# ----- display --------------------------------------------------------------------------------
def test_readable_formats_the_recipe_frames(model):
    rec = cost_grid(model, 2.615, K128).frontier()
    view = tables.readable(rec, ["n_head", "n_kv_head", "params_non_embedding", "n_layer",
                                 "d_model", "memory_values", "flops", "z", "extrapolated"])
    best = view[rec["best"].to_numpy()].iloc[0]
    assert (best["n_h"], best["n_kv"], best["extrapolated"]) == ("8", "1", "no")
    assert best["L"] == "38.9" and best["N (non-embedding)"].endswith(" B")
    assert best["C in Z (FLOPs)"].endswith("FLOP") and best["M (values)"].endswith(" B")
    var = tables.readable(pd.DataFrame({"field": ["alpha", "aspect", "convention", "lam"],
                                        "value": [1 / 3, "paper", "fig2", 0.99],
                                        "memory_pct": [52.67, 49.16, 1.0, 2.0]}))
    assert list(var["changed"]) == ["α, exponent of memory", "shape rule", "what C counts",
                                    "λ, weight of memory in Z"]  # settings in words
    from gqa_lib.cost import CONVENTION_LABELS

    assert list(var["to"]) == ["1/3", "the paper's Table 9 shapes", CONVENTION_LABELS["fig2"], "0.99"]
    assert list(var["memory saving"]) == ["52.7%", "49.2%", "1.0%", "2.0%"]
    # integer shapes print as before
    assert tables._READABLE["d_model"][1](2048) == "2048"


def test_mismatch_causes_use_the_bootstrap_when_given():
    import pandas as pd

    from gqa_lib.evidence import paper
    from gqa_lib.evidence.paper import mismatches

    row = {"target_loss": 2.8, "context": 16384, "n_head": 16, "n_kv_head": 2,
           "paper_n_head": 16, "paper_n_kv_head": 1, "extrapolated": True, "loss_gap": 0.001,
           "match": False, "measured_cell": False}
    untested = mismatches(pd.DataFrame([row]))  # without refits a small gap is not a tie yet
    assert untested["cause"][0].startswith("small gap:") and "--bootstrap" in untested["cause"][0]
    assert untested["cause_kind"][0] == paper.SMALL_GAP
    tie = mismatches(pd.DataFrame([{**row, "share": 0.55, "paper_share": 0.30}]))
    assert tie["cause"][0].startswith("near tie")
    robust = mismatches(pd.DataFrame([{**row, "share": 0.98, "paper_share": 0.01}]))
    assert robust["cause"][0].endswith("not noise") and "98%" in robust["cause"][0]
    unsettled = mismatches(pd.DataFrame([{**row, "share": 0.5, "paper_share": 0.01}]))
    assert unsettled["cause"][0].endswith("split ours with others")
    split = mismatches(pd.DataFrame([{**row, "share": 0.55, "paper_share": 0.40}]))
    assert split["cause"][0].startswith("near tie")
    assert list(pd.concat([tie, robust, split])["cause_kind"]) == [
        paper.NEAR_TIE, paper.ROBUST_GAP, paper.NEAR_TIE]
    # each cause has its short name: a measured cell, an extrapolated pick, a query-head
    # gain, a KV-head gain, and fits that differ otherwise
    cases = [({"loss_gap": 0.01, "measured_cell": True, "n_head": 32, "n_kv_head": 4},
              paper.EXTRAPOLATED),
             ({"loss_gap": 0.01, "n_head": 32, "paper_n_head": 16}, paper.QUERY_GAIN),
             ({"loss_gap": 0.01, "n_kv_head": 4, "paper_n_kv_head": 2}, paper.KV_GAIN),
             ({"loss_gap": 0.01, "n_head": 8, "n_kv_head": 1, "paper_n_head": 4,
               "paper_n_kv_head": 1}, paper.FITS_DIFFER)]
    got = mismatches(pd.DataFrame([{**row, **change} for change, _ in cases]))
    assert list(got["cause_kind"]) == [kind for _, kind in cases]


def test_kv_rule_alternative_keeps_the_measured_cells():
    import pytest

    from gqa_lib import GQAError
    from gqa_lib.evidence.paper import joint_model, table4_comparison, table4_summary

    absolute, ratio = joint_model(), joint_model(kv_rule="ratio")
    assert ratio.kv_rule == "ratio" and "group size" in ratio.label
    # the measured configurations do not depend on the rule
    assert absolute.loss(1e9, 8, 2) == ratio.loss(1e9, 8, 2)
    # (32, 8) takes (8, 8)'s KV effect by number, (8, 2)'s by group size: worse under ratio,
    # before the query-head gain (whose scale kappa is refitted per rule)
    kv_abs = absolute._kv_law(absolute._kv_equiv(32, 8)).loss(1e9)
    kv_ratio = ratio._kv_law(ratio._kv_equiv(32, 8)).loss(1e9)
    assert kv_ratio > kv_abs
    s = table4_summary(table4_comparison(ratio))
    assert s["measured_matches"] == s["measured_cells"] == 9
    with pytest.raises(GQAError, match="kv_rule"):
        joint_model(kv_rule="grouped")
