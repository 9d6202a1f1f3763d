"""The serving roofline (gqa_lib.cost.serving) and the accelerator table (gqa_lib.arch.hardware):
hand-computed cases, oracles against the tensors a model allocates, units, properties."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gqa_lib import GQAError, ModelConfig, cost, get_preset
from gqa_lib.arch import hardware
from gqa_lib.arch.hardware import Accelerator, accelerators, get_accelerator

# A small model whose counts are easy to write down by hand.
CFG = ModelConfig(n_layer=2, d_model=64, n_head=4, n_kv_head=2, d_head=16, d_ff=128,
                  vocab_size=100, name="hand")
L, d, nh, nkv, dh, dff, V = 2, 64, 4, 2, 16, 128, 100
N_MM = L * (d * dh * (2 * nh + 2 * nkv) + 3 * d * dff)      # Q, K, V, O and SwiGLU
N_NE = N_MM + (2 * L + 1) * d                                  # + RMSNorm gains
ONE = {"flops_efficiency": 1.0, "bandwidth_efficiency": 1.0}


def toy(flops=1e12, bw=1e9, mem=1e9) -> Accelerator:
    return Accelerator(key="toy", name="toy", bf16_flops_per_s=flops,
                       memory_bandwidth_bytes_per_s=bw, memory_capacity_bytes=mem)


def kv_bytes(T):
    return 2 * L * nkv * dh * T * 2                             # K and V, bf16


def test_memory_bound_decode_by_hand():
    T = 1000
    s = cost.decode_step(CFG, T, toy(), **ONE)
    want_bytes = 2 * (N_NE + V * d) + kv_bytes(T)              # weights + LM head + cache
    want_flops = 2 * N_MM + 2 * d * V + 4 * T * L * dh * nh
    assert s["bytes"] == want_bytes and s["flops"] == want_flops
    assert s["memory_bound"] and s["seconds"] == pytest.approx(want_bytes / 1e9, rel=1e-12)
    # batch 8: weights once, eight caches, eight tokens' FLOPs
    s8 = cost.decode_step(CFG, T, toy(), batch=8, **ONE)
    assert s8["bytes"] == 2 * (N_NE + V * d) + 8 * kv_bytes(T)
    assert s8["flops"] == 8 * want_flops
    # default efficiencies divide the peak rates
    t = cost.decode_seconds(CFG, T, toy())
    assert t == pytest.approx(want_bytes / (1e9 * cost.BANDWIDTH_EFFICIENCY), rel=1e-12)


def test_compute_bound_prefill_by_hand():
    T = 1000
    s = cost.prefill_step(CFG, T, toy(flops=1e9, bw=1e12), **ONE)
    want = 2 * N_MM * T + 4 * L * dh * nh * T * (T + 1) / 2 + 2 * d * V
    assert s["flops"] == pytest.approx(want, rel=1e-12) and not s["memory_bound"]
    assert s["seconds"] == pytest.approx(want / 1e9, rel=1e-12)
    t = cost.prefill_seconds(CFG, T, toy(flops=1e9, bw=1e12), flops_efficiency=0.25)
    assert t == pytest.approx(4 * want / 1e9, rel=1e-12)


def test_the_batch_that_exactly_fills_memory():
    T = 512
    stored = 2 * (N_NE + V * d)                                 # tied: embedding once
    assert cost.weights_stored_bytes(CFG) == stored
    exact = stored + 5 * kv_bytes(T)
    assert cost.max_batch(CFG, T, toy(mem=exact), memory_fraction=1.0) == 5
    assert cost.max_batch(CFG, T, toy(mem=exact - 1), memory_fraction=1.0) == 4
    assert cost.max_batch(CFG, T, toy(mem=exact / 0.5), memory_fraction=0.5) == 5
    assert cost.max_batch(CFG, T, toy(mem=stored - 1), memory_fraction=1.0) == 0
    # nothing fits: no throughput, infinite replicas and cost
    tps = cost.decode_throughput(CFG, T, toy(mem=stored - 1), memory_fraction=1.0)
    assert tps == 0 and cost.accelerators_needed(100, tps) == math.inf
    assert cost.cost_per_million_tokens(2.0, tps) == math.inf


def test_units_of_throughput_replicas_and_price():
    T = 1000
    hw = toy(mem=1e7)
    B = cost.max_batch(CFG, T, hw)
    step = cost.decode_seconds(CFG, T, hw, batch=B)
    tps = cost.decode_throughput(CFG, T, hw)
    assert B > 1 and tps == pytest.approx(B / step)             # tokens per second
    assert cost.accelerators_needed(2500.0, 1000.0) == 3
    assert cost.accelerators_needed(3000.0, 1000.0) == 3
    assert cost.cost_per_million_tokens(3.6, 1000.0) == pytest.approx(1.0)  # 3.6/h, 1k tok/s
    c = cost.serving_costs(CFG, T, hw, price_per_hour=3.6)
    assert c["usd_per_mtok"] == pytest.approx(1e3 / c["tokens_per_s"])
    assert c["latency_s"] == pytest.approx(cost.decode_seconds(CFG, T, hw))
    assert np.isnan(cost.serving_costs(CFG, T, hw)["usd_per_mtok"])


def test_oracle_bytes_are_what_a_model_allocates():
    torch = pytest.importorskip("torch")
    from gqa_lib.train.model import GQATransformer, KVCache

    cfg = ModelConfig(n_layer=3, d_model=96, n_head=6, n_kv_head=2, d_head=16, d_ff=256,
                      vocab_size=300, name="oracle")
    model = GQATransformer(cfg).to(torch.bfloat16)
    unique = {p.data_ptr(): p for p in model.parameters()}.values()     # tied once
    assert cost.weights_stored_bytes(cfg) == sum(p.numel() * p.element_size() for p in unique)
    # a decode step reads every weight but the input embedding's rows: with tied weights
    # the LM head is the embedding matrix, so it reads them all
    assert cost.weights_read_bytes(cfg) == cost.weights_stored_bytes(cfg)
    cache = KVCache.empty(cfg, 1, 777, dtype=torch.bfloat16)
    assert cost.kv_bytes_per_sequence(cfg, 777) == cache.nbytes
    assert cost.kv_bytes_per_sequence(cfg, 777, kv_dtype="fp32") == 2 * cache.nbytes


def test_vectorised_over_configs_and_contexts():
    b = cost.ConfigBatch.of([CFG, ModelConfig(n_layer=2, d_model=64, n_head=4, n_kv_head=1,
                                              d_head=16, d_ff=128, vocab_size=100)])
    T = np.array([256, 1024, 4096])[:, None]
    c = cost.serving_costs(b, T, "h100")
    assert all(np.shape(v) == (3, 2) for v in c.values())
    assert np.all(c["max_batch"][:, 1] >= 2 * c["max_batch"][:, 0] - 1)   # half the cache
    one = cost.serving_costs(CFG, 1024, "h100")
    assert c["latency_s"][1, 0] == pytest.approx(one["latency_s"])


def test_sliding_window_caps_what_decode_reads():
    w = ModelConfig(n_layer=2, d_model=64, n_head=4, n_kv_head=2, d_head=16, d_ff=128,
                    vocab_size=100, sliding_window=256)
    a = cost.decode_step(w, 100_000, toy(), **ONE)
    assert a["bytes"] == 2 * (N_NE + V * d) + kv_bytes(256)


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 2**20), B=st.integers(1, 512), nkv=st.sampled_from([1, 2, 4, 8]))
def test_roofline_properties(T, B, nkv):
    cfg = ModelConfig(n_layer=4, d_model=256, n_head=8, n_kv_head=nkv, d_head=32,
                      vocab_size=1000)
    hw = "h100"
    t1 = cost.decode_seconds(cfg, T, hw, batch=B)
    assert cost.decode_seconds(cfg, T, hw, batch=B + 1) >= t1
    assert cost.decode_seconds(cfg, T + 1, hw, batch=B) >= t1
    assert cost.max_batch(cfg, T + 1, hw) <= cost.max_batch(cfg, T, hw)
    Bmax = cost.max_batch(cfg, T, hw)
    if Bmax >= 1:   # the largest batch is the most productive one
        assert cost.decode_throughput(cfg, T, hw) >= cost.decode_throughput(
            cfg, T, hw, batch=min(B, Bmax)) * (1 - 1e-12)
    if nkv > 1:     # fewer KV heads: a smaller cache, so never fewer sequences
        fewer = ModelConfig(n_layer=4, d_model=256, n_head=8, n_kv_head=nkv // 2, d_head=32,
                            vocab_size=1000)
        assert cost.max_batch(fewer, T, hw) >= Bmax


def test_bad_inputs_are_refused_naming_the_field():
    with pytest.raises(GQAError, match="bandwidth_efficiency"):
        cost.decode_seconds(CFG, 10, "h100", bandwidth_efficiency=1.5)
    with pytest.raises(GQAError, match="flops_efficiency"):
        cost.prefill_seconds(CFG, 10, "h100", flops_efficiency=0)
    with pytest.raises(GQAError, match="memory_fraction"):
        cost.max_batch(CFG, 10, "h100", memory_fraction=-1)
    with pytest.raises(GQAError, match="context_len"):
        cost.decode_seconds(CFG, 0, "h100")
    with pytest.raises(GQAError, match="price_per_hour"):
        cost.cost_per_million_tokens(-1.0, 10.0)
    with pytest.raises(GQAError, match="price_per_hour"):
        cost.objective_value(cost.serving_costs(CFG, 10, "h100"), "cost")
    with pytest.raises(GQAError, match="did you mean 'h100'"):
        get_accelerator("h10")
    with pytest.raises(GQAError, match="memory_bandwidth_bytes_per_s"):
        Accelerator(key="x", name="x", bf16_flops_per_s=1.0, memory_bandwidth_bytes_per_s=0,
                    memory_capacity_bytes=1.0)


# ----- the accelerator table ----------------------------------------------------------------
def test_table_has_the_accelerators_the_issue_asks_for_with_sources():
    table = accelerators()
    for key in ("a800", "a100-80gb", "h100", "h200", "b200", "mi300x", "l40s", "rtx-4090",
                "tpu-v5e"):
        acc = table[key]
        assert acc.source and acc.url.startswith("https://") and acc.date, key
    text = hardware.HARDWARE_FILE.read_text()
    assert "NOT MEASURED" in text and "price" in text
    assert not any("price" in f for f in Accelerator.__dataclass_fields__)


@pytest.mark.parametrize("key, flops, bw, mem", [
    # vendor datasheet figures (sources in data/hardware/accelerators.toml)
    ("h100", 989.4e12, 3.35e12, 80e9), ("a100-80gb", 312e12, 2.039e12, 80e9),
    ("a800", 312e12, 2.039e12, 80e9), ("h200", 989e12, 4.8e12, 141e9),
    ("mi300x", 1307.4e12, 5.3e12, 192e9), ("l40s", 362.05e12, 864e9, 48e9),
    ("rtx-4090", 165.2e12, 1.008e12, 24e9), ("tpu-v5e", 197e12, 819e9, 16e9),
    ("b200", 2.25e15, 8e12, 180e9),
])
def test_datasheet_figures_are_pinned(key, flops, bw, mem):
    a = get_accelerator(key)
    assert (a.bf16_flops_per_s, a.memory_bandwidth_bytes_per_s,
            a.memory_capacity_bytes) == (flops, bw, mem)


def test_aliases_user_files_and_overrides(tmp_path):
    assert get_accelerator("H100-SXM") is get_accelerator("h100")
    p = tmp_path / "mine.toml"
    p.write_text('[accelerators.lab]\nname = "our card"\nbf16_flops_per_s = 1e14\n'
                 'memory_bandwidth_bytes_per_s = 1e12\nmemory_capacity_bytes = 32e9\n'
                 'source = "measured by us"\n')
    mine = get_accelerator(str(p))
    assert mine.key == "lab" and mine.source == "measured by us"
    p.write_text('[accelerators.lab]\nname = "x"\nbf16_flops = 1e14\n')
    with pytest.raises(GQAError, match="unknown field 'bf16_flops'"):
        get_accelerator(str(p))
    faster = get_accelerator("h100").replace(memory_bandwidth_bytes_per_s=3.0e12)
    assert faster.memory_bandwidth_bytes_per_s == 3.0e12 and "overridden" in faster.source


# ----- the recipe's step 3 on a serving objective -------------------------------------------
def _recipe():
    from gqa_lib.evidence.paper import joint_model
    from gqa_lib.fit.recipe import CostSettings, optimize

    return joint_model(), CostSettings, optimize


def test_objective_z_with_hardware_keeps_the_choice_and_adds_units():
    model, CostSettings, optimize = _recipe()
    plain = optimize(model, 2.615, 131072, baseline="llama3")
    served = optimize(model, 2.615, 131072, baseline="llama3",
                      settings=CostSettings(hardware="h200"))
    assert (served.best["n_head"], served.best["n_kv_head"]) == (plain.best["n_head"],
                                                                 plain.best["n_kv_head"])
    assert served.best["z"] == plain.best["z"] and "objective" not in served.best
    assert {"tokens_per_s", "max_batch", "latency_s", "prefill_s"} <= set(served.best)
    assert set(plain.savings) < set(served.savings)
    assert served.savings["tokens_per_s_ratio"] == pytest.approx(
        served.best["tokens_per_s"] / served.baseline["tokens_per_s"])


@pytest.mark.parametrize("objective, column, pick", [
    ("latency", "latency_s", min), ("throughput", "tokens_per_s", max)])
def test_serving_objectives_pick_their_own_optimum(objective, column, pick):
    model, CostSettings, optimize = _recipe()
    rec = optimize(model, 2.615, 131072, settings=CostSettings(objective=objective,
                                                              hardware="a800"))
    assert rec.best[column] == pick(rec.candidates[column])
    assert rec.best["objective"] == rec.candidates["objective"].min()


def test_cost_objective_is_throughput_at_a_price():
    model, CostSettings, optimize = _recipe()
    s = CostSettings(objective="cost", hardware="h100", price_per_hour=2.5)
    rec = optimize(model, 2.7, 32768, settings=s)
    thr = optimize(model, 2.7, 32768, settings=CostSettings(objective="throughput",
                                                           hardware="h100"))
    assert (rec.best["n_head"], rec.best["n_kv_head"]) == (thr.best["n_head"],
                                                           thr.best["n_kv_head"])
    assert rec.best["usd_per_mtok"] == pytest.approx(2.5 / 3600 * 1e6 / rec.best["tokens_per_s"])


def test_a_request_pays_its_prefill_and_its_share_of_the_decode_steps():
    """request_seconds = t_prefill(T) + G t_step(B_max) / B_max, by the module's formula on a
    toy accelerator; serving_costs' tokens/s is G over that with output_tokens, the decode
    rate without; more generated tokens per request tend to the decode rate."""
    hw, T, G = toy(flops=1e12, bw=1e9, mem=2e6), 256, 64
    B = cost.max_batch(CFG, T, hw)
    step = cost.decode_seconds(CFG, T, hw, batch=B)
    pre = cost.prefill_seconds(CFG, T, hw)
    assert B >= 2 and pre > 0
    req = cost.request_seconds(CFG, T, hw, output_tokens=G)
    assert req == pytest.approx(pre + G * step / B)
    c = cost.serving_costs(CFG, T, hw, output_tokens=G)
    assert c["tokens_per_s"] == pytest.approx(G / req)
    assert c["decode_tokens_per_s"] == pytest.approx(B / step)
    assert c["decode_tokens_per_s"] > c["tokens_per_s"]
    assert cost.serving_costs(CFG, T, hw)["tokens_per_s"] == c["decode_tokens_per_s"]
    rates = [G / cost.request_seconds(CFG, T, hw, output_tokens=G) for G in (1, 100, 10**7)]
    assert rates[0] < rates[1] < rates[2] == pytest.approx(B / step, rel=1e-3)
    for bad in (0, 1.5, -3, float("nan")):
        with pytest.raises(GQAError, match="output_tokens must be a whole number"):
            cost.request_seconds(CFG, T, hw, output_tokens=bad)
    assert cost.request_seconds(CFG, T, toy(mem=1e3), output_tokens=G) == math.inf


def test_counting_the_prompt_moves_the_throughput_pick_to_fewer_query_heads():
    """At 128K a prompt's prefill is attention-bound (query heads cost FLOPs) and each
    request's share of decode is small: with 1,024 generated tokens per request the
    throughput pick has fewer query heads than the decode-only pick, and a smaller lead
    over the Llama-3 baseline."""
    model, CostSettings, optimize = _recipe()  # G = 1,024 generated tokens, as the serving page
    runs = {G: optimize(model, 2.615, 131072, baseline="llama3", settings=CostSettings(
        objective="throughput", hardware="h200", output_tokens=G)) for G in (None, 1024)}
    decode, req = runs[None], runs[1024]
    assert req.best["n_head"] < decode.best["n_head"]
    assert 1 < req.savings["tokens_per_s_ratio"] < decode.savings["tokens_per_s_ratio"]
    assert req.best["tokens_per_s"] < req.best["decode_tokens_per_s"]
    with pytest.raises(GQAError, match="output_tokens must be a whole number"):
        CostSettings(objective="throughput", hardware="h200", output_tokens=0)


def test_readme_states_the_prompt_counted_throughput_pick_it_computes():
    """README's sentence on --output-tokens (the pick moves from (32, 1) to (4, 1), its lead
    over Llama-3 GQA from x7.1 to x3.3) is what the recipe computes today."""
    from pathlib import Path

    model, CostSettings, optimize = _recipe()  # G = 1,024 generated tokens, as the serving page
    runs = {G: optimize(model, 2.615, 131072, baseline="llama3", settings=CostSettings(
        objective="throughput", hardware="h200", output_tokens=G)) for G in (None, 1024)}
    heads = {G: (r.best["n_head"], r.best["n_kv_head"]) for G, r in runs.items()}
    ratio = {G: r.savings["tokens_per_s_ratio"] for G, r in runs.items()}
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    want = (f"moves the throughput pick from ({heads[None][0]}, {heads[None][1]}) to "
            f"({heads[1024][0]}, {heads[1024][1]}) and its lead over Llama-3 GQA from "
            f"x{ratio[None]:.1f} to x{ratio[1024]:.1f}")
    assert want in readme, want


def test_serving_objective_refusals():
    model, CostSettings, optimize = _recipe()
    with pytest.raises(GQAError, match="needs hardware"):
        CostSettings(objective="throughput")
    with pytest.raises(GQAError, match="price_per_hour"):
        CostSettings(objective="cost", hardware="h100")
    with pytest.raises(GQAError, match="objective="):
        CostSettings(objective="speed", hardware="h100")
    with pytest.raises(GQAError, match="bandwidth_efficiency"):
        CostSettings(hardware="h100", bandwidth_efficiency=2.0)
    tiny = toy(mem=1e9)   # 1 GB: no 1B-parameter model fits
    with pytest.raises(GQAError, match="fits in its memory"):
        optimize(model, 2.615, 131072, settings=CostSettings(objective="throughput",
                                                             hardware=tiny))
    # a batch that no candidate fits is named, with the largest that fits, not blamed on size
    with pytest.raises(GQAError, match=r"fits batch=200 .*largest batch any fits is \d+"):
        optimize(model, 2.615, 131072, settings=CostSettings(objective="latency",
                                                             hardware="h100", batch=200))


# ----- the evidence: Table 5 as a prediction, picks by objective ------------------------------
def test_table5_decode_rate_by_hand_and_regimes():
    from gqa_lib.evidence import serving as sv

    df = sv.table5_prediction("a800").set_index("regime")
    # (32, 8), L = 32, d = 2048, d_ff = 5632 (int(8d/3) = 5461 rounded up to a multiple of
    # 256: the shape the H200 measured), V = 50,304, bf16, T = 128K, batch 1:
    weights = 2 * (32 * 2048 * 64 * 80 + 3 * 32 * 2048 * 5632 + 65 * 2048 + 50_304 * 2048)
    kv = 2 * 32 * 8 * 64 * 131072 * 2
    assert (weights, kv) == (3_091_992_576, 8_589_934_592)
    want = 2.039e12 * cost.BANDWIDTH_EFFICIENCY / (weights + kv)       # ~123 tokens/s
    assert df.loc["decode, batch 1", "llama3_tokens_per_s"] == pytest.approx(want, rel=1e-9)
    # the paper's 12,921 tokens/s cannot be batch-1 decoding: it needs > 50x the bandwidth
    assert df.loc["decode, batch 1", "implied_llama3"] > 50
    # as a 128K prefill it needs a plausible fraction of peak FLOP/s
    assert 0.3 < df.loc["prefill", "implied_optimum"] < df.loc["prefill", "implied_llama3"] < 1
    base, opt = sv.equal_loss_pair()
    flops = [float(cost.prefill_flops(c, 131072)) + 2 * c.d_model * c.vocab_size
             for c in (base, opt)]
    assert df.loc["prefill", "predicted_speedup"] == pytest.approx(flops[0] / flops[1])
    assert df.loc["prefill", "paper_speedup"] == pytest.approx(20643 / 12921)
    assert df.loc["training", "paper_speedup"] == pytest.approx(31260 / 18655)
    assert (opt.n_layer, opt.d_model, opt.n_head, opt.n_kv_head) == (39, 2496, 8, 1)
    assert (base.d_ff, opt.d_ff) == (5632, 6656)
    assert sv.equal_loss_pair(multiple_of=1)[0].d_ff == 5461  # the paper's rule


def test_table5_efficiency_split_solves_both_rates():
    from gqa_lib.evidence import serving as sv

    e = sv.table5_efficiency_split("a800")
    for cfg, rate in zip(sv.equal_loss_pair(), (12921, 20643)):
        f_mm = 2.0 * float(cost.matmul_params(cfg))
        f_att = float(cost.prefill_flops(cfg, 131072)) / 131072 - f_mm
        t = (f_mm / e["matmul_efficiency"] + f_att / e["attention_efficiency"]) / 312e12
        assert 1 / t == pytest.approx(rate, rel=1e-9)


def test_objective_picks_and_measured_pair(tmp_path):
    import json

    from gqa_lib.evidence import serving as sv

    df = sv.objective_picks(contexts=(131072,), hardware=("h200",))
    z = df[df["objective"] == "z"].iloc[0]
    assert z["pick"] == "(8, 1)" and bool(z["agrees_with_z"])
    assert set(df["objective"]) == {"z", "latency", "throughput"}
    assert sv.measured_pair(tmp_path) is None
    rows = [{"context": 131072, "s_per_token": 0.02, "tokens_per_s": 50.0, "prefill_s": 10.0,
             "prefill_tokens_per_s": 13107.2},
            {"context": 131072, "s_per_token": 0.01, "tokens_per_s": 100.0, "prefill_s": 8.0,
             "prefill_tokens_per_s": 16384.0}]
    (tmp_path / "gpu-x.json").write_text(json.dumps(
        {"toy": False, "device": "cuda", "machine": {"gpu": "X"}, "decode": {"rows": rows}}))
    m = sv.measured_pair(tmp_path)
    assert m["decode_speedup"] == pytest.approx(2.0) and m["prefill_speedup"] == 1.25


# ----- the explorers: accelerator and objective choice ----------------------------------------
def test_live_explorer_state_takes_objective_and_hardware():
    from gqa_lib.book import widgets

    plain = widgets.explore(widgets.ExplorerState())
    res = widgets.explore(widgets.ExplorerState(objective="throughput", hardware="h200"))
    assert res.best["tokens_per_s"] == res.table()["tokens_per_s"].max()
    assert "tokens/s per accelerator" in res.summary() and "calibrated on" in res.summary()
    h100 = widgets.explore(widgets.ExplorerState(objective="throughput", hardware="h100"))
    assert "not measured" in h100.summary()
    assert "tokens/s per accelerator" in widgets.result_html(res)
    assert "tokens/s" not in plain.summary()     # without hardware: unchanged
    with pytest.raises(GQAError, match="needs hardware"):
        widgets.explore(widgets.ExplorerState(objective="latency"))


def test_live_explorer_has_the_two_dropdowns():
    pytest.importorskip("ipywidgets")
    from gqa_lib.book import widgets

    box = widgets.explorer()
    box.controls["hardware"].value = "h100"
    box.controls["objective"].value = "latency"
    assert "H100" in box.result.value and "color:#b00" not in box.result.value


def test_live_explorer_counts_each_prompt_when_asked():
    pytest.importorskip("ipywidgets")
    from gqa_lib.book import widgets

    box = widgets.explorer()  # the H200, calibrated
    assert box.controls["output_tokens"].value is None
    box.controls["objective"].value = "throughput"
    assert "decode tokens/s (prompts already cached)" in box.result.value
    assert "H = (32, 1)" in box.result.value
    box.controls["output_tokens"].value = 1024
    text = box.result.value
    assert "prefill counted" in text and "1,024 tokens out" in text and "H = (4, 1)" in text
    assert "color:#b00" not in text


def test_static_serving_explorer_table_and_chart():
    from gqa_lib.book import explorer_html, widgets

    table = explorer_html.static_explorer_table(contexts=(8192, 131072), targets=(2.6, 2.7),
                                                hardware=("h200", "rtx-4090"),
                                                output_tokens=(1024,))
    assert {"tps_h200", "lat_h200", "tps_rtx_4090", "lat_rtx_4090", "tps_h200_out1024",
            "tps_rtx_4090_out1024"} <= set(table.columns)
    plain = explorer_html.static_explorer_table(contexts=(8192,), targets=(2.6,))
    assert not any(c.startswith("tps_") for c in plain.columns)
    spec = explorer_html.static_serving_explorer(table, ("h200", "rtx-4090")).to_dict()
    text = str(spec)
    assert "datum.tps_rtx_4090" in text and "'throughput'" in text and "'h200'" in text
    assert "out == 1024 ? datum.tps_h200_out1024 : datum.tps_h200" in text
    assert "1,024 per request, prompt prefilled" in text
    row = table[(table["H"] == "(8, 1)") & (table["log2_context"] == 17)
                & (table["target_loss"] == 2.6)].iloc[0]
    from gqa_lib.fit.recipe import CostSettings, optimize

    rec = optimize(widgets.loss_model(), 2.6, 131072, settings=CostSettings(hardware="h200"))
    want = rec.candidates[(rec.candidates["n_head"] == 8) & (rec.candidates["n_kv_head"] == 1)]
    assert row["tps_h200"] == pytest.approx(float(want["tokens_per_s"].iloc[0]), rel=1e-4)
    rec = optimize(widgets.loss_model(), 2.6, 131072,
                   settings=CostSettings(hardware="h200", output_tokens=1024))
    want = rec.candidates[(rec.candidates["n_head"] == 8) & (rec.candidates["n_kv_head"] == 1)]
    assert row["tps_h200_out1024"] == pytest.approx(float(want["tokens_per_s"].iloc[0]),
                                                    rel=1e-4)
    assert row["tps_h200_out1024"] < row["tps_h200"]  # the prompt's prefill costs time
    base = table[(table["baseline"] == 1) & (table["log2_context"] == 17)]
    assert (base["tps_h200_out1024"] < base["tps_h200"]).all()
    # decode only: no tokens-out menu, and no expression that reads one
    decode = explorer_html.static_serving_explorer(
        table.drop(columns=["tps_h200_out1024", "tps_rtx_4090_out1024"]), ("h200", "rtx-4090"))
    assert "out ==" not in str(decode.to_dict()) and "tokens out" not in str(decode.to_dict())
    with pytest.raises(GQAError, match="tokens-out columns differ"):
        explorer_html.static_serving_explorer(table.drop(columns=["tps_h200_out1024"]),
                                              ("h200", "rtx-4090"))
    with pytest.raises(GQAError, match="serving columns"):
        explorer_html.static_serving_explorer(plain, ("h200",))


def test_latency_objective_refuses_what_does_not_fit():
    big = ModelConfig(n_layer=8, d_model=512, n_head=8, n_kv_head=8, d_head=64,
                      vocab_size=1000)
    b = cost.ConfigBatch.of([CFG, big])
    hw = toy(mem=2 * float(cost.weights_stored_bytes(CFG)) + 5 * kv_bytes(1000))
    c = cost.serving_costs(b, 1000, hw, memory_fraction=1.0)
    assert list(c["fits"]) == [1.0, 0.0]
    obj = cost.objective_value(c, "latency")
    assert np.isfinite(obj[0]) and obj[1] == np.inf      # never picked: it does not fit
    assert cost.objective_value(c, "throughput")[1] == np.inf


def test_moe_decode_reads_the_active_experts_at_batch_1_and_all_of_them_at_large_batch():
    m = get_preset("mixtral-8x7b-v0.1")
    head = m.vocab_size * m.d_model * 2  # bf16 LM head
    one = cost.weights_read_bytes(m, batch=1)
    assert one == pytest.approx(2 * cost.params_active(m) + head)
    many = cost.weights_read_bytes(m, batch=10_000)
    assert many == pytest.approx(2 * cost.params_non_embedding(m) + head, rel=1e-9)
    two = cost.weights_read_bytes(m, batch=2)  # k = 2 of E = 8: 8 (1 - (3/4)^2) = 3.5 experts
    frac = (3.5 - 2) / (8 - 2)
    routed = 2 * (cost.params_non_embedding(m) - cost.params_active(m))
    assert two == pytest.approx(one + frac * routed)
    dense = get_preset("llama-3.2-1b")
    assert cost.weights_read_bytes(dense, batch=64) == cost.weights_read_bytes(dense, batch=1)


def test_prompt_counted_starts_at_the_decode_headline_and_falls_with_shorter_answers():
    from gqa_lib.evidence import serving

    pc = serving.prompt_counted(outputs=(None, 16384, 1024, 256))
    hl = serving.headline_serving(hardware=("h200",)).set_index("objective")
    assert pc.z_ratio.iloc[0] == pytest.approx(hl.loc["z", "tokens_per_s_ratio"])
    assert pc.thr_pick.iloc[0] == hl.loc["throughput", "pick"]
    assert list(pc.z_ratio) == sorted(pc.z_ratio, reverse=True)  # shorter answers: less gain
    assert (pc.thr_ratio >= pc.z_ratio - 1e-9).all()  # the throughput pick is at least as good


def test_serving_vs_context_blanks_latency_where_nothing_fits():
    """A model that does not fit at batch 1 has no latency or prefill time to plot (the RTX
    4090's 24 GB against Llama-3's 1M-token cache); those that fit keep theirs."""
    from gqa_lib.evidence import serving as sv

    df = sv.serving_vs_context(contexts=(8192, 1048576), hardware=("rtx-4090",))
    none = df["max_batch"] < 1
    assert none.any() and (~none).any()
    assert df.loc[none, ["latency_ms", "prefill_s"]].isna().all().all()
    assert np.isfinite(df.loc[~none, ["latency_ms", "prefill_s"]]).all().all()
