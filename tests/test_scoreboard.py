"""The "Results at a glance" scoreboard: computed from the library, one headline, links that
land on a section, and pending rows that say what they wait for."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from docutils.nodes import make_id

from gqa_lib.book.widgets import ExplorerState, explore
from gqa_lib.evidence import headline, joint_model, table4_comparison, table4_summary
from gqa_lib.evidence.scoreboard import COLUMNS, RULES, VERDICTS, scoreboard

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def board():
    return scoreboard()


def test_headline_rows_show_the_spread_of_the_refits_and_where_the_paper_lies(board):
    """The memory, FLOPs and equal-Z rows carry the bootstrap spread of our fits (the
    digitised losses' noise): its central 95% brackets our point value, and the why column
    counts the refits on the far side of the paper's figure (among_refits)."""
    from gqa_lib.evidence.paper import among_refits

    refits = board.attrs["refits"]
    assert len(refits) == 100
    for i, key in ((0, "memory_pct"), (1, "flops_pct:fig2"), (2, "equal_z_loss_gain")):
        row, basis = board.iloc[i], board.attrs["basis"][i]
        lo, hi = basis["refits"]
        assert lo < basis["ours"] < hi, row.claim
        assert (lo, hi) == pytest.approx(tuple(np.percentile(refits[key], [2.5, 97.5])))
        count = among_refits(basis["paper"], refits[key])
        assert count.split()[0] == ("below" if basis["paper"] < np.median(refits[key]) else "above")
        lead = "by Fig. 2's count, " if i == 1 else ""
        assert f"{lead}the paper's figure is {count} of our fits" in row.why, row.why
        if i != 1:
            fmt = "{:.1f}%" if i == 0 else "{:.3f}"
            assert f"(95% of the refits: {fmt.format(lo)} to {fmt.format(hi)})" in row.ours


def test_a_figure_among_refits_is_a_count():
    from gqa_lib.errors import GQAError
    from gqa_lib.evidence.paper import among_refits

    v = [1.0, 2.0, 3.0, 4.0, np.nan]
    assert among_refits(0.5, v) == "below all 4 refits"
    assert among_refits(1.5, v) == "below 3 of the 4 refits"
    assert among_refits(3.0, v) == "above 2 of the 4 refits"  # a tie counts on neither side
    assert among_refits(9.0, v) == "above all 4 refits"
    with pytest.raises(GQAError, match="no finite refit values"):
        among_refits(1.0, [np.nan])


def test_headline_intervals_refuse_bad_input_and_repeat_with_a_seed():
    from gqa_lib.errors import GQAError
    from gqa_lib.evidence.paper import headline_intervals

    model = joint_model()
    for bad in (1, 0, 2.5, True, "10"):
        with pytest.raises(GQAError, match="n_boot must be an integer of at least 2"):
            headline_intervals(model, n_boot=bad)
    with pytest.raises(GQAError, match="level must be a number in"):
        headline_intervals(model, n_boot=3, level=95)
    with pytest.raises(GQAError, match="level must be"):
        headline_intervals(model, n_boot=3, level="0.9")
    a, b = (headline_intervals(model, n_boot=4, seed=3) for _ in range(2))
    ra, rb = a.pop("refits"), b.pop("refits")
    assert a == b and a["n_boot"] + a["n_failed"] == 4
    assert ra.equals(rb) and len(ra) == a["n_boot"]
    assert a["memory_pct"] == pytest.approx(tuple(np.percentile(ra.memory_pct, [2.5, 97.5])))


def test_every_row_has_a_verdict_and_a_reason(board):
    assert tuple(board.columns) == COLUMNS and len(board) >= 8
    for r in board.itertuples():
        assert r.verdict in VERDICTS or r.verdict.startswith("pending: "), r.claim
        assert r.why.strip() and r.ours.strip() and r.paper.strip(), r.claim
        assert "nan" not in f"{r.paper} {r.ours} {r.why}".lower().split()


def test_the_headline_is_the_one_the_explorers_show(board):
    h = headline(joint_model(), baseline="fit")
    res = explore(ExplorerState())  # the explorers' default: T = 128K, target 2.615
    assert res.savings["memory_pct"] == pytest.approx(h["memory_pct"])
    assert res.savings["flops_pct"] == pytest.approx(h["flops_pct"]["fig2"])
    mem = board.iloc[0]
    assert mem.ours.startswith(f"{h['memory_pct']:.1f}% less memory (95% of the refits: ")
    assert mem.paper == "50.8% less memory"  # the sign as a word: a cost would read "more"
    assert board.iloc[1].ours.startswith(f"{h['flops_pct']['fig2']:.1f}% fewer FLOPs (")


def test_table4_row_is_computed(board):
    s = table4_summary(table4_comparison(joint_model()))
    row = board[board.claim.str.startswith("Table 4")].iloc[0]
    assert row.ours.startswith(f"{s['matches']} of {s['cells']} match")
    assert row.verdict == ("reproduced" if s["matches"] == s["cells"] else "partly")


def test_the_long_context_row_counts_the_refits_where_the_trend_holds(board, monkeypatch):
    """The trend on the paper's data comes with the share of bootstrap refits in which it
    holds at every target, judged by the rule the fit itself is judged by: a refit grid
    whose heads rise with context is not counted."""
    from gqa_lib.evidence import scoreboard as sb

    row = board[board.claim == "Longer context: fewer heads and a bigger model"].iloc[0]
    held, n = sb._trend_refits(joint_model(), [2.6, 2.8], 10)
    assert n == 10 and 0 <= held <= n
    assert re.search(r"and at all of them in \d+ of 100 refits", row.ours)
    assert "not the extrapolation to unmeasured heads on which 31 of the 40 cells" in row.why
    rising = pd.DataFrame({"target_loss": [2.6, 2.6], "context": [8192, 16384],
                           "n_head": [8, 16], "n_kv_head": [1, 1],
                           "params_non_embedding": [2e9, 2e9]})
    assert sb._long_context_trend(rising) == (0, 1)


def test_links_land_on_a_section_of_an_existing_page(board):
    for r in board.itertuples():
        nb = ROOT / f"{r.page}.ipynb"
        assert nb.is_file(), r.page
        headings = [line.lstrip("#").strip() for c in json.loads(nb.read_text())["cells"]
                    if c["cell_type"] == "markdown"
                    for line in "".join(c["source"]).splitlines() if line.startswith("#")]
        assert r.anchor in {make_id(h) for h in headings}, (r.page, r.anchor)


def test_unknown_verdicts_are_refused():
    from gqa_lib.evidence import scoreboard as sb

    with pytest.raises(ValueError, match="verdict"):
        sb._row("c", "p", "o", "probably", "w", "notebooks/recipe")


def _by_the_rules(b: dict) -> str:
    """The verdict the RULES text gives for a row's basis, written out independently of the
    library's code (tolerances read off the rule text)."""
    rules = RULES
    if b["kind"] == "saving":
        assert "within 5 percentage points" in rules["reproduced"]
        if any(abs(c - b["paper"]) <= 1 for c in b["conventions"]):
            return "reproduced"
        if abs(b["ours"] - b["paper"]) <= 5:
            return "partly" if len(b["conventions"]) > 1 else "reproduced"
        return "partly" if b["ours"] * b["paper"] > 0 else "not reproduced"
    if b["kind"] in ("loss gain", "ratio"):
        assert "within 10% of it" in rules["reproduced"]
        ours = b["ours"] if isinstance(b["ours"], list) else [b["ours"]]
        if any(abs(o - b["paper"]) <= 0.1 * abs(b["paper"]) for o in ours):
            return "reproduced"
        ref = 1.0 if b["kind"] == "ratio" else 0.0  # a speed-up's direction is about 1
        same = all((o - ref) * (b["paper"] - ref) > 0 for o in ours)
        return "partly" if same else "not reproduced"
    if b["kind"] == "cells":
        return ("reproduced" if b["matches"] == b["cells"] else
                "partly" if b["matches"] else "not reproduced")
    if b["kind"] == "formula":
        return "reproduced" if abs(b["ours"] - b["paper"]) <= b["tolerance"] else \
            "not reproduced"
    assert b["kind"] == "trained"
    for words in ("do not use their context", "trigram count model", "unsolved", "confound"):
        assert words in rules["not testable here"]
    if b.get("pending"):
        return f"pending: {b['pending']}"
    if not (b["uses_context"] and b["beats_trigram"] and b.get("solved", True)) \
            or b.get("confounded"):
        return "not testable here"
    assert "within seed noise" in rules["partly"] and "p < 0.05" in rules["reproduced"]
    assert "divided by the number of looks" in rules["reproduced"]
    beyond_noise = b["p"] < 0.05 / b.get("looks", 1) if "p" in b else b["z"] > 2
    if b["holds"]:
        return "reproduced" if beyond_noise else "partly"
    return "not reproduced"


def test_every_verdict_follows_the_books_rules(board):
    basis = board.attrs["basis"]
    assert len(basis) == len(board) and set(RULES) == set(VERDICTS)
    for r, b in zip(board.itertuples(), basis):
        assert b, f"{r.claim}: no basis recorded"
        assert r.verdict == _by_the_rules(b), r.claim


def test_claims_about_our_models_say_why_they_cannot_be_decided(board):
    """Issue 23: cpu-v2's models do not use their context, the retrieval task is unsolved,
    and heads at equal shape are confounded by size: none of these rows may say more."""
    long = board[board.claim.str.contains("on models trained here")].iloc[0]
    assert long.verdict == "not testable here" and "do not use theirs" in long.why
    assert "T = 512 is" in long.ours and "worse than T = 128" in long.ours
    ret = board[board.claim.str.contains("retrieval")].iloc[0]
    assert ret.verdict == "not testable here" and "Holm" in ret.ours
    assert "unsolved" in ret.why
    q = board[board.claim.str.startswith("Loss falls with query heads")].iloc[0]
    assert re.search(r"\d+ of \d+ runs", q.verdict + q.ours)  # says how many equal-size runs it rests on
    assert "equal total parameters" in q.why or "equal size" in q.ours


def test_the_results_page_prints_the_rules():
    page = json.loads((ROOT / "notebooks" / "results.ipynb").read_text())
    code = "".join("".join(c["source"]) for c in page["cells"] if c["cell_type"] == "code")
    assert "RULES" in code


def test_the_head_count_row_reads_the_equal_size_runs_once_they_are_in(monkeypatch, tmp_path):
    """With three seeds of every configuration in, models that beat the trigram and use
    their context, the row's verdict comes from the paired equal-size differences."""
    import numpy as np

    from gqa_lib.evidence import equal_size
    from gqa_lib.evidence import scoreboard as sb
    from gqa_lib.train.sweep import COLUMNS
    from test_equal_size import HEADS, _row

    rng = np.random.default_rng(0)
    rows = []
    for s in (0, 1, 2):
        for c in HEADS:
            r = _row(c, s)
            r["val_loss_full_nats"] += 0.005 * rng.normal()
            rows.append(r)
    path = tmp_path / "eq.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    read = equal_size.read
    monkeypatch.setattr(equal_size, "read", lambda p=path: read(p))
    sb._our_sweep.cache_clear()
    try:
        board = sb.scoreboard(n_boot=5)
    finally:
        sb._our_sweep.cache_clear()
    i = int(np.flatnonzero(board.claim.str.startswith("Loss falls with query heads"))[0])
    row, basis = board.iloc[i], board.attrs["basis"][i]
    st = equal_size.status(read(path))  # 12 done of the latest grid's and these 12
    assert f"12 of {st['planned']} runs" in row.ours and not basis.get("pending")
    assert basis["beats_trigram"] and basis["uses_context"]
    assert row.verdict == _by_the_rules(basis) == "reproduced"  # query gain 0.10 > KV 0.05


def test_the_head_count_row_says_what_longer_training_changed(board):
    """The App. I row's why carries the longer runs' trigram test (cpu-eq-long-v1) once
    the run it reads has finished, and nothing before."""
    from gqa_lib.evidence import equal_size as eq
    from gqa_lib.evidence import longer_training as lt
    from gqa_lib.evidence import scoreboard as sb

    assert sb._longer({"long": {"state": "waiting"}, "long_multiple": 4.0}) == ""
    j = {"config": "(8, 8)", "state": "ties", "before": "ties", "far_long": 3.49, "n": 1,
         "far_short": 3.493, "trigram": 3.495, "sd": 0.01}
    assert sb._longer({"long": j, "long_multiple": 4.0}) == (
        "; trained 4 times as long (one seed), (8, 8) still ties the trigram (3.490 against "
        "the trigram's 3.495 nats; 3.493 before, the same seed at 20 tokens per parameter; "
        "a run's seed noise there is 0.010)")
    row = board[board.claim.str.startswith("Loss falls with query heads")].iloc[0]
    real = lt.judge(lt.read(), eq.read())
    assert (f"times as long ({lt.seeds(real)})" in row.why) == (real["state"] != "waiting")


def test_the_head_count_row_moves_to_the_longer_runs_when_only_they_beat_the_trigram(
        monkeypatch, tmp_path):
    """Equal-size runs that tie the trigram beyond position 64 and longer runs of them that
    beat it: the longer runs' paired head contrast decides the row, pending (with the
    contrast so far) until each of (8, 8), (8, 1) and (1, 1) has its six planned seeds,
    then judged as a third look at it (p < 0.0167)."""
    from gqa_lib.evidence import equal_size, longer_training
    from gqa_lib.evidence import scoreboard as sb
    from gqa_lib.train.sweep import COLUMNS
    from test_equal_size import _far_gain, _ref, _row

    ref_path = tmp_path / "ref"
    ref_path.mkdir()
    ref = _ref(ref_path)  # seeds 0-2, (8, 8) at the trigram beyond position 64: a tie
    read_eq = equal_size.read
    monkeypatch.setattr(equal_size, "read", lambda p=None: ref if p is None else read_eq(p))

    def board_with(long_seeds):
        rows = [_row(c, s, far_gain=_far_gain(c, 0.2)) for s in long_seeds
                for c in ("(8, 8)", "(8, 1)", "(1, 1)")]
        for r in rows:  # query gain 0.10, KV gain 0.05 (HEADS' offsets), plus seed noise
            r["val_loss_full_nats"] += 0.004 * ((r["seed"] * 7 + r["n_head"]) % 3 - 1)
        path = tmp_path / f"long{len(long_seeds)}.csv"
        pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
        monkeypatch.setattr(longer_training, "read", lambda p=None: read_eq(path))
        # the rate check at this length is not run on these made-up runs: under way
        monkeypatch.setattr(longer_training, "read_lr",
                            lambda p=None: pd.DataFrame(columns=COLUMNS))
        sb._our_sweep.cache_clear()
        try:
            b = sb.scoreboard(n_boot=5)
        finally:
            sb._our_sweep.cache_clear()
        i = int(np.flatnonzero(b.claim.str.startswith("Loss falls with query heads"))[0])
        return b.iloc[i], b.attrs["basis"][i]

    row, basis = board_with([0, 1])
    assert row.verdict.startswith("pending: data/sweeps/cpu-eq-long-v1")
    assert "now beats the trigram" in row.why and row.anchor == "trained-four-times-as-long"
    row, basis = board_with([0, 1, 2])
    assert row.verdict.startswith("pending: data/sweeps/cpu-eq-long-v1 (trained 4 times as "
                                  "long, 9 of 18 runs; 6 seeds of (8, 8), (8, 1) and (1, 1))")
    assert "; so far, not judged, paired within 3 seeds: 1 → 8 query heads" in row.ours
    row, basis = board_with([0, 1, 2, 3, 4, 5])
    assert basis["beats_trigram"] and basis["uses_context"] and not basis["pending"]
    assert basis["looks"] == 3
    assert row.verdict == _by_the_rules(basis) == "reproduced"
    assert row.ours.startswith(f"trained 4 times as long, at equal size (18 of "
                               f"{longer_training.planned()} runs, paired within 6 seeds): ")
    assert "98.3% interval" in row.ours
    assert "; in those models, the paper's direction, beyond seed noise (p < 0.001 against a " \
        "threshold of 0.0167); the shared rate is being checked at this length (0 of 6" in row.why


def test_the_rate_check_at_the_longer_length_can_confound_the_head_contrast():
    """Set before cpu-eq-long-lr-v1 finished: a gap between (1, 1) and (8, 8), or (once
    (8, 1) has run) a difference of the gains, that moves beyond its noise at half the rate
    makes the App. I row 'not testable here' (a rate confound); within it the verdict
    stands; until the runs finish it is under way."""
    from gqa_lib.evidence import scoreboard as sb

    nan = {"shift": np.nan, "noise": 0.06, "n": 0, "changes": {}}

    def check(gap, diff, done):
        return sb._rate_check({"gap": gap, "difference": diff, "done": done, "planned": 6})

    def seed0(shift, noise):
        return {"shift": shift, "noise": noise, "n": 1, "changes": {0: shift}}

    confound, text = check(nan, nan, 1)
    assert not confound and text == ("; the shared rate is being checked at this length (1 of 6 "
                                     "runs of cpu-eq-long-lr-v1)")
    confound, text = check(seed0(-0.01, 0.03), nan, 2)
    assert not confound and text == (
        "; the shared rate is being checked at this length: at half the shared rate the gap "
        "between (1, 1) and (8, 8) moves by -0.010 nats (seed 0, noise 0.030), within noise; "
        "the difference of the gains waits for (8, 1) (2 of 6 runs of cpu-eq-long-lr-v1)")
    confound, text = check(seed0(0.05, 0.03), nan, 2)
    assert confound == "the learning rate" and text.endswith("the contrast depends on the rate")
    confound, text = check(seed0(-0.01, 0.03), seed0(0.02, 0.06), 3)
    assert not confound and text.endswith(
        "moves by -0.010 nats (seed 0, noise 0.030), the difference of the gains by +0.020 "
        "(seed 0, noise 0.060), both within noise")
    # the gap within its noise, the difference beyond its own: still a confound
    confound, text = check(seed0(-0.01, 0.03), seed0(-0.07, 0.06), 3)
    assert confound == "the learning rate" and "by -0.070 (seed 0, noise 0.060): the contrast" in text
    # two seeds: the mean of their changes, against the smaller noise of a mean
    two = {"shift": 0.03, "noise": 0.02, "n": 2, "changes": {0: 0.02, 1: 0.04}}
    confound, text = check(two, seed0(0.0, 0.06), 5)
    assert confound == "the learning rate" and "+0.030 nats (seeds 0 and 1, noise 0.020)" in text
    basis = {"kind": "trained", "uses_context": True, "beats_trigram": True, "holds": True,
             "p": 0.001, "looks": 2, "z": 9.0, "confounded": confound}
    assert sb.trained_verdict(basis) == "not testable here"
    assert sb.trained_verdict({**basis, "confounded": ""}) == "reproduced"
