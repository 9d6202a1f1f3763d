"""Validation on the whole split: mean loss, loss by position within the context, and loss by
source, so that a small model's loss can be read against what it does with its context.

The validation stream (documents joined by EOS, :func:`gqa_lib.train.data.prepare`) is cut
into non-overlapping windows of ``context_len`` tokens covering all of it; the prediction at
position ``p`` of a window (of the token after it) sees the ``p + 1`` tokens at positions
0..p of that window. A model that uses its context has a loss that keeps falling with
``p``; a model that only uses the last token or two flattens after position 2.

Positions are grouped in powers of two: bin 0 is position 0 (one token seen), bin ``i`` holds
positions ``[2**(i-1), 2**i)``. Sources are those of a corpus whose JSONL lines carry a
``source`` field (the ``pd`` corpus); any other corpus is one source, ``all``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math

import numpy as np
import torch
import torch.nn.functional as F

from gqa_lib.train.data import CORPORA, TokenData, _open_text, in_validation, load_tokenizer
from gqa_lib.train.data import TOKENIZERS


def position_bins(context_len: int) -> list[tuple[int, int]]:
    """[(first, last + 1)] position ranges: [0, 1), [1, 2), [2, 4), ... up to context_len."""
    bins, lo = [(0, 1)], 1
    while lo < context_len:
        hi = min(2 * lo, context_len)
        bins.append((lo, hi))
        lo = hi
    return bins


@functools.lru_cache(maxsize=2)
def val_token_sources(source: str) -> tuple[tuple[str, ...], np.ndarray]:
    """(source names, per-token index into them) for the validation stream of a shipped
    corpus, aligned with ``prepare(source).val`` (each document's tokens and its EOS)."""
    if source not in CORPORA:
        return ("all",), np.zeros(0, dtype=np.int8)
    docs: list[tuple[str, str]] = []
    with _open_text(CORPORA[source]) as f:
        for line in f:
            if line.strip():
                obj = json.loads(line)
                if obj["text"].strip():
                    docs.append((obj["text"], obj.get("source", "all")))
    val = [(t, s) for t, s in docs if in_validation(t)]
    names = tuple(dict.fromkeys(s for _, s in val))
    tok = load_tokenizer(TOKENIZERS[source])
    lengths = [len(e.ids) + 1 for e in tok.encode_batch([t for t, _ in val])]  # + EOS
    index = np.repeat(np.array([names.index(s) for _, s in val], dtype=np.int8), lengths)
    return names, index


@torch.no_grad()
def token_losses(model: torch.nn.Module, tokens: np.ndarray, context_len: int,
                 batch_size: int, device: torch.device, amp=None) -> np.ndarray:
    """Per-token loss (nats), (n_windows, context_len), over every whole window of `tokens`."""
    n_win = (len(tokens) - 1) // context_len
    idx = np.arange(n_win)[:, None] * context_len + np.arange(context_len + 1)[None, :]
    w = tokens[idx].astype(np.int64)  # (n_win, T + 1)
    was_training = model.training
    model.eval()
    out = np.empty((n_win, context_len), dtype=np.float32)
    for i in range(0, n_win, batch_size):
        x = torch.from_numpy(w[i:i + batch_size, :-1]).to(device)
        y = torch.from_numpy(w[i:i + batch_size, 1:]).to(device)
        with amp or contextlib.nullcontext():
            logits, _ = model(x)
        loss = F.cross_entropy(logits.float().transpose(1, 2), y, reduction="none")  # (B, T)
        out[i:i + len(x)] = loss.cpu().numpy()
    model.train(was_training)
    return out


def evaluate_full(model: torch.nn.Module, data: TokenData, context_len: int, batch_size: int,
                  device: torch.device, amp=None) -> dict[str, object]:
    """Loss on the whole validation split: ``val_loss_full_nats``, ``val_loss_by_position``
    ({"first": [...], "last": [...], "nats": [...]}, the bins of :func:`position_bins`) and
    ``val_loss_by_source`` ({source: nats}, each source's tokens weighted equally)."""
    losses = token_losses(model, data.val, context_len, batch_size, device, amp)
    bins = position_bins(context_len)
    by_pos = [float(losses[:, a:b].mean()) for a, b in bins]
    names, index = val_token_sources(data.source)
    by_source: dict[str, float] = {}
    if len(index) == len(data.val):
        # target of window w, position p is token w * T + p + 1 of the stream
        src = index[1:1 + losses.size].reshape(losses.shape)
        for k, name in enumerate(names):
            sel = src == k
            if sel.any():
                by_source[name] = float(losses[sel].mean())
    return {"val_loss_full_nats": float(losses.mean()),
            "val_tokens_full": int(losses.size),
            "val_loss_by_position": {"first": [a for a, _ in bins],
                                     "last": [b - 1 for _, b in bins],
                                     "nats": [round(x, 5) for x in by_pos]},
            "val_loss_by_source": {k: round(v, 5) for k, v in by_source.items()
                                   if math.isfinite(v)}}
