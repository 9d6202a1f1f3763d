"""Hostile inputs to the evidence readers and the book's helpers (round 6 of the audits):
each case below once dropped a run, changed a statistic or ended in a traceback. The
contract: the exact statistics, or one GQAError naming the file, the run or line, and the
column."""

from __future__ import annotations

import csv
import json
import shutil

import pandas as pd
import pytest

from gqa_lib import GQAError
from gqa_lib.evidence import equal_size as eq
from gqa_lib.io import DATA_DIR

SOURCE = DATA_DIR / "sweeps" / "cpu-eq-v2.csv"


def _rows():
    with SOURCE.open(newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        return r.fieldnames, list(r)


def _write(tmp_path, header, rows):
    p = tmp_path / "eq.csv"
    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        w.writerows(rows)
    return p


def test_the_committed_file_reads_as_before(tmp_path):
    p = tmp_path / "eq.csv"
    shutil.copy(SOURCE, p)
    assert len(eq.read(p)) == len(_rows()[1])


@pytest.mark.parametrize("column, value, message", [
    ("val_loss_full_nats", "", "column 'val_loss_full_nats' has a missing"),  # was: dropped
    ("val_loss_full_nats", "nan", "column 'val_loss_full_nats' has a missing"),
    ("val_loss_full_nats", "inf", "column 'val_loss_full_nats' has a missing"),  # was: mean inf
    ("val_loss_full_nats", "-3.5", "column 'val_loss_full_nats' must be > 0"),  # a mean of 1.18
    ("val_loss_full_nats", "fast", "column 'val_loss_full_nats' has a missing"),  # TypeError
    ("lr", "", "column 'lr' has a missing"),  # was: the run left the main runs unseen
    ("lr", "5.5e-3x", "column 'lr' has a missing"),  # was: ValueError
    ("status", "OK", "status 'OK' is not one of ok, failed"),  # was: dropped
    ("status", "ok ", "status 'ok ' is not one of ok, failed"),
    ("val_loss_by_position", "{", "column 'val_loss_by_position': not JSON"),
    ("val_loss_by_position", "", "column 'val_loss_by_position': not JSON"),
    ("val_loss_by_position", '{"first": [0], "last": [0]}', "is not an object of equal-length"),
    ("val_loss_by_position", '{"first": [0, 1], "last": [0, 1], "nats": [4.2]}',
     "is not an object of equal-length"),
    ("val_loss_by_source", "[1, 2]", "is not an object of source names"),
])
def test_a_damaged_cell_is_refused_naming_file_and_column(tmp_path, column, value, message):
    header, rows = _rows()
    rows[1][column] = value
    p = _write(tmp_path, header, rows)
    with pytest.raises(GQAError, match=message) as e:
        eq.read(p)
    assert str(p) in str(e.value)


def test_a_run_with_two_finished_rows_is_refused(tmp_path):
    """Was: the later row won silently, and the mean moved."""
    header, rows = _rows()
    twin = dict(rows[0], val_loss_full_nats="2.0")
    p = _write(tmp_path, header, [*rows, twin])
    with pytest.raises(GQAError, match=f"run '{rows[0]['run_id']}' has two finished rows "
                                       f"\\(lines 2 and {len(rows) + 2}\\)"):
        eq.read(p)


@pytest.mark.parametrize("column", ["val_loss_full_nats", "lr", "val_loss_by_position"])
def test_a_missing_column_is_named(tmp_path, column):
    """Was: AttributeError or KeyError from deep inside."""
    header, rows = _rows()
    header = [c for c in header if c != column]
    p = _write(tmp_path, header, [{k: r[k] for k in header} for r in rows])
    with pytest.raises(GQAError, match=f"missing column\\(s\\) {column}"):
        eq.read(p)


def test_a_failed_row_beside_its_rerun_is_fine(tmp_path):
    """What gqa sweep writes when a run failed and a resumed sweep ran it again."""
    header, rows = _rows()
    failed = {k: "" for k in header} | {"run_id": rows[0]["run_id"], "status": "failed"}
    p = _write(tmp_path, header, [failed, *rows])
    pd.testing.assert_frame_equal(eq.read(p).drop(columns=["by_position", "by_source"]),
                                  eq.read(SOURCE).drop(columns=["by_position", "by_source"]),
                                  check_dtype=False)  # a blank failed row makes ints floats
    assert json.dumps(eq.read(p).by_position[0]) == json.dumps(eq.read(SOURCE).by_position[0])


# ----- the notebook tools: a damaged notebook is one line, and no write is left half done ----
NOTEBOOK = DATA_DIR.parent / "notebooks" / "where-cost-goes.ipynb"


@pytest.mark.parametrize("content, message", [
    (b"{", "invalid JSON"), (b"\xff\xfe\x00", "not UTF-8"), (b"[1, 2]", "a list of cells"),
    (b'{"metadata": {}}', "a list of cells"),
    (b'{"cells": [{"cell_type": "markdown", "source": 3}]}', "cell 0 is not a notebook cell"),
])
@pytest.mark.parametrize("tool", ["colab", "prose_refresh"])
def test_a_damaged_notebook_is_one_line(tmp_path, capsys, content, message, tool):
    """Was: JSONDecodeError, UnicodeDecodeError, AttributeError, KeyError or TypeError."""
    import importlib

    main = importlib.import_module(f"gqa_lib.book.{tool}").main
    p = tmp_path / "nb.ipynb"
    p.write_bytes(content)
    for args in ([str(p), "--check"], [str(p)]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and str(p) in err
    assert p.read_bytes() == content  # nothing written
    assert main([str(tmp_path / "missing.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2 and "a folder" in capsys.readouterr().err


def test_the_notebook_writers_are_atomic(tmp_path, monkeypatch):
    """Was: path.write_text, so a write cut short (a full disk: `ulimit -f`) left half a
    notebook of invalid JSON. Both writers go through gqa_lib.io's atomic write."""
    from gqa_lib.book import colab, prose

    p = tmp_path / "nb.ipynb"
    p.write_bytes(NOTEBOOK.read_bytes())
    nb = json.loads(p.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x"}]  # to clear
    p.write_text(json.dumps(nb))
    before = p.read_bytes()

    def full_disk(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("gqa_lib.io.atomic_write_bytes", full_disk)
    for write in (lambda: colab.sync(p), lambda: prose.write_notebook(p, nb)):
        with pytest.raises(OSError):
            write()
        assert p.read_bytes() == before


# ----- tables.show: what it shows is what the frame holds -----------------------------------
def test_show_refuses_what_it_would_misshow():
    from gqa_lib.book import tables

    df = pd.DataFrame({"a": [1, 2], "b": [3, 4], "c": [5, 6]})
    for bad, message in ((lambda: tables.show(df, "abc"), "a list of names"),  # was a, b, c
                         (lambda: tables.show(df, max_rows=-1), "max_rows"),  # dropped a row
                         (lambda: tables.show(df, max_rows="2"), "max_rows"),  # TypeError
                         (lambda: tables.show(df["a"]), "takes a DataFrame"),  # AttributeError
                         (lambda: tables.show(df, formats={"a": "{:%Y}"}), "column 'a'")):
        with pytest.raises(GQAError, match=message):
            bad()


def test_show_never_truncates_heads_and_blanks_what_is_missing():
    """Was: n_head 8.5 shown as (8, 1), (0.9, 1.7) as (0, 1); a NaN context a ValueError."""
    from gqa_lib.book import tables

    df = pd.DataFrame({"n_head": [8, 8.5, 0.9, float("nan")], "n_kv_head": [1, 1, 1.7, 1],
                       "context": [8192, 131072, float("nan"), 1024]})
    shown = tables.show(df, ["heads", "context"]).frame
    assert list(shown.iloc[:, 0]) == ["(8, 1)", "(8.5, 1)", "(0.9, 1.7)", ""]
    assert list(shown.iloc[:, 1]) == ["8K", "128K", "", "1K"]
    named = tables.show(pd.DataFrame({"g": [float("nan")]}),
                        formats={"g": lambda g: "decode only" if g != g else f"{g:,}"}).frame
    assert named.iloc[0, 0] == "decode only"  # a format that names a missing value keeps it


# ----- the explorers --------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, control", [
    ("target_loss", 2.6151, "target loss"), ("context", 100_000, "context T"),
    ("lam", 0.33, "lambda"), ("hardware", "H200", "accelerator"),
    ("objective", "cost", "minimise"),
])
def test_the_live_explorer_names_the_control_a_state_is_off(field, value, control):
    """Was: ipywidgets' TraitError 'Invalid selection', naming no control, though explore()
    takes the same state."""
    pytest.importorskip("ipywidgets")
    import dataclasses

    from gqa_lib.book import widgets

    state = dataclasses.replace(widgets.ExplorerState(hardware="h200"), **{field: value})
    with pytest.raises(GQAError, match=f"explorer's {control}.* control has no value"):
        widgets.explorer(state)


def test_the_static_table_keys_contexts_it_can_tell_apart():
    """Was: 65,536 and 100,000 both keyed log2 T = 16, so the chart mixed two contexts."""
    from gqa_lib.book import explorer_html

    for contexts in ((65536, 100_000), (1.5,), ()):
        with pytest.raises(GQAError, match="contexts must"):
            explorer_html.static_explorer_table(contexts=contexts, targets=(2.615,))
    with pytest.raises(GQAError, match="targets must be a list of numbers"):
        explorer_html.static_explorer_table(targets="2.6")  # was: TypeError
    for table in (pd.DataFrame(), "x"):
        with pytest.raises(GQAError, match="static_explorer_table"):
            explorer_html.static_explorer(table)  # was: KeyError


def test_a_pasted_model_is_read_or_refused_for_what_it_is():
    """Was: "unknown model '\\ufeff{...the whole config...}'" for a file with a byte-order
    mark, "unknown model '[1,2]'" for a list, and, for a model too small for the fit,
    "target_loss=6.92 is reached by no candidate", a target the reader never set."""
    import dataclasses

    from gqa_lib.book import widgets

    llama = json.dumps({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1,
                        "num_attention_heads": 4, "num_key_value_heads": 1,
                        "intermediate_size": 128, "vocab_size": 1000})
    assert widgets.parse_your_model("\ufeff" + llama) == widgets.parse_your_model(llama)
    for text, message in (("[1, 2]", "got a list"), ('{"a": 1}' * 20 + "x", "not valid JSON"),
                          ("x" * 80, "neither a preset name")):
        with pytest.raises(GQAError, match=message):
            widgets.parse_your_model(text)
    state = dataclasses.replace(widgets.ExplorerState(), your_model=widgets.parse_your_model(llama))
    with pytest.raises(GQAError, match="your model .* would reach a loss of"):
        widgets.explore(state)
