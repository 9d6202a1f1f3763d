"""The calibrated serving model: fitted on the H200's measured step times, judged by
leave-one-out, the default of the serving functions for a measured accelerator only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gqa_lib import cost
from gqa_lib.arch import aligned, calibration, get_accelerator, paper_family
from gqa_lib.arch.hardware import CALIBRATION_FILE, Calibration, read_data_file
from gqa_lib.cost import calibrate as cb
from gqa_lib.errors import GQAError

GOAL = 0.15  # issue 22: every leave-one-out error of step time <= 15% per regime


@pytest.fixture(scope="module")
def h200():
    return cb.calibrate("h200")


def test_leave_one_out_error_per_regime_is_within_the_goal(h200):
    _, loo = h200
    table = cb.error_table(loo)
    print("\nleave-one-out error of step time on the H200 (calibrated | datasheet roofline)")
    for t in table:
        print(f"  {t['regime']:<18} {t['points']:>2} points  max {t['max_error']:6.1%}  "
              f"mean {t['mean_error']:6.1%}  |  max {t['datasheet_max_error']:6.1%}  "
              f"mean {t['datasheet_mean_error']:6.1%}")
    assert [t["regime"] for t in table] == list(cb.REGIMES)
    for t in table:
        assert t["max_error"] <= GOAL, t
    # the datasheet roofline misses batch-1 decode by more than half: the per-layer floor
    assert table[0]["datasheet_max_error"] > 0.5


def test_readme_quotes_the_leave_one_out_errors_of_today(h200):
    """README's "<= X% per regime, against up to Y% for the datasheet roofline" is the
    error table's largest calibrated and datasheet errors."""
    from pathlib import Path

    table = cb.error_table(h200[1])
    cal = max(t["max_error"] for t in table)
    sheet = max(t["datasheet_max_error"] for t in table)
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    want = (f"<= {cal:.1%} per regime, against up to {sheet:.0%} for the datasheet roofline")
    assert want in readme, want


def test_the_shipped_calibration_is_the_fit_of_the_shipped_measurements(h200):
    fitted, _ = h200
    shipped = calibration("h200")
    assert shipped is not None and shipped.source == "data/bench/h200-2026-12-04.json"
    for name in (*cb._NAMES, "memory_capacity_bytes"):
        assert getattr(shipped, name) == pytest.approx(getattr(fitted, name), rel=1e-3), name
    assert shipped.points == fitted.points == len(cb.measured_points(cb.MEASUREMENTS["h200"]))
    stored = read_data_file(CALIBRATION_FILE)["calibration"]["h200"]["loo_max_error"]
    assert stored == pytest.approx(dict(fitted.loo_max_error), abs=1e-3)


def test_fit_recovers_planted_constants_from_noisy_points():
    true = Calibration("h200", 8e-5, 4.0e12, 5.5e14, 4.2e14, train_compute_factor=1.25)
    rng = np.random.default_rng(0)
    points = []
    for L, heads in ((24, (16, 4)), (32, (32, 8)), (40, (8, 1))):
        cfg = aligned(paper_family(L, *heads))
        for kind, T, B in (("decode", 8192, 1), ("decode", 131072, 1), ("decode", 32768, 16),
                           ("prefill", 8192, 1), ("prefill", 65536, 1), ("train", 8192, 1)):
            w = cb.work(cfg, kind, T, B, logits="all")
            t = cb.step_seconds(w, true) * np.exp(rng.normal(0, 0.01))
            points.append({"work": w, "seconds": t, "group": (L, kind, T, B),
                           "regime": cb.regime(kind, B)})
    got = cb.fit(points)
    for name in cb._NAMES:
        assert getattr(got, name) == pytest.approx(getattr(true, name), rel=0.06), name


def test_serving_defaults_are_calibrated_for_the_h200_only():
    cfg = aligned(paper_family(32))
    cal = cost.decode_step(cfg, 8192, "h200")
    sheet = cost.decode_step(cfg, 8192, "h200", calibration="datasheet")
    assert cal["basis"] == "calibrated" and sheet["basis"] == "datasheet"
    # measured 3.63 ms (CUDA graph, d_ff 5632); the datasheet roofline says ~1.1 ms
    assert cal["seconds"] == pytest.approx(3.634e-3, rel=GOAL)
    assert sheet["seconds"] < 0.35 * 3.634e-3
    assert cal["floor_s"] == pytest.approx(32 * calibration("h200").layer_floor_s)
    assert cost.decode_step(cfg, 8192, "h100")["basis"] == "datasheet"
    # a user's figures are not the measured card: no calibration borrowed
    mine = get_accelerator("h200").replace(memory_bandwidth_bytes_per_s=3e12)
    assert cost.decode_step(cfg, 8192, mine)["basis"] == "datasheet"
    with pytest.raises(GQAError, match="calibration='datasheet'"):
        cost.decode_step(cfg, 8192, "h200", bandwidth_efficiency=0.8)
    with pytest.raises(GQAError, match="calibration must be"):
        cost.decode_step(cfg, 8192, "h200", calibration="measured")


def test_prefill_and_max_batch_defaults():
    cfg = aligned(paper_family(39, n_head=8, n_kv_head=1))
    # measured 2.62 s (one causal pass at 128K, logits for every position)
    t = cost.prefill_step(cfg, 131072, "h200", logits="all")["seconds"]
    assert t == pytest.approx(2.62, rel=GOAL)
    # the calibrated memory is what the device exposes (139.8 GiB), not "141 GB"
    assert cost.memory_capacity_bytes("h200") == pytest.approx(139.8 * 2**30, rel=1e-3)
    assert cost.max_batch(cfg, 131072, "h200") > cost.max_batch(cfg, 131072, "h200",
                                                                calibration="datasheet")


def test_unaligned_shapes_are_outside_the_calibration():
    """The calibration is fitted on aligned shapes; the measured unaligned (32, 8) is slower
    than it predicts (the 2.8x of d_ff = 5461), which the docstring says."""
    pts = cb.measured_points(cb.MEASUREMENTS["h200"], aligned_only=False)
    c = calibration("h200")
    slow = [p for p in pts if p["cfg"].d_ff % cb.ALIGN and p["kind"] == "prefill"
            and p["context"] == 8192]
    assert slow and all(p["seconds"] > 2 * cb.step_seconds(p["work"], c) for p in slow)
    assert "unaligned" in cost.serving.__doc__ or "aligned" in cost.serving.__doc__


def test_work_splits_the_flops_of_the_counts():
    cfg = aligned(paper_family(32))
    w = cost.prefill_work(cfg, 8192, logits="last")
    assert w["matmul_flops"] + w["attention_flops"] == pytest.approx(
        float(cost.prefill_flops(cfg, 8192)) + 2 * cfg.d_model * cfg.vocab_size)
    d = cost.decode_work(cfg, 8192, batch=4)
    assert d["attention_flops"] == pytest.approx(4 * float(cost.attention_flops_per_token(
        cfg, 8192)))
    tr = cb.work(cfg, "train", 8192)
    assert tr["layers"] == 3 * cfg.n_layer and tr["matmul_flops"] == pytest.approx(
        3 * cb.work(cfg, "prefill", 8192, logits="all")["matmul_flops"])
    with pytest.raises(GQAError, match="logits"):
        cost.prefill_work(cfg, 8192, logits="first")
    with pytest.raises(GQAError, match="kind"):
        cb.work(cfg, "serve", 8192)


def test_calibration_refuses_nonsense():
    with pytest.raises(GQAError, match="bandwidth_bytes_per_s"):
        Calibration("x", 1e-4, 0.0, 1e14, 1e14)
    with pytest.raises(GQAError, match="no measurements"):
        cb.calibrate("a800")
    with pytest.raises(GQAError, match=">= 4"):
        cb.fit([])
    assert dataclasses.replace(calibration("h200"), points=1).points == 1


# ----- the pair as measured (gqa_lib.evidence.serving_measured) -----------------------------
@pytest.fixture(scope="module")
def mvp():
    from gqa_lib.evidence import serving_measured as sm

    return sm.measured_vs_predicted("h200").set_index("regime")


def test_measured_speedups_are_the_files_numbers(mvp):
    # by hand from data/bench/h200-2026-12-04.json (aligned shapes): both models timed on
    # one machine (call2; the (8, 1) also on call1, another H200: the spread between them)
    dec1 = 5.406567640e-3 / 4.97168464e-3
    assert mvp.loc["decode, batch 1, 128K", "measured_speedup"] == pytest.approx(dec1)
    assert round(dec1, 2) == 1.09  # the measurement note's x1.09
    assert mvp.loc["decode, batch 1, 128K", "measured_on"] == "call2"
    assert mvp.loc["decode, batch 1, 128K", "machine_spread"] == pytest.approx(
        5.10675896e-3 / 4.97168464e-3 - 1)
    pre = 5.893788121 / 2.620515729
    assert mvp.loc["prefill, 128K", "measured_speedup"] == pytest.approx(pre)
    # the datasheet roofline's x2.06 at batch 1 (issue 22's table), the calibrated model
    # within 15% of each measured step even though each point was left out of its fit
    assert mvp.loc["decode, batch 1, 128K", "datasheet_speedup"] == pytest.approx(2.06, abs=0.01)
    errors = mvp[[c for c in mvp if c.endswith("_calibrated_error")]].abs()
    assert (errors <= GOAL).all().all()


def test_speedup_sources_and_alignment_table(mvp):
    from gqa_lib.evidence import serving_measured as sm

    src = sm.speedup_sources(mvp.reset_index())
    paper = src[src.source.str.startswith("paper")]
    assert set(paper.regime) == {"decode, batch 1, 128K", "prefill, 128K", "training, 128K"}
    assert paper.speedup.iloc[0] == pytest.approx(20643 / 12921)
    tab = sm.alignment_table(paper_family(32), aligned(paper_family(32))).set_index("quantity")
    assert tab.loc["d_ff", "paper_rule"] == "5,461" and tab.loc["d_ff", "aligned"] == "5,632"
    assert tab.loc["prefill of 8K tokens, H200", "change"] == "x2.80 faster"
    with pytest.raises(GQAError, match="no measurements"):
        sm.measured_vs_predicted("a800")


def test_the_serving_page_glues_every_number_it_quotes():
    import json
    import re

    from gqa_lib.evidence import paper
    from gqa_lib.evidence import serving_measured as sm

    nb = json.loads((cb.DATA_DIR.parent / "notebooks" / "serving.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    quoted = set(re.findall(r"\{glue:text\}`([A-Za-z0-9_]+)", text))
    numbers = sm.page_numbers(paper.joint_model())
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    sections = {"context_numbers": ("gain_z_8k", "gain_thr_8k", "gain_z_long",
                                    "gain_thr_long"),
                "objective_numbers": ("lat_agree_upto", "n_differ", "n_cells", "n_thr_differ",
                                      "n_thr_cells", "h200_lat_short", "h200_lat_short_T",
                                      "h200_lat_long", "h200_lat_agree", "h200_lat_contexts")}
    glued = set(numbers) | {n for f, names in sections.items() if f in code for n in names}
    for call in re.finditer(r"glue_all\(([^()]*)\)", code):  # names glued by keyword
        glued |= set(re.findall(r"\b([A-Za-z_]\w*)=", call.group(1)))
    assert quoted <= glued, quoted - glued
    assert "glue(" not in code.replace("glue_all(", "")
