"""Corpus, tokenizer, split and batches."""

import gzip
import importlib.util
import json
import math

import numpy as np
import pytest

from gqa_lib import GQAError
from gqa_lib.train import data


@pytest.fixture(scope="module")
def web():
    return data.prepare()


def test_shipped_corpus_is_real_and_sizable():
    docs = data.load_documents("web")
    assert len(docs) > 1000
    assert sum(len(d.encode()) for d in docs) > 4e6  # several MB of text
    assert data.CORPORA["web"].stat().st_size < 2e6  # compressed in the repo
    assert "In the beginning, God created the heavens and the earth." in docs[0]


def test_split_is_deterministic_and_order_free():
    docs = data.load_documents("web")
    train, val = data.split_documents(docs)
    assert 0.03 < len(val) / len(docs) < 0.08
    t2, v2 = data.split_documents(list(reversed(docs)))
    assert set(v2) == set(val) and set(t2) == set(train)
    assert not set(train) & set(val)


def test_committed_tokenizer_is_reproducible():
    # The committed BPE is exactly what training on the training split produces.
    train, _ = data.split_documents(data.load_documents("web"))
    fresh = data.train_tokenizer(train, 2048)
    committed = data.load_tokenizer()
    assert fresh.get_vocab() == committed.get_vocab()
    s = "Yahweh said to Moses, “Go in to Pharaoh…” 123"
    assert committed.decode(committed.encode(s).ids) == s


def test_token_data_statistics(web):
    assert web.vocab_size == 2048 and web.train.dtype == np.uint16
    assert len(web.train) > 1_000_000 and len(web.val) > 30_000
    assert 3.0 < web.val_bytes_per_token < 4.5
    assert web.bits_per_byte(web.val_bytes_per_token * math.log(2)) == pytest.approx(1.0)
    assert 5.0 < web.unigram_entropy() < math.log(2048)
    assert (web.train == web.eos_id).sum() > 1000  # documents are separated


def test_batches_depend_only_on_seed_step_rank(web):
    x1, y1 = data.batch_windows(web.train, 4, 32, seed=1, step=5)
    x2, y2 = data.batch_windows(web.train, 4, 32, seed=1, step=5)
    x3, _ = data.batch_windows(web.train, 4, 32, seed=1, step=5, rank=1)
    assert np.array_equal(x1, x2) and not np.array_equal(x1, x3)
    assert x1.shape == y1.shape == (4, 32) and x1.dtype == np.int64
    assert np.array_equal(x1[:, 1:], y1[:, :-1])
    xv, yv = data.eval_windows(web.val, 64, 640)
    assert xv.shape == (10, 64) and np.array_equal(xv[1], web.val[64:128])


def test_local_files(tmp_path):
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": f"doc {i} " * 20}) + "\n"
                                              for i in range(5)))
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write(json.dumps({"text": "gz doc " * 10}) + "\n")
    (tmp_path / "c.txt").write_text(f"first doc\n{data.EOS}\nsecond doc\n")
    assert len(data.load_documents(tmp_path / "a.jsonl")) == 5
    assert data.load_documents(tmp_path / "c.txt") == ["first doc", "second doc"]
    assert len(data.load_documents(tmp_path)) == 8  # a folder: every file inside
    td = data.prepare(str(tmp_path / "a.jsonl"), vocab_size=300)  # BPE trained on the fly
    assert td.vocab_size <= 300 and len(td.train) > 0 and len(td.val) > 0


def test_bad_sources(tmp_path):
    with pytest.raises(GQAError, match="neither a shipped corpus"):
        data.load_documents(tmp_path / "missing.txt")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{oops\n')
    with pytest.raises(GQAError, match=r"bad.jsonl:2: not valid JSON"):
        data.load_documents(tmp_path / "bad.jsonl")
    (tmp_path / "notext.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(GQAError, match="needs a string field 'text'"):
        data.load_documents(tmp_path / "notext.jsonl")
    (tmp_path / "one.txt").write_text("only one document")
    with pytest.raises(GQAError, match="need >= 2"):
        data.load_documents(tmp_path / "one.txt")
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(GQAError, match="unsupported file type"):
        data.load_documents(tmp_path / "x.csv")
    with pytest.raises(GQAError, match="shorter than context_len"):
        data.batch_windows(np.arange(10), 2, 16, seed=0, step=0)


@pytest.mark.skipif(importlib.util.find_spec("datasets") is not None,
                    reason="datasets installed: the hf: path would try the network")
def test_hf_source_without_datasets_says_how_to_install():
    with pytest.raises(GQAError, match=r"gqa_lib\[hf\]"):
        data.load_documents("hf:wikitext")
