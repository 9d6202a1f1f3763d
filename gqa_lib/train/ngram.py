"""Count-model baselines: interpolated Kneser-Ney unigram, bigram and trigram models of a
token stream (pure numpy), and the table of their validation losses that the training and
fitting pages set beside every trained model (``data/baselines/ngram-pd.csv``).

A model that does not beat the bigram has not learned more than which token follows which;
one that does not reach the trigram uses at most two tokens of context.

The models (Chen & Goodman 1998, "interpolated Kneser-Ney", one discount per order
D = n1 / (n1 + 2 n2) from the counts of counts at that order):

- order 1: P1(c) = (max(c(c) - D1, 0) + D1 * types / V) / total, interpolated with uniform,
  from raw counts (the unigram model) or, as the lowest order of a larger model, from
  continuation counts (the number of distinct tokens seen before c);
- order n: P(c | h) = max(c(h c) - D, 0) / c(h .) + D * N1+(h .) / c(h .) * P_lower(c | h'),
  h' = h without its first token; a history never seen gives P_lower. The highest order
  counts occurrences, a lower order counts distinct left neighbours.

Evaluation follows :func:`gqa_lib.train.evaluate.token_losses`: non-overlapping windows of
``context_len`` + 1 tokens; the target at position p of a window is predicted from the
p + 1 tokens before it in that window, so an order-n model uses min(n - 1, p + 1) of them.

``python -m gqa_lib.train.ngram`` writes the baseline table (:func:`baseline_table`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gqa_lib.errors import GQAError, check_int

OLD_EVAL_TOKENS = 65_536  # cpu-v2 and cpu-v2-lr's eval_tokens (cpu-v0/v1, mqar-v1: 32,768)
BASELINE_CONTEXTS = (128, 512)
ORDERS = {1: "unigram", 2: "bigram", 3: "trigram"}
BASELINE_COLUMNS = ["model", "eval_set", "context", "source", "first_position",
                    "last_position", "tokens", "val_loss_nats"]


def _ids(param: str, tokens: object, vocab_size: int) -> np.ndarray:
    """``tokens`` as a 1-D int64 array of ids in [0, vocab_size); GQAError naming ``param``
    otherwise (floats, NaN, a 2-D array, a negative or too large id)."""
    a = np.asarray(tokens)
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
        raise GQAError(f"{param} must be a 1-D sequence of integer token ids, got "
                       f"{a.ndim}-D {a.dtype}")
    t = a.astype(np.int64)
    if t.size and (int(t.min()) < 0 or int(t.max()) >= vocab_size):
        raise GQAError(f"{param} must hold ids in [0, {vocab_size}) (vocab_size), got ids in "
                       f"[{int(t.min())}, {int(t.max())}]")
    return t


def _discount(counts: np.ndarray) -> float:
    """Ney's D = n1 / (n1 + 2 n2) from the counts of counts (0.5 if undefined)."""
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    return n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5


@dataclass
class _Level:
    """One order's counts: sorted history keys (k) and (history, token) keys (kc)."""

    keys: np.ndarray      # sorted unique (history * V + token) keys with a count
    counts: np.ndarray    # their counts (raw, or continuation counts for a lower order)
    hist: np.ndarray      # sorted unique histories
    hist_total: np.ndarray  # sum of counts per history
    hist_types: np.ndarray  # distinct tokens per history
    d: float


@dataclass
class NGramLM:
    """Interpolated Kneser-Ney model of order 1-3 over a vocabulary of ``vocab_size``
    (see the module docstring). Fit with :meth:`fit`."""

    order: int
    vocab_size: int
    p1: np.ndarray = field(repr=False, default=None)       # (V,) lowest order
    levels: dict = field(repr=False, default_factory=dict)  # order n >= 2 -> _Level

    @classmethod
    def fit(cls, tokens: np.ndarray, order: int, vocab_size: int) -> "NGramLM":
        """Count ``tokens`` (ids in [0, vocab_size)). An n-gram is keyed by a base-V int64,
        so V**order must stay below 2**63 (V <= 2,097,151 for a trigram): a larger
        vocabulary is refused, since its keys would wrap and give wrong losses."""
        order = check_int("order", order, lo=min(ORDERS), hi=max(ORDERS))
        V = check_int("vocab_size", vocab_size, lo=1)
        if V ** order >= 2**63:
            raise GQAError(f"vocab_size={V:,} is too large for an order-{order} model: its "
                           f"keys (vocab_size**{order}) would overflow int64; at most "
                           f"{_max_vocab(order):,}")
        t = _ids("tokens", tokens, V)
        if t.size <= order:
            raise GQAError(f"tokens: need more than {order} tokens, got {t.size}")
        lm = cls(order, V)
        # keys of every n-gram in the stream, for n = 1..order
        grams = {n: _gram_keys(t, n, V) for n in range(1, order + 1)}
        for n in range(order, 1, -1):
            uniq, cnt = np.unique(grams[n], return_counts=True)
            if n < order:  # continuation count: distinct left neighbours of the n-gram
                left = np.unique(grams[n + 1])           # distinct (n+1)-grams
                uniq, cnt = np.unique(left % V ** n, return_counts=True)
            lm.levels[n] = _level(uniq, cnt, V)
        if order == 1:
            c1 = np.bincount(t, minlength=V).astype(np.float64)
        else:
            c1 = np.bincount(np.unique(grams[2]) % V, minlength=V).astype(np.float64)
        d1 = _discount(c1[c1 > 0])
        lm.p1 = (np.maximum(c1 - d1, 0) + d1 * (c1 > 0).sum() / V) / c1.sum()
        return lm

    def prob(self, context: np.ndarray | list[int]) -> np.ndarray:
        """P(. | context), (V,), from the last order - 1 tokens of ``context``."""
        h = _ids("context", context, self.vocab_size)
        h = h[len(h) - min(len(h), self.order - 1):]
        tok = np.arange(self.vocab_size)
        return self._prob(np.broadcast_to(h, (self.vocab_size, len(h))), tok)

    def _prob(self, hist: np.ndarray, tok: np.ndarray) -> np.ndarray:
        """P(tok[i] | hist[i]) with hist (n, k), k <= order - 1 tokens, all rows one length."""
        p = self.p1[tok]
        V = self.vocab_size
        for n in range(2, hist.shape[1] + 2):
            lev = self.levels[n]
            h = _key(hist[:, hist.shape[1] - (n - 1):], V)
            i = np.searchsorted(lev.hist, h)
            i = np.minimum(i, len(lev.hist) - 1)
            seen = lev.hist[i] == h
            j = np.searchsorted(lev.keys, h * V + tok)
            j = np.minimum(j, len(lev.keys) - 1)
            c = np.where(lev.keys[j] == h * V + tok, lev.counts[j], 0).astype(np.float64)
            tot = np.where(seen, lev.hist_total[i], 1.0)
            lam = lev.d * lev.hist_types[i] / tot
            p = np.where(seen, np.maximum(c - lev.d, 0) / tot + lam * p, p)
        return p

    def token_losses(self, tokens: np.ndarray, context_len: int) -> np.ndarray:
        """Per-token loss (nats), (n_windows, context_len), as the trained models'
        :func:`gqa_lib.train.evaluate.token_losses` on the same windows."""
        context_len = check_int("context_len", context_len)
        t = _ids("tokens", tokens, self.vocab_size)
        n_win = (len(t) - 1) // context_len
        if n_win < 1:
            raise GQAError(f"{len(t)} tokens hold no window of {context_len} + 1")
        w = t[np.arange(n_win)[:, None] * context_len + np.arange(context_len + 1)[None, :]]
        out = np.empty((n_win, context_len))
        for p in range(context_len):
            k = min(self.order - 1, p + 1)
            out[:, p] = -np.log(self._prob(w[:, p + 1 - k:p + 1], w[:, p + 1]))
        return out


def _max_vocab(order: int) -> int:
    """The largest V with V**order < 2**63 (int64 keys)."""
    v = int(round((2**63) ** (1 / order)))
    while v ** order >= 2**63:
        v -= 1
    while (v + 1) ** order < 2**63:
        v += 1
    return v


def _gram_keys(t: np.ndarray, n: int, V: int) -> np.ndarray:
    return _key(np.lib.stride_tricks.sliding_window_view(t, n), V)


def _key(h: np.ndarray, V: int) -> np.ndarray:
    """Base-V integer of each row of h (n, k); zeros for k = 0."""
    k = np.zeros(h.shape[0], dtype=np.int64)
    for j in range(h.shape[1]):
        k = k * V + h[:, j]
    return k


def _level(uniq: np.ndarray, cnt: np.ndarray, V: int) -> _Level:
    hist, start = np.unique(uniq // V, return_index=True)
    total = np.add.reduceat(cnt, start).astype(np.float64)
    types = np.diff(np.append(start, len(uniq))).astype(np.float64)
    return _Level(uniq, cnt, hist, total, types, _discount(cnt))


# ----- the baseline table -----------------------------------------------------------------------
def baseline_table(source: str = "pd") -> list[dict[str, object]]:
    """Validation loss of the unigram, bigram and trigram models of ``source``'s training
    stream, on (a) ``first-65536``: the first 65,536 validation targets, windowed as the
    cpu-v1/v2 and mqar-v1 runs evaluated them at T = 128 and 512 (no per-source split: the
    set is WEB text only); (b) ``full``: the whole validation split in windows of T = 128
    and 512, overall and per source (as ``val_loss_by_source``), and by position bin at
    T = 512 (as ``val_loss_by_position``). Rows have :data:`BASELINE_COLUMNS`; a row's
    position range is [first_position, last_position] of the window. At position 0 (one
    token of context) the trigram's row uses the bigram model."""
    from gqa_lib.train.data import prepare
    from gqa_lib.train.evaluate import position_bins, val_token_sources

    data = prepare(source)
    names, index = val_token_sources(source)
    rows: list[dict[str, object]] = []

    def add(model, eval_set, T, src, a, b, losses):
        rows.append(dict(zip(BASELINE_COLUMNS, (model, eval_set, T, src, a, b, losses.size,
                                                round(float(losses.mean()), 5)))))

    first: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # T -> position 0 of the bigram
    for order, name in ORDERS.items():
        lm = NGramLM.fit(data.train, order, data.vocab_size)
        for T in BASELINE_CONTEXTS:
            old = lm.token_losses(data.val[:OLD_EVAL_TOKENS + 1], T)
            full = lm.token_losses(data.val, T)
            if order == 2:
                first[T] = old[:, 0].copy(), full[:, 0].copy()
            elif order == 3:  # position 0 has one token of context: the bigram model scores
                old[:, 0], full[:, 0] = first[T]  # it (KN's lower order is a continuation model)
            add(name, "first-65536", T, "all", 0, T - 1, old)
            add(name, "full", T, "all", 0, T - 1, full)
            src = index[1:1 + full.size].reshape(full.shape)
            for k, s in enumerate(names):
                add(name, "full", T, s, 0, T - 1, full[src == k])
            if T == max(BASELINE_CONTEXTS):
                for a, b in position_bins(T):
                    add(name, "full", T, "all", a, b - 1, full[:, a:b])
    return rows


def main(argv: list[str] | None = None) -> int:
    """The command: writes the table; a refusal is one line on stderr and exit status 2."""
    import sys

    from gqa_lib.io import DATA_DIR, check_writable_file, write_csv_rows

    class OneLine(argparse.ArgumentParser):  # a usage error is one line (gqa's parsers too)
        def error(self, message: str):  # type: ignore[override]
            self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    ap = OneLine(prog="python -m gqa_lib.train.ngram", description=(
        "Write the count-model baselines (unigram, bigram, trigram) of a corpus."))
    ap.add_argument("--source", default="pd")
    ap.add_argument("--out", type=Path, default=DATA_DIR / "baselines" / "ngram-pd.csv")
    a = ap.parse_args(argv)
    try:
        check_writable_file(a.out)  # before minutes of counting
        write_csv_rows(a.out, baseline_table(a.source), BASELINE_COLUMNS)
    except GQAError as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["BASELINE_COLUMNS", "BASELINE_CONTEXTS", "NGramLM", "OLD_EVAL_TOKENS", "ORDERS",
           "baseline_table", "main"]
