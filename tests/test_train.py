"""Training loop: schedule, optimizer groups, learning, exact resume after a kill, NaN guard,
checkpoint format, CLI, and DDP on CPU through torchrun (gloo, 2 processes)."""

import dataclasses
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gqa_lib import GQAError, get_preset
from gqa_lib.train.settings import run_identity, run_key
from gqa_lib.train.loop import (TrainConfig, TrainingDiverged, load_checkpoint, lr_at,
                                make_optimizer, train)
from gqa_lib.train.model import GQATransformer

TINY = get_preset("tiny")
FAST = dict(batch_size=4, context_len=64, eval_every=5, eval_tokens=1024)
BIN = Path(sys.executable).parent


def test_wsd_schedule():
    tc = TrainConfig(steps=100, lr=1.0)
    lrs = [lr_at(s, tc) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # 10% linear warm-up
    assert all(lr == 1.0 for lr in lrs[10:80])  # constant
    assert lrs[80] < 1.0 and lrs[-1] == pytest.approx(0.1)  # cosine over last 20% to 10%
    assert all(a >= b for a, b in zip(lrs[80:], lrs[81:]))


def test_weight_decay_on_matrices_only():
    opt = make_optimizer(GQATransformer(TINY), TrainConfig())
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert opt.defaults["betas"] == (0.9, 0.95)


def test_budget():
    tc = TrainConfig(batch_size=8, context_len=128)
    assert tc.with_budget(TINY, tokens=1024 * 100).steps == 100
    n = 344_448  # non-embedding parameters of `tiny`
    assert tc.with_budget(TINY, tokens_per_param=20).steps == round(20 * n / 1024)
    with pytest.raises(GQAError, match="exactly one"):
        tc.with_budget(TINY)
    # a budget under one token names tokens_per_param and its range, not a "tokens" not given
    with pytest.raises(GQAError, match=r"tokens_per_param=1e-09 gives .* choose 2\.9e-06 to"):
        tc.with_budget(TINY, tokens_per_param=1e-9)


@pytest.mark.parametrize("kw, msg", [
    (dict(steps=0), "steps must be a positive integer"),
    (dict(lr=-1.0), "lr must be > 0"),
    (dict(warmup_frac=0.9, decay_frac=0.2), "warmup_frac \\+ decay_frac"),
    (dict(device="tpu"), "device='tpu' is not allowed"),
])
def test_bad_train_config(kw, msg):
    with pytest.raises(GQAError, match=msg):
        TrainConfig(**kw)


def test_tiny_learns_quickly(tmp_path):
    tc = TrainConfig(steps=150, batch_size=8, context_len=128, eval_every=75)
    final = train(TINY, tc, tmp_path / "run", progress=False)
    assert final["val_loss"] < final["unigram_entropy"] - 0.7  # below unigram entropy
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [75, 150] and all("val_loss" in m for m in lines)
    assert lines[1]["val_loss"] < lines[0]["val_loss"]
    for key in ("val_loss", "step", "tokens", "wall_s", "val_bpb", "train_flops"):
        assert key in json.loads((tmp_path / "run" / "final.json").read_text())


@pytest.mark.slow
def test_default_tiny_cli_run_beats_unigram_entropy_clearly(tmp_path):
    # The README's example: `gqa train --model tiny --steps 300` (about a minute on 2 cores).
    r = subprocess.run([str(BIN / "gqa"), "train", "--model", "tiny", "--steps", "300",
                        "--out", str(tmp_path / "t"), "--json"], capture_output=True, text=True,
                       check=True)
    final = json.loads(r.stdout)
    assert final["val_loss"] < final["unigram_entropy"] - 1.5
    assert final["wall_s"] < 300


def test_checkpoint_loads_with_weights_only(tmp_path):
    train(TINY, TrainConfig(steps=5, **FAST), tmp_path / "r", progress=False)
    state = torch.load(tmp_path / "r" / "ckpt.pt", weights_only=True)
    assert state["step"] == 5
    model, saved = load_checkpoint(tmp_path / "r" / "ckpt.pt")
    assert saved["model"]["n_kv_head"] == TINY.n_kv_head and model.num_params() == 606_592


def test_resume_refusals(tmp_path):
    tc = TrainConfig(steps=5, **FAST)
    with pytest.raises(GQAError, match="no checkpoint"):
        train(TINY, tc, tmp_path / "none", resume=True, progress=False)
    train(TINY, tc, tmp_path / "r", progress=False, stop_after=2)
    with pytest.raises(GQAError, match="already holds a run"):
        train(TINY, tc, tmp_path / "r", progress=False)
    with pytest.raises(GQAError, match=r"other settings \(train.steps 5 -> 6\)"):
        train(TINY, TrainConfig(steps=6, **FAST), tmp_path / "r", resume=True, progress=False)


def test_run_identity_covers_every_setting_that_changes_a_result(tmp_path):
    base = run_key(run_identity(TINY, TrainConfig(**FAST)))
    changed = dict(steps=7, batch_size=2, context_len=32, lr=1e-2, min_lr_ratio=0.2,
                   warmup_frac=0.2, decay_frac=0.3, weight_decay=0.0, beta1=0.8, beta2=0.99,
                   grad_clip=0.5, eval_every=3, eval_tokens=512, seed=1, probe_samples=4)
    keys = {f: run_key(run_identity(TINY, TrainConfig(**{**FAST, f: v})))
            for f, v in changed.items()}
    assert base not in keys.values() and len(set(keys.values())) == len(keys)
    for f, v in dict(n_layer=3, d_model=192, n_kv_head=8, d_head=8, d_ff=100, ffn="gelu",
                     tie_embeddings=False, qk_norm=True, rope_theta=1e4 + 1,
                     sliding_window=16).items():
        assert run_key(run_identity(dataclasses.replace(TINY, **{f: v}),
                                    TrainConfig(**FAST))) != base, f
    assert run_key(run_identity(TINY, TrainConfig(**FAST), grid="g")) != base
    # execution settings and labels are not part of it; lr = 1 and lr = 1.0 are one setting
    assert run_key(run_identity(dataclasses.replace(TINY, name="x"),
                                TrainConfig(**FAST, device="cpu", compile=True))) == base
    assert (run_key(run_identity(TINY, TrainConfig(**{**FAST, "lr": 1})))
            == run_key(run_identity(TINY, TrainConfig(**{**FAST, "lr": 1.0}))))
    # the corpus is keyed by its content, not only its name
    corpus = tmp_path / "c.txt"
    corpus.write_text("one\n<|endoftext|>\ntwo\n")
    k1 = run_key(run_identity(TINY, TrainConfig(**FAST, data=str(corpus))))
    corpus.write_text("one\n<|endoftext|>\nthree\n")
    assert run_key(run_identity(TINY, TrainConfig(**FAST, data=str(corpus)))) != k1
    ident = run_identity(TINY, TrainConfig(**FAST))
    assert ident["train"]["data"]["name"] == "web" and len(ident["train"]["data"]["sha256"]) == 64
    assert "tokenizer_sha256" in ident["train"]["data"] and ident["code_version"] >= 1


def test_resume_of_a_finished_run_checks_its_identity(tmp_path):
    tc = TrainConfig(steps=5, **FAST)
    first = train(TINY, tc, tmp_path / "r", progress=False)
    assert first["run_key"] == run_key(run_identity(TINY, tc))
    assert torch.load(tmp_path / "r" / "ckpt.pt", weights_only=True)["identity_json"]
    (tmp_path / "r" / "ckpt.pt").unlink()  # as a sweep leaves it: final.json only
    assert train(TINY, tc, tmp_path / "r", resume=True, progress=False) == first
    with pytest.raises(GQAError, match=r"train.lr 0.003 -> 0.01; train.steps 5 -> 64"):
        train(TINY, TrainConfig(**{**FAST, "steps": 64, "lr": 0.01}), tmp_path / "r",
              resume=True, progress=False)
    with pytest.raises(GQAError, match=r"other settings \(grid  -> g\)"):
        train(TINY, tc, tmp_path / "r", resume=True, progress=False, grid="g")
    with pytest.raises(GQAError, match="already holds a run"):
        train(TINY, tc, tmp_path / "r", progress=False)


def test_resume_of_a_run_without_identity_compares_its_config(tmp_path):
    tc = TrainConfig(steps=5, **FAST)
    final = train(TINY, tc, tmp_path / "r", progress=False)
    (tmp_path / "r" / "ckpt.pt").unlink()
    legacy = {k: v for k, v in final.items() if k not in ("run_key", "run_identity")}
    (tmp_path / "r" / "final.json").write_text(json.dumps(legacy))
    assert train(TINY, tc, tmp_path / "r", resume=True, progress=False) == legacy
    with pytest.raises(GQAError, match="train.lr 0.003 -> 0.01"):
        train(TINY, TrainConfig(**{**FAST, "steps": 5, "lr": 0.01}), tmp_path / "r",
              resume=True, progress=False)
    (tmp_path / "r" / "config.json").unlink()
    with pytest.raises(GQAError, match="without a readable identity"):
        train(TINY, tc, tmp_path / "r", resume=True, progress=False)


def test_cli_resume_over_a_finished_run_with_other_settings_exits_2(tmp_path):
    out = str(tmp_path / "r")
    subprocess.run(_gqa("--steps", "16", "--out", out, "--json"), capture_output=True,
                   check=True)
    r = subprocess.run(_gqa("--steps", "64", "--lr", "0.01", "--out", out, "--resume"),
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
    assert "train.lr 0.003 -> 0.01" in r.stderr and "train.steps 16 -> 64" in r.stderr


def test_nan_stops_clearly_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_forward = GQATransformer.forward

    def poisoned(self, idx, targets=None, cache=None):
        logits, loss = real_forward(self, idx, targets, cache)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 8:
                loss = loss * float("nan")
        return logits, loss

    monkeypatch.setattr(GQATransformer, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 7 .*lower the learning"):
        train(TINY, TrainConfig(steps=20, **FAST), tmp_path / "r", progress=False)
    assert torch.load(tmp_path / "r" / "ckpt.pt", weights_only=True)["step"] == 5
    assert not (tmp_path / "r" / "final.json").exists()


def _gqa(*args):
    return [str(BIN / "gqa"), "train", "--model", "tiny", "--batch-size", "4", "--context",
            "64", "--eval-every", "5", "--threads", "1", *args]


def test_killed_run_resumes_to_the_bitwise_same_loss(tmp_path):
    ref = subprocess.run(_gqa("--steps", "30", "--out", str(tmp_path / "ref"), "--json"),
                         capture_output=True, text=True, check=True)
    want = json.loads(ref.stdout)["val_loss"]
    run = tmp_path / "killed"
    proc = subprocess.Popen(_gqa("--steps", "30", "--out", str(run)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "ckpt.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.5))  # somewhere after the first checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "final.json").exists(), "the run finished before it could be killed"
    done = len((run / "metrics.jsonl").read_text().splitlines())
    assert 1 <= done < 6
    res = subprocess.run(_gqa("--steps", "30", "--out", str(run), "--resume", "--json"),
                         capture_output=True, text=True, check=True)
    assert json.loads(res.stdout)["val_loss"] == want
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(5, 31, 5))  # no duplicated or lost evaluations


def test_cli_train_errors_exit_2(tmp_path):
    r = subprocess.run(_gqa("--steps", "5", "--tokens", "100", "--out", str(tmp_path / "x")),
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not both" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(_gqa("--steps", "5", "--out", str(tmp_path / "y"), "--resume"),
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no checkpoint" in r.stderr


def test_torchrun_ddp_two_cpu_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port",
           str(random.randint(20000, 40000)), "-m", "gqa_lib.cli", "train", "--model", "tiny",
           "--steps", "6", "--batch-size", "2", "--context", "64", "--eval-every", "3",
           "--out", str(tmp_path / "ddp"), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    final = json.loads((tmp_path / "ddp" / "final.json").read_text())
    assert final["world_size"] == 2 and final["tokens"] == 6 * 2 * 64 * 2
    assert final["val_loss"] < final["unigram_entropy"] + 2


def test_identity_holds_only_settings_not_fields_a_config_normalises():
    """Fields added to ModelConfig later (experts, layer patterns, norms per layer) must not
    enter a dense config's identity: a key computed before they existed still matches."""
    from gqa_lib.train.settings import _BASE_MODEL_FIELDS

    ident = run_identity(TINY, TrainConfig(**FAST))
    assert set(ident["model"]) == set(_BASE_MODEL_FIELDS)
    moe = dataclasses.replace(TINY, n_experts=4, n_experts_active=2, d_ff_expert=32)
    extra = set(run_identity(moe, TrainConfig(**FAST))["model"]) - set(_BASE_MODEL_FIELDS)
    assert {"n_experts", "n_experts_active", "d_ff_expert"} <= extra


def test_precision_follows_the_device(monkeypatch):
    from gqa_lib.train.loop import autocast_for, pick_precision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert pick_precision("auto", cpu) == "fp32" and autocast_for("fp32", cpu) is None
    for capability, want in (((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")):
        # a T4 is 7.5: torch.cuda.is_bf16_supported() says yes there (emulated), hence not used
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None, c=capability: c)
        assert pick_precision("auto", cuda) == want
    assert pick_precision("fp32", cuda) == "fp32" and pick_precision("fp16", cpu) == "fp16"
    assert autocast_for("bf16", cpu).fast_dtype == torch.bfloat16
    assert autocast_for("fp16", cpu).fast_dtype == torch.float16
    with pytest.raises(GQAError, match="precision='fp8' is not allowed"):
        TrainConfig(precision="fp8")
    # where a run executes, not what it is: one grid keeps its keys on an H200 and a T4
    assert (run_key(run_identity(TINY, TrainConfig(**FAST, precision="fp16")))
            == run_key(run_identity(TINY, TrainConfig(**FAST))))


def test_fp16_with_a_gradient_scaler_resumes_to_the_same_loss(tmp_path):
    """The fp16 path (autocast + GradScaler, as on a T4) runs on the CPU: its scaler state
    is checkpointed, so an interrupted run resumes to the loss of an uninterrupted one."""
    small = dataclasses.replace(TINY, n_layer=1, d_model=64, n_head=4, n_kv_head=1, d_head=16,
                                d_ff=128)
    tc = TrainConfig(steps=8, precision="fp16", **{**FAST, "eval_every": 4})
    ref = train(small, tc, tmp_path / "ref", progress=False)
    assert ref["precision"] == "fp16" and ref["val_loss"] < math.log(small.vocab_size)  # learns
    assert train(small, tc, tmp_path / "cut", progress=False, stop_after=5)["interrupted"]
    state = torch.load(tmp_path / "cut" / "ckpt.pt", weights_only=True)
    assert state["precision"] == "fp16" and state["scaler"]["scale"] > 0
    again = train(small, tc, tmp_path / "cut", resume=True, progress=False)
    assert again["val_loss"] == ref["val_loss"] and again["precision"] == "fp16"
    # resumed in another precision: the same run (same key), and final.json says so
    train(small, tc, tmp_path / "mixed", progress=False, stop_after=5)
    mixed = train(small, dataclasses.replace(tc, precision="fp32"), tmp_path / "mixed",
                  resume=True, progress=False)
    assert mixed["precision"] == "fp16+fp32" and mixed["run_key"] == ref["run_key"]
    plain = train(small, dataclasses.replace(tc, precision="auto"), tmp_path / "fp32",
                  progress=False)
    assert plain["precision"] == "fp32"
    assert "scaler" not in torch.load(tmp_path / "fp32" / "ckpt.pt", weights_only=True)
