"""Corpus, tokenizer, split and batches."""

import gzip
import importlib.util
import json
import lzma
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gqa_lib import GQAError
from gqa_lib.train import data

BUILD = data.DATA_DIR / "corpus" / "build_corpus.py"


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


# ----- the pd corpus -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pd_records():
    with lzma.open(data.CORPORA["pd"], "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def pd_split():
    return data.split_documents(data.load_documents("pd"))


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("build_corpus", BUILD)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pd_corpus_sizes_sources_and_manifest(pd_records, pd_split):
    train, val = pd_split
    manifest = json.loads((data.DATA_DIR / "corpus" / "pd.manifest.json").read_text())
    names = [s["name"] for s in manifest["sources"]]
    assert {r["source"] for r in pd_records} == set(names)
    assert len({r["id"] for r in pd_records}) == len(pd_records)  # ids are unique
    val_set = set(val)
    per_source = Counter(r["source"] for r in pd_records)
    val_source = Counter(r["source"] for r in pd_records if r["text"] in val_set)
    for s in manifest["sources"]:
        assert s["licence"].lower().startswith("public domain")
        assert s["documents"] == per_source[s["name"]]
        assert s["val_documents"] == val_source[s["name"]] > 0  # validation from all sources
    assert len(val) >= 71  # at least as many validation documents as web has
    with lzma.open(data.CORPORA["web"], "rt", encoding="utf-8") as f:
        web = {r["id"]: r["text"] for r in map(json.loads, f)}
    pd_web = {r["id"].removeprefix("engWEB2015eb:"): r["text"] for r in pd_records
              if r["source"] == "engWEB2015eb"}
    assert set(data.split_documents(list(web.values()))[1]) <= val_set  # same validation
    # the chapters are web's, unchanged except where decontamination cut them (49 cut;
    # Psalm 108, which repeats parts of Psalms 57 and 60 (in validation), dropped)
    assert set(pd_web) <= set(web) and len(web) - len(pd_web) <= 5
    assert sum(pd_web[k] == web[k] for k in pd_web) >= 0.95 * len(web)
    assert data.CORPORA["pd"].stat().st_size < 8e6


def test_pd_split_is_deterministic_and_order_free(pd_split):
    docs = data.load_documents("pd")
    t2, v2 = data.split_documents(list(reversed(docs)))
    assert set(v2) == set(pd_split[1]) and set(t2) == set(pd_split[0])
    assert not set(t2) & set(v2)


def test_pd_tokenizer_is_reproducible(pd_split):
    fresh = data.train_tokenizer(pd_split[0], 2048)
    committed = data.TOKENIZERS["pd"].read_text(encoding="utf-8")
    assert json.loads(fresh.to_str()) == json.loads(committed)  # vocabulary and merges


def test_pd_token_counts(pd_split):
    pd = data.prepare("pd")  # the corpus brings its own tokenizer
    assert pd.vocab_size == 2048 and pd.train.dtype == np.uint16
    assert len(pd.train) >= 8_000_000  # 20 tokens per parameter up to 400K parameters
    assert len(pd.val) > 300_000
    assert 2.5 < pd.val_bytes_per_token < 4.5
    first = pd.val[:int(np.argmax(pd.val == pd.eos_id))]
    assert data.load_tokenizer(data.TOKENIZERS["pd"]).decode(first.tolist()) == pd_split[1][0]


def test_no_training_document_shares_a_13gram_with_validation(pd_split):
    train, val = pd_split
    vocab: dict[str, int] = {}
    val_h = np.unique(np.concatenate([data.ngram_hashes(d, vocab) for d in val]))
    train_h = np.concatenate([data.ngram_hashes(d, vocab) for d in train])
    assert len(val_h) > 200_000 and len(train_h) > 4_000_000
    assert not np.isin(train_h, val_h).any()
    # the check has teeth: a validation sentence pasted into training is found
    pasted = " ".join(data.normal_words(val[0])[:20])
    assert np.isin(data.ngram_hashes(train[0] + " " + pasted, vocab), val_h).any()


def test_no_duplicate_paragraphs_in_pd(pd_records):
    seen: Counter = Counter()
    for r in pd_records:
        for p in r["text"].split("\n"):
            words = data.normal_words(p)
            if len(words) >= 8:
                seen[" ".join(words)] += 1
    assert max(seen.values()) == 1


_words = st.lists(st.sampled_from(["a", "b", "c", "Yahweh", "said", "Ünïcode"]), max_size=40)


@settings(max_examples=60, deadline=None)
@given(_words, _words, st.integers(1, 5))
def test_ngram_hashes_match_word_tuples(a, b, n):
    # oracle: the set of n-word tuples, compared in pure Python
    vocab: dict[str, int] = {}
    ha, hb = (data.ngram_hashes(" ".join(w), vocab, n) for w in (a, b))
    ta, tb = ([tuple(x.lower() for x in w[i:i + n]) for i in range(len(w) - n + 1)]
              for w in (a, b))
    assert len(ha) == len(ta) and ha.dtype == np.uint64
    for i, t in enumerate(ta):
        assert (ha[i] == hb).any() == (t in tb)


def test_normal_words_ignore_case_and_punctuation():
    assert data.normal_words("“Go in to Pharaoh…” said_he, 123") == \
        ["go", "in", "to", "pharaoh", "said", "he", "123"]


def test_decontaminate_drops_only_the_sharing_units(build):
    vocab: dict[str, int] = {}
    val = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    val_h = np.unique(data.ngram_hashes(val, vocab))
    clean = "Nothing here is shared with the validation text at all, not one long run."
    doc = {"text": f"{clean}\nSo: one two three four five six seven eight nine ten eleven "
                   f"twelve thirteen, said he.\n{clean} Again."}
    text, removed = build.decontaminate(doc, val_h, vocab)
    assert removed == 1 and text == f"{clean}\n{clean} Again."
    assert build.decontaminate({"text": clean}, val_h, vocab) == (clean, 0)


def test_pack_merges_short_entries_and_splits_long_ones(build):
    short = [(f"k{i}", [f"entry {i} " * 10]) for i in range(200)]
    docs = build.pack("x", short)
    assert all(len(d["text"]) <= build.MAX_CHARS for d in docs)
    assert all(len(d["text"]) >= build.TARGET_CHARS for d in docs[:-1])
    assert "".join(d["text"].replace("\n", "") for d in docs) == \
        "".join(p[0] for _, p in short)
    long = [("psalm", [("A sentence of some words. " * 40).strip()] * 30)]
    parts = build.pack("x", long)
    assert len(parts) > 1 and parts[0]["id"] == "x:psalm (part 1)"
    assert all(len(d["text"]) <= build.MAX_CHARS for d in parts)


# ----- the token cache -----------------------------------------------------------------------
def test_token_cache_gives_the_same_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("GQA_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"text": f"In the beginning {i} " * 30}) + "\n"
                           for i in range(40)))
    prep = data.prepare.__wrapped__  # past the in-process lru_cache
    fresh = prep(str(src), str(data.DEFAULT_TOKENIZER), cache=False)
    assert not (tmp_path / "cache").exists()  # cache=False writes nothing
    cold = prep(str(src), str(data.DEFAULT_TOKENIZER))
    files = list((tmp_path / "cache").glob("*.npz"))
    assert len(files) == 1
    warm = prep(str(src), str(data.DEFAULT_TOKENIZER))
    for td in (cold, warm):
        assert np.array_equal(td.train, fresh.train) and np.array_equal(td.val, fresh.val)
        assert td.train.dtype == fresh.train.dtype
    files[0].write_bytes(b"truncated")  # an unreadable entry is rebuilt, not trusted
    again = prep(str(src), str(data.DEFAULT_TOKENIZER))
    assert np.array_equal(again.train, fresh.train)
    # another tokenizer or other documents: another key
    src.write_text(src.read_text() + json.dumps({"text": "one more"}) + "\n")
    prep(str(src), str(data.DEFAULT_TOKENIZER))
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_grid_files_select_the_corpus_and_its_tokenizer(tmp_path):
    from gqa_lib.train import sweep

    grid = tmp_path / "g.toml"
    grid.write_text('name = "g"\n[model]\nd_head = 16\nvocab_size = 2048\n'
                    '[train]\ntokens = 4096\nbatch_tokens = 512\ndata = "pd"\n'
                    '[[block]]\nsizes = [[2, 128]]\nheads = [[8, 1]]\ncontexts = [128]\n'
                    'seeds = [0]\n')
    _, specs = sweep.load_grid(grid)
    assert [s.train.data for s in specs] == ["pd"]
    assert data.TOKENIZERS["pd"].is_file() and data.TOKENIZERS["web"] == data.DEFAULT_TOKENIZER
