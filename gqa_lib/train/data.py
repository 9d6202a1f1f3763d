"""Corpus, tokenizer, deterministic split and packing into fixed-length training windows.

Two corpora are shipped (data/corpus/, provenance in data/README.md), each with a byte-level
BPE trained on its own training split (data/tokenizer/): "web", the World English Bible, one
document per chapter (the default); "pd", the WEB plus public-domain commentaries and
dictionaries, deduplicated, its training split free of 13-grams of its validation split
(`ngram_hashes`). Any local .txt / .jsonl(.gz/.xz) file or folder works too,
and ``hf:NAME[:SPLIT]`` loads a Hugging Face dataset when `datasets` and a network exist.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import lzma
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gqa_lib.errors import GQAError
from gqa_lib.io import DATA_DIR, REPO_ROOT, atomic_write_bytes
from gqa_lib.units import format_context

DEFAULT_CORPUS = "web"
CORPORA = {"web": DATA_DIR / "corpus" / "web.jsonl.xz",
           "pd": DATA_DIR / "corpus" / "pd.jsonl.xz"}
TOKENIZERS = {name: DATA_DIR / "tokenizer" / f"{name}-bpe-2048.json" for name in CORPORA}
DEFAULT_TOKENIZER = TOKENIZERS[DEFAULT_CORPUS]
EOS = "<|endoftext|>"
VAL_FRACTION = 0.05
NGRAM = 13  # decontamination: no training document shares a 13-word sequence with validation


# ----- documents ----------------------------------------------------------------------------
def _open_text(path: Path):
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _read_file(path: Path) -> list[str]:
    """The documents of one corpus file; a truncated or damaged file (xz, gzip, text) is
    refused in one line naming it."""
    try:
        return _read_documents(path)
    except (EOFError, lzma.LZMAError, gzip.BadGzipFile, zlib.error) as e:
        raise GQAError(f"{path}: damaged or truncated {path.suffix or 'text'} file "
                       f"({type(e).__name__}: {str(e)[:100] or 'ends early'})") from None
    except UnicodeDecodeError as e:
        raise GQAError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise GQAError(f"{path}: cannot read ({e.strerror or e})") from None


def _read_documents(path: Path) -> list[str]:
    kind = path.name.removesuffix(".xz").removesuffix(".gz")
    if kind.endswith(".jsonl"):
        docs = []
        with _open_text(path) as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as e:
                    raise GQAError(f"{path}:{i}: not valid JSON ({e})") from None
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                    raise GQAError(f"{path}:{i}: each JSONL line needs a string field 'text'")
                docs.append(obj["text"])
        return docs
    if kind.endswith((".txt", ".md")):
        with _open_text(path) as f:
            text = f.read()
        # documents are separated by a line holding only the end-of-text marker
        return [d.strip() for d in text.split(f"\n{EOS}\n") if d.strip()]
    raise GQAError(f"{path}: unsupported file type; use .txt, .md or .jsonl (optionally .gz/.xz)")


def load_documents(source: str | Path = DEFAULT_CORPUS) -> list[str]:
    """Documents from the shipped corpus name, a local file or folder, or ``hf:NAME[:SPLIT]``."""
    src = str(source)
    if src in CORPORA:
        path = CORPORA[src]
        if not path.is_file():
            raise GQAError(f"shipped corpus {src!r} missing at {path}; is data/ checked out?")
        docs = _read_file(path)
    elif src.startswith("hf:"):
        docs = _load_hf(src[3:])
    else:
        path = Path(src)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            docs = [d for p in files for d in _read_file(p)]
        elif path.is_file():
            docs = _read_file(path)
        else:
            raise GQAError(f"data source {src!r} is neither a shipped corpus "
                           f"({', '.join(CORPORA)}), an existing file or folder, nor hf:NAME")
    docs = [d for d in docs if d.strip()]
    if len(docs) < 2:
        raise GQAError(f"data source {src!r} has {len(docs)} non-empty document(s); need >= 2 "
                       "for a train/validation split")
    return docs


def _load_hf(spec: str) -> list[str]:  # pragma: no cover - needs a network
    name, _, split = spec.partition(":")
    try:
        import datasets
    except ImportError:
        raise GQAError("hf: sources need the optional `datasets` package: "
                       "pip install 'gqa_lib[hf]'") from None
    ds = datasets.load_dataset(name, split=split or "train")
    if "text" not in ds.column_names:
        raise GQAError(f"hf:{spec} has no 'text' column (columns: {ds.column_names})")
    return list(ds["text"])


def in_validation(doc: str, val_fraction: float = VAL_FRACTION) -> bool:
    """Whether a document's text hashes into validation: the first 8 bytes of its SHA-1,
    read as a fraction of 2^64, fall below `val_fraction`."""
    h = int.from_bytes(hashlib.sha1(doc.encode("utf-8")).digest()[:8], "big") / 2**64
    return h < val_fraction


def split_documents(docs: list[str], val_fraction: float = VAL_FRACTION
                    ) -> tuple[list[str], list[str]]:
    """Deterministic split by a hash of each document's text (stable under reordering)."""
    if not 0 < val_fraction < 1:
        raise GQAError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    train, val = [], []
    for d in docs:
        (val if in_validation(d, val_fraction) else train).append(d)
    if not val or not train:  # tiny corpora: fall back to the last document
        train, val = docs[:-1], docs[-1:]
    return train, val


_WORD = re.compile(r"[^\W_]+")
_P = np.uint64(0x100000001B3)  # any odd 64-bit multiplier; ids are mixed first


def normal_words(text: str) -> list[str]:
    """Normalised words for duplicate and n-gram matching: lower case, letters and digits."""
    return _WORD.findall(text.lower())


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: small word ids -> well-spread 64-bit values (uint64 wraps)
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def ngram_hashes(text: str, vocab: dict[str, int], n: int = NGRAM) -> np.ndarray:
    """64-bit hashes of every run of `n` consecutive normalised words, (n_words - n + 1,).

    `vocab` maps words to ids and grows as new words appear; hashes are comparable between
    calls that share it (one process, one dict). Collisions: ~m^2 / 2^65 for m n-grams.
    """
    words = normal_words(text)
    m = len(words) - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    ids = _mix(np.fromiter((vocab.setdefault(w, len(vocab)) for w in words),
                           dtype=np.uint64, count=len(words)))
    h = np.zeros(m, dtype=np.uint64)
    for j in range(n):
        h = h * _P + ids[j:j + m]
    return h


# ----- tokenizer ----------------------------------------------------------------------------
def train_tokenizer(texts: list[str], vocab_size: int = 2048):
    """Byte-level BPE (GPT-2 style pre-tokenisation) with one special token, EOS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_tokenizer(path: str | Path = DEFAULT_TOKENIZER):
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise GQAError(f"tokenizer file {str(path)!r} not found")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # noqa: BLE001 -- `tokenizers` raises a bare Exception
        detail = (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise GQAError(f"{path}: not a readable tokenizer file ({detail})") from None


# ----- packed token streams -----------------------------------------------------------------
@dataclass(frozen=True)
class TokenData:
    """Train and validation token streams (documents joined by EOS) and their statistics."""

    train: np.ndarray  # (n_train,) uint16/int32 token ids
    val: np.ndarray  # (n_val,)
    vocab_size: int
    eos_id: int
    val_bytes_per_token: float  # UTF-8 bytes of validation text per validation token
    source: str

    def bits_per_byte(self, nats_per_token: float) -> float:
        """Convert a validation loss in nats/token to bits per UTF-8 byte."""
        return nats_per_token / math.log(2) / self.val_bytes_per_token

    def unigram_entropy(self) -> float:
        """Entropy (nats/token) of the training unigram distribution: the loss to beat."""
        counts = np.bincount(self.train, minlength=self.vocab_size).astype(np.float64)
        p = counts[counts > 0] / counts.sum()
        return float(-(p * np.log(p)).sum())


def _pack(tok, docs: list[str], eos_id: int) -> np.ndarray:
    ids: list[int] = []
    for enc in tok.encode_batch(docs):
        ids.extend(enc.ids)
        ids.append(eos_id)
    dtype = np.uint16 if tok.get_vocab_size() <= 2**16 else np.int32
    return np.asarray(ids, dtype=dtype)


def cache_dir() -> Path:
    """Where token ids are cached: $GQA_CACHE_DIR, else .cache/tokens in the repository
    (ignored by git)."""
    return Path(os.environ.get("GQA_CACHE_DIR", REPO_ROOT / ".cache" / "tokens"))


def _cache_key(tok, train_docs: list[str], val_docs: list[str]) -> str:
    """SHA-256 of the tokenizer (its full JSON) and of every document, in split order."""
    h = hashlib.sha256(b"gqa-tokens-v1\0")
    h.update(tok.to_str().encode("utf-8"))
    for part in (train_docs, val_docs):
        h.update(f"\0{len(part)}\0".encode())
        for d in part:
            b = d.encode("utf-8")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
    return h.hexdigest()


def _tokenise(tok, train_docs: list[str], val_docs: list[str], eos_id: int, cache: bool
              ) -> tuple[np.ndarray, np.ndarray]:
    """Packed train and validation ids, read from the cache when it has them; a miss
    tokenises and writes the cache atomically (concurrent writers write the same bytes)."""
    path = cache_dir() / f"{_cache_key(tok, train_docs, val_docs)}.npz" if cache else None
    if path is not None and path.is_file():
        cached = _read_cache(path, tok.get_vocab_size())
        if cached is not None:
            return cached
    train, val = _pack(tok, train_docs, eos_id), _pack(tok, val_docs, eos_id)
    if path is not None:
        buf = io.BytesIO()
        np.savez(buf, train=train, val=val)
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError:  # a read-only checkout still trains, only without the cache
            pass
    return train, val


def _read_cache(path: Path, vocab_size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(train, val) ids of a cache file, or None where it is damaged (truncated, not an npz,
    arrays missing, not 1-D integer ids of this tokenizer): it is then tokenised again and
    overwritten, never trained on."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:  # our handle: np.load
            train, val = z["train"], z["val"]  # leaks its own on a damaged zip
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile,
            zlib.error):
        return None
    for a in (train, val):
        if a.ndim != 1 or a.dtype.kind not in "iu" or a.size == 0 \
                or int(a.min()) < 0 or int(a.max()) >= vocab_size:
            return None
    return train, val


@functools.lru_cache(maxsize=4)
def prepare(source: str = DEFAULT_CORPUS, tokenizer: str | None = None,
            vocab_size: int = 2048, cache: bool = True) -> TokenData:
    """Load, split and tokenise a corpus. A shipped corpus uses its committed tokenizer
    (TOKENIZERS); other sources train a BPE of `vocab_size` on their training split unless
    given one. Token ids are cached under `cache_dir()`, keyed by the tokenizer and the
    documents (`cache=False` tokenises afresh and writes nothing)."""
    docs = load_documents(source)
    train_docs, val_docs = split_documents(docs)
    if tokenizer is not None:
        tok = load_tokenizer(tokenizer)
    elif str(source) in TOKENIZERS:
        tok = load_tokenizer(TOKENIZERS[str(source)])
    else:
        tok = train_tokenizer(train_docs, vocab_size)
    eos_id = tok.token_to_id(EOS)
    if eos_id is None:
        raise GQAError(f"tokenizer has no {EOS!r} token")
    train, val = _tokenise(tok, train_docs, val_docs, eos_id, cache)
    n_bytes = sum(len(d.encode("utf-8")) for d in val_docs) + len(val_docs)  # +1 per separator
    return TokenData(train, val, tok.get_vocab_size(), eos_id, n_bytes / len(val), str(source))


def batch_windows(tokens: np.ndarray, batch_size: int, context_len: int, *, seed: int,
                  step: int, rank: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random windows for one step: inputs and next-token targets, both (B, T) int64.

    The offsets depend only on (seed, step, rank), so a resumed run sees exactly the batches
    an uninterrupted one would.
    """
    n = len(tokens) - context_len - 1
    if n <= 0:
        raise GQAError(f"corpus of {len(tokens):,} tokens is shorter than context_len "
                       f"{format_context(context_len)} + 1")
    rng = np.random.default_rng([seed, step, rank])
    starts = rng.integers(0, n + 1, size=batch_size)
    idx = starts[:, None] + np.arange(context_len + 1)[None, :]
    w = tokens[idx].astype(np.int64)
    return np.ascontiguousarray(w[:, :-1]), np.ascontiguousarray(w[:, 1:])


def eval_windows(tokens: np.ndarray, context_len: int, n_tokens: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows from the start of the validation stream, ~n_tokens in all."""
    n_win = max(1, min(n_tokens // context_len, (len(tokens) - 1) // context_len))
    if (len(tokens) - 1) < context_len:
        raise GQAError(f"validation stream of {len(tokens):,} tokens is shorter than "
                       f"context_len {format_context(context_len)} + 1")
    idx = np.arange(n_win)[:, None] * context_len + np.arange(context_len + 1)[None, :]
    w = tokens[idx].astype(np.int64)
    return np.ascontiguousarray(w[:, :-1]), np.ascontiguousarray(w[:, 1:])
