"""The `gqa` command line: JSON contract, readable output, and clean failures (exit 2)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gqa_lib.cli import main

HF = Path(__file__).parent / "data" / "hf"


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cost_json_llama_1b_128k(capsys):
    code, out, _ = run(capsys, "cost", "--model", "llama-3.2-1b", "--context", "128k", "--json")
    assert code == 0
    d = json.loads(out)
    T = 131072
    # hand derivation: see tests/test_cost.py::test_llama32_1b_at_128k_by_hand
    assert d["params_total"] == 1_235_814_400
    assert d["params_non_embedding"] == 973_146_112
    assert d["kv_cache_values"] == 2 * 16 * 8 * 64 * T
    assert d["kv_cache_bytes"] == 2 * 2 * 16 * 8 * 64 * T
    assert d["flops_time_variant"] == 4 * T * 16 * 64 * 32
    assert d["flops_per_token"] == d["flops_time_invariant"] + d["flops_time_variant"]
    assert d["memory_values"] == 973_146_112 + 2 * 16 * 8 * 64 * T
    assert d["memory_bytes"] == 2 * d["memory_values"]
    assert d["config"]["n_kv_head"] == 8


@pytest.mark.parametrize("ctx", ["131072", "128k", "128K"])
def test_context_spellings(capsys, ctx):
    _, out, _ = run(capsys, "cost", "--model", "llama-3.1-8b", "--context", ctx, "--json")
    assert json.loads(out)["context_len"] == 131072


def test_hf_config_offline_and_table(capsys):
    code, out, _ = run(capsys, "cost", "--hf-config", str(HF / "gemma-7b.json"), "--context",
                       "8k", "32k")
    assert code == 0
    assert "n_head*d_head != d_model" in out and "32K" in out and "8K" in out


def test_shape_flags_and_overrides(capsys):
    code, out, _ = run(capsys, "cost", "--n-layer", "32", "--d-model", "2048", "--n-head", "8",
                       "--n-kv-head", "1", "--d-head", "64", "--context", "8k", "--json")
    assert code == 0 and json.loads(out)["config"]["n_head"] == 8
    code, out, _ = run(capsys, "cost", "--model", "llama-3.2-1b", "--n-kv-head", "1",
                       "--context", "8k", "--json")
    d = json.loads(out)
    assert d["config"]["n_kv_head"] == 1 and d["kv_cache_values"] == 2 * 16 * 64 * 8192


def test_batch_and_dtype(capsys):
    _, out, _ = run(capsys, "cost", "--model", "llama-3.1-8b", "--context", "1", "--batch", "4",
                    "--dtype", "fp8", "--json")
    assert json.loads(out)["kv_cache_bytes"] == 4 * 64 * 1024


def test_models(capsys):
    code, out, _ = run(capsys, "models", "--json")
    names = [m["name"] for m in json.loads(out)]
    assert code == 0 and "gemma-7b" in names and "paper-d64L-L32" in names
    code, out, _ = run(capsys, "models")
    assert "llama-3.1-70b" in out


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["cost", "--model", "lama-3.2-1b", "--context", "8k"], "did you mean 'llama-3.2-1b'"),
        (["cost", "--model", "llama-3.2-1b", "--context", "0"], "context must be > 0"),
        (["cost", "--model", "llama-3.2-1b", "--context", "8q"], "is not a token count"),
        (["cost", "--model", "llama-3.2-1b", "--context", "8k", "--dtype", "fp6"], "invalid choice"),
        (["cost", "--model", "llama-3.2-1b", "--context", "8k", "--batch", "0"], "--batch must be"),
        (["cost", "--n-layer", "2", "--d-model", "64", "--n-head", "12", "--n-kv-head", "8",
          "--context", "8k"], "--n-head 12 is not a multiple of --n-kv-head 8"),
        (["cost", "--n-layer", "2", "--context", "8k"], "--d-model, --n-head, --n-kv-head"),
        (["cost", "--hf-config", "/nonexistent/config.json", "--context", "8k"], "not found"),
        (["cost", "--model", "llama-3.2-1b", "--config", "x.toml", "--context", "8k"],
         "at most one of"),
    ],
)
def test_bad_input_exits_2_without_traceback(capsys, argv, msg):
    try:  # argparse errors raise SystemExit(2); library errors return 2 from main()
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert msg in err and "Traceback" not in err


def test_console_script_end_to_end():
    # The installed entry point, as a user runs it: exit code and stderr.
    r = subprocess.run([sys.executable, "-m", "gqa_lib.cli", "cost", "--model", "nope",
                        "--context", "8k"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown model 'nope'" in r.stderr and "Traceback" not in r.stderr


def test_a_tiny_runs_rate_is_not_printed_as_zero():
    from gqa_lib.units import format_rate

    assert format_rate(0.103) == "0.103" and format_rate(92145.4) == "92,145"
    assert format_rate(100) == "100"
