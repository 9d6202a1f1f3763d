"""Sweep summaries on a small hand-made sweep whose answers are known."""

import pandas as pd
import numpy as np
import pytest

from gqa_lib import GQAError
from gqa_lib.evidence.sweep_summary import (head_deltas, head_effect_summary, recall_table, regime_gap,
                                  size_trend)


def runs(offset=0.0):
    rows = []
    for L, N in ((2, 1e5), (3, 3e5), (4, 9e5)):
        for (h, k), d in (((8, 8), 0.0), ((8, 1), 0.01), ((1, 1), -0.05)):
            for T in (128, 512):
                loss = 5.0 - 0.3 * L + d + (0.02 if T == 512 else 0) + (offset if h == 8 else 0)
                rows.append({"family": "grid", "n_layer": L, "d_model": 64 * L, "n_head": h, "n_kv_head": k,
                             "params_non_embedding": N, "context": T, "seed": 0,
                             "val_loss_nats": loss, "recall_acc": 0.2, "recall_base_acc": 0.1,
                             "recall_gain_nats": 0.3})
    rows.append({**rows[0], "family": "llama3", "n_head": 12, "n_kv_head": 6})
    return pd.DataFrame(rows)


def test_size_trend():
    t = size_trend(runs())
    assert len(t) == 6 and t["falls"].all() and (t["n_sizes"] == 3).all()
    r = runs()
    r.loc[(r.n_layer == 4) & (r.n_head == 1), "val_loss_nats"] += 1.0
    t = size_trend(r)
    assert (~t["falls"]).sum() == 2  # (1, 1) at both contexts
    bad = t[~t["falls"]]
    assert (bad["worst_step_to"] == "L4 d256").all() and (bad["worst_step_from"] == "L3 d192").all()
    assert bad["worst_step_nats"].round(6).eq(0.7).all()
    assert t.loc[t["falls"], "worst_step_nats"].round(6).eq(-0.3).all()
    # the Llama-3 style family on its own shapes is one more configuration: its one-size
    # "ladder" is none, a second size makes it one (not folded into a grid configuration)
    two = pd.concat([r, r[r.family == "llama3"].assign(n_layer=3, d_model=192,
                                                       params_non_embedding=3e5,
                                                       val_loss_nats=4.0)], ignore_index=True)
    ll = size_trend(two).set_index("config").loc["Llama-3 style"]
    assert ll.n_sizes == 2 and bool(ll.falls) and ll.worst_step_nats == pytest.approx(4.0 - 4.4)


def test_sizes_that_share_a_layer_count_are_separate_steps():
    # cpu-v2's ladder has (2, 32), (2, 48), (2, 64): keyed by L alone they would be one size
    r = runs()
    r = r[r.n_layer == 2]
    wider = [r.assign(d_model=d, params_non_embedding=r.params_non_embedding * f,
                      val_loss_nats=r.val_loss_nats - s) for d, f, s in ((96, 2, 0.2), (160, 4, 0.1))]
    r = pd.concat([r, *wider], ignore_index=True)
    t = size_trend(r)
    assert (t["n_sizes"] == 3).all() and not t["falls"].any()  # the last step rises by 0.1
    assert (t["worst_step_to"] == "L2 d160").all() and (t["worst_step_from"] == "L2 d96").all()
    d = head_deltas(r)
    assert len(d) == len(r[r.family == "grid"]) and set(d["size"]) == {"L2 d128", "L2 d96",
                                                                        "L2 d160"}


def test_size_trend_mean_over_seeds():
    r = runs()
    r.loc[(r.n_layer == 4) & (r.n_head == 1), "val_loss_nats"] += 0.4  # seed 0 rises by 0.1
    again = r[(r.n_layer == 4) & (r.n_head == 1)].assign(seed=1, val_loss_nats=lambda d:
                                                          d.val_loss_nats - 0.6)
    r = pd.concat([r, again], ignore_index=True)  # seed 1 at L = 4 falls by 0.5
    per_seed = size_trend(r)
    assert (~per_seed["falls"]).sum() == 2 and len(per_seed) == 6  # seed-1 rows: one size only
    mean = size_trend(r, mean_over_seeds=True)
    assert len(mean) == 6 and mean["falls"].all() and (mean["seed"] == -1).all()
    one = mean[(mean.config == "(1, 1)") & (mean.context == 128)].iloc[0]
    assert one.max_seeds == 2 and one.worst_step_nats == pytest.approx(-0.2)  # steps -0.3, -0.2


def test_head_deltas_against_reference():
    d = head_deltas(runs())
    assert set(d["config"]) == {"(8, 8)", "(8, 1)", "(1, 1)"}  # the llama3-only row is left out
    assert d.loc[d.config == "(1, 1)", "delta_nats"].round(6).eq(-0.05).all()
    assert d.loc[d.config == "(8, 8)", "delta_nats"].eq(0).all()
    with pytest.raises(GQAError, match="reference configuration"):
        head_deltas(runs(), reference=(4, 2))


def test_head_effect_summary_in_units_of_seed_noise():
    s = head_effect_summary(head_deltas(runs()), noise_sd=0.01)
    row = s[(s.config == "(1, 1)") & (s.context == 128)].iloc[0]
    assert row.n_sizes == 3 and row.mean_delta_nats == pytest.approx(-0.05)
    assert row.se_nats == pytest.approx(2**0.5 * 0.01 / 3**0.5)
    assert row.z == pytest.approx(-0.05 / row.se_nats)
    # one noise level per training context
    s = head_effect_summary(head_deltas(runs()), noise_sd={128: 0.01, 512: 0.04})
    by = s.set_index(["config", "context"])
    assert by.loc[("(1, 1)", 512), "se_nats"] == pytest.approx(4 * by.loc[("(1, 1)", 128), "se_nats"])
    with pytest.raises(GQAError, match=r"no value for context\(s\) \[512\]"):
        head_effect_summary(head_deltas(runs()), noise_sd={128: 0.01})


def test_recall_and_regime_gap():
    assert recall_table(runs())["acc_gain"].round(6).eq(0.1).all()
    g = regime_gap(runs(0.3), runs(0.0), names=("old", "new"))
    assert (g["gap_old"].round(6) == 0.35).all() and (g["gap_new"].round(6) == 0.05).all()


def test_family_masks_one_rule_for_every_module():
    from gqa_lib.fit.per_head import family_masks

    df = pd.DataFrame({"family": ["grid", "grid+llama3", "llama3", "extra"]})
    grid, llama3 = family_masks(df)
    assert list(grid) == [True, True, False, True] and list(llama3) == [False, True, True, False]
    grid, llama3 = family_masks(pd.DataFrame({"n_head": [8, 1]}))  # no family column: grid
    assert grid.all() and not llama3.any()


# ----- retrieval (MQAR) -----------------------------------------------------------------------------
def mqar_runs(accs, seeds=(0, 1, 2), jitter=0.01):
    """One row per (config, seed): overall accuracy accs[config] + a planted seed offset."""
    offsets = {0: -jitter, 1: 0.0, 2: jitter}
    rows = []
    for (h, k), a in accs.items():
        for s in seeds:
            acc = a + offsets[s]
            rows.append({"n_head": h, "n_kv_head": k, "seed": s, "context": 64, "mqar_acc": acc,
                         **{f"mqar_acc_pairs_{p}": min(1.0, acc * 8 / p) for p in (2, 4, 8, 16)},
                         "mqar_acc_dist_near": acc, "mqar_acc_dist_mid": acc,
                         "mqar_acc_dist_far": acc})
    return pd.DataFrame(rows)


def test_mqar_long_and_summary():
    from gqa_lib.evidence.sweep_summary import mqar_long, mqar_summary

    r = mqar_runs({(8, 8): 0.5, (1, 1): 0.2})
    long = mqar_long(r)
    assert len(long) == 6 * 8 and set(long["by"]) == {"all", "pairs", "distance"}
    s = mqar_summary(r).set_index(["config", "by", "level"])
    assert s.loc[("(8, 8)", "all", "all"), "mean"] == pytest.approx(0.5)
    assert s.loc[("(1, 1)", "all", "all"), "sd"] == pytest.approx(0.01)
    assert s.loc[("(1, 1)", "pairs", "16"), "mean"] == pytest.approx(0.1)
    assert list(dict.fromkeys(s.index.get_level_values(0))) == ["(8, 8)", "(1, 1)"]
    with pytest.raises(GQAError, match="no MQAR accuracy"):
        mqar_long(r.drop(columns=[c for c in r if c.startswith("mqar")]))


def test_mqar_separation_against_seed_noise():
    from gqa_lib.evidence.sweep_summary import mqar_separation

    sep = mqar_separation(mqar_runs({(8, 8): 0.5, (8, 1): 0.49, (1, 1): 0.2}))
    by = sep.set_index("pair")
    assert by.loc["(8, 8) vs (1, 1)", "separated"] and by.loc["(8, 8) vs (1, 1)", "diff"] == \
        pytest.approx(0.3)
    assert not by.loc["(8, 8) vs (8, 1)", "separated"]  # 0.01 apart, sd 0.01 with 3 seeds
    assert by["pooled_sd"].iloc[0] == pytest.approx(0.01) and by["dof"].iloc[0] == 6
    with pytest.raises(GQAError, match="two or more seeds"):
        mqar_separation(mqar_runs({(8, 8): 0.5, (1, 1): 0.2}, seeds=(0,)))


def test_mqar_separation_is_holm_corrected():
    """Holm: the k-th smallest of m p-values is multiplied by m - k + 1, kept monotone; a
    pair separated alone (p < 0.05) need not survive the family's correction."""
    from gqa_lib.evidence.sweep_summary import holm, mqar_separation

    assert holm(np.array([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])
    assert holm(np.array([0.5, 0.9])) == pytest.approx([1.0, 1.0])
    sep = mqar_separation(mqar_runs({(8, 8): 0.5, (8, 2): 0.478, (8, 1): 0.5, (4, 1): 0.5,
                                     (1, 1): 0.2}))
    assert len(sep) == 10 and (sep.p_holm >= sep.p).all()
    by = sep.set_index("pair")
    assert by.loc["(8, 8) vs (1, 1)", "separated"]
    assert by.loc["(8, 8) vs (8, 2)", "separated_uncorrected"]  # p ~ 0.02 alone ...
    assert not by.loc["(8, 8) vs (8, 2)", "separated"]  # ... not among ten comparisons


def test_the_separation_sentence_claims_no_best_the_test_does_not_give():
    from gqa_lib.evidence.sweep_summary import separation_sentence

    means = pd.Series({"(8, 8)": 0.19, "(8, 2)": 0.24, "(8, 1)": 0.14, "(1, 1)": 0.05})
    sep = pd.DataFrame({"pair": ["(8, 8) vs (1, 1)", "(8, 2) vs (1, 1)", "(8, 2) vs (8, 8)",
                                 "(8, 1) vs (1, 1)"], "separated": [True, True, False, False]})
    text = separation_sentence(sep, means)
    assert text.startswith("2 of 4 pairs") and "each with (1, 1)" in text
    assert "retrieves worse than (8, 8), (8, 2)" in text and "cannot be told apart" in text
    assert "best" not in text
    sep["separated"] = [False, False, True, True]  # no configuration common to both
    assert "highest mean (8, 2), lowest (1, 1)" in separation_sentence(sep, means)
    sep["separated"] = False
    assert separation_sentence(sep, means).startswith("no two head configurations")


def test_scoreboard_reads_which_configuration_retrieves_worse():
    from gqa_lib.evidence.scoreboard import _fewer_heads_worse

    assert _fewer_heads_worse("(8, 8) vs (1, 1)", +0.3)      # (1, 1) worse: fewer heads hurt
    assert not _fewer_heads_worse("(8, 8) vs (1, 1)", -0.3)
    assert _fewer_heads_worse("(4, 1) vs (8, 2)", -0.1)      # fewer KV heads first, and worse
    assert not _fewer_heads_worse("(8, 1) vs (4, 1)", -0.1)  # equal KV: fewer query heads is (4, 1)


def test_sweep_charts_are_valid_vega_lite():
    """to_dict() validates against the Vega-Lite schema (an Altair property object passed as
    a title fails only there, when the book renders the chart)."""
    from gqa_lib.book import plots
    from gqa_lib.evidence.sweep_summary import mqar_long

    r = runs()
    d = head_deltas(r)
    spec = plots.head_effect(d).to_dict()
    assert spec["spec"]["encoding"]["color"]["sort"] == ["L2 d128", "L3 d192", "L4 d256"]
    lr = pd.DataFrame({"lr": [1e-3, 4e-3, 1e-3, 4e-3], "val_loss_nats": [5.0, 4.8, 5.1, 4.9],
                       "config": ["(8, 8)", "(8, 8)", "(1, 1)", "(1, 1)"], "n_layer": 2,
                       "d_model": 64, "size": "L2 d64"})
    assert "facet" in plots.lr_tuning(lr, chosen=2e-3).to_dict()
    plots.mqar_accuracy(mqar_long(mqar_runs({(8, 8): 0.5, (1, 1): 0.2}))).to_dict()


def test_mqar_pairs_mirror_the_evaluation():
    from gqa_lib.evidence.sweep_summary import MQAR_PAIRS
    from gqa_lib.train.mqar import EVAL_PAIRS

    assert MQAR_PAIRS == EVAL_PAIRS  # copied so the summaries need no torch import
