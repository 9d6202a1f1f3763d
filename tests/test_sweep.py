"""Sweeps: grid files are validated data; a killed sweep resumes with exactly one row per run;
failures are recorded and the sweep goes on; shards partition the grid."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gqa_lib import GQAError, cost
from gqa_lib.train import data
from gqa_lib.train.sweep import COLUMNS, llama3_heads, load_grid, parse_shard

ROOT = Path(__file__).resolve().parents[1]
GQA = str(Path(sys.executable).parent / "gqa")


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "small.jsonl"
    docs = data.load_documents("web")[:60]
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return path


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
        seen.append({line.split()[1] for line in logs[1:]})
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
    r = subprocess.run(_sweep(grid, out, "--json"), capture_output=True, text=True, check=True)
    counts = json.loads(r.stdout.strip().splitlines()[-1])
    assert counts["skipped"] == first and counts["ok"] == 4 - first
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
