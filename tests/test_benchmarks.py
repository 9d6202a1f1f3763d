"""The benchmarks measure what they claim: the reference implementation computes the same
function, the MFU count is the cost model's, and the GPU script runs on CPU at toy size."""

import csv
import json
import subprocess
import sys
import time

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


GPU_PARTS = ["calibrate", "decode", "prefill", "train_pair", "mfu"]


def run_gpu_toy(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "benchmarks.gpu", "--toy", "--out", str(out),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_gpu_script_runs_on_cpu_at_toy_size(tmp_path):
    proc = run_gpu_toy(tmp_path)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    res = json.loads((tmp_path / "gpu-toy-cpu.json").read_text())
    assert res["complete"] and res["parts_done"] == GPU_PARTS
    assert all(res["parts"][p]["status"] == "ok" for p in GPU_PARTS)
    assert res["matmul_peak_flops"] > 0 and res["copy_bandwidth_bytes_per_s"] > 0
    rows = res["rows"]
    assert all(r["seconds"] > 0 and r["bound_s"] > 0 and r["sdpa_backend"] for r in rows)
    regimes = [r["regime"] for r in rows]  # no CUDA graph on a CPU: eager decode only
    assert regimes.count("decode_step_eager") == 2 * 3 * 2 and "decode_step" not in regimes
    assert regimes.count("prefill") == 6 and regimes.count("prefill_chunked") == 2
    assert {r["batch"] for r in rows if r["part"] == "decode"} == {1, 4}
    chunked = [r for r in rows if r["regime"] == "prefill_chunked"]
    assert all(r["chunk"] == 64 and r["context"] == 256 for r in chunked)
    assert all(r["check"]["max_abs_diff"] < 1e-4 * r["check"]["max_abs_logit"] for r in chunked)
    assert [r["part"] for r in rows if r["regime"] == "train_step"] == ["train_pair"] * 2 + [
        "mfu"]
    # the views the book's pages read: per context the pair, with the ratios on the second
    d = res["decode"]["rows"]
    assert len(d) == 6 and all(r["s_per_token"] > 0 and r["prefill_s"] > 0 for r in d)
    assert all("speedup_measured" in r and "prefill_speedup_flops" in r for r in d[1::2])
    assert [r["impl"] for r in res["training"]["rows"]] == ["gqa_lib"]
    assert res["training"]["rows"][0]["mfu"] > 0


def kill_when_running(proc, path, part: str, timeout_s: float = 300) -> None:
    """Wait until the GPU script's JSON at ``path`` says ``part`` is running (it hangs there
    with --hang-in), then SIGKILL it: nothing runs after, so only what was saved is there."""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            # written atomically: every read is a whole file
            if path.exists() and json.loads(path.read_text())["parts"][part][
                    "status"] == "running":
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
    finally:
        proc.kill()
        proc.communicate()


def test_gpu_script_killed_mid_run_keeps_the_finished_parts(tmp_path):
    path = tmp_path / "gpu-toy-cpu.json"
    kill_when_running(run_gpu_toy(tmp_path, "--hang-in", "prefill"), path, "prefill")
    res = json.loads(path.read_text())
    assert res["parts_done"] == ["calibrate", "decode"] and not res["complete"]
    assert [res["parts"][p]["status"] for p in GPU_PARTS] == [
        "ok", "ok", "running", "pending", "pending"]
    assert len([r for r in res["rows"] if r["part"] == "decode"]) == 12


def test_gpu_runner_budgets_failures_and_saves(tmp_path, monkeypatch):
    """The runner with stand-in parts: one over its budget is stopped (its rows kept), one
    that raises is recorded, the others run; at real sizes a part whose H200 estimate does
    not fit in the time left is skipped; the file is complete after every part."""
    from benchmarks import gpu, gpu_parts, gpu_plan

    def calibrate(ctx):
        ctx.res.update(matmul_peak_flops=1e12, copy_bandwidth_bytes_per_s=1e11)

    def slow(ctx):
        cfg = ctx.sizes.pair[0]
        ctx.add_row(gpu_parts.row(ctx, "decode_step", cfg, 8192, 1, 0.5, "stand-in", {},
                                  tokens=1, bytes_read=1e9))
        time.sleep(30)

    def broken(ctx):
        raise ValueError("no kernel")

    saved = []
    monkeypatch.setattr(gpu.Ctx, "save", lambda self, real=gpu.Ctx.save: (
        real(self), saved.append(json.loads(self.path.read_text()))))
    monkeypatch.setattr(gpu_parts, "PART_FUNCTIONS", {
        "calibrate": calibrate, "decode": slow, "prefill": broken,
        "train_pair": lambda ctx: None, "mfu": lambda ctx: {"config": "x"}})
    monkeypatch.setattr(gpu_plan, "PARTS", [("calibrate", 5, ""), ("decode", 0.5, ""),
                                            ("prefill", 5, ""), ("train_pair", 5, ""),
                                            ("mfu", 5, "")])
    res = gpu.run(True, tmp_path, budget_s=60, t0=time.perf_counter())
    status = {p: res["parts"][p]["status"] for p in GPU_PARTS}
    assert status["decode"].startswith("stopped: budget") and res["rows"][0]["bound_s"] == 0.01
    assert status["prefill"] == "failed: ValueError: no kernel"
    assert status["calibrate"] == status["train_pair"] == status["mfu"] == "ok"
    assert res["complete"] and res["training"]["config"] == "x"
    after = [s["parts_done"] for s in saved]
    assert all(GPU_PARTS[:k] in after for k in range(1, 6))  # saved after every part
    # real sizes, 15 s left: the parts estimated (on an H200) to take longer are skipped
    est = gpu_plan.part_estimates(gpu_plan.REAL)
    assert est["calibrate"] < est["train_pair"] < 14 < est["decode"] < est["prefill"]
    monkeypatch.setattr(gpu_parts, "PART_FUNCTIONS", dict.fromkeys(GPU_PARTS, calibrate))
    monkeypatch.setattr(gpu_plan, "PARTS", [(p, 1000, "") for p in GPU_PARTS])
    res = gpu.run(False, tmp_path, budget_s=15, t0=time.perf_counter())
    skip = "skipped: budget"
    assert [res["parts"][p]["status"] for p in GPU_PARTS] == ["ok", skip, skip, "ok", skip]


def test_gpu_plan_fits_six_minutes_on_an_h200_and_matches_the_measurements():
    from benchmarks import gpu_plan as plan

    est = plan.part_estimates(plan.REAL)
    assert plan.STARTUP_S + sum(est.values()) < 0.6 * plan.RUN_BUDGET_S < 360
    assert all(est[name] < budget for name, budget, _ in plan.PARTS)
    # the estimates' step times against the H200 figures they came from (README there):
    # CUDA-graph decode, aligned (32, 8) 8K batch 1 3.63 ms, 128K batch 8 18.65 ms; (8, 1) 8K
    # batch 1 4.41 ms; prefill of 128K 5.89 s and 2.62 s; training step 0.288 s, 0.307 s
    base, opt = plan.REAL.pair
    assert plan.decode_step_s(base, 8192, 1)[0] == pytest.approx(3.63e-3, rel=0.1)
    assert plan.decode_step_s(base, 131072, 8)[0] == pytest.approx(18.65e-3, rel=0.1)
    assert plan.decode_step_s(opt, 8192, 1)[0] == pytest.approx(4.41e-3, rel=0.1)
    assert plan.prefill_s(base, 131072) == pytest.approx(5.89, rel=0.1)
    assert plan.prefill_s(opt, 131072) == pytest.approx(2.62, rel=0.2)
    assert plan.train_step_s(base, 8192) == pytest.approx(0.288, rel=0.1)
    assert plan.train_step_s(opt, 8192) == pytest.approx(0.307, rel=0.1)


def test_gpu_pair_is_the_recipes_equal_loss_pair_aligned():
    from benchmarks.gpu_plan import REAL
    from gqa_lib.arch import aligned
    from gqa_lib.evidence.serving import equal_loss_pair

    assert REAL.pair == tuple(aligned(c) for c in equal_loss_pair())
    assert [c.d_ff for c in REAL.pair] == [5632, 6656]


def test_sdpa_backend_is_read_from_the_ops_that_ran():
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from benchmarks.gpu_parts import sdpa_calls
    from gqa_lib.train.model import chunk_causal_mask

    q, k = torch.randn(1, 4, 3, 8), torch.randn(1, 2, 5, 8)
    bias = chunk_causal_mask(3, 5)
    sdpa = F.scaled_dot_product_attention
    assert sdpa_calls(lambda: sdpa(q, k, k, attn_mask=bias, enable_gqa=True)) == {
        "flash-cpu": 1}
    with sdpa_kernel(SDPBackend.MATH):
        assert sdpa_calls(lambda: sdpa(q, k, k, attn_mask=bias, enable_gqa=True)) == {
            "math": 1}


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


# ----- the one call a lent GPU gets (benchmarks.gpu_session) --------------------------------
def run_session(tmp_path, corpus, *extra):
    from test_sweep import write_grid

    grid = write_grid(tmp_path / "ladder.toml", corpus, seeds="[0]")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "benchmarks.gpu_session", "--toy", "--grid",
                        str(grid), "--out", str(out), "--commit", "abc123", *extra],
                       capture_output=True, text=True, timeout=600)
    return r, out, json.loads((out / "session.json").read_text())


def test_gpu_session_runs_the_ladder_then_the_benchmark_and_records_both(tmp_path,
                                                                         small_corpus):
    r, out, rec = run_session(tmp_path, small_corpus)
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    # data/bench holds an H200 measurement, so the ladder goes first (issue 26)
    assert rec["order"] == ["ladder", "benchmark"] and rec["commit"] == "abc123"
    assert [s["status"] for s in rec["steps"]] == ["ok", "ok"] and rec["wall_s"] > 0
    with open(out / "ladder.csv", newline="") as f:
        ladder = list(csv.DictReader(f))
    assert len(ladder) == 2 and {x["git_commit"] for x in ladder} == {"abc123"}
    bench = json.loads((out / "gpu-toy-cpu.json").read_text())
    assert bench["complete"] and bench["machine"]["commit"] == "abc123"
    assert (out / "ladder.log").read_text() and (out / "benchmark.log").read_text()


def test_gpu_session_caps_a_step_and_skips_what_has_no_time(tmp_path, small_corpus):
    r, out, rec = run_session(tmp_path, small_corpus, "--ladder-cap-s", "1", "--limit-s", "2")
    assert r.returncode == 1
    (ladder, bench) = rec["steps"]
    assert ladder["status"] == "stopped: cap" and ladder["wall_s"] < 15
    assert bench["status"].startswith("skipped: ") and bench["status"].endswith(" s left")


def test_the_readme_quotes_the_cost_models_largest_batches():
    """benchmarks/README.md's largest batches of the pair are cost.max_batch's (calibrated,
    then datasheet), so a change of the serving model cannot leave them stale."""
    import re
    from pathlib import Path

    from gqa_lib import cost
    from gqa_lib.evidence.serving import equal_loss_pair

    text = " ".join((Path(__file__).parents[1] / "benchmarks" / "README.md").read_text().split())
    m = re.search(r"90% of memory\): ([\d, ]+?) sequences of the \(32, 8\) at 8K, 32K, 128K "
                  r"and ([\d, ]+?) of the \(8, 1\) .*?; ([\d, ]+?) and ([\d, ]+?) with the", text)
    assert m, "the sentence on the largest batches moved"
    nums = [[int(x.replace(",", "")) for x in re.findall(r"\d[\d,]*", g)] for g in m.groups()]
    pair = equal_loss_pair()
    for cal, (a, b) in (("auto", nums[:2]), ("datasheet", nums[2:])):
        for cfg, want in zip(pair, (a, b)):
            got = [int(cost.max_batch(cfg, T, "h200", calibration=cal))
                   for T in (8192, 32768, 131072)]
            assert got == want, (cal, cfg.name)


def test_the_readme_plan_table_is_the_plan_the_run_prints():
    """benchmarks/README.md's plan table (budgets and H200 estimates per part, and the
    total) is what gpu_plan.plan_table prints before a real run (it once said 165 s where the
    plan printed 166)."""
    import re
    from pathlib import Path

    from benchmarks import gpu_plan

    printed = gpu_plan.plan_table(gpu_plan.REAL, False, gpu_plan.RUN_BUDGET_S)
    want = {m[0]: (m[1], m[2]) for m in re.findall(
        r"^\s+(\w+)\s+budget\s+(\d+) s\s+est\s+(\d+) s", printed, re.M)}
    want["total"] = (f"{gpu_plan.RUN_BUDGET_S:.0f}",
                     re.search(r"total\s+est\s+(\d+) s", printed).group(1))
    readme = (Path(__file__).parents[1] / "benchmarks" / "README.md").read_text()
    got = {m[0]: (m[1], m[2]) for m in re.findall(r"^\| (\w+) \| (\d+) \| (\d+) \|", readme, re.M)}
    assert got == want
