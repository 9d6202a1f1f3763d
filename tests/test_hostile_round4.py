"""Hostile inputs, round 4 (a review of 2026-12-06): every case below printed a wrong or
misleading figure, an unexact count or a traceback before its fix. Same contract as
tests/test_hostile.py: the exact right answer, or exit 2 with one line naming the problem."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gqa_lib import GQAError, cost, get_preset
from gqa_lib.arch.hardware import Accelerator
from gqa_lib.evidence.paper import joint_model
from gqa_lib.fit.recipe import (CostSettings, affordable_params, max_context_for_memory,
                                min_loss_for_budget, optimize)
from gqa_lib.units import format_bytes, format_count, format_flops, format_z

from tests.test_hostile import cli, refused

OPT = ("optimize", "--context", "128k", "--target-loss", "2.615")
SERVE = (*OPT, "--objective", "throughput", "--hardware", "h100")


@pytest.fixture(scope="module")
def paper():
    return joint_model()


# ----- serving figures: no overflowed or unexact count printed as an answer -----------------
@pytest.mark.parametrize("target", ["1e308", "1e20"])
def test_a_throughput_needing_more_than_2_53_accelerators_is_refused(capsys, target):
    """Was: '100,000,...' (300 digits) and 'none suffices: it does not fit in memory' for a
    pick that fits, or 54,059,078,731,473,656 accelerators (above 2**53: not exact)."""
    refused(*cli(*SERVE, "--throughput", target, capsys=capsys), "--throughput", "2**53")


def test_a_fractional_throughput_target_is_printed_as_given(capsys):
    rc, out, _ = cli(*SERVE, "--throughput", "0.4", capsys=capsys)
    assert rc == 0 and "accelerators for 0.4 tokens/s: 1" in out


@pytest.mark.parametrize("rate", [-5.0, float("nan"), None, "x", float("inf")])
def test_accelerators_needed_refuses_a_rate_that_is_no_rate(rate):
    with pytest.raises(GQAError, match="tokens_per_s_per_accelerator"):
        cost.accelerators_needed(100.0, rate)
    assert cost.accelerators_needed(100.0, 0.0) == math.inf  # 0: does not fit, said in words


def test_an_accelerator_whose_ridge_point_overflows_is_refused(tmp_path, capsys):
    with pytest.raises(GQAError, match="ridge"):
        Accelerator(key="x", name="x", bf16_flops_per_s=1e308,
                    memory_bandwidth_bytes_per_s=1e-308, memory_capacity_bytes=8e10)
    f = tmp_path / "hw.toml"
    f.write_text('[accelerators.big]\nname = "big"\nbf16_flops_per_s = 1e300\n'
                 'memory_bandwidth_bytes_per_s = 1e12\nmemory_capacity_bytes = 8e10\n')
    rc, out, _ = cli("hardware", "--file", f, capsys=capsys)
    row = next(line for line in out.splitlines() if line.startswith("big"))
    assert rc == 0 and row.split()[2] == "1e+288" and len(row) < 120  # not 300 digits


def test_z_of_other_exponents_is_not_printed_with_75_digits(capsys):
    rc, out, _ = cli(*OPT, "--lambda", "0.5", "--alpha", "5", "--beta", "5", capsys=capsys)
    assert rc == 0 and max(map(len, out.split())) < 40
    assert format_z(3.8127e74) == "3.813e+74" and format_z(56604.8) == "56,605"


def test_the_memory_refusal_names_the_share_and_the_memory_used(capsys):
    """Was: '(141 GB)', the datasheet figure, though the calibrated model used the measured
    150.1 GB and only 1% of it (--memory-fraction 0.01, unnamed)."""
    refused(*cli(*OPT, "--objective", "throughput", "--hardware", "h200", "--memory-fraction",
                 "0.01", capsys=capsys), "memory_fraction 0.01 of 150.1 GB as measured")


def test_overridden_datasheet_figures_are_not_called_the_datasheet(capsys):
    rc, out, _ = cli(*SERVE[:-1], "h200", "--bandwidth", "1e12", capsys=capsys)
    assert rc == 0 and "(datasheet figures overridden by the user:" in out
    rc, out, _ = cli(*SERVE[:-1], "h200", "--bandwidth", "1e12", "--json", capsys=capsys)
    assert "overridden by the user" in json.loads(out)["hardware"]["note"]


def test_a_users_file_is_not_called_the_datasheet(tmp_path, capsys):
    f = tmp_path / "mine.toml"
    f.write_text('[accelerators.mine]\nname = "mine"\nbf16_flops_per_s = 5e14\n'
                 'memory_bandwidth_bytes_per_s = 2e12\nmemory_capacity_bytes = 8e10\n')
    rc, out, _ = cli(*SERVE[:-1], f, capsys=capsys)
    assert rc == 0 and "(figures from a user's file: 500.0 TFLOP/s" in out
    rc, out, _ = cli(*SERVE[:-1], "h100", capsys=capsys)
    assert "(datasheet: 989.4 TFLOP/s" in out


# ----- flags that would be ignored are refused ----------------------------------------------
@pytest.mark.parametrize("flags", [("--throughput", "100"), ("--batch", "4"), ("--datasheet",),
                                   ("--price-per-hour", "2"), ("--output-tokens", "10"),
                                   ("--memory-fraction", "0.5"), ("--flops-efficiency", "0.4")])
def test_serving_flags_without_hardware_are_refused(capsys, flags):
    refused(*cli(*OPT, *flags, capsys=capsys), flags[0], "--hardware")


@pytest.mark.parametrize("flags", [("--train-context", "512"), ("--allow-partial",)])
def test_csv_only_flags_with_the_papers_fit_are_refused(capsys, flags):
    refused(*cli(*OPT, *flags, capsys=capsys), flags[0], "--fit")


# ----- the shape to build -------------------------------------------------------------------
def test_the_build_of_a_sweep_fit_has_the_runs_head_size_and_vocabulary(capsys):
    """Was: heads of 64 and a 50,304-token embedding for runs of d_head 16 and V = 2,048."""
    rc, out, _ = cli("optimize", "--context", "512", "--target-loss", "4.0", "--fit",
                     "data/sweeps/cpu-v2.csv", "--json", capsys=capsys)
    b = json.loads(out)["build"]
    assert rc == 0 and (b["d_head"], b["vocab_size"]) == (16, 2048) and b["fitted_loss"] <= 4.0


@pytest.mark.parametrize("target", ["3.04", "2.62", "2.5", "2.76"])
def test_the_build_reaches_the_target_with_the_fewest_whole_layers(capsys, target):
    """Was: L* rounded to the nearest, so 15 of 40 targets' builds missed them (3.04 built 15
    layers, fitted 3.0562)."""
    rc, out, _ = cli("optimize", "--context", "128k", "--target-loss", target, "--json",
                     capsys=capsys)
    d = json.loads(out)
    b, best = d["build"], d["best"]
    assert rc == 0 and b["fitted_loss"] <= float(target)
    assert b["n_layer"] in (math.floor(best["n_layer"]), math.ceil(best["n_layer"]))


# ----- gqa cost: overrides that would be silently ignored or misexplained ------------------
@pytest.mark.parametrize("args, words", [
    (("--model", "mixtral-8x7b-v0.1", "--d-ff", "1000"), ("--d-ff", "14,336")),
    (("--model", "gemma-2-9b", "--n-layer", "10"), ("--n-layer 10", "layer_types")),
    (("--n-layer", "1", "--d-model", "4000000000000000", "--n-head", "1", "--n-kv-head", "1"),
     ("--d-model 4000000000000000",)),
])
def test_cost_overrides_are_refused_naming_the_flag(capsys, args, words):
    refused(*cli("cost", *args, "--context", "8k", capsys=capsys), *words)


def test_a_latent_attention_model_takes_n_head_for_both_heads(capsys):
    """Was: 'n_head=8 is not a multiple of n_kv_head=16' (MLA has one K/V per query head)."""
    rc, out, _ = cli("cost", "--model", "deepseek-v2-lite", "--n-head", "8", "--context", "8k",
                     capsys=capsys)
    assert rc == 0 and "H(8,8)" in out


def test_a_folder_without_config_json_is_named_as_such(tmp_path, capsys):
    refused(*cli("cost", "--hf-config", tmp_path, "--context", "8k", capsys=capsys),
            "has no config.json")


# ----- training and sweeps ------------------------------------------------------------------
def test_a_batch_larger_than_the_corpus_is_refused_not_a_memory_error(tmp_path, capsys):
    """Was: numpy's _ArrayMemoryError (191 GiB) as a traceback."""
    refused(*cli("train", "--model", "tiny", "--steps", "1", "--batch-size", "100000000",
                 "--out", tmp_path / "r", capsys=capsys), "--batch-size", "corpus")


def test_out_of_memory_anywhere_is_one_line(monkeypatch, capsys):
    from gqa_lib.cli import common

    def boom(args):
        raise MemoryError("Unable to allocate 191. GiB")

    monkeypatch.setitem(common.COMMANDS, "models", boom)
    refused(*cli("models", capsys=capsys), "out of memory")


def test_a_dry_run_with_json_prints_only_json(tmp_path, capsys):
    rc, out, err = cli("sweep", "data/sweeps/gpu-eq-v1.toml", "--out", tmp_path / "x.csv",
                       "--dry-run", "--json", capsys=capsys)
    assert rc == 0 and json.loads(out)["total"] == 28 and "H200" in err


# ----- the library: GQAError for every bad call, numpy numbers accepted ---------------------
@pytest.mark.parametrize("call, word", [
    (lambda m: optimize(None, 2.615, 131072), "model"),
    (lambda m: optimize("x", 2.615, 131072), "model"),
    (lambda m: optimize(m, 2.615, 131072, settings=None), "settings"),
    (lambda m: optimize(m, 2.615, 131072, configs="x"), "configs"),
    (lambda m: optimize(m, 2.615, 131072, configs=True), "configs"),
    (lambda m: optimize(m, 2.615, 131072, configs=(8, 1)), "configs"),
    (lambda m: max_context_for_memory(m, 2.615, None), "memory_values"),
    (lambda m: max_context_for_memory(m, 2.615, 1e20), "2**53"),
    (lambda m: affordable_params(m, 8, 1, 8192, 1e10), "1e15"),
    (lambda m: min_loss_for_budget(m, 131072, 1e300), "1e15"),
    (lambda m: cost.decode_throughput(get_preset("llama-3.2-1b"), 8192, "h100", batch=True),
     "batch"),
    (lambda m: cost.decode_throughput(get_preset("llama-3.2-1b"), 8192, "h100", batch="x"),
     "batch"),
    (lambda m: cost.request_seconds(get_preset("llama-3.2-1b"), 8192, "h100",
                                    output_tokens="5"), "output_tokens"),
    (lambda m: CostSettings(output_tokens="3", hardware="h100"), "output_tokens"),
])
def test_library_calls_raise_gqaerror_naming_the_parameter(paper, call, word):
    with pytest.raises(GQAError, match=word.replace("*", r"\*")):
        call(paper)


def test_numpy_numbers_are_numbers():
    """Was: 'price_per_hour must be a number' for np.float32(2.0)."""
    assert cost.cost_per_million_tokens(np.float32(2.0), 100.0) == pytest.approx(2 / 0.36)
    assert cost.cost_per_million_tokens(np.int64(2), 100.0) == pytest.approx(2 / 0.36)
    s = CostSettings(hardware="h100", objective="cost", price_per_hour=np.float32(2),
                     memory_fraction=np.float32(0.5))
    assert (s.price_per_hour, s.memory_fraction) == (2.0, 0.5)
    assert cost.decode_step(get_preset("llama-3.2-1b"), 8192, "h100", calibration="datasheet",
                            flops_efficiency=np.float32(0.5))["seconds"] > 0


@pytest.mark.parametrize("configs", [[(32, 8), (8, 1)], ((32, 8), (8, 1)),
                                     np.array([[32, 8], [8, 1]])])
def test_optimize_takes_a_list_of_candidate_pairs(paper, configs):
    rec = optimize(paper, 2.615, 131072, configs=configs)
    assert {(r["n_head"], r["n_kv_head"]) for r in rec.candidates.to_dict("records")} == {
        (32, 8), (8, 1)}


# ----- units at their boundaries ------------------------------------------------------------
@pytest.mark.parametrize("fmt, value, text", [
    (format_count, 999_616, "1 M"), (format_count, 950, "950"), (format_count, 999_499, "999 K"),
    (format_bytes, 2**30 - 2**19, "1 GiB"), (format_bytes, 1023, "1023 B"),
    (format_flops, 999.9e12, "1 PFLOP"), (format_flops, 4.2e12, "4.2 TFLOP"),
])
def test_a_rounded_figure_moves_to_the_next_unit(fmt, value, text):
    """Was: '1000 K', '1024 MiB', '1000 TFLOP'."""
    assert fmt(value) == text
