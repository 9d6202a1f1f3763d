"""A user's audit of the CLI (2026-12-07): each case printed a misleading answer or accepted a
flag that changed nothing before its fix. Same contract as tests/test_hostile.py: the right
answer, or exit 2 with one line naming the flag the user typed."""

from __future__ import annotations

import pytest

from tests.test_hostile import cli, refused

SERVE = ("optimize", "--context", "8k", "--target-loss", "2.6", "--objective", "throughput",
         "--hardware", "h100")


@pytest.mark.parametrize("argv, words", [
    # was: 'target_loss=2.0 is at or below ...', the library's name for the flag
    (("optimize", "--context", "8k", "--target-loss", "2.0"), ["--target-loss 2.0 is at or"]),
    (("cost", "--n-layer", "2", "--d-model", "128", "--n-head", "32", "--n-kv-head", "3",
      "--context", "8k"), ["--n-head 32 is not a multiple of --n-kv-head 3"]),
])
def test_refusals_name_the_flags_the_user_typed(capsys, argv, words):
    rc, out, err = cli(*argv, capsys=capsys)
    refused(rc, out, err, *words)
    assert "target_loss=" not in err and "n_head=" not in err


@pytest.mark.parametrize("argv, words", [
    # each was accepted and the output was identical to the run without it
    (("cost", "--model", "llama-3.2-1b", "--context", "8k", "--rope-theta", "5"),
     ["--rope-theta changes no count", "gqa train"]),
    (("cost", "--model", "llama-3.2-1b", "--context", "8k", "--mla", "decompressed"),
     ["--mla applies to a model with latent attention", "llama-3.2-1b has none"]),
    (("optimize", "--context", "8k", "--target-loss", "2.6", "--fit", "paper-measured",
      "--kv-rule", "ratio"), ["--kv-rule applies to --fit paper", "not to --fit paper-measured"]),
])
def test_a_flag_that_would_change_nothing_is_refused(capsys, argv, words):
    refused(*cli(*argv, capsys=capsys), *words)


def test_mla_still_applies_to_a_latent_attention_model(capsys):
    rc, out, _ = cli("cost", "--model", "deepseek-v2-lite", "--context", "8k", "--mla",
                     "decompressed", capsys=capsys)
    assert rc == 0 and "--mla decompressed" in out


@pytest.mark.parametrize("flag, value, unit", [
    # was: '--bandwidth 3.35' (TB/s, the unit every printout uses) costed as 3.35 bytes/s:
    # exit 0, '3.68e-10 tokens/s' and '1.48e+13 ms per token'
    ("--bandwidth", "3.35", "in bytes/s (3.35e12 for 3.35 TB/s)"),
    ("--flops-per-s", "989", "in FLOP/s (989e12 for 989 TFLOP/s)"),
    ("--memory-gb", "80e9", "in GB of 1e9 bytes"),
])
def test_a_device_figure_in_another_unit_is_refused_naming_the_unit(capsys, flag, value, unit):
    refused(*cli(*SERVE, flag, value, capsys=capsys), f"{flag} is {unit}", repr(value))


def test_a_context_no_model_has_is_counted_with_a_warning(capsys):
    """'128000k' (a slip for 128000 or 128k) is 125M tokens: counted exactly, and said."""
    rc, out, err = cli("cost", "--model", "llama-3.2-1b", "--context", "128000k", capsys=capsys)
    assert rc == 0 and "125M" in out
    assert "warning: T = 125M tokens (131,072,000) is over 16M" in err
    rc, out, err = cli("cost", "--model", "llama-3.2-1b", "--context", "128k", capsys=capsys)
    assert rc == 0 and "warning" not in err


def test_table4_without_refits_does_not_call_a_small_gap_a_tie(capsys):
    """Was: 10 mismatches labelled 'near tie ... within the digitisation error', 5 of which
    the refits show are not noise (the recipe page)."""
    rc, out, _ = cli("table4", capsys=capsys)
    assert rc == 0 and "near tie:" not in out
    assert "small gap:" in out and "--bootstrap N tells" in out


def test_table4_bootstrap_is_bounded(capsys):
    refused(*cli("table4", "--bootstrap", "1000000", capsys=capsys),
            "--bootstrap must be at most 10,000")


def test_a_dry_run_gives_its_estimate_in_json(capsys, tmp_path):
    """Was: --dry-run --json printed only {"total", "skipped", "ok", "failed"} (the estimate
    went to stderr as text), and the text ended 'done: 0 ok, 0 failed, 0 skipped'."""
    import json

    rc, out, err = cli("sweep", "data/sweeps/gpu-eq-v1.toml", "--out", tmp_path / "g.csv",
                       "--dry-run", "--json", capsys=capsys)
    counts = json.loads(out.strip().splitlines()[-1])
    assert rc == 0 and set(counts["estimate_s"]) == {"h200", "t4", "cpu"}
    assert 60 < counts["estimate_s"]["h200"] <= 360 and counts["estimate_device"] == "cpu"
    rc, out, err = cli("sweep", "data/sweeps/gpu-eq-v1.toml", "--out", tmp_path / "g.csv",
                       "--dry-run", capsys=capsys)
    assert rc == 0 and "dry run: nothing trained; 28 of 28 runs to do" in out
    assert not (tmp_path / "g.csv").exists()
