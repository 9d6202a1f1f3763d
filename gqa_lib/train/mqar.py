"""Multi-query associative recall (MQAR, Arora et al. 2023, "Zoology"): a retrieval skill mixed
into the training stream, and its evaluation by number of pairs and query distance.

One MQAR sequence of T tokens::

    k_1 v_1 k_2 v_2 ... k_n v_n | filler (g tokens of text) | k_p1 v_p1 ... k_pn v_pn | filler

``n`` key-value pairs, a gap of ``g`` text tokens, then every key again in a random order,
each followed by its value. The only targets are the values after the repeated keys (every
other position is ignored, label -100), so a model scores only if it retrieves v_i from where
k_i first appeared, ``distance`` tokens back. Keys and values are two disjoint blocks of
ordinary token ids at the top of the vocabulary (the tokenizer's last merges, rare in text),
drawn without replacement within a sequence. The filler is real text from the stream the
batch comes from, so retrieval happens across text, as in a needle-in-a-haystack test.

:func:`mix_into_batch` replaces a share of a training batch's sequences with MQAR sequences
(deterministic in seed and step); validation loss is still measured on text alone.
:func:`evaluate` scores a fixed set of sequences per number of pairs on validation filler.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gqa_lib.errors import GQAError
from gqa_lib.units import format_context

IGNORE = -100  # F.cross_entropy's default ignore_index
BLOCK = 256  # key ids and value ids: two blocks of this many at the top of the vocabulary
EVAL_PAIRS = (2, 4, 8, 16)


def max_pairs(context_len: int) -> int:
    """Most pairs a sequence of ``context_len`` holds: 4 tokens per pair (stated, queried)."""
    return min(BLOCK, context_len // 4)


def _ids(vocab_size: int) -> tuple[int, int]:
    """First key id and first value id: [V - 2 BLOCK, V - BLOCK) keys, [V - BLOCK, V) values."""
    if vocab_size < 4 * BLOCK:
        raise GQAError(f"MQAR needs vocab_size >= {4 * BLOCK}, got {vocab_size}")
    return vocab_size - 2 * BLOCK, vocab_size - BLOCK


def sequence(rng: np.random.Generator, filler: np.ndarray, n_pairs: int, vocab_size: int,
             gap: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sequence of len(filler) + 1 tokens as (x, y, distance): x the T inputs, y the T
    targets (IGNORE except at the queried values), distance (T,) the tokens between a queried
    value's target position and the key's first appearance (0 where ignored)."""
    T = len(filler) - 1
    if not 1 <= n_pairs <= max_pairs(T):
        raise GQAError(f"n_pairs must be in [1, {max_pairs(T)}] at context {format_context(T)}, "
                       f"got {n_pairs}")
    k0, v0 = _ids(vocab_size)
    seq = filler.astype(np.int64).copy()  # (T + 1,): inputs seq[:-1], targets seq[1:]
    keys = k0 + rng.choice(BLOCK, n_pairs, replace=False)
    vals = v0 + rng.choice(BLOCK, n_pairs, replace=False)
    seq[0:2 * n_pairs:2], seq[1:2 * n_pairs:2] = keys, vals
    room = T + 1 - 4 * n_pairs
    g = int(rng.integers(0, room + 1)) if gap is None else gap
    if not 0 <= g <= room:
        raise GQAError(f"gap must be in [0, {room}], got {g}")
    order = rng.permutation(n_pairs)
    q = 2 * n_pairs + g  # first query key
    seq[q:q + 2 * n_pairs:2], seq[q + 1:q + 2 * n_pairs:2] = keys[order], vals[order]
    x, y = seq[:-1].copy(), np.full(T, IGNORE, dtype=np.int64)
    dist = np.zeros(T, dtype=np.int64)
    key_pos = q + 2 * np.arange(n_pairs)  # input position of each repeated key
    y[key_pos] = vals[order]  # predicting the value from the repeated key
    dist[key_pos] = key_pos - 2 * order  # back to the key's first position
    return x, y, dist


def mix_into_batch(x: np.ndarray, y: np.ndarray, share: float, *, vocab_size: int, seed: int,
                   step: int, rank: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Replace each row of a (B, T) text batch, with probability ``share``, by an MQAR
    sequence built over that row's text (its filler); n_pairs uniform in [1, max_pairs(T)],
    gap uniform. Rows are drawn independently, so the expected share is ``share`` at any B."""
    if not 0 <= share <= 1:
        raise GQAError(f"mqar_share must be in [0, 1], got {share!r}")
    if share == 0:
        return x, y
    T = x.shape[1]
    rng = np.random.default_rng([seed, step, rank, 0x4D51])
    rows = np.flatnonzero(rng.random(x.shape[0]) < share)
    x, y = x.copy(), y.astype(np.int64).copy()
    for i in rows:
        filler = np.concatenate([x[i], y[i, -1:]])
        pairs = int(rng.integers(1, max_pairs(T) + 1))
        x[i], y[i], _ = sequence(rng, filler, pairs, vocab_size)
    return x, y


@torch.no_grad()
def evaluate(model: torch.nn.Module, tokens: np.ndarray, context_len: int, vocab_size: int, *,
             per_pairs: int = 64, seed: int = 0, device: str | torch.device = "cpu",
             batch_size: int = 16) -> dict[str, Any]:
    """Top-1 accuracy on the queried values of ``per_pairs`` sequences for each n_pairs in
    EVAL_PAIRS (those that fit), filler from ``tokens`` (the validation stream), and by query
    distance in thirds of the context. Same sequences for every model of a context and seed."""
    rng = np.random.default_rng([seed, 0x4D51, context_len])
    pairs = [p for p in EVAL_PAIRS if p <= max_pairs(context_len)]
    starts = rng.integers(0, len(tokens) - context_len - 1, size=len(pairs) * per_pairs)
    rows = [sequence(rng, tokens[s:s + context_len + 1], p, vocab_size)
            for s, p in zip(starts, np.repeat(pairs, per_pairs))]
    x, y, dist = (np.stack(a) for a in zip(*rows))  # each (n, T)
    was_training = model.training
    model.eval()
    pred = np.empty_like(y)
    for b in range(0, len(x), batch_size):
        logits, _ = model(torch.from_numpy(x[b:b + batch_size]).to(device))
        pred[b:b + batch_size] = logits.argmax(-1).cpu().numpy()
    model.train(was_training)
    scored = y != IGNORE
    hit = (pred == y) & scored
    out: dict[str, Any] = {"mqar_acc": float(hit.sum() / scored.sum())}
    n_of_row = np.repeat(pairs, per_pairs)
    for p in pairs:
        r = n_of_row == p
        out[f"mqar_acc_pairs_{p}"] = float(hit[r].sum() / scored[r].sum())
    edges = [0, context_len // 3, 2 * context_len // 3, context_len]
    for name, lo, hi in zip(("near", "mid", "far"), edges[:-1], edges[1:]):
        m = scored & (dist > lo) & (dist <= hi) if lo else scored & (dist <= hi)
        out[f"mqar_acc_dist_{name}"] = float(hit[m].sum() / m.sum()) if m.any() else float("nan")
    out["mqar_eval_sequences"] = len(x)
    return out
