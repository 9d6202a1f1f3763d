"""The benchmarks measure what they claim: the reference implementation computes the same
function, the MFU count is the cost model's, and the GPU script runs on CPU at toy size."""

import json
import subprocess
import sys

import pytest
import torch

from benchmarks.reference import naive_forward
from benchmarks.steps import model_flops_per_token
from gqa_lib import get_preset
from gqa_lib.train.model import GQATransformer


def test_reference_is_the_same_function():
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    m = GQATransformer(cfg)
    x = torch.randint(0, cfg.vocab_size, (2, 32))
    y = torch.randint(0, cfg.vocab_size, (2, 32))
    (a, la), (b, lb) = m(x, y), naive_forward(m, x, y)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(la, lb, rtol=1e-5, atol=1e-5)


def test_mfu_counts_the_cost_models_training_flops_plus_lm_head():
    cfg = get_preset("tiny")  # L2 d128 H(8,2) d_h 16, d_ff 341, SwiGLU, vocab 2048
    assert (cfg.n_layer, cfg.d_model, cfg.n_head, cfg.n_kv_head, cfg.d_head, cfg.d_ff,
            cfg.vocab_size) == (2, 128, 8, 2, 16, 341, 2048)
    matrices = 2 * 128 * (16 * (8 + 2 + 2 + 8) + 3 * 341)  # q, k, v, o and three FFN matrices
    by_hand = 6 * matrices + 12 * (256 / 2) * 2 * 16 * 8 + 6 * 128 * 2048  # + attention, LM head
    assert model_flops_per_token(cfg, 256) == pytest.approx(by_hand)


def test_gpu_script_runs_on_cpu_at_toy_size(tmp_path):
    r = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--toy", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "gpu-toy-cpu.json").read_text())
    assert res["matmul_peak_flops"] > 0 and res["copy_bandwidth_bytes_per_s"] > 0
    assert any("mfu" in row for row in res["training"]["rows"])
    d = res["decode"]["rows"]
    assert len(d) == 4 and all(r["s_per_token"] > 0 and r["bound_s_per_token"] > 0 for r in d)
    assert "speedup_measured" in d[-1] and "speedup_bound" in d[-1]
    assert all(r["prefill_s"] > 0 and 0 < r["prefill_mfu"] for r in d)
    assert d[-1]["prefill_speedup_flops"] > 0 and d[-1]["prefill_speedup_measured"] > 0


def test_partial_run_keeps_the_other_sections(tmp_path, monkeypatch):
    from benchmarks import __main__ as bench

    calls = []

    def fake(name):
        def run(quick=False):
            calls.append(name)
            return {"value": len(calls)}
        return run

    monkeypatch.setattr(bench, "SUITES", {k: fake(k) for k in ("cost", "train")})
    monkeypatch.setattr(bench, "table", lambda res: "TABLE " + ",".join(sorted(res["runs"])))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench.BEGIN}\nold\n{bench.END}\noutro\n")
    args = ["--out", str(tmp_path), "--readme", str(readme)]
    assert bench.main(args + ["--only", "cost", "train"]) == 0
    assert bench.main(args + ["--only", "cost"]) == 0
    res = json.loads((tmp_path / "latest-cpu.json").read_text())
    assert res["train"] == {"value": 2} and res["cost"] == {"value": 3}  # train kept
    assert res["runs"]["cost"]["command"].endswith("--only cost")
    assert readme.read_text() == f"intro\n{bench.BEGIN}\nTABLE cost,train\n{bench.END}\noutro\n"


def test_profile_groups_ops_and_accounts_for_all_time():
    from benchmarks.profile_step import causal_kernel_probe, op_group, step_profile

    assert op_group("aten::_scaled_dot_product_flash_attention_for_cpu_backward") == "attention"
    assert op_group("aten::mm") == "matmul" and op_group("aten::addmm") == "matmul"
    assert op_group("aten::_foreach_lerp_") == "optimizer" and op_group("aten::mul") == "other"
    p = step_profile(get_preset("tiny"), 64, batch_tokens=256, warmup=1)
    assert sum(p["share"].values()) == pytest.approx(1.0)
    assert p["share"]["matmul"] > 0 and p["share"]["attention"] > 0
    k = causal_kernel_probe(n_head=4, T=256, d_head=16, batch=1, repeat=2)
    assert k["causal_s"] > 0 and k["full_s"] > 0 and k["full_flops_per_s"] > 0
