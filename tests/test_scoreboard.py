"""The "Results at a glance" scoreboard: computed from the library, one headline, links that
land on a section, and pending rows that say what they wait for."""

import json
from pathlib import Path

import pytest
from docutils.nodes import make_id

from gqa_lib.book.widgets import ExplorerState, explore
from gqa_lib.evidence import headline, joint_model, table4_comparison, table4_summary
from gqa_lib.evidence.scoreboard import COLUMNS, VERDICTS, scoreboard

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def board():
    return scoreboard()


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
    assert mem.ours == f"{h['memory_pct']:.1f}% less" and mem.paper == "50.8% less"
    assert board.iloc[1].ours.startswith(f"{h['flops_pct']['fig2']:.1f}% fewer")


def test_table4_row_is_computed(board):
    s = table4_summary(table4_comparison(joint_model()))
    row = board[board.claim.str.startswith("Table 4")].iloc[0]
    assert row.ours.startswith(f"{s['matches']} of {s['cells']} match")
    assert row.verdict == ("reproduced" if s["matches"] == s["cells"] else "partly")


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


def test_head_count_row_uses_the_seed_noise_of_one_difference(board):
    """Both gains are means over sizes of one two-run difference each, so both z use
    head_effect_summary's standard error (the (8, 8) reference cancels in (1,1) - (8,1))."""
    from gqa_lib.evidence import head_deltas, head_effect_summary, sweep_recipe
    from gqa_lib.fit import read_runs

    runs = read_runs(sweep_recipe.SWEEP_CSV)
    at = runs[runs.context == 128]
    eff = head_effect_summary(head_deltas(at), sweep_recipe.seed_noise(at).sd).set_index("config")
    q = eff.loc["(1,1)", "mean_delta_nats"] - eff.loc["(8,1)", "mean_delta_nats"]
    row = board[board.claim.str.startswith("Loss falls with query heads")].iloc[0]
    assert f"{q:.3f} nats (z = {q / eff.loc['(8,1)', 'se_nats']:.1f})" in row.ours
    assert f"(z = {eff.loc['(8,1)', 'z']:.1f})" in row.ours
