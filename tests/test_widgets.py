"""The explorers: the pure function, the live widget, and the static table agree."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gqa_lib import GQAError, cost, get_preset
from gqa_lib.fit.recipe import CostSettings, cost_grid
from gqa_lib.book import widgets
from gqa_lib.units import format_heads
from gqa_lib.book.explorer_html import static_explorer, static_explorer_table
from gqa_lib.book.widgets import (ExplorerState, explore, explorer, parse_your_model, show_explorer,
                                  loss_model)

HF = Path(__file__).parent / "data" / "hf"


def test_default_is_the_papers_headline_choice():
    res = explore(ExplorerState())
    assert (res.best["n_head"], res.best["n_kv_head"]) == (8, 1)
    assert res.recommendation.savings["memory_pct"] > 40
    assert "H = (8, 1)" in res.summary() and "less memory" in res.summary()


def test_the_summary_carries_the_recipes_cautions():
    """Beyond the contexts the paper's losses come from (8K to 128K) the explorer still
    answers, and says, as gqa optimize does, that the losses are carried there unchecked."""
    far = explore(ExplorerState(context=2**20)).summary()
    assert "Caution: T = 1M lies outside the contexts the losses come from" in far
    assert "Caution" not in explore(ExplorerState()).summary()
    assert "fewer FLOPs" in explore(ExplorerState()).summary()


def test_your_model_from_hf_config_and_preset():
    cfg = parse_your_model((HF / "llama-3.2-1b.json").read_text())
    assert cfg == get_preset("llama-3.2-1b")
    assert parse_your_model("qwen2.5-0.5b") == get_preset("qwen2.5-0.5b")
    assert parse_your_model("  ") is None
    res = explore(ExplorerState(your_model=cfg))
    y = res.your_model
    assert y["extrapolated"]  # n_head = 32 lies outside the measured configurations
    # the model's own cost is the cost model's, with the paper's conventions
    assert y["memory_values"] == pytest.approx(
        cost.inference_memory_values(cfg, 131_072, include_norms=False))
    assert "Your model" in res.summary()


def test_your_model_with_other_head_sizes_is_not_credited_to_the_shape():
    """Qwen3-8B's heads have 128 dimensions, the law's 64: where the recipe keeps its head
    counts, the summary says the saving comes from the head size."""
    import json

    qwen3 = {"model_type": "qwen3", "hidden_size": 4096, "num_hidden_layers": 36,
             "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
             "intermediate_size": 12288, "vocab_size": 151936, "tie_word_embeddings": False}
    res = explore(ExplorerState(your_model=parse_your_model(json.dumps(qwen3)), context=32768))
    y, text = res.your_model, res.summary()
    assert (y["d_head"], y["law_d_head"]) == (128, 64) and y["extrapolated"]
    assert (y["best_n_head"], y["best_n_kv_head"]) == (32, 8)  # its own head counts
    assert "of 64 dimensions" in text and "mostly from the head size" in text
    assert "the saving is in the shape" not in text
    inside = dataclasses.replace(get_preset("paper-d64L-L24"), n_head=8, n_kv_head=8)
    assert "of 64 dimensions" not in explore(ExplorerState(your_model=inside)).summary()


def test_your_model_is_extrapolated_outside_the_measured_sizes():
    """Inside the fit's measured sizes and heads: not extrapolated; 1.5x its largest: it is."""
    model = loss_model("paper")
    hi = float(model.fit.N.max())
    # the figure family's L = 24 shape with a measured head configuration, (8, 8)
    inside = dataclasses.replace(get_preset("paper-d64L-L24"), n_head=8, n_kv_head=8)
    N = float(cost.params_non_embedding(inside, include_norms=False))
    assert N < hi
    assert not explore(ExplorerState(your_model=inside)).your_model["extrapolated"]
    big = dataclasses.replace(inside, d_ff=int(inside.d_ff * 1.6 * hi / N))
    assert float(cost.params_non_embedding(big, include_norms=False)) > hi
    assert explore(ExplorerState(your_model=big)).your_model["extrapolated"]


@pytest.mark.parametrize("text, msg", [("{oops", "not valid JSON"), ('{"model_type": "mamba"}', "not supported"),
                                       ("lama-3", "unknown model")])
def test_your_model_errors(text, msg):
    with pytest.raises(GQAError, match=msg):
        parse_your_model(text)


def test_live_explorer_recomputes_on_every_change():
    box = explorer()
    first = box.result.value
    assert "H = (8, 1)" in first
    box.controls["context"].value = 8192
    assert box.result.value != first and "T = 8K" in box.result.value
    box.your_model.value = "{not json"
    assert "not valid JSON" in box.result.value  # an error is shown, not raised
    box.your_model.value = "llama-3.2-1b"
    assert "Your model (llama-3.2-1b)" in box.result.value


def test_show_explorer_is_static_in_the_book(monkeypatch):
    from gqa_lib.book import render

    monkeypatch.setenv(render.RENDERER_ENV, render.RENDERER)
    out = show_explorer()
    assert "Open this page in Colab" in out.data and "H = (8, 1)" in out.data
    monkeypatch.delenv(render.RENDERER_ENV)
    assert hasattr(show_explorer(), "controls")


def _js_z(df, lam, alpha, beta, convention):
    """The static chart's transform_calculate, in pandas."""
    return lam * df.memory_values**alpha + (1 - lam) * df[f"flops_{convention}"]**beta


@pytest.mark.parametrize("lam, alpha, beta, convention, log2T, target", [
    (0.9, 0.5, 1 / 3, "fig2", 17, 2.6), (0.9, 0.5, 1 / 3, "fig2", 13, 2.7),
    (0.5, 0.5, 0.5, "per_token", 15, 2.5), (0.0, 0.5, 1 / 3, "prefill", 20, 2.9),
    (1.0, 0.7, 0.3, "fig1", 12, 2.4),
])
def test_static_table_picks_what_the_library_picks(lam, alpha, beta, convention, log2T, target):
    table = static_explorer_table()
    cell = table[(table.log2_context == log2T) & np.isclose(table.target_loss, target)
                 & (table.baseline == 0)]  # the candidates (the baseline: next test)
    z = _js_z(cell, lam, alpha, beta, convention)
    settings = CostSettings(lam=lam, alpha=alpha, beta=beta, convention=convention)
    g = cost_grid(loss_model(), target, float(2**log2T), settings=settings)
    best = g.frontier()
    best_z = best.loc[best.best, "z"].iloc[0]
    chosen = cell.iloc[int(np.argmin(z.to_numpy()))]
    lib_z = pd.Series(best["z"].to_numpy(), [format_heads(*H) for H in zip(best.n_head,
                                                                       best.n_kv_head)])
    # the chart's rounding (5 significant digits) may swap near-exact ties, no real choice:
    # the H the chart picks costs what the library's best costs
    assert float(z.min()) == pytest.approx(best_z, rel=1e-4)
    assert lib_z[chosen.H] == pytest.approx(best_z, rel=1e-4)


def test_static_chart_is_a_marked_explorer_with_small_data():
    chart = static_explorer(static_explorer_table())
    spec = chart.to_dict()
    assert spec["usermeta"]["gqa_explorer"] == "optimum"
    names = {p["name"] for p in spec["params"]}
    assert {"log2T", "target", "lam", "alpha", "beta", "convention"} <= names
    assert len(json.dumps(spec)) < 1_000_000
    # outside 8K to 128K the pick's label says the paper's losses are carried there unchecked
    text = json.dumps(spec)
    assert "log2T < 13 || log2T > 17 ?" in text
    assert "(the losses cover 8K to 128K: carried here unchecked)" in text


def test_every_default_lies_on_its_controls_grid():
    """A front end snaps a value to its control's grid (ipywidgets 8 moved beta = 1/3 to
    0.35): every default must be one of the grid's values, exactly."""
    state = ExplorerState()
    box = explorer(state)
    for name, control in box.controls.items():
        values = [v for _, v in control.options] if isinstance(control.options[0], tuple) \
            else list(control.options)
        assert getattr(state, name) in values, name
        assert control.value == getattr(state, name), name
    assert box.controls["beta"].value == 1 / 3 and box.controls["target_loss"].value == 2.615
    spec = static_explorer(static_explorer_table()).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert params["beta"]["value"] == 1 / 3 and 1 / 3 in params["beta"]["bind"]["options"]
    assert params["target"]["value"] == 2.615 in params["target"]["bind"]["options"]
    assert params["log2T"]["value"] == 17
    lam = params["lam"]["bind"]
    assert (params["lam"]["value"] - lam["min"]) / lam["step"] == pytest.approx(18)


@pytest.mark.parametrize("context", widgets.CONTEXTS)
def test_the_pick_never_costs_more_than_the_baseline(context):
    """In some of the default settings (the static explorer's contexts and targets; the page
    counts them, all at T <= 64K) the Llama-3 baseline, which is not a power-of-two
    candidate, is cheaper than every candidate: the explorer then keeps it."""
    for target in widgets.STATIC_TARGETS:
        res = explore(ExplorerState(context=context, target_loss=target))
        base = res.recommendation.baseline
        assert res.pick["z"] <= base["z"] + 1e-9 and res.pick["z"] <= res.best["z"]
        if base["z"] < res.best["z"]:
            assert res.baseline_wins and "keeps the baseline" in res.summary()
            assert res.savings["memory_pct"] == 0.0
        else:
            assert not res.baseline_wins and "lower Z" in res.summary()  # the pick beats it on Z


def test_static_chart_keeps_the_baseline_among_its_bars():
    table = static_explorer_table()
    base = table[table.baseline == 1]
    assert len(base) == len(widgets.STATIC_TARGETS) * len(widgets.CONTEXTS)
    cell = table[(table.log2_context == 12) & np.isclose(table.target_loss, 2.35)]
    z = _js_z(cell, 0.9, 0.5, 1 / 3, "fig2")
    res = explore(ExplorerState(context=4096, target_loss=2.35))
    winner = cell.iloc[int(np.argmin(z.to_numpy()))]
    assert bool(winner.baseline) == res.baseline_wins


def test_live_table_is_readable_without_notebook_css():
    """ipywidgets 7 shows an HTML widget without the notebook's table styles: the table
    carries its own padding and alignment, and has no index column."""
    html = widgets.result_html(explore(ExplorerState()))
    assert "padding:" in html and "<th" in html and "Llama-3 (d/64, 8)" in html
    assert ">0<" not in html.split("<tbody>")[1].split("</td>")[0]
