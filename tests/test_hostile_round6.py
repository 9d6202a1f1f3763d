"""Hostile inputs, round 6 (an audit of calibration, benchmarks, training data and the
n-gram baseline): every case below printed a guessed or wrong number, a traceback, or lost
something already written before its fix. Same contract as tests/test_hostile.py: the exact
right answer, or exit 2 with one line naming the problem."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from gqa_lib import GQAError
from gqa_lib.arch import hardware
from gqa_lib.cost import calibrate as cb
from gqa_lib.io import DATA_DIR

from tests.test_hostile import FAST, ROOT, cli, refused

MEASURED = json.loads(cb.MEASUREMENTS["h200"].read_text())
ROW = 2  # a decode_step row of an aligned model (paper-d64L-L39), 0.0046 s


def damaged(tmp_path, mutate) -> "os.PathLike[str]":
    """A copy of the H200 measurement file after ``mutate(d)``."""
    d = copy.deepcopy(MEASURED)
    mutate(d)
    p = tmp_path / "h200.json"
    p.write_text(json.dumps(d))
    return p


def data_copy(tmp_path, measurements: dict | None = None):
    """A data folder (hardware/ and bench/) for GQA_DATA_DIR, its measurement file replaced."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(DATA_DIR / "hardware", root / "hardware")
    (root / "bench").mkdir()
    (root / "bench" / cb.MEASUREMENTS["h200"].name).write_text(json.dumps(measurements or MEASURED))
    return root


def run_calibrate(root, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gqa_lib.cost.calibrate", *args], cwd=ROOT,
                          env={**os.environ, "GQA_DATA_DIR": str(root)}, capture_output=True,
                          text=True, timeout=120)


# ----- 1. calibrate never writes a starting guess as a fitted constant ------------------------
@pytest.mark.parametrize("drop, names", [("prefill", "matmul_flops_per_s"),
                                         ("train_step", "train_compute_factor"),
                                         ("decode_step", "bandwidth_bytes_per_s")])
def test_a_regime_missing_from_the_measurements_is_refused_not_guessed(tmp_path, drop, names):
    """Was: without prefill rows the FLOP rates came out at 0.5 / 0.4 x the datasheet peak
    (their starting guesses) and were written, and shown, as calibrated."""
    p = damaged(tmp_path, lambda d: d.update(rows=[r for r in d["rows"] if r["regime"] != drop]))
    points = cb.measured_points(p)
    with pytest.raises(GQAError, match=f"'{drop}'.*{names}"):
        cb.fit(points)


def test_a_regime_with_one_configuration_cannot_be_judged_by_leave_one_out(tmp_path,
                                                                           monkeypatch):
    def one_train(d):
        d["rows"] = [r for r in d["rows"] if r["regime"] != "train_step"
                     or r["model"] == "paper-d64L-L39"]
    monkeypatch.setitem(cb.MEASUREMENTS, "h200", damaged(tmp_path, one_train))
    with pytest.raises(GQAError, match="1 measured 'train_step' configuration.*>= 2"):
        cb.calibrate("h200")


@pytest.mark.parametrize("unit, scale", [("s", 1.0), ("ms", 1e3), ("us", 1e6)])
def test_a_row_is_read_in_its_unit(tmp_path, unit, scale):
    """Was: `unit` was ignored; 4.5 "ms" was read as 4.5 s."""
    p = damaged(tmp_path, lambda d: d["rows"][ROW].update(
        unit=unit, value=d["rows"][ROW]["value"] * scale, source="marked"))
    want = MEASURED["rows"][ROW]["value"]
    got = [q["seconds"] for q in cb.measured_points(p) if q["source"] == "marked"]
    assert got == [pytest.approx(want, rel=1e-12)]


@pytest.mark.parametrize("field, value, words", [
    ("unit", "min", "unit must be one of 's', 'ms'"),
    ("context", 8192.7, "rows[2].context"), ("context", "8k", "rows[2].context"),
    ("context", 0, "rows[2].context"), ("batch", 1.5, "rows[2].batch"),
    ("value", "0.0045", "rows[2].value"), ("value", float("nan"), "rows[2].value"),
    ("value", -0.0045, "rows[2].value"), ("value", float("inf"), "rows[2].value"),
    ("value", 0, "rows[2].value"), ("value", None, "rows[2].value"),
    ("model", "nope", "rows[2].model='nope' is not in")])
def test_a_damaged_row_is_refused_naming_it(tmp_path, field, value, words):
    """Was: a fractional context truncated; '8k' a ValueError; NaN, inf, negative values
    scipy's "Residuals are not finite"; 0 a ZeroDivisionError; an unknown model a KeyError."""
    p = damaged(tmp_path, lambda d: d["rows"][ROW].update({field: value}))
    with pytest.raises(GQAError) as e:
        cb.measured_points(p)
    assert words in str(e.value) and str(p) in str(e.value)


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.update(rows={"a": 1}), '"rows" must be a list'),
    (lambda d: d.pop("models"), '"models" must be an object'),
    (lambda d: d["rows"].__setitem__(ROW, 7), "rows[2] must be an object")])
def test_a_damaged_measurement_file_is_refused(tmp_path, mutate, words):
    with pytest.raises(GQAError, match=words.replace("[", r"\[").replace("]", r"\]")):
        cb.measured_points(damaged(tmp_path, mutate))


@pytest.mark.parametrize("memory", ["139.8", -1, None])
def test_memory_gib_is_checked_before_arithmetic(tmp_path, monkeypatch, memory):
    """Was: "139.8" * 2**30 built a 5 GB string before failing."""
    monkeypatch.setitem(cb.MEASUREMENTS, "h200", damaged(
        tmp_path, lambda d: d["machine"].update(memory_gib=memory)))
    with pytest.raises(GQAError, match="machine.memory_gib"):
        cb.calibrate("h200")


def test_the_calibrate_command_refuses_in_one_line_and_keeps_the_file(tmp_path):
    d = copy.deepcopy(MEASURED)
    d["rows"][ROW]["context"] = "8k"
    root = data_copy(tmp_path, d)
    before = (root / "hardware" / "calibration.toml").read_text()
    r = run_calibrate(root)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "rows[2].context" in r.stderr
    assert (root / "hardware" / "calibration.toml").read_text() == before


@pytest.mark.parametrize("args, rc", [(("--help",), 0), (("--bogus",), 2)])
def test_help_and_unknown_arguments_write_nothing(tmp_path, args, rc):
    """Was: any argument was ignored and calibration.toml rewritten."""
    root = data_copy(tmp_path)
    cal = root / "hardware" / "calibration.toml"
    cal.write_text(cal.read_text() + "# a mark the refit would erase\n")
    before = cal.read_text()
    r = run_calibrate(root, *args)
    assert r.returncode == rc and "Traceback" not in r.stderr
    if rc == 0:
        assert r.stdout.startswith("usage:")
    else:
        assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
        assert "unrecognized arguments: --bogus" in r.stderr
    assert cal.read_text() == before


# ----- 3. a damaged calibration.toml is refused, naming the file and the key ------------------
SHIPPED = hardware.CALIBRATION_FILE.read_text()


@pytest.fixture
def calibration_file(tmp_path, monkeypatch):
    """Write a calibration file in place of the shipped one: (text) -> its path."""
    path = tmp_path / "calibration.toml"
    monkeypatch.setattr(hardware, "CALIBRATION_FILE", path)
    hardware.calibrations.cache_clear()

    def write(text: str):
        path.write_text(text)
        hardware.calibrations.cache_clear()
        return path
    yield write
    hardware.calibrations.cache_clear()


@pytest.mark.parametrize("old, new, words", [
    ("layer_floor_s = 9.23e-05\n", "", "missing layer_floor_s"),
    ("points = 18\n", "points = 18\nbandwith = 3\n",
     "unknown key 'bandwith' (did you mean 'bandwidth_bytes_per_s'?)"),
    ('"training" = 0.0785', '"training" = "bad"', "loo_max_error.training"),
    ("layer_floor_s = 9.23e-05", "layer_floor_s = 1e300", "layer_floor_s (seconds per layer"),
    ("points = 18", "points = -5", "points (how many step times"),
    ("points = 18", "points = 18.5", "points (how many step times"),
    ("bandwidth_bytes_per_s = 4528000000000.0", "bandwidth_bytes_per_s = 1e308",
     "bandwidth_bytes_per_s (between 0.001 and 2 x the datasheet's"),
    ("matmul_flops_per_s = 514900000000000.0", "matmul_flops_per_s = 1e-308",
     "matmul_flops_per_s (between"),
    ("memory_capacity_bytes = 150100000000.0", "memory_capacity_bytes = 1.0",
     "memory_capacity_bytes (between"),
    ("train_compute_factor = 1.299", "train_compute_factor = 1e9", "train_compute_factor"),
    ("[calibration.h200]", "[calibration.h999]", "'h999' is not a known accelerator")])
def test_a_damaged_calibration_file_is_refused(calibration_file, old, new, words):
    """Was: TypeError for a missing or unknown key or a string error; 1e300 s per layer
    printed as a calibrated latency; points = -5 "calibrated on -5 measured step times";
    a table for an unknown accelerator silently ignored."""
    assert old in SHIPPED
    path = calibration_file(SHIPPED.replace(old, new))
    with pytest.raises(GQAError) as e:
        hardware.calibrations()
    assert words in str(e.value) and str(path) in str(e.value)


def test_the_shipped_calibration_file_passes_its_own_checks(calibration_file):
    calibration_file(SHIPPED)
    assert hardware.calibrations()["h200"].points == 18


def test_a_damaged_calibration_file_is_one_line_from_the_cli(calibration_file, capsys):
    calibration_file(SHIPPED.replace("points = 18\n", "points = 18\nbandwith = 3\n"))
    rc, out, err = cli("optimize", "--context", "128k", "--target-loss", "2.615",
                       "--objective", "latency", "--hardware", "h200", capsys=capsys)
    refused(rc, out, err, "bandwith", "calibration.toml")


# ----- 4 and 7. benchmarks: a partial run never replaces a record; outputs checked first ------
def gpu_toy(out, *extra, wait=True):
    cmd = [sys.executable, "-m", "benchmarks.gpu", "--toy", "--out", str(out), *extra]
    if wait:
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_a_killed_rerun_keeps_the_previous_complete_record(tmp_path):
    """Was: a new run replaced gpu-toy-cpu.json with `complete: false, 0 rows` at its
    start; killed mid-run, the complete record was gone."""
    from tests.test_benchmarks import kill_when_running

    record = tmp_path / "gpu-toy-cpu.json"
    record.write_text(json.dumps({"complete": True, "rows": [{"seconds": 1.0}], "toy": True}))
    before = record.read_text()
    partial = tmp_path / "partial-gpu-toy-cpu.json"
    kill_when_running(gpu_toy(tmp_path, "--hang-in", "decode", wait=False), partial, "decode",
                      timeout_s=120)
    assert record.read_text() == before  # the complete record, whole
    assert json.loads(partial.read_text())["parts_done"] == ["calibrate"]
    r = gpu_toy(tmp_path)  # a run that completes replaces it, and leaves no partial file
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(record.read_text())["parts_done"] and not partial.exists()


@pytest.mark.parametrize("flag, value", [("--budget-s", "nan"), ("--budget-s", "inf"),
                                         ("--budget-s", "-5"), ("--budget-s", "0")])
def test_a_non_finite_or_non_positive_budget_is_refused(tmp_path, flag, value):
    """Was: NaN or inf disabled every cap and wrote NaN/Infinity into the JSON."""
    r = gpu_toy(tmp_path / "out", flag, value)
    refused(r.returncode, r.stdout, r.stderr, "--budget-s", "finite number of seconds > 0")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, value", [("--limit-s", "nan"), ("--limit-s", "inf"),
                                         ("--ladder-cap-s", "-1")])
def test_a_session_limit_must_be_finite_and_positive(tmp_path, flag, value):
    r = subprocess.run([sys.executable, "-m", "benchmarks.gpu_session", "--toy", "--out",
                        str(tmp_path / "out"), "--grid", str(tmp_path / "none.toml"), flag,
                        value], cwd=ROOT, capture_output=True, text=True, timeout=120)
    refused(r.returncode, r.stdout, r.stderr, flag, "finite number of seconds > 0")


def bad_out(tmp_path, case):
    f = tmp_path / "afile"
    f.write_text("x")
    if case == "file":
        return f, "is a file"
    if case == "under a file":
        return f / "sub", "which is a file"
    if case == "unwritable":
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o500)
        return d / "sub", "not writable"
    d = tmp_path / "out"
    (d / "gpu-toy-cpu.json").mkdir(parents=True)
    return d, "gpu-toy-cpu.json is a folder"


@pytest.mark.parametrize("case", ["file", "under a file", "unwritable", "result is a folder"])
def test_a_bad_benchmark_out_is_one_line_before_any_work(tmp_path, case):
    """Was: FileExistsError, NotADirectoryError or PermissionError tracebacks."""
    if case == "unwritable" and os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    out, words = bad_out(tmp_path, case)
    r = gpu_toy(out)
    refused(r.returncode, r.stdout, r.stderr, words)


def test_a_session_out_that_is_a_file_is_one_line(tmp_path):
    out, words = bad_out(tmp_path, "file")
    r = subprocess.run([sys.executable, "-m", "benchmarks.gpu_session", "--toy", "--out",
                        str(out), "--limit-s", "5"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    refused(r.returncode, r.stdout, r.stderr, words)


def test_a_session_leaves_no_runs_folder_behind(tmp_path, monkeypatch):
    """Was: every session left a /tmp/gqa-session-runs-* folder of checkpoints."""
    import tempfile

    from benchmarks import gpu_session

    made = []
    real = tempfile.mkdtemp
    monkeypatch.setattr(gpu_session.tempfile, "mkdtemp",
                        lambda **kw: made.append(real(dir=tmp_path, **kw)) or made[-1])
    monkeypatch.setattr(gpu_session, "run_capped", lambda *a, **k: ("ok", 0.0))
    assert gpu_session.main(["--toy", "--out", str(tmp_path / "out"), "--commit", "abc",
                             "--limit-s", "60"]) == 0
    assert made and not any(os.path.exists(m) for m in made)


@pytest.mark.parametrize("text", ["{bad", "[1, 2]"])
def test_a_damaged_previous_benchmark_record_is_one_line_before_measuring(tmp_path, capsys,
                                                                          monkeypatch, text):
    """Was: JSONDecodeError (after the choice of sections, before any write)."""
    from benchmarks import __main__ as bench

    ran = []
    monkeypatch.setattr(bench, "SUITES", {"cost": lambda quick=False: ran.append(1) or {}})
    (tmp_path / "latest-cpu-quick.json").write_text(text)
    rc = bench.main(["--quick", "--only", "cost", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    refused(rc, out, err, "latest-cpu-quick.json")
    assert not ran and (tmp_path / "latest-cpu-quick.json").read_text() == text


def test_benchmarks_check_out_before_measuring(tmp_path, capsys, monkeypatch):
    """Was: the suites ran for minutes, then FileExistsError lost their results."""
    from benchmarks import __main__ as bench

    ran = []
    monkeypatch.setattr(bench, "SUITES", {"cost": lambda quick=False: ran.append(1) or {}})
    out, _ = bad_out(tmp_path, "under a file")
    rc = bench.main(["--quick", "--only", "cost", "--out", str(out)])
    o, err = capsys.readouterr()
    refused(rc, o, err, "which is a file")
    assert not ran


# ----- 5. one process at a time in a run folder ------------------------------------------------
def test_a_second_training_process_in_the_same_folder_is_refused(tmp_path, capsys):
    """Was: two `gqa train` into one fresh --out both ran; final.json and ckpt.pt were one
    run's, metrics.jsonl a mix of both."""
    from gqa_lib.io import RUN_LOCK, folder_lock

    out = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from gqa_lib.io import folder_lock\n"
        f"with folder_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(60)")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused(*cli("train", *FAST, "--steps", "2", "--out", out, capsys=capsys),
                "in use by another process", RUN_LOCK)
        assert sorted(p.name for p in out.iterdir()) == [RUN_LOCK]  # nothing written
    finally:
        holder.kill()
        holder.communicate()
    # the holder was killed (SIGKILL): its lock file is left, its lock is not
    assert (out / RUN_LOCK).exists()
    rc, _, err = cli("train", *FAST, "--steps", "2", "--out", out, capsys=capsys)
    assert rc == 0, err
    assert not (out / RUN_LOCK).exists() and (out / "final.json").is_file()
    with folder_lock(out):  # released at the end of the run
        pass


# ----- 6. damaged training data: re-tokenised, or one line naming the file --------------------
@pytest.mark.parametrize("damage", ["truncated", "garbage", "float ids", "ids past the vocab"])
def test_a_damaged_token_cache_is_tokenised_again(tmp_path, monkeypatch, small_corpus, damage):
    """Was: zipfile.BadZipFile from a truncated cache (the comment said an unreadable cache
    is re-tokenised); a cache of floats or of ids the tokenizer lacks was trained on."""
    import io

    import numpy as np

    from gqa_lib.train import data

    monkeypatch.setenv("GQA_CACHE_DIR", str(tmp_path / "cache"))
    data.prepare.cache_clear()
    try:
        good = data.prepare(str(small_corpus), tokenizer=str(data.DEFAULT_TOKENIZER))
        (npz,) = (tmp_path / "cache").glob("*.npz")
        raw = npz.read_bytes()
        if damage == "truncated":
            npz.write_bytes(raw[: len(raw) // 2])
        elif damage == "garbage":
            npz.write_bytes(b"PK\x03\x04" + os.urandom(200))
        else:
            buf = io.BytesIO()
            train = good.train.astype(float) + 0.5 if damage == "float ids" else \
                np.full_like(good.train, 60000)
            np.savez(buf, train=train, val=good.val)
            npz.write_bytes(buf.getvalue())
        data.prepare.cache_clear()
        again = data.prepare(str(small_corpus), tokenizer=str(data.DEFAULT_TOKENIZER))
        assert np.array_equal(again.train, good.train) and np.array_equal(again.val, good.val)
        assert npz.read_bytes() == raw  # rewritten whole
    finally:
        data.prepare.cache_clear()


def test_a_damaged_tokenizer_file_is_one_line(tmp_path):
    """Was: a bare Exception from `tokenizers`."""
    from gqa_lib.train import data

    bad = tmp_path / "tok.json"
    bad.write_text(data.DEFAULT_TOKENIZER.read_text()[:500])
    with pytest.raises(GQAError, match="not a readable tokenizer file") as e:
        data.load_tokenizer(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_compressed_corpus_is_one_line(tmp_path, damage):
    """Was: EOFError or LZMAError from a truncated or garbage .jsonl.xz."""
    from gqa_lib.train import data

    raw = data.CORPORA["web"].read_bytes()
    bad = tmp_path / "c.jsonl.xz"
    bad.write_bytes(raw[: len(raw) // 3] if damage == "truncated" else os.urandom(4000))
    with pytest.raises(GQAError, match="damaged or truncated") as e:
        data.load_documents(bad)
    assert str(bad) in str(e.value)


# ----- 8. the n-gram baseline: no wrapped keys, parameters named -----------------------------
def test_a_vocabulary_whose_trigram_keys_would_wrap_is_refused():
    """Was: V**3 past 2**63 wrapped the int64 keys silently (wrong losses)."""
    import numpy as np

    from gqa_lib.train.ngram import NGramLM, _max_vocab

    V = _max_vocab(3)
    assert V ** 3 < 2**63 <= (V + 1) ** 3 and V == 2_097_151
    toks = np.random.default_rng(0).integers(V - 50, V, 2000)
    assert NGramLM.fit(toks, 3, V).prob(toks[:2]).sum() == pytest.approx(1.0)
    with pytest.raises(GQAError, match="vocab_size=2,097,152 is too large for an order-3"):
        NGramLM.fit(toks, 3, V + 1)


@pytest.mark.parametrize("call, words", [
    (lambda lm, t: lm.token_losses(t, 0), "context_len"),
    (lambda lm, t: lm.token_losses(t, 1.5), "context_len"),
    (lambda lm, t: lm.token_losses(t * 0 - 1, 8), "tokens must hold ids in [0, 50)"),
    (lambda lm, t: lm.token_losses(t + 50, 8), "tokens must hold ids in [0, 50)"),
    (lambda lm, t: lm.prob([999, 3]), "context must hold ids"),
    (lambda lm, t: type(lm).fit(t, 2, 50.5), "vocab_size must be an integer"),
    (lambda lm, t: type(lm).fit(t, "2", 50), "order must be an integer in [1, 3]"),
    (lambda lm, t: type(lm).fit(t.astype(float) + 0.5, 2, 50), "tokens must be a 1-D"),
    (lambda lm, t: type(lm).fit(t.reshape(-1, 2), 2, 50), "tokens must be a 1-D")])
def test_ngram_refusals_name_the_parameter(call, words):
    """Was: ZeroDivisionError for context_len 0, TypeError for vocab_size 50.5, and
    out-of-range ids read past the tables."""
    import numpy as np

    from gqa_lib.train.ngram import NGramLM

    t = np.random.default_rng(0).integers(0, 50, 2000)
    lm = NGramLM.fit(t, 3, 50)
    with pytest.raises(GQAError) as e:
        call(lm, t)
    assert words in str(e.value)


@pytest.mark.parametrize("args, words", [(["--source", "/nonexistent"], "/nonexistent"),
                                         (["--out", "UNDER_A_FILE"], "which is a file")])
def test_the_ngram_command_refuses_in_one_line(tmp_path, capsys, args, words):
    from gqa_lib.train import ngram

    f = tmp_path / "afile"
    f.write_text("x")
    args = [str(f / "x.csv") if a == "UNDER_A_FILE" else a for a in args]
    rc = ngram.main(args + ([] if "--out" in args else ["--out", str(tmp_path / "n.csv")]))
    out, err = capsys.readouterr()
    refused(rc, out, err, words)


# ----- 9. a training-time estimate is never faster than the device's peak ---------------------
@pytest.mark.parametrize("kind, peak", [("h200", 989e12), ("t4", 65e12)])
def test_an_estimate_never_implies_more_than_the_peak_flop_rate(kind, peak):
    """Was: an 8B model's estimate on the H200 implied 2,238 TFLOP/s (datasheet 989),
    flagged only "extrapolated"."""
    from gqa_lib import get_preset
    from gqa_lib.train import estimate
    from gqa_lib.train.settings import TrainConfig

    big, tc = get_preset("llama-3.1-8b"), TrainConfig(steps=100, batch_size=16, context_len=256)
    r = estimate.estimate_run(big, tc, kind)
    flops = estimate.flops_per_token(big, 256) * tc.steps * tc.batch_size * tc.context_len
    assert r.at_peak and flops / r.train_s <= peak * (1 + 1e-9)
    assert any("capped at the device's peak" in x
               for x in estimate.sweep_lines([(big, tc)], kind, kind))
    tiny = get_preset("tiny")  # the fitted range is untouched
    assert not estimate.estimate_run(tiny, TrainConfig(steps=10), kind).at_peak


def test_a_refused_run_leaves_no_folders_behind(tmp_path, capsys):
    """The run folder's lock creates --out (and its parents) before the checks: a refused
    run removes what it created and wrote nothing into."""
    out = tmp_path / "a" / "b" / "r"
    refused(*cli("train", *FAST, "--steps", "2", "--out", out, "--resume", capsys=capsys),
            "no checkpoint")
    assert not (tmp_path / "a").exists()
