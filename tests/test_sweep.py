"""Sweeps: grid files are validated data; a killed sweep resumes with exactly one row per run;
failures are recorded and the sweep goes on; shards partition the grid."""

import csv
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gqa_lib import GQAError, cost
from gqa_lib.train.sweep import COLUMNS, llama3_heads, load_grid, parse_shard

ROOT = Path(__file__).resolve().parents[1]
GQA = str(Path(sys.executable).parent / "gqa")


def write_grid(path, corpus, *, contexts="[16]", seeds="[0, 1]", extra=""):
    path.write_text(f"""
name = "test"
[model]
d_head = 8
vocab_size = 2048
[train]
tokens = 2048
batch_tokens = 256
eval_every = 4
eval_tokens = 256
data = "{corpus}"
[[block]]
sizes = [[1, 32]]
heads = [[4, 4], [4, 1]]
contexts = {contexts}
seeds = {seeds}
{extra}
""")
    return path


def rows(csv_path):
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def test_shipped_grids_parse():
    for grid in sorted((ROOT / "data" / "sweeps").glob("*.toml")):
        name, specs = load_grid(grid)
        assert specs and len({s.run_id for s in specs}) == len(specs), grid
    name, specs = load_grid(ROOT / "data" / "sweeps" / "cpu-v1.toml")
    heads = {(s.model.n_head, s.model.n_kv_head) for s in specs if "grid" in s.family}
    assert heads == {(8, 8), (8, 4), (8, 2), (8, 1), (4, 1), (2, 1), (1, 1)}
    assert len({s.model.n_layer for s in specs}) >= 4 and len({s.train.context_len for s in specs}) >= 2
    assert len({s.train.seed for s in specs}) >= 2


def test_llama3_heads():
    assert llama3_heads(2048, 64) == (32, 8)
    assert llama3_heads(192, 16) == (12, 6)
    assert llama3_heads(320, 16) == (20, 5)


def test_baseline_coinciding_with_grid_config_is_one_run(tmp_path, small_corpus):
    g = write_grid(tmp_path / "g.toml", small_corpus, extra="""
[[block]]
sizes = [[1, 32]]
heads = ["llama3"]
contexts = [16]
seeds = [0]
""")
    _, specs = load_grid(g)
    assert len(specs) == 4
    assert [s.family for s in specs if s.run_id == "L1-d32-h4-kv4-dh8-T16-s0"] == ["grid+llama3"]


@pytest.mark.parametrize("mutate, msg", [
    (lambda s: s.replace("[[block]]", "[[blocks]]"), "unknown key 'blocks'.*did you mean 'block'"),
    (lambda s: s.replace("tokens = 2048\n", ""), "needs `batch_tokens` and one of `tokens`"),
    (lambda s: s.replace("tokens = 2048\n", "tokens = 2048\ntokens_per_param = 20\n"),
     "needs `batch_tokens` and one of `tokens`"),
    (lambda s: s.replace("[[4, 4], [4, 1]]", "[[4, 3]]"), "n_head=4 is not a multiple of n_kv_head=3"),
    (lambda s: s.replace("[[4, 4], [4, 1]]", "[[4]]"), "each head entry is"),
    (lambda s: s.replace("contexts = [16]", "contexts = [100]"), "not a multiple of context 100"),
    (lambda s: s.replace("eval_every", "eval_evry"), "unknown key 'eval_evry'"),
    (lambda s: s.replace('name = "test"', ""), "non-empty string `name`"),
    (lambda s: s.replace("seeds = [0, 1]", "seeds = []"), "non-empty list"),
])
def test_bad_grids(tmp_path, small_corpus, mutate, msg):
    g = write_grid(tmp_path / "g.toml", small_corpus)
    g.write_text(mutate(g.read_text()))
    with pytest.raises(GQAError, match=msg):
        load_grid(g)


def test_grid_must_be_toml(tmp_path):
    (tmp_path / "g.py").write_text("import os")
    with pytest.raises(GQAError, match="must be a .toml file"):
        load_grid(tmp_path / "g.py")


def test_shards_partition_the_grid():
    from gqa_lib.train.sweep import run_sweep

    grid = ROOT / "data" / "sweeps" / "cpu-v1.toml"
    seen = []
    for i in range(3):
        logs = []
        run_sweep(grid, "/nonexistent/x.csv", shard=(i, 3), dry_run=True, log=logs.append)
        seen.append({line.split()[1] for line in logs if line.startswith("[")})
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert set.union(*seen) == {s.run_id for s in load_grid(grid)[1]}
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(GQAError):
            parse_shard(bad)


def _sweep(grid, out, *extra):
    return [GQA, "sweep", str(grid), "--out", str(out), "--runs-dir", str(out.parent / "runs"),
            "--threads", "1", *extra]


def test_killed_sweep_resumes_with_exactly_one_row_per_run(tmp_path, small_corpus):
    grid = write_grid(tmp_path / "g.toml", small_corpus)
    out = tmp_path / "sweep.csv"
    proc = subprocess.Popen(_sweep(grid, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while (not out.exists() or len(rows(out)) < 1) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-way through the second run (or just after the first)
    proc.wait()
    first = len(rows(out))
    assert 1 <= first < 4
    r = subprocess.run(_sweep(grid, out, "--json"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]  # what the resumed sweep said, if it failed
    counts = json.loads(r.stdout.strip().splitlines()[-1])
    assert counts["skipped"] == first and counts["ok"] == 4 - first
    # each run reports progress on stderr (a log when not on a terminal): its first and last step
    done = [line for line in r.stderr.splitlines() if re.match(r"train: step (\d+)/\1 ", line)]
    assert len(done) == 4 - first and "tokens/s" in done[0], r.stderr
    got = rows(out)
    assert sorted(x["run_id"] for x in got) == sorted(s.run_id for s in load_grid(grid)[1])
    assert all(x["status"] == "ok" for x in got) and list(got[0]) == COLUMNS
    assert all(float(x["val_loss_nats"]) > 0 and x["git_commit"] for x in got)
    # a third start has nothing left to do
    r = subprocess.run(_sweep(grid, out, "--json"), capture_output=True, text=True, check=True)
    assert json.loads(r.stdout.strip().splitlines()[-1])["skipped"] == 4 and len(rows(out)) == 4


def test_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path, small_corpus):
    # context 4096 is longer than this small corpus: that run fails at its first batch
    grid = write_grid(tmp_path / "g.toml", small_corpus, seeds="[0]", contexts="[16, 4096]")
    grid.write_text(grid.read_text().replace("batch_tokens = 256", "batch_tokens = 4096")
                    .replace("tokens = 2048", "tokens = 8192"))
    out = tmp_path / "s.csv"
    r = subprocess.run(_sweep(grid, out, "--json"), capture_output=True, text=True)
    assert r.returncode == 1
    got = {x["run_id"]: x for x in rows(out)}
    assert len(got) == 4
    failed = [x for x in got.values() if x["status"] == "failed"]
    assert len(failed) == 2 and all("shorter than context_len" in x["error"] for x in failed)
    assert all(x["status"] == "ok" for x in got.values() if x["context"] == "16")


def test_edited_grid_never_reuses_a_result_under_the_new_label(tmp_path, small_corpus):
    from gqa_lib.train.sweep import run_sweep

    grid = write_grid(tmp_path / "g.toml", small_corpus, seeds="[0]")
    old_csv, runs = tmp_path / "old.csv", tmp_path / "runs"
    assert run_sweep(grid, old_csv, runs_dir=runs, log=lambda s: None)["ok"] == 2
    before = rows(old_csv)
    specs = {s.run_id: s for s in load_grid(grid)[1]}
    assert all(r["run_key"] == specs[r["run_id"]].run_key for r in before)
    assert sorted(p.name for p in runs.iterdir()) == sorted(s.folder for s in specs.values())
    # the same grid again: both rows match and are skipped
    again = run_sweep(grid, old_csv, runs_dir=runs, log=lambda s: None)
    assert again["skipped"] == 2 and again["ok"] == 0
    # lr edited: against the old CSV the sweep refuses before training, naming the change
    grid.write_text(grid.read_text().replace("[train]\n", "[train]\nlr = 3e-2\n"))
    with pytest.raises(GQAError, match=r"2 finished run\(s\).*lr 0.003 -> 0.03.*new --out"):
        run_sweep(grid, old_csv, runs_dir=runs, log=lambda s: None)
    assert rows(old_csv) == before
    # into a new CSV it trains afresh (new folders), and the losses are the new runs' own
    counts = run_sweep(grid, tmp_path / "new.csv", runs_dir=runs, log=lambda s: None)
    assert counts["ok"] == 2 and counts["skipped"] == 0
    new = {r["run_id"]: r for r in rows(tmp_path / "new.csv")}
    for r in before:
        assert new[r["run_id"]]["lr"] == "0.03" and new[r["run_id"]]["run_key"] != r["run_key"]
        assert new[r["run_id"]]["val_loss_nats"] != r["val_loss_nats"]
    assert len(list(runs.iterdir())) == 4
    # a token budget or a grid name change is caught too, even with settings not in the CSV
    grid.write_text(grid.read_text().replace("eval_every = 4", "eval_every = 2"))
    with pytest.raises(GQAError, match="settings not in the CSV differ"):
        run_sweep(grid, tmp_path / "new.csv", runs_dir=runs, dry_run=True, log=lambda s: None)


def test_rows_without_run_key_are_not_reused(tmp_path, small_corpus):
    from gqa_lib.train.sweep import run_sweep

    grid = write_grid(tmp_path / "g.toml", small_corpus, seeds="[0]")
    spec = load_grid(grid)[1][0]
    legacy = tmp_path / "legacy.csv"
    legacy.write_text(f"run_id,status,lr,val_loss_nats\n{spec.run_id},ok,0.003,4.2\n")
    with pytest.raises(GQAError, match="has no run_key"):
        run_sweep(grid, legacy, runs_dir=tmp_path / "runs", dry_run=True, log=lambda s: None)
    assert "4.2" in legacy.read_text()


def test_cli_sweep_refusal_is_one_line(tmp_path, small_corpus):
    grid = write_grid(tmp_path / "g.toml", small_corpus, seeds="[0]")
    spec = load_grid(grid)[1][0]
    out = tmp_path / "s.csv"
    out.write_text(f"run_id,run_key,status\n{spec.run_id},0000000000000000,ok\n")
    r = subprocess.run(_sweep(grid, out), capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "other settings" in r.stderr


def test_old_csvs_without_run_key_still_load():
    from gqa_lib.fit.per_head import read_runs

    for name in ("cpu-v0.csv", "cpu-v1.csv"):
        df = read_runs(ROOT / "data" / "sweeps" / name)
        assert len(df) > 0 and "run_key" not in df.columns


def test_tokens_per_param_gives_each_run_its_own_budget(tmp_path, small_corpus):
    g = write_grid(tmp_path / "g.toml", small_corpus)
    g.write_text(g.read_text().replace("tokens = 2048\n", "tokens_per_param = 20\n"))
    _, specs = load_grid(g)
    budgets = {}
    for s in specs:
        n = cost.params_non_embedding(s.model)
        step_tokens = s.train.batch_size * s.train.context_len
        assert abs(s.train.tokens - 20 * n) <= step_tokens / 2  # whole steps, nearest
        budgets[(s.model.n_head, s.model.n_kv_head)] = s.train.tokens
    assert budgets[(4, 4)] > budgets[(4, 1)]  # more parameters, more tokens


def test_sweep_rows_carry_mqar_accuracy(tmp_path, small_corpus):
    grid = write_grid(tmp_path / "g.toml", small_corpus, seeds="[0]")
    grid.write_text(grid.read_text().replace("eval_tokens = 256", "eval_tokens = 256\n"
                                             "mqar_share = 0.5\nmqar_eval = 2"))
    out = tmp_path / "runs.csv"
    r = subprocess.run(_sweep(grid, out), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    got = rows(out)
    assert len(got) == 2 and all(r["status"] == "ok" for r in got)
    for r in got:
        assert r["mqar_share"] == "0.5"
        assert 0.0 <= float(r["mqar_acc"]) <= 1.0
        assert r["mqar_acc_pairs_2"] != "" and r["mqar_acc_pairs_4"] != ""
        assert r["mqar_acc_pairs_16"] == ""  # 16 pairs do not fit a context of 16


def test_block_sweeps_name_each_run_by_its_exact_setting(tmp_path, small_corpus):
    g = write_grid(tmp_path / "g.toml", small_corpus, seeds="[0]",
                   extra="lrs = [1e-3, 1.6e-2]\nmqar_shares = [0.0, 0.1]")
    _, specs = load_grid(g)
    assert len(specs) == 2 * 2 * 2  # heads x lrs x shares
    by_id = {s.run_id: s for s in specs}
    s = by_id["L1-d32-h4-kv1-dh8-T16-s0-lr1.6e-02-mq0.1"]
    assert s.train.lr == 0.016 and s.train.mqar_share == 0.1
    assert "L1-d32-h4-kv4-dh8-T16-s0-lr1e-03-mq0" in by_id
    assert len({s.run_key for s in specs}) == len(specs)
    g.write_text(g.read_text().replace("lrs = [1e-3, 1.6e-2]", "lrs = [true]"))
    with pytest.raises(GQAError, match="lrs must be a non-empty list of numbers"):
        load_grid(g)
    g.write_text(g.read_text().replace("lrs = [true]", "lrs = [1e-3]").replace(
        "seeds = [0]", f"seeds = [{2**63 - 1}]"))
    with pytest.raises(GQAError, match=r"seeds must be a non-empty list of integers in 0\.\.2\*\*53"):
        load_grid(g)  # the message names the range, not just "non-negative"


# ----- the GPU ladder (issue 23): equal sizes, aligned widths, estimated time ---------------
GPU_GRID = ROOT / "data" / "sweeps" / "gpu-eq-v1.toml"
PD_TRAIN_TOKENS = 8_489_382  # data/README.md; tests/test_data.py checks the corpus


def test_gpu_ladder_is_the_equal_size_design_at_aligned_shapes():
    _, specs = load_grid(GPU_GRID)
    assert {(s.model.n_head, s.model.n_kv_head) for s in specs} == {(8, 8), (8, 2), (8, 1),
                                                                     (1, 1)}
    assert {s.train.context_len for s in specs} <= {1024, 2048}
    assert len({s.train.seed for s in specs}) >= 2 and all(s.train.eval_full for s in specs)
    groups = {}
    for s in specs:
        m = s.model
        assert m.d_model % 64 == 0 and m.d_head % 8 == 0 and m.d_ff % 8 == 0, s.run_id
        assert s.train.tokens <= 4 * PD_TRAIN_TOKENS, s.run_id  # at most 4 epochs
        groups.setdefault((m.n_layer, m.d_model, s.train.seed, s.train.lr), []).append(m)
    sizes = set()
    for models in groups.values():
        ref = next(m for m in models if (m.n_head, m.n_kv_head) == (8, 8))
        for count in (cost.params_non_embedding, cost.params_total):
            assert all(abs(count(m) / count(ref) - 1) <= 0.01 for m in models)
        sizes.add(int(cost.params_non_embedding(ref)))
    assert len(sizes) >= 3 and min(sizes) < 600_000 and max(sizes) > 1_500_000
    # each seed holds the whole ladder of the four configurations
    for seed in {s.train.seed for s in specs}:
        assert len({(s.model.d_model, s.model.n_kv_head, s.model.n_head) for s in specs
                    if s.train.seed == seed and s.train.lr == 1.1e-2}) == 12


def test_gpu_ladder_dry_run_on_cpu_prints_an_h200_estimate_within_6_minutes(tmp_path, capsys):
    from gqa_lib.cli.main import main

    out = tmp_path / "gpu.csv"
    assert main(["sweep", str(GPU_GRID), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    h200 = float(re.search(r"estimated totals: h200 ([\d,]+) s", text)[1].replace(",", ""))
    assert 60 < h200 <= 360, text[-2000:]
    assert "fitted on 6 measured H200 points" in text and "(assumed)" in text
    assert re.search(r"t4 [\d,]+ s .*\(datasheet ratio\)", text)
    assert "!git clone" in text and "python -m gqa_lib sweep data/sweeps/gpu-eq-v1.toml" in text
    assert len(re.findall(r"^\[\d+/28\] .* ~[\d.]+ s$", text, re.M)) == 28
    # the README quotes the same estimates, in minutes
    t4 = float(re.search(r"t4 ([\d,]+) s", text)[1].replace(",", ""))
    readme = " ".join((ROOT / "README.md").read_text().split())
    h200_min = float(re.search(r"estimated (\d+) minutes on one H200", readme)[1])
    t4_min = float(re.search(r"about (\d+) minutes by the datasheet ratio", readme)[1])
    assert abs(h200_min - h200 / 60) <= 0.5 and abs(t4_min - t4 / 60) <= 0.1 * t4 / 60
    assert not out.exists()  # a dry run writes nothing
    assert main(["sweep", str(GPU_GRID), "--out", str(out), "--dry-run",
                 "--estimate-for", "h200"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert re.search(r"estimated [\d.]+ min on h200", first)


def test_colab_cell_names_a_grid_outside_the_repository_as_an_upload(tmp_path):
    from gqa_lib.cli.train import colab_command

    inside = colab_command(str(GPU_GRID), str(tmp_path / "out.csv"))
    assert "sweep data/sweeps/gpu-eq-v1.toml --out out.csv" in inside and "upload" not in inside
    outside = colab_command(str(tmp_path / "g1.toml"), str(tmp_path / "g1.csv"))
    assert "sweep g1.toml --out g1.csv" in outside and str(tmp_path) not in outside
    assert "upload g1.toml to /content/gqa first" in outside


def test_throughput_model_reproduces_the_measured_h200_points():
    from gqa_lib.arch import ModelConfig
    from gqa_lib.train import estimate

    measured = json.loads(estimate.H200_MEASURED.read_text())["tiny_training_throughput"]
    for r in measured:  # the file's FLOP/s are the cost model's FLOPs per token x tokens/s
        m = ModelConfig(n_layer=r["n_layer"], d_model=r["d_model"], n_head=r["heads"][0],
                        n_kv_head=r["heads"][1], d_head=r["d_head"], vocab_size=2048)
        f = estimate.flops_per_token(m, r["context"])
        assert f * r["tokens_per_s"] == pytest.approx(r["achieved_flops"], rel=1e-9)
    tp = estimate.throughput("h200")
    assert len(tp.points) == 6 and max(abs(e) for e in tp.errors()) < 0.10
    assert estimate.throughput("t4").s_per_token(1e7) == pytest.approx(
        estimate.T4_SLOWDOWN * tp.s_per_token(1e7))
    assert len(estimate.throughput("cpu").points) >= 50
    assert estimate.format_s(42) == "42 s" and estimate.format_s(450) == "7.5 min"
    with pytest.raises(GQAError, match="device kind='a100' is not allowed"):
        estimate.throughput("a100")


def test_the_cpu_estimate_states_its_error_on_the_runs_it_was_not_fitted_on():
    """The dry run's CPU line gives the fit's error on every other committed one-thread CPU
    sweep, by hand here with pandas: predicted / measured s/token - 1 per run."""
    from gqa_lib.arch import ModelConfig
    from gqa_lib.train import estimate

    tp = estimate.throughput("cpu")
    errors, grids = [], []
    for path in sorted(estimate.CPU_MEASURED.parent.glob("*.csv")):
        d = pd.read_csv(path)
        d = d[(d.status == "ok") & (d.threads == 1) & (d.device == "cpu")]
        if path == estimate.CPU_MEASURED or not len(d) or not path.with_suffix(".toml").exists():
            continue
        grids.append(path.stem)
        for r in d.itertuples():
            m = ModelConfig(n_layer=r.n_layer, d_model=r.d_model, n_head=r.n_head,
                            n_kv_head=r.n_kv_head, d_head=r.d_head, d_ff=r.d_ff,
                            vocab_size=r.vocab_size)
            errors.append(tp.s_per_token(estimate.flops_per_token(m, r.context))
                          * r.tokens_per_s - 1)
    held = estimate.cpu_held_out()
    assert held["grids"] == grids and "cpu-v2" not in grids and len(grids) >= 5
    assert held["errors"] == pytest.approx(errors)
    text = estimate.describe("cpu")
    assert (f"; {min(errors):+.0%} to {max(errors):+.0%} (median {np.median(errors):+.0%}) on "
            f"the {len(errors)} runs of {len(grids)} other committed CPU sweeps") in text


def test_the_held_out_cpu_error_skips_what_is_not_a_sweep_record(tmp_path, monkeypatch):
    """A damaged CSV beside a grid, or a CSV without one (a user's --out), in data/sweeps
    does not break a dry run's estimate: only intact sweep records are read."""
    import shutil

    from gqa_lib.train import estimate

    src = estimate.CPU_MEASURED.parent
    shutil.copy(estimate.CPU_MEASURED, tmp_path / "cpu-v2.csv")
    for name in ("cpu-eq-v1", "bad"):
        shutil.copy(src / "cpu-eq-v1.toml", tmp_path / f"{name}.toml")
    shutil.copy(src / "cpu-eq-v1.csv", tmp_path / "cpu-eq-v1.csv")
    shutil.copy(src / "cpu-eq-v1.csv", tmp_path / "my-sweep.csv")  # no grid beside it
    (tmp_path / "bad.csv").write_bytes(b"run_id,status\x00\n")  # NUL: refused by the reader
    monkeypatch.setattr(estimate, "CPU_MEASURED", tmp_path / "cpu-v2.csv")
    estimate.throughput.cache_clear()
    estimate.cpu_held_out.cache_clear()
    try:
        held = estimate.cpu_held_out()
        assert held["grids"] == ["cpu-eq-v1"] and len(held["errors"]) == 7
        assert "the 7 runs of 1 other committed CPU sweep (data/sweeps" in estimate.describe("cpu")
    finally:
        estimate.throughput.cache_clear()
        estimate.cpu_held_out.cache_clear()


def test_d_ff_multiple_of_aligns_matched_widths_within_the_tolerance(tmp_path, small_corpus):
    g = write_grid(tmp_path / "g.toml", small_corpus, seeds="[0]", extra="")
    text = g.read_text().replace("sizes = [[1, 32]]", "sizes = [[1, 32, 4]]")
    heads = "heads = [[8, 8], [8, 2], [8, 1], [1, 1]]"
    g.write_text(text.replace("heads = [[4, 4], [4, 1]]", heads + "\nequal_params = true\n"
                              "d_ff_multiple_of = 2"))
    _, specs = load_grid(g)
    assert [s.model.d_ff for s in specs] == [86, 102, 104, 124]  # 85 -> 86 for (8, 8)
    assert all(s.model.d_head == 4 for s in specs) and specs[0].run_id.endswith("-ff86")
    g.write_text(g.read_text().replace("d_ff_multiple_of = 2", "d_ff_multiple_of = 8"))
    with pytest.raises(GQAError, match="heads \\(8, 1\\).*may be too coarse"):
        load_grid(g)
    g.write_text(g.read_text().replace("equal_params = true\n", ""))
    with pytest.raises(GQAError, match="d_ff_multiple_of needs equal_params"):
        load_grid(g)


def test_equal_params_to_names_a_reference_the_block_does_not_run(tmp_path, small_corpus):
    g = write_grid(tmp_path / "g.toml", small_corpus, seeds="[0]", extra="")
    text = g.read_text().replace("sizes = [[1, 32]]", "sizes = [[1, 32, 4]]")
    g.write_text(text.replace("heads = [[4, 4], [4, 1]]", "heads = [[8, 2], [8, 1]]\n"
                              "equal_params = true\nequal_params_to = [8, 8]"))
    _, specs = load_grid(g)  # the widths of the same configurations matched to (8, 8)
    assert [s.model.d_ff for s in specs] == [101, 104]
    g.write_text(g.read_text().replace("equal_params_to = [8, 8]", "equal_params_to = 8"))
    with pytest.raises(GQAError, match="equal_params_to must be \\[n_head, n_kv_head\\]"):
        load_grid(g)
    g.write_text(g.read_text().replace("equal_params = true\n", "").replace(
        "equal_params_to = 8", "equal_params_to = [8, 8]"))
    with pytest.raises(GQAError, match="equal_params_to needs equal_params = true"):
        load_grid(g)


def test_toy_gpu_style_ladder_runs_on_cpu_without_the_book_packages(tmp_path, small_corpus):
    """The GPU grid's form (sizes with d_head, equal sizes at aligned widths, two seeds,
    whole-split evaluation) at toy size, end to end on the CPU, in a process where altair
    and ipywidgets cannot be imported (the GPU machine has neither)."""
    grid = tmp_path / "toy.toml"
    grid.write_text(f"""
name = "toy-gpu"
[model]
vocab_size = 2048
[train]
tokens_per_param = 0.1
batch_tokens = 256
data = "{small_corpus}"
eval_every = 4
eval_tokens = 256
eval_full = true
[[block]]
sizes = [[1, 32, 4], [1, 64, 8]]
heads = [[8, 8], [1, 1]]
contexts = [32]
seeds = [0, 1]
equal_params = true
d_ff_multiple_of = 2
""")
    out = tmp_path / "toy.csv"
    code = ("import sys; sys.modules.update(altair=None, ipywidgets=None)\n"
            "from gqa_lib.cli.main import main\n"
            f"sys.exit(main(['sweep', {str(grid)!r}, '--out', {str(out)!r}, '--runs-dir', "
            f"{str(tmp_path / 'runs')!r}, '--threads', '1']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    assert re.search(r"estimated .* on CPU", r.stdout.splitlines()[0])
    got = rows(out)
    assert len(got) == 8 and all(x["status"] == "ok" for x in got)
    assert {x["precision"] for x in got} == {"fp32"} and {x["seed"] for x in got} == {"0", "1"}
    for x in got:
        assert int(x["d_ff"]) % 2 == 0 and float(x["val_loss_full_nats"]) > 0
        assert json.loads(x["val_loss_by_position"])["nats"]
    by_size = {}
    for x in got:
        by_size.setdefault((x["d_model"], x["seed"]), []).append(int(x["params_non_embedding"]))
    assert all(max(v) <= 1.01 * min(v) for v in by_size.values())


def test_estimate_detects_the_gpu_it_would_run_on(monkeypatch):
    import torch

    from gqa_lib.train import estimate

    assert estimate.detect_kind("cpu") == ("cpu", "CPU")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for name, kind in (("Tesla T4", "t4"), ("NVIDIA H200", "h200"), ("NVIDIA A100", "h200")):
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None, n=name: n)
        got, note = estimate.detect_kind("auto")
        assert got == kind and note.startswith(name)
    assert "not measured" in note  # another GPU is timed as an H200, and says so
    assert estimate.estimate_sweep([], "h200").total_s == 0
