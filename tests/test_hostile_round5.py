"""Hostile inputs, round 5 (an audit of the CLI and library entry points): every case below
printed a wrong number, a traceback, or overwrote or misnamed something before its fix. Same
contract as tests/test_hostile.py: the exact right answer, or exit 2 with one line naming the
problem."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os

import pandas as pd
import pytest

from gqa_lib import GQAError, ModelConfig, cost, get_preset
from gqa_lib.arch.hf import from_hf_config
from gqa_lib.fit.per_head import read_runs
from gqa_lib.io import DATA_DIR

from tests.test_hostile import FAST, GRID, ROOT, TINY, cli, refused
from tests.test_recipe import write_runs

HF = ROOT / "tests" / "data" / "hf"
GPT2_8 = {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 64,
          "n_positions": 8}


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)  # transformers' warnings about the odd configs
    yield
    logging.disable(logging.NOTSET)


# ----- 1. a norm override changes the count it should ------------------------------------------
def test_a_norm_override_counts_the_new_norms(capsys):
    """Was: --norm layernorm on an RMSNorm model (and --norm rmsnorm on GPT-2) kept the old
    vectors per norm, so the total did not move."""
    llama = get_preset("llama-3.2-1b")
    rc, out, _ = cli("cost", "--model", "llama-3.2-1b", "--context", "8k", "--norm", "layernorm",
                     "--json", capsys=capsys)
    # one bias per norm: (2 L + 1) d more than RMSNorm's gains alone
    assert rc == 0
    assert json.loads(out)["params_total"] == cost.params_total(llama) + 33 * 2048 == 1_235_881_984
    gpt2 = from_hf_config(HF / "oracle" / "gpt2.json")
    rc, out, _ = cli("cost", "--hf-config", HF / "oracle" / "gpt2.json", "--norm", "rmsnorm",
                     "--context", "1k", "--json", capsys=capsys)
    assert json.loads(out)["params"]["norms"] == (2 * gpt2.n_layer + 1) * gpt2.d_model


def test_vectors_per_norm_follow_the_norm_unless_set_apart_from_it(tmp_path, capsys):
    assert dataclasses.replace(TINY, norm="layernorm").n_norm_vectors == 2
    assert ModelConfig(2, 64, 4, 2, norm_vectors=1) == ModelConfig(2, 64, 4, 2)  # one form
    olmo = ModelConfig(2, 64, 4, 2, norm="layernorm", norm_vectors=0)  # no gain, no bias
    assert dataclasses.replace(olmo, norm="rmsnorm").n_norm_vectors == 0
    cfg = tmp_path / "m.toml"
    cfg.write_text("n_layer = 2\nd_model = 64\nn_head = 4\nn_kv_head = 2\nvocab_size = 128\n")
    rc, out, _ = cli("cost", "--config", cfg, "--norm", "layernorm", "--context", "1k",
                     "--json", capsys=capsys)
    assert json.loads(out)["params"]["norms"] == (2 * 2 + 1) * 64 * 2


def test_the_training_model_builds_a_layernorm_override():
    """Was: 'norm_vectors=1 is supported by the cost model only' for --norm layernorm."""
    from gqa_lib.train.model import GQATransformer

    cfg = dataclasses.replace(TINY, norm="layernorm")
    assert GQATransformer(cfg).num_params() == cost.params_total(cfg)


# ----- 2. a context past a learned position table ----------------------------------------------
def test_a_context_past_the_learned_positions_is_refused(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(GPT2_8))
    refused(*cli("cost", "--hf-config", path, "--context", "9", "1M", capsys=capsys),
            "context_len=9 exceeds n_positions=8", "at most 8")
    assert cli("cost", "--hf-config", path, "--context", "8", capsys=capsys)[0] == 0
    cfg = from_hf_config(GPT2_8)
    for count in (lambda: cost.kv_cache_values(cfg, [4, 2048]),
                  lambda: cost.prefill_flops(cfg, 9), lambda: cost.training_flops(cfg, 1e6, 9),
                  lambda: cost.decode_seconds(cfg, 9, "h100")):
        with pytest.raises(GQAError, match="n_positions=8"):
            count()
    assert cost.kv_cache_values(get_preset("llama-3.2-1b"), 2**20) > 0  # RoPE: no table


def test_transformers_cannot_run_past_n_positions():
    """The oracle of the refusal above: GPT-2's position embedding has no row for token 9."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    raw = {k: v for k, v in GPT2_8.items() if k != "model_type"}
    model = transformers.AutoModelForCausalLM.from_config(
        transformers.AutoConfig.for_model("gpt2", **raw)).eval()
    with torch.no_grad():
        model(torch.zeros(1, 8, dtype=torch.long))
        with pytest.raises(IndexError):
            model(torch.zeros(1, 9, dtype=torch.long))


# ----- 3, 4. flags and fields a model type does not have ---------------------------------------
@pytest.mark.parametrize("flag", ["--qkv-bias", "--qk-norm"])
def test_gqa_only_flags_on_latent_attention_are_refused(capsys, flag):
    refused(*cli("cost", "--model", "deepseek-v2-lite", flag, "--context", "8k",
                 capsys=capsys), flag, "latent attention")
    with pytest.raises(GQAError, match=flag[2:].replace("-", "_")):
        dataclasses.replace(get_preset("deepseek-v2-lite"), **{flag[2:].replace("-", "_"): True})


@pytest.mark.parametrize("raw", [
    {**GPT2_8, "sliding_window": 4},
    {"model_type": "falcon", "num_hidden_layers": 2, "hidden_size": 64,
     "num_attention_heads": 4, "vocab_size": 128, "sliding_window": 8},
])
def test_a_window_on_a_model_without_one_is_refused(raw):
    """Was: ignored (transformers' GPT-2 and Falcon attend every earlier token)."""
    with pytest.raises(GQAError, match="sliding_window=.* is not supported for"):
        from_hf_config(raw)


# ----- 5. a damaged runs CSV ---------------------------------------------------------------
@pytest.mark.parametrize("column, value, words", [
    ("vocab_size", "abc", ["'vocab_size' has a missing or non-numeric value", "'abc'"]),
    ("vocab_size", "", ["'vocab_size' has a missing", "an empty cell"]),
    ("vocab_size", 2048.5, ["'vocab_size' must be a whole number"]),
    ("n_head", 8.5, ["'n_head' must be a whole number", "'8.5'"]),
    ("d_head", 16.5, ["'d_head' must be a whole number"]),
    ("context", 512.5, ["'context' must be a whole number"]),
    ("n_kv_head", 3, ["n_kv_head=3 does not divide n_head=8"]),
    ("seed", -1, ["'seed' must be >= 0", "'-1'"]),
    ("d_head", -16, ["'d_head' must be > 0", "'-16'"]),
    ("val_loss_nats", 1e300, ["val_loss_nats=1e+300", "10 x ln V"]),
])
def test_a_damaged_runs_csv_is_refused_naming_line_and_column(tmp_path, capsys, column, value,
                                                              words):
    """Was: a bad vocab_size became 50,304, a fraction was truncated, (8, 3) became a
    candidate, a loss of 1e300 gave a pick (and RuntimeWarnings)."""
    path = write_runs(tmp_path / "runs.csv")
    df = pd.read_csv(path).assign(vocab_size=2048)
    df[column] = df[column].astype(object)
    df.loc[0, column] = value  # n_head 8 in the first row
    df.to_csv(path, index=False)
    refused(*cli("optimize", "--context", "512", "--target-loss", "3.5", "--fit", path,
                 capsys=capsys), f"{path}:2:", *words)


def test_every_committed_sweep_reads_as_runs():
    """The checks above accept what our sweeps wrote (mqar-v1's losses reach 2.5 ln V)."""
    for path in sorted((DATA_DIR / "sweeps").glob("*.csv")):
        read_runs(path, allow_empty=True)


# ----- 6, 7, 10. gqa train -----------------------------------------------------------------
@pytest.mark.parametrize("lr", ["1e39", "3e38"])
def test_a_learning_rate_past_float32_is_refused_before_training(tmp_path, capsys, lr):
    """Was: a RuntimeError from AdamW's step (3e38 / (1 - 0.9) overflows float32)."""
    from gqa_lib.train.settings import TrainConfig

    refused(*cli("train", *FAST, "--steps", "2", "--lr", lr, "--out", tmp_path / "r",
                 capsys=capsys), f"--lr {float(lr):g}", "float32")
    assert not (tmp_path / "r").exists()
    assert TrainConfig(lr=3.4e37).lr == 3.4e37


def test_mps_without_mps_is_one_line(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    refused(*cli("train", *FAST, "--steps", "2", "--device", "mps", "--out", tmp_path / "r",
                 capsys=capsys), "--device 'mps'", "no MPS device")


@pytest.mark.parametrize("files", [
    {"notes.txt": "mine"},
    {"config.json": '{"lr": 1}', "metrics.jsonl": "my numbers\n"},
    {"metrics.jsonl": "my numbers\n"},
])
def test_train_never_writes_over_files_it_did_not_write(tmp_path, capsys, files):
    out = tmp_path / "r"
    out.mkdir()
    for name, text in files.items():
        (out / name).write_text(text)
    refused(*cli("train", *FAST, "--steps", "2", "--out", out, capsys=capsys),
            f"--out {out} is not empty", "holds no run of gqa train")
    assert {p.name: p.read_text() for p in out.iterdir()} == files


def test_a_start_stopped_before_its_first_checkpoint_may_start_again(tmp_path):
    from gqa_lib.train.loop import _refuse_foreign_files

    (tmp_path / "config.json").write_text(json.dumps({"model": {}, "train": {}}))
    (tmp_path / "metrics.jsonl").write_text("")
    _refuse_foreign_files(tmp_path)  # what a diverged first step leaves: gqa's own files


def test_a_start_killed_while_writing_its_first_checkpoint_may_start_again(tmp_path, capsys):
    """A sweep killed while a run wrote its config.json or its first checkpoint left that
    write's temporary file (.config.json.HOST-PID.XXXX.tmp) in the run's folder; the resumed
    sweep took it for a foreign file, refused the run and exited 1 (seen once in CI, under
    load; reproduced by killing a sweep as soon as such a file appears). The temporary file
    of a writer that is gone is the command's own, and the run starts."""
    import subprocess
    import sys

    from gqa_lib import io

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    out = tmp_path / "r"
    assert cli("train", *FAST, "--steps", "2", "--out", out, capsys=capsys)[0] == 0
    (out / "ckpt.pt").unlink()
    (out / "final.json").unlink()
    orphan = out / f".ckpt.pt.{io._HOST}-{dead}.abc123.tmp"
    orphan.write_bytes(b"half a checkpoint")
    (out / f".config.json.{io._HOST}-{dead}.x9.tmp").write_text("{")
    assert io.orphan_temporary(orphan.name) and io.orphan_temporary(orphan.name, "ckpt.pt")
    assert not io.orphan_temporary(orphan.name, "final.json")
    assert not io.orphan_temporary(f".ckpt.pt.{io._HOST}-{os.getpid()}.abc.tmp")  # alive
    assert not io.orphan_temporary("notes.tmp")
    assert cli("train", *FAST, "--steps", "2", "--out", out, capsys=capsys)[0] == 0
    assert (out / "final.json").is_file() and not orphan.exists()  # the next write cleans it


# ----- 8. hardware files -------------------------------------------------------------------
HW = """[accelerators.x]
name = "X"
bf16_flops_per_s = 989e12
memory_bandwidth_bytes_per_s = 3.35e12
memory_capacity_bytes = 80e9
"""


@pytest.mark.parametrize("line, words", [
    ("date = 2022-11-01", ["date must be a string", "quotes"]),
    ("aliases = [1, 2]", ["aliases must be a list of non-empty strings"]),
    ('aliases = "xpu"', ["aliases must be a list", "'xpu'"]),
    ("name = 5", ["name must be a non-empty string"]),
    ('source = ["a"]', ["source must be a string"]),
])
def test_hardware_file_fields_are_type_checked(tmp_path, capsys, line, words):
    """Was: a TypeError from --json (a TOML date), an AttributeError (integer aliases), and
    'xpu' split into letters, so that --hardware p selected it."""
    path = tmp_path / "hw.toml"
    text = HW.replace('name = "X"\n', "") if line.startswith("name") else HW
    path.write_text(text + line + "\n")
    refused(*cli("hardware", "--file", path, "--json", capsys=capsys), str(path), "x: ", *words)
    refused(*cli("optimize", "--context", "8k", "--target-loss", "2.615", "--objective",
                 "throughput", "--hardware", "p", "--hardware-file", path, capsys=capsys),
            *words)


# ----- 9. library entry points -------------------------------------------------------------
@pytest.mark.parametrize("call, word", [
    (lambda: cost.d_ff_for_params(TINY, None), "target_non_embedding"),
    (lambda: cost.d_ff_for_params(TINY, "x"), "target_non_embedding"),
    (lambda: cost.d_ff_for_params(TINY, math.nan), "target_non_embedding"),
    (lambda: cost.d_ff_for_params("x", 100), "d_ff_for_params: cfg must be a ModelConfig"),
    (lambda: cost.layer_summary("llama"), "layer_summary: cfg must be a ModelConfig"),
    (lambda: cost.layer_summary(None), "layer_summary: cfg"),
    (lambda: cost.layer_summary({"n_layer": 2}), "layer_summary: cfg"),
    (lambda: cost.summary("llama", 8192), "summary: cfg"),
])
def test_cost_entry_points_name_their_parameter(call, word):
    with pytest.raises(GQAError, match=word):
        call()


# ----- 11, 12. grids -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../etc", "/tmp/runs", ".hidden", "a/b", "x" * 101, "..",
                                  "caf\u00e9"])
def test_a_grid_name_must_be_one_plain_folder_name(tmp_path, capsys, name):
    """Was: runs written to runs/../../etc or to an absolute path."""
    g = tmp_path / "g.toml"
    g.write_text(GRID.replace('name = "hostile"', f"name = {json.dumps(name)}"))
    refused(*cli("sweep", g, "--out", tmp_path / "s.csv", "--dry-run", capsys=capsys),
            "must be one plain folder name")


@pytest.mark.parametrize("fields, word", [
    ("n_experts = 4\nn_experts_active = 2\nd_ff_expert = 16\n", "n_experts=4"),
    ("sliding_window = 8\n", "sliding_window=8"),
    ('sliding_window = 8\nlayer_types = ["sliding_attention"]\n', "sliding_window=8"),
    ("attention_chunk = 8\nlayer_types = [\"chunked_attention\"]\n", "layer_types="),
])
def test_a_dry_run_refuses_a_model_training_cannot_build(tmp_path, capsys, fields, word):
    """Was: listed and timed; every run then failed. The message no longer counts
    sliding_window among the fields the training model builds."""
    g = tmp_path / "g.toml"
    g.write_text(GRID.replace("[model]\n", "[model]\n" + fields))
    rc, out, err = cli("sweep", g, "--out", tmp_path / "s.csv", "--dry-run", capsys=capsys)
    refused(rc, out, err, word, "cost model only", "full attention in every layer")
    assert "sliding_window" not in err.split("from ")[-1]


# ----- 13, 14. serving flags and contexts in messages -----------------------------------------
SERVE = ("optimize", "--context", "128k", "--target-loss", "2.615", "--objective",
         "throughput", "--hardware", "h100")


@pytest.mark.parametrize("extra, words, wrong", [
    (("--memory-gb", "1e300"), ["--memory-gb is in GB", "'1e300'"], "memory_capacity_bytes"),
    (("--datasheet", "--flops-efficiency", "1e-310"), ["--flops-efficiency=1e-310", "1%"],
     "bf16_flops_per_s"),
    (("--datasheet", "--flops-efficiency", "1e-300"), ["--flops-efficiency=1e-300", "1%"],
     "bf16_flops_per_s"),
    (("--datasheet", "--bandwidth-efficiency", "0.009"), ["--bandwidth-efficiency=0.009"],
     "memory_bandwidth_bytes_per_s"),
    (("--bandwidth", "1e-300"), ["--bandwidth is in bytes/s", "'1e-300'", "3.35e12"],
     "memory_bandwidth_bytes_per_s"),
])
def test_serving_refusals_name_the_flag_given(capsys, extra, words, wrong):
    """Was: 'h100: memory_capacity_bytes ... got inf', bf16_flops_per_s blamed for an
    efficiency, and 1e-300 printed as '0% of peak' with latencies of 1e297 ms. A figure no
    device has in the flag's unit is now refused by the flag itself, naming the unit."""
    rc, out, err = cli(*SERVE, *extra, capsys=capsys)
    refused(rc, out, err, *words)
    assert wrong not in err


def test_an_efficiency_below_one_percent_is_refused_by_the_library():
    with pytest.raises(GQAError, match="flops_efficiency=1e-300 is below 1%"):
        cost.decode_seconds(TINY, 8192, "h100", calibration="datasheet", flops_efficiency=1e-300)
    assert cost.decode_seconds(TINY, 8192, "h100", calibration="datasheet",
                               flops_efficiency=cost.MIN_EFFICIENCY) > 0


def test_contexts_in_refusals_use_the_context_format(capsys):
    """Was: 'at context 6.71089e+07'."""
    rc, out, err = cli(*SERVE[:2], "64M", *SERVE[3:], capsys=capsys)
    refused(rc, out, err, "at context 64M")
    assert "e+" not in err
