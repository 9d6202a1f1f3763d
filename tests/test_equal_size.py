"""The equal-size experiment's analysis (gqa_lib.evidence.equal_size) on planted rows: it
works with none to all of the 16 runs, pairs within seeds, and reads context use."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gqa_lib.evidence import equal_size as eq
from gqa_lib.evidence import longer_training as lt
from gqa_lib.train.sweep import COLUMNS
from gqa_lib.units import format_p

HEADS = {"(8, 8)": (8, 8, 0.0), "(8, 2)": (8, 2, 0.02), "(8, 1)": (8, 1, 0.05),
         "(1, 1)": (1, 1, 0.15)}
SEED_SHIFT = {0: 0.0, 1: -0.08, 2: 0.03, 3: 0.01, 4: -0.02, 5: 0.02}  # shared by every configuration of a seed


def _row(cfg, seed, lr=None, far_gain=0.3, grid="cpu-eq-v2"):
    h, k, off = HEADS[cfg]
    lr = eq.base_lr() if lr is None else lr  # the shared rate unless a check's
    loss = 3.2 + off + SEED_SHIFT[seed] + (0.01 if lr != eq.base_lr() else 0.0)
    first = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256]
    last = [0, 1, 3, 7, 15, 31, 63, 127, 255, 511]
    nats = [4.3, 3.7, 3.5, 3.4, 3.35, 3.3, 3.3] + [3.5 - far_gain - off] * 3
    return {"run_id": f"{cfg}-s{seed}-lr{lr}", "grid": grid, "status": "ok", "family": "grid",
            "n_layer": 2, "d_model": 128, "vocab_size": 2048, "n_head": h, "n_kv_head": k, "d_head": 16,
            "params_non_embedding": 400_000, "params_total": 662_144, "context": 512,
            "seed": seed, "lr": lr, "val_loss_nats": loss, "val_loss_full_nats": loss,
            "val_loss_by_position": json.dumps({"first": first, "last": last, "nats": nats}),
            "val_loss_by_source": json.dumps({"engWEB2015eb": loss - 0.1, "TDavid": loss + 0.1})}


def _write(tmp_path, rows):
    p = tmp_path / "eq.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(p, index=False)
    return eq.read(p)


def test_no_rows_yet(tmp_path):
    runs = eq.read(tmp_path / "missing.csv")
    st = eq.status(runs)
    assert st["done"] == 0 and st["planned"] == 8 and not st["ready"]  # the latest grid's runs
    assert eq.summary(runs).empty and eq.paired(runs).empty and eq.lr_check(runs).empty
    use = eq.context_use(runs)
    assert set(use.config) == {"bigram", "trigram"}  # the count models are always there
    assert eq.by_source(runs).shape[0] == 9
    assert np.isnan(eq.head_gains(runs)["query"]["mean"])


def test_paired_differences_cancel_the_shared_seed_shift(tmp_path):
    rows = [_row(c, s) for s in (0, 1, 2) for c in HEADS]
    runs = _write(tmp_path, rows)
    st = eq.status(runs)
    assert st["ready"] and st["done"] == 12 and st["min_seeds"] == 3
    s = eq.summary(runs).set_index("config")
    assert s.loc["(8, 8)", "sd"] > 0.05  # the seed shift shows in each configuration ...
    p = eq.paired(runs).set_index("config")
    assert p.loc["(1, 1)", "mean"] == pytest.approx(0.15)
    assert p.loc["(1, 1)", "sd"] == pytest.approx(0.0, abs=1e-9)  # ... and cancels in pairs
    g = eq.head_gains(runs)
    assert g["query"]["mean"] == pytest.approx(0.10) and g["kv"]["mean"] == pytest.approx(0.05)


def test_the_verdict_follows_the_runs(tmp_path):
    """Progress until every configuration has three seeds; then the paired gains, and a
    'not testable' clause only when no configuration beats the trigram."""
    assert eq.verdict(eq.read(tmp_path / "missing.csv")).startswith("None of the equal-size")
    partial = _write(tmp_path, [_row(c, 0) for c in HEADS])
    assert eq.verdict(partial).endswith("3 are needed): no verdict yet.")
    done = eq.verdict(_write(tmp_path, [_row(c, s) for s in (0, 1, 2) for c in HEADS]))
    assert "query heads (one KV head) lower the loss by 0.100" in done  # planted: no noise
    assert "query heads gain more, by 0.050 nats" in done and "beyond seed noise" in done
    assert "the paper's direction, beyond" in done
    d = {"mean": -0.02, "p": 0.3, "alpha": 0.05}  # KV heads gaining more: not the paper's
    assert eq.direction(d) == "against the paper's direction, but within seed noise"
    assert eq.direction({"mean": 0.05, "p": float("nan")}).endswith("no noise estimate)")
    # p = 0.02 is beyond noise on a first look, not on the third (0.05 / 3)
    assert eq.direction({"mean": 0.05, "p": 0.02, "alpha": 0.05}).endswith(", beyond seed noise")
    assert "within seed noise" in eq.direction({"mean": 0.05, "p": 0.02, "alpha": 0.05 / 3})
    assert "not testable" not in done and "beats the trigram" in done  # far 3.2 < trigram
    flat = eq.verdict(_write(tmp_path, [_row(c, s, far_gain=0.0) for s in (0, 1, 2)
                                        for c in HEADS]))
    assert "not testable here" in flat  # no gain beyond position 64: cannot show it
    # a verdict while the seeds beyond three are still running says so, and what it rests on
    more = eq.verdict(_write(tmp_path, [_row(c, s) for s in (0, 1, 2) for c in HEADS]
                             + [_row("(8, 8)", 3, grid=eq._grid()["name"])]))
    assert more.startswith("13 of 20 runs have finished (every configuration has 3 seeds")
    assert "Paired within seeds (3)" in more  # seed 3 has no (1, 1), (8, 1) to pair with
    runs = eq.read()  # the committed runs
    real, h, st = eq.verdict(runs), eq.head_comparison(runs), eq.status(runs)
    assert real.startswith(f"All {st['done']} runs have finished" if st["done"] >= st["planned"]
                           else f"{st['done']} of {st['planned']} runs have finished")
    assert format_p(h["difference"]["p"]) in real
    # the contrast was read at 3, 5 and 7 seeds: judged at 0.05 / 3, with a 98.3% interval
    d = h["difference"]
    assert eq.LOOKS == 3 and d["alpha"] == pytest.approx(0.05 / 3)
    half = stats.t.ppf(1 - 0.05 / 6, d["n"] - 1) * d["sd"] / np.sqrt(d["n"])
    assert (d["lo"], d["hi"]) == pytest.approx((d["mean"] - half, d["mean"] + half))
    assert ("within seed noise" in real) == (d["p"] >= 0.05 / 3) and "98.3% interval" in real
    assert eq.direction(h["difference"]) in real
    assert ("not testable here" in real) == (not (h["uses_context"] and h["beats_trigram"]))
    # beating the trigram means by more than seed noise: a tie is no evidence of long context
    margin = h["far_trigram"] - h["far_best"]
    assert h["beats_trigram"] == bool(margin > h["trigram_noise"])
    assert h["trigram_noise"] > 0 and set(h["one_head_penalty"]) == {"near", "mid", "far"}
    assert ("only ties" in eq.trigram_sentence(h)) == (not h["beats_trigram"])
    assert eq.short_range({"near": 0.0, "mid": 0.08, "far": 0.095})
    assert not eq.short_range({"near": 0.0, "mid": 0.02, "far": 0.095})


def test_the_paired_contrast_is_not_two_independent_means():
    """query - kv per seed is (1, 1) - 2 (8, 1) + (8, 8): its spread is that of the
    contrast, smaller or larger than hypot of the two se's; by hand on the committed runs."""
    runs = eq.read()
    w = eq.main_runs(runs).pivot_table(index="seed", columns="config",
                                       values="val_loss_full_nats")
    d = (w["(1, 1)"] - 2 * w["(8, 1)"] + w["(8, 8)"]).dropna().to_numpy()  # seeds with all 3
    g = eq.head_gains(runs)["difference"]
    assert g["mean"] == pytest.approx(d.mean()) and g["n"] == len(d)
    assert g["se"] == pytest.approx(d.std(ddof=1) / np.sqrt(len(d)))
    from scipy import stats
    assert g["p"] == pytest.approx(2 * stats.t.sf(abs(d.mean() / g["se"]), len(d) - 1))


def test_a_contrast_near_its_threshold_is_called_narrow():
    d = eq.paired_t(np.array([0.0, 0.1, 0.2]), eq.level(2))
    assert d["alpha"] == 0.025
    for p, words in [(0.001, "beyond seed noise"), (0.02, "beyond seed noise, narrowly"),
                     (0.03, "but within seed noise, narrowly"), (0.2, "but within seed noise")]:
        assert eq.direction({**d, "p": p}).endswith(words)
    assert eq.threshold(3) == "p < 0.05 / 3 = 0.0167, with 98.3% intervals"
    assert eq.threshold(1) == "p < 0.05, with 95% intervals"


def test_partial_rows_say_how_many_seeds(tmp_path):
    runs = _write(tmp_path, [_row(c, 0) for c in HEADS] + [_row("(8, 8)", 1)])
    st = eq.status(runs)
    assert st["seeds"]["(8, 8)"] == 2 and st["min_seeds"] == 1 and not st["ready"]
    p = eq.paired(runs)
    assert (p.n_seeds == 1).all() and p.lo.isna().all()


def test_lr_check_and_context_use(tmp_path):
    rows = [_row(c, s) for s in (0, 1) for c in HEADS]
    base = eq.base_lr()
    rows += [_row(c, 0, lr) for c in ("(8, 8)", "(1, 1)") for lr in (base / 2, base * 2)]
    runs = _write(tmp_path, rows)
    lr = eq.lr_check(runs)
    assert list(lr.config) == ["(8, 8)", "(1, 1)"]  # one row per configuration
    assert [c for c in lr if c.startswith("loss at ")] == [
        f"loss at {r:g}" for r in (base / 2, base, base * 2)]  # a column per rate, ascending
    assert (lr.best_lr == base).all() and (lr.gap == 0).all() and lr.within_noise.all()
    assert (lr.seeds == "0").all()  # seed 1 ran the shared rate only
    from gqa_lib.book.pages import lr_check_table

    t = lr_check_table(lr, "; blank: not run.")  # one set of seeds: named in the caption
    assert t.caption == "Seed 0's validation loss (nats) at each learning rate; blank: not run."
    assert "seeds" not in t.frame.columns
    two = lr.assign(seeds=["0, 1", "0"])  # seeds that differ: a column, and a caption saying so
    t = lr_check_table(two, ".")
    assert t.caption.endswith("the mean of the seeds listed.") and "seeds" in t.frame.columns
    t = lr_check_table(lr.assign(seeds="0, 1, 2"), ".")
    assert t.caption == "Validation loss (nats) at each learning rate, the mean of seeds 0, 1 and 2."
    use = eq.context_use(runs).set_index("config")
    assert use.loc["(8, 8)", "near"] == pytest.approx(3.5)  # the bin of positions 2-3
    assert use.loc["(8, 8)", "far"] == pytest.approx(3.2)
    assert use.loc["(8, 8)", "gain"] == pytest.approx(0.3)
    assert use.loc["(8, 8)", "vs_trigram"] < 0
    src = eq.by_source(runs).set_index("source")
    assert src.loc["TDavid", "(8, 8)"] == pytest.approx(3.2 + 0.1 - 0.04)  # mean of 2 seeds


def test_both_grids_are_read_together_and_a_damaged_file_is_an_error(tmp_path, monkeypatch):
    """The default read pools the grids' CSVs (cpu-eq-v2 does not rerun the two seed-0
    runs cpu-eq-v1 made at its rate); a file that exists but cannot be read is an error."""
    from gqa_lib.errors import GQAError

    v1, v2 = tmp_path / "cpu-eq-v1.toml", tmp_path / "cpu-eq-v2.toml"
    for g in (v1, v2):
        g.write_text((eq.DATA_DIR / "sweeps" / g.name).read_text())
    pd.DataFrame([_row("(8, 8)", 0, grid="cpu-eq-v1"), _row("(1, 1)", 0, grid="cpu-eq-v1"),
                  _row("(8, 8)", 0, 2.2e-2, grid="cpu-eq-v1")],
                 columns=COLUMNS).to_csv(v1.with_suffix(".csv"), index=False)
    pd.DataFrame([_row("(8, 2)", 0), _row("(8, 1)", 0)],
                 columns=COLUMNS).to_csv(v2.with_suffix(".csv"), index=False)
    monkeypatch.setattr(eq, "GRIDS", (v1, v2))
    monkeypatch.setattr(eq, "EQ_GRID", v2)
    runs = eq.read()
    assert sorted(runs.config) == ["(1, 1)", "(8, 1)", "(8, 2)", "(8, 8)", "(8, 8)"]
    st = eq.status(runs)
    assert st["seeds"] == {c: 1 for c in HEADS}  # the 2.2e-2 run is a check
    assert st["planned"] == 12 + 3  # the latest grid's runs and what the closed one ran
    v2.with_suffix(".csv").write_text("run_id,status\n")
    with pytest.raises(GQAError, match="missing column"):
        eq.read()


# the longer runs (cpu-eq-long-v1): each beside its configuration and seed at 20 tokens per
# parameter, judged on the configuration chosen before them, against one run's seed noise
FAR_JITTER = {0: 0.0, 1: 0.012, 2: -0.012}  # seed noise of one run's loss beyond FAR


def _far_gain(cfg, below):
    """_row's far_gain that puts ``cfg``'s loss beyond FAR at the trigram's + off - below."""
    return 3.5 - lt.trigram_loss() - 2 * HEADS[cfg][2] + below


def _ref(tmp_path, far_gain=0.0):
    """Three seeds of the four configurations, each ``off`` (HEADS) above the trigram's
    loss beyond FAR, less ``far_gain`` and the seed's jitter: (8, 8) is the best there."""
    rows = [_row(c, s, far_gain=_far_gain(c, far_gain + FAR_JITTER[s])) for s in (0, 1, 2)
            for c in HEADS]
    return _write(tmp_path, rows)


def _long(tmp_path, gains: dict):
    """Longer runs of seed 0, each ``gains[config]`` nats further below the trigram beyond
    FAR than its 20-tokens-per-parameter run (off included), whole loss 0.05 lower."""
    rows = []
    for c, g in gains.items():
        r = _row(c, 0, far_gain=_far_gain(c, g))
        r["val_loss_full_nats"] -= 0.05
        rows.append(r)
    p = tmp_path / "long.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(p, index=False)
    return lt.read(p)


def test_longer_runs_before_any_has_finished(tmp_path):
    none = lt.read(tmp_path / "missing.csv")
    assert lt.compare(none, eq.read()).empty and lt.head_gains(lt.compare(none, eq.read())) == {}
    assert lt.curve(none, "(8, 8)", "x").empty
    assert lt.verdict(none, eq.read()) == (
        f"None of the {lt.planned()} longer runs has finished yet; until they have, this "
        "section has nothing to report.")


def test_the_longer_grid_trains_the_equal_size_runs_longer():
    """Same shape, widths, rate and data as the equal-size grid, 4x the tokens: the run ids
    (which carry the widths) are the equal-size grid's but for the seed."""
    import re

    from gqa_lib.train import load_grid
    _, long_specs = load_grid(lt.LONG_GRID)
    _, eq_specs = load_grid(eq.EQ_GRID)

    def unseeded(specs):
        return {re.sub(r"-s\d+", "-s", s.run_id) for s in specs}

    assert unseeded(long_specs) <= unseeded(eq_specs) and len(long_specs) == lt.planned() == 18
    # every longer run has its pair at 20 tokens per parameter: the same id in some grid
    ids = {s.run_id for g in eq.GRIDS for s in load_grid(g)[1]}
    assert {s.run_id for s in long_specs} <= ids
    assert lt.multiple() == 4.0
    assert {s.train.lr for s in long_specs} == {eq.base_lr()}


def test_the_longer_verdict_reads_the_run_chosen_before(tmp_path):
    ref = _ref(tmp_path)
    sd = lt.far_seed_sd(ref)
    assert sd == pytest.approx(0.012)  # jitter 0, +0.012, -0.012 in every configuration
    # (8, 8) ties the trigram though (8, 1) beats it: the judged run is (8, 8), the best
    # beyond FAR at 20 tokens per parameter, not the best of the longer runs
    tie = lt.verdict(_long(tmp_path, {"(8, 8)": 0.01, "(8, 1)": 0.2, "(1, 1)": 0.0}), ref)
    assert "(8, 8), the best there at 20 tokens per parameter" in tie
    assert "still ties the trigram" in tie and "4 times the training does not" in tie
    beats = lt.verdict(_long(tmp_path, {"(8, 8)": 2.5 * sd}), ref)
    assert "now beats the trigram" in beats and beats.startswith(f"1 of {lt.planned()} longer runs has")
    trails = lt.verdict(_long(tmp_path, {"(8, 8)": -2.5 * sd}), ref)
    assert "now trails the trigram" in trails  # it tied at 20 tokens per parameter
    waiting = lt.verdict(_long(tmp_path, {"(1, 1)": 0.3}), ref)
    assert waiting.endswith("(8, 8), the run the trigram test reads, has not finished yet.")
    assert lt.takeaway(_long(tmp_path, {"(1, 1)": 0.3}), ref) == (
        f"Trained 4 times as long (1 of {lt.planned()} runs finished), (8, 8) has not "
        "finished yet.")
    assert lt.takeaway(_long(tmp_path, {"(8, 8)": 0.0}), ref).startswith(
        "Trained 4 times as long (one seed), (8, 8) beyond position 64 still ties the trigram")


def test_the_longer_comparison_pairs_config_and_seed(tmp_path):
    ref = _ref(tmp_path)
    long = _long(tmp_path, {"(1, 1)": 0.0, "(8, 8)": 0.1, "(8, 1)": 0.05})
    cmp = lt.compare(long, ref).set_index("config")
    assert list(cmp.index) == ["(8, 8)", "(8, 1)", "(1, 1)"]  # the equal-size order
    assert cmp.change.to_numpy() == pytest.approx([-0.05] * 3)
    assert cmp.loc["(8, 8)", "far_long"] - cmp.loc["(8, 8)", "far_short"] == pytest.approx(-0.1)
    assert cmp.loc["(8, 8)", "vs_trigram"] == pytest.approx(-0.1)
    g = lt.head_gains(lt.compare(long, ref))
    assert g["query"]["loss_long"] == pytest.approx(0.10)  # HEADS' offsets: 0.15 - 0.05
    assert g["kv"]["far_short"] == pytest.approx(0.05)
    assert g["kv"]["far_long"] == pytest.approx(0.05 + 0.1 - 0.05)  # (8, 8) gained more
    text = lt.verdict(long, ref)
    assert text.startswith(f"3 of {lt.planned()} longer runs have finished.")
    assert "KV heads 0.050 (0.050); beyond position 64, 0.150 and 0.100 (0.100 and 0.050)" in text
    assert set(lt.curve(long, "(8, 8)", "(8, 8), 4x").config) == {"(8, 8), 4x"}


def test_the_longer_test_averages_the_seeds_of_the_judged_run(tmp_path):
    """Two seeds of (8, 8): the test reads their mean against the noise of a mean of two
    runs (sd / sqrt 2); the figure's curve is their mean; head gains use the seeds where
    all three configurations ran (seed 0)."""
    ref = _ref(tmp_path)
    sd = lt.far_seed_sd(ref)
    rows = []
    for c, s, g in (("(8, 8)", 0, 2.2 * sd), ("(8, 8)", 1, 1.0 * sd), ("(8, 1)", 0, 0.0),
                    ("(1, 1)", 0, 0.0)):
        rows.append(_row(c, s, far_gain=_far_gain(c, g)))
    p = tmp_path / "long2.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(p, index=False)
    long = lt.read(p)
    j = lt.judge(long, ref)
    assert j["n"] == 2 and j["sd"] == pytest.approx(sd / np.sqrt(2))
    assert j["far_long"] == pytest.approx(lt.trigram_loss() - 1.6 * sd)
    assert j["state"] == "beats"  # 1.6 sd of one run (a tie) is 2.26 sd of a mean of two
    assert lt.takeaway(long, ref).startswith("Trained 4 times as long (2 seeds), (8, 8)")
    assert "a mean of 2 runs' seed noise there is" in lt.verdict(long, ref)
    assert lt.head_gains(lt.compare(long, ref))["kv"]["n_seeds"] == 1
    cur = lt.curve(long, "(8, 8)", "x")
    assert (cur.n_seeds == 2).all() and len(cur) == 10


def test_longer_runs_that_beat_the_trigram_take_over_the_head_contrast(tmp_path):
    """Equal-size runs tie the trigram, the longer runs beat it: the page says the results
    page judges the claim on them; before every planned seed has run it shows the contrast
    so far, not judged; with all six seeds it judges it at 0.05 / 3 (the contrast was read
    at three and at five seeds before seeds were added), query gain 0.10, KV 0.05 (HEADS)."""
    ref = _ref(tmp_path)
    seeds = range(lt.planned_seeds())
    assert list(seeds) == [0, 1, 2, 3, 4, 5] and lt.LOOKS == 3
    rows = [_row(c, s, far_gain=_far_gain(c, 0.2)) for s in seeds
            for c in ("(8, 8)", "(8, 1)", "(1, 1)")]
    for r in rows:
        r["val_loss_full_nats"] += 0.004 * ((r["seed"] * 7 + r["n_head"]) % 3 - 1)
    p = tmp_path / "long3.csv"

    def with_seeds(n):
        pd.DataFrame(rows[:3 * n], columns=COLUMNS).to_csv(p, index=False)
        return lt.read(p)

    one = lt.verdict(with_seeds(1), ref)
    assert "now beats the trigram" in one
    assert "once each of (8, 8), (8, 1) and (1, 1) has its 6 seeds (1 so far). In this seed" in one
    three = lt.verdict(with_seeds(3), ref)
    assert lt.status(with_seeds(3))["min_seeds"] == 3 and not lt.status(with_seeds(3))["ready"]
    assert "has its 6 seeds (3 so far). So far, paired within 3 seeds, 1 → 8 query heads" in three
    assert three.endswith("not judged yet (it will be at p < 0.0167, since this contrast was "
                          "read at 3 and 5 seeds before seeds were added: 3 looks).")
    assert "the paper's direction" not in three.split("So far")[1]  # shown, not judged
    assert lt.takeaway(with_seeds(3), ref).endswith(
        f"their head contrast is judged once all {lt.planned()} runs have finished (9 so far).")
    six = lt.verdict(with_seeds(6), ref)
    c = lt.head_contrast(with_seeds(6))
    d = c["difference"]
    assert d["n"] == 6 and c["query"]["mean"] == pytest.approx(0.10, abs=0.01)
    half = stats.t.ppf(1 - 0.05 / 3 / 2, 5) * d["sd"] / np.sqrt(6)  # a 98.3% interval
    assert (d["lo"], d["hi"]) == pytest.approx((d["mean"] - half, d["mean"] + half))
    assert "Paired within 6 seeds, 1 → 8 query heads lower the loss by" in six
    assert "98.3% interval" in six and "judged at p < 0.0167" in six
    assert six.endswith("These models beat the trigram, so the results page judges the "
                         "claim on them.")
    # what the longer training moved, paired within the same seeds at 20 tokens per parameter
    # (the reference runs have seeds 0-2 only: three pairs)
    cmp = lt.compare(with_seeds(6), ref).set_index(["seed", "config"])
    gain = {(s, t): {"q": cmp.loc[(s, "(1, 1)"), t] - cmp.loc[(s, "(8, 1)"), t],
                     "kv": cmp.loc[(s, "(8, 1)"), t] - cmp.loc[(s, "(8, 8)"), t]}
            for s in (0, 1, 2) for t in ("loss_short", "loss_long")}
    moved = [gain[(s, "loss_long")]["q"] - gain[(s, "loss_long")]["kv"]
             - gain[(s, "loss_short")]["q"] + gain[(s, "loss_short")]["kv"] for s in (0, 1, 2)]
    ch = lt.training_change(lt.compare(with_seeds(6), ref))
    assert ch["n"] == 3 and ch["mean"] == pytest.approx(np.mean(moved))
    assert ch["kv"] == pytest.approx(np.mean([gain[(s, "loss_long")]["kv"]
                                              - gain[(s, "loss_short")]["kv"] for s in (0, 1, 2)]))
    assert (f"Against the same 3 seeds at 20 tokens per parameter, 4 times the training moved "
            f"what query heads buy by {ch['query']:+.3f} nats") in six
    assert "Against the same" not in three  # shown with the judged contrast only
    # the page's takeaway gives the contrast once it decides the claim, not before
    assert lt.takeaway(with_seeds(6), ref).endswith(
        f"; paired within 6 seeds, the query heads' gain minus the KV heads' is "
        f"{d['mean']:+.3f} nats ({eq.interval(d)}): {eq.direction(d)}.")
    assert "paired within" not in lt.takeaway(with_seeds(2), ref)


def test_the_rate_check_at_the_longer_length(tmp_path):
    """cpu-eq-long-lr-v1: seed 0 of (8, 8) and (1, 1), then (8, 1), then seed 1 of all three,
    at half the rate, read beside the longer runs at the shared rate; progress until (8, 8)
    and (1, 1) have run; the shifts of the gap (1, 1) - (8, 8) and of the difference of the
    gains, and their noise, by hand; with two seeds, the mean of the paired changes."""
    grid = __import__("tomllib").loads(lt.LR_GRID.read_text())
    assert grid["train"] == {**lt._grid()["train"]}  # only the rate differs, per block
    assert [b["lrs"] for b in grid["block"]] == [[eq.base_lr() / 2]] * 3
    assert [b["heads"] for b in grid["block"]] == [[[8, 8], [1, 1]], [[8, 1]], [[8, 8], [8, 1], [1, 1]]]
    assert [b["seeds"] for b in grid["block"]] == [[0], [0], [1]]
    assert lt._grid()["train"]["lr"] == eq.base_lr() and lt.planned(lt.LR_GRID) == 6
    seeds = range(5)
    rows = [_row(c, s) for s in seeds for c in ("(8, 8)", "(8, 1)", "(1, 1)")]
    for r in rows:  # a seed jitter, so that the gap between seeds has a spread
        r["val_loss_full_nats"] += 0.004 * ((r["seed"] * 7 + r["n_head"]) % 3 - 1)
    p = tmp_path / "long.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(p, index=False)
    long = lt.read(p)
    none = lt.read_lr(tmp_path / "missing.csv")
    assert lt.lr_sentence(long, none) == (
        "0 of its 6 runs have finished (cpu-eq-long-lr-v1); until (8, 8) and (1, 1) have, the "
        "shared rate is unchecked at this length.")
    assert np.isnan(lt.lr_gap_shift(long, none)["shift"])
    half = eq.base_lr() / 2
    check = [_row("(8, 8)", 0, lr=half), _row("(1, 1)", 0, lr=half)]
    check[0]["val_loss_full_nats"] -= 0.06  # (8, 8) gains 0.05 from the lower rate (+0.01 in _row)
    q = tmp_path / "lr.csv"
    pd.DataFrame(check[:1], columns=COLUMNS).to_csv(q, index=False)
    assert lt.lr_sentence(long, lt.read_lr(q)).startswith("1 of its 6 runs has finished")
    pd.DataFrame(check, columns=COLUMNS).to_csv(q, index=False)
    lr_runs = lt.read_lr(q)
    table = lt.lr_check(long, lr_runs).set_index("config")
    assert table.loc["(8, 8)", "best_lr"] == half and table.loc["(1, 1)", "best_lr"] == eq.base_lr()
    w = long.pivot_table(index="seed", columns="config", values="val_loss_full_nats")
    gap = w["(1, 1)"] - w["(8, 8)"]
    g = lt.lr_gap_shift(long, lr_runs)
    assert g["noise"] == pytest.approx(2 * np.sqrt(2) * gap.std(ddof=1))
    at_half = check[1]["val_loss_full_nats"] - check[0]["val_loss_full_nats"]
    assert g["shift"] == pytest.approx(at_half - gap[0])
    text = lt.lr_sentence(long, lr_runs)
    sd = eq.seed_sd(long)  # one run's seed noise: the seeds shift every loss (SEED_SHIFT)
    assert table.loc["(8, 8)", "gap"] == pytest.approx(0.054) and 0.054 < 2 * np.sqrt(2) * sd
    assert "The shared rate is within seed noise of the best rate tried for both." in text
    assert f"moves by {g['shift']:+.3f} nats at the lower rate" in text
    assert "their difference, which needs (8, 1) at the lower rate too, is not checked yet " \
        "(2 of the 6 runs of cpu-eq-long-lr-v1 have finished)" in text
    assert text.endswith("the lower rate moves the gap beyond noise, so the head contrast "
                         "depends on the rate.")
    assert lt.lr_confounded({"gap": g, "difference": lt.lr_difference_shift(long, lr_runs)}) \
        == ["gap"]
    # (8, 1) too, gaining 0.02 from the lower rate: the gap sum moved, the difference
    # (1, 1) - 2 (8, 1) + (8, 8) barely (+0.01 + 2 x 0.02 - 0.05 = 0, plus seed 0's jitter)
    check.append(_row("(8, 1)", 0, lr=half))
    check[-1]["val_loss_full_nats"] -= 0.03
    pd.DataFrame(check, columns=COLUMNS).to_csv(q, index=False)
    lr3 = lt.read_lr(q)
    d = lt.lr_difference_shift(long, lr3)
    diff = w["(1, 1)"] - 2 * w["(8, 1)"] + w["(8, 8)"]
    loss = {r["n_head"] * 10 + r["n_kv_head"]: r["val_loss_full_nats"] for r in check}
    assert d["shift"] == pytest.approx(loss[11] - 2 * loss[81] + loss[88] - diff[0])
    assert d["noise"] == pytest.approx(2 * np.sqrt(2) * diff.std(ddof=1))
    text = lt.lr_sentence(long, lr3)
    assert "tried for all three" in text and "(8, 1) 3." in text
    assert f"and their difference, what query heads buy over KV heads, by {d['shift']:+.3f}" in text
    assert abs(d["shift"]) < d["noise"] < abs(g["shift"])
    assert lt.lr_confounded({"gap": g, "difference": d}) == ["gap"]
    assert lt._rate_clause(long, lr_runs) == ""  # the takeaway waits for (8, 1)
    assert lt._rate_clause(long, lr3) == (
        f". At half the learning rate (seed 0) it moves by {d['shift']:+.3f} (noise "
        f"{d['noise']:.3f}), within noise, but the gap between (1, 1) and (8, 8) moves beyond "
        "its own: the contrast depends on the rate")
    same = [_row(c, 0, lr=half) for c in lt.HEADS]  # each 0.01 above its seed-0 reference
    for r in same:
        r["val_loss_full_nats"] = w.loc[0, f"({r['n_head']}, {r['n_kv_head']})"] + 0.01
    pd.DataFrame(same, columns=COLUMNS).to_csv(q, index=False)
    assert lt._rate_clause(long, lt.read_lr(q)).endswith(
        "moves by +0.000 (noise " + f"{d['noise']:.3f}): the rate favours neither configuration "
        "beyond noise")
    # seed 1 at the lower rate too: each reading is the mean of the two paired changes, its
    # noise that of a mean of two (2 sqrt(2 / 2) instead of 2 sqrt(2) times the seed sd)
    delta = {"(8, 8)": -0.02, "(8, 1)": 0.0, "(1, 1)": 0.01}
    seed1 = [_row(c, 1, lr=half) for c in lt.HEADS]
    for r, c in zip(seed1, lt.HEADS):
        r["val_loss_full_nats"] = w.loc[1, c] + delta[c]
    pd.DataFrame(check + seed1[:1], columns=COLUMNS).to_csv(q, index=False)
    part = lt.read_lr(q)  # (8, 8) has seed 1, the others not yet: seed 0 alone decides
    assert lt.lr_gap_shift(long, part)["n"] == 1
    assert lt.lr_check(long, part).set_index("config").seeds.to_dict() == {
        "(8, 8)": "0, 1", "(8, 1)": "0", "(1, 1)": "0"}
    assert ("the seeds run at both rates score, on average" in lt.lr_sentence(long, part)
            and "(seeds 0 and 1); (8, 1)" in lt.lr_sentence(long, part))
    pd.DataFrame(check + seed1, columns=COLUMNS).to_csv(q, index=False)
    lr6 = lt.read_lr(q)
    g2, d2 = lt.lr_gap_shift(long, lr6), lt.lr_difference_shift(long, lr6)
    assert g2["n"] == d2["n"] == 2 and g2["changes"][1] == pytest.approx(0.03)
    assert g2["shift"] == pytest.approx((g["shift"] + 0.03) / 2)
    assert d2["shift"] == pytest.approx((d["shift"] - 0.01) / 2)
    assert g2["noise"] == pytest.approx(2 * gap.std(ddof=1))
    assert d2["noise"] == pytest.approx(2 * diff.std(ddof=1))
    # the noise measured on the pairs: each configuration's change at seeds 0 and 1, its
    # variance between the two seeds pooled, times the sum of the weights' squares, over n = 2
    at0 = {f"({r['n_head']}, {r['n_kv_head']})": r["val_loss_full_nats"] for r in check}
    var = {c: np.var([at0[c] - w.loc[0, c], delta[c]], ddof=1) for c in lt.HEADS}
    assert g2["dof_paired"] == 2 and d2["dof_paired"] == 3
    assert g2["noise_paired"] == pytest.approx(
        2 * np.sqrt((var["(1, 1)"] + var["(8, 8)"]) / 2 * 2 / 2))
    assert d2["noise_paired"] == pytest.approx(2 * np.sqrt(np.mean(list(var.values())) * 6 / 2))
    table = lt.lr_check(long, lr6).set_index("config")
    assert (table.seeds == "0, 1").all()
    assert table.loc["(8, 8)", f"loss at {half:g}"] == pytest.approx(
        (check[0]["val_loss_full_nats"] + seed1[0]["val_loss_full_nats"]) / 2)
    text2 = lt.lr_sentence(long, lr6)
    assert text2.startswith("At 0.00275, half the shared rate, seeds 0 and 1 score, on average")
    assert (f"moves by {g2['shift']:+.3f} nats at the lower rate (seed 0 {g['shift']:+.3f}, "
            f"seed 1 +0.030; noise of their mean about {g2['noise']:.3f}, or "
            f"{g2['noise_paired']:.3f} measured on these pairs, 2 degrees of freedom: each of "
            "the 2 configurations' changes compared between the 2 seeds)") in text2
    assert "Against the noise measured on the pairs" not in text2  # the gap is confounded
    # both seeds move the gap by +0.010, within the rule's noise but beyond the pairs' (which
    # do not vary): a caveat, not a confound; the difference (0 on average) gets none
    same = {"(8, 8)": (0.0, 0.0), "(8, 1)": (0.002, 0.008), "(1, 1)": (0.01, 0.01)}
    rows2 = [_row(c, s, lr=half) for s in (0, 1) for c in lt.HEADS]
    for r in rows2:
        c = f"({r['n_head']}, {r['n_kv_head']})"
        r["val_loss_full_nats"] = w.loc[r["seed"], c] + same[c][r["seed"]]
    pd.DataFrame(rows2, columns=COLUMNS).to_csv(q, index=False)
    lr_same = lt.read_lr(q)
    g3, d3 = lt.lr_gap_shift(long, lr_same), lt.lr_difference_shift(long, lr_same)
    assert g3["shift"] == pytest.approx(0.01) and g3["noise_paired"] < 0.01 < g3["noise"]
    assert abs(d3["shift"]) < 1e-9 < d3["noise_paired"]
    assert not lt.lr_confounded({"gap": g3, "difference": d3})
    assert lt.lr_sentence(long, lr_same).endswith(
        "the shared rate favours neither configuration beyond noise. Against the noise measured "
        "on the pairs, the gap moves beyond it; with so few degrees of freedom that measure is "
        "itself uncertain, and the rule, set before these runs, reads the spread between seeds.")
    assert lt._rate_clause(long, lr6).startswith(
        f". At half the learning rate (seeds 0 and 1) it moves by {d2['shift']:+.3f}")
    # the sentence with all three: the gap moved beyond noise, so the contrast is confounded
    assert text.endswith("the lower rate moves the gap beyond noise, so the head contrast "
                         "depends on the rate.")
    # seeds that agree (jitter only): the same 0.05 nats is beyond one run's seed noise
    for r in rows:
        r["val_loss_full_nats"] -= SEED_SHIFT[r["seed"]]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(p, index=False)
    assert ("The shared rate is beyond seed noise from the best rate tried for (8, 8)."
            in lt.lr_sentence(lt.read(p), lr_runs))


def test_the_committed_rate_check_runs_differ_from_their_reference_only_in_the_rate():
    """Each committed cpu-eq-long-lr-v1 row is the cpu-eq-long-v1 run of its configuration
    and seed at half the rate: same widths, parameters, tokens, steps and batch; so the rate
    check compares like with like."""
    lr_runs, long = lt.read_lr(), lt.read()
    same = ["n_layer", "d_model", "n_head", "n_kv_head", "d_ff", "params_non_embedding",
            "tokens", "steps", "batch_size", "context"]
    ref = long.set_index(["config", "seed"])
    for _, r in lr_runs.iterrows():
        assert r.lr == pytest.approx(eq.base_lr() / 2)
        assert r[same].tolist() == ref.loc[(r.config, r.seed), same].tolist(), r.config
    assert set(lr_runs.config) <= set(lt.HEADS) and len(lr_runs) <= lt.planned(lt.LR_GRID)


def test_seeds_in_words_from_a_label_or_the_seeds():
    assert eq.seeds_label([1, 0]) == "0, 1"
    assert eq.seeds_words("0") == eq.seeds_words([0]) == "seed 0"
    assert eq.seeds_words("0, 1") == eq.seeds_words({1: -0.01, 0: 0.02}) == "seeds 0 and 1"
    assert eq.seeds_words(range(3)) == "seeds 0, 1 and 2"


def test_the_earlier_looks_at_the_longer_contrast_read_as_recorded():
    """The looks that led to more seeds (longer_training.READ_AT; the grid file, data/README
    and the training page quote them) recomputed from the committed runs: at 3 seeds +0.021
    nats, p = 0.15 (95% interval -0.018 to +0.059); at 5, a second look, +0.032, p = 0.024
    against 0.025; each look's level counts the looks made until then."""
    long = lt.read()
    assert lt.READ_AT == (3, 5) and lt.LOOKS == 3 and lt.planned_seeds() == 6
    at3, at5 = (eq.contrast(eq.seed_gains(long[long.seed < n]), k + 1)["difference"]
                for k, n in enumerate(lt.READ_AT))
    assert at3["n"] == 3 and round(at3["mean"], 3) == 0.021 and round(at3["p"], 2) == 0.15
    assert (round(at3["lo"], 3), round(at3["hi"], 3)) == (-0.018, 0.059)
    assert at5["n"] == 5 and round(at5["mean"], 3) == 0.032 and round(at5["p"], 3) == 0.024
    assert at5["alpha"] == 0.025 and at5["p"] < at5["alpha"]
