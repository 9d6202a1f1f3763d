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

from gqa_lib import GQAError
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
    (lambda s: s.replace("tokens = 2048\n", ""), "needs `tokens` and `batch_tokens`"),
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
