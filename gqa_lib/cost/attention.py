"""Keys attended and values cached, summed over a model's layers of each attention kind.

A model is a sequence of layers, each full attention, a sliding window of W tokens, or chunked
attention over blocks of C tokens (Llama 4). Only the counts per kind matter for cost, so a
:class:`~gqa_lib.cost.batch.ConfigBatch` holds (n_window_layers, window, n_chunk_layers,
chunk) and every sum over layers is array arithmetic.

Window convention (kept everywhere): a query in a window-W layer attends the last W tokens, its
own included (transformers' mask ``q - k < W``), so at context T it attends min(T, W) keys and
the cache must hold min(T, W) tokens' K/V at that moment. transformers stores W - 1 between
steps and appends the new token's (``DynamicSlidingWindowLayer``); the count here includes it.
A chunked layer attends the ((T - 1) mod C) + 1 keys of its current chunk; its cache and decode
cost are counted as min(T, C), the allocation transformers makes (an upper bound on the keys
attended); the causal prefill sum is exact.

Per key and layer, attention costs 2 n_h (d_k + d_v) FLOPs (scores q.k, then the weighted sum
of values) and the cache holds ``kv_width`` values. For GQA d_k = d_v = d_h: 4 n_h d_h FLOPs and
2 n_kv d_h values. Multi-head latent attention (kv_lora_rank r, qk_rope_dim r_d) has two
conventions, named by ``mla``:

- ``"latent"`` (default; what serving systems store, and what transformers 5.24's DeepSeek-V2
  cache holds, measured in tests/test_hf_oracle.py): cache r + r_d values per token and layer
  (one compressed latent plus the shared rotary key); attention, with the up-projection
  absorbed into the query and output projections, has d_k = r + r_d, d_v = r.
- ``"decompressed"`` (a plain implementation that expands K and V before caching them):
  per-head K of qk_nope_dim + r_d and V of v_head_dim, n_h (d_qk + d_v) values per token and
  layer; attention d_k = d_qk, d_v = v_head_dim.

MLA in the paper's terms ("GQA with another d_h", its Limitations): the latent convention is
GQA with n_kv = 1 shared head, whose cache 2 n_kv d_h matches with d_h = (r + r_d) / 2 (288
for DeepSeek V2/V3) and whose attention FLOPs 4 n_h d_h per key match with d_h = (2 r + r_d)
/ 2 (544), all n_h query heads still paying per key: M falls with the shared latent while C
grows with r. tests/test_cost.py checks both equalities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gqa_lib.cost.batch import ConfigBatch, product
from gqa_lib.errors import MAX_EXACT, check_choice

MLA_CONVENTIONS = ("latent", "decompressed")
KEY_SUMS = ("decode", "causal", "full", "half")


def _cap(t: np.ndarray, w: Any) -> Any:
    """min(t, w) with w = inf for no cap, keeping integer contexts integer (exact counts)."""
    w = np.asarray(w)
    finite = np.isfinite(w)
    if not finite.any():
        return t
    if t.dtype.kind in "iu":
        return np.where(finite, np.minimum(t, np.where(finite, w, 0).astype(t.dtype)), t)
    return np.minimum(t, w)


def _causal_window(t: np.ndarray, w: Any) -> np.ndarray:
    """sum_{i=1}^{T} min(i, W): keys attended over a causal prefill with a sliding window W."""
    t = np.asarray(t, np.float64)
    w = np.minimum(np.asarray(w, np.float64), t)
    return w * (w + 1) / 2 + (t - w) * w


def _causal_chunk(t: np.ndarray, c: Any) -> np.ndarray:
    """sum_{i=1}^{T} ((i - 1) mod C) + 1: keys attended over a causal prefill in chunks of C."""
    t = np.asarray(t, np.float64)
    c = np.asarray(c, np.float64)
    finite = np.isfinite(c)
    cc = np.where(finite, c, 1.0)
    q, r = np.floor(t / cc), t - np.floor(t / cc) * cc
    return np.where(finite, q * cc * (cc + 1) / 2 + r * (r + 1) / 2, t * (t + 1) / 2)


def _per_layer(t: np.ndarray, cap: Any, how: str, chunked: bool = False) -> Any:
    if how == "decode":
        return _cap(t, cap)
    if how == "half":  # the paper's T/2 for a full layer; a capped one: the same convention
        if not np.isfinite(np.asarray(cap, np.float64)).any():
            return np.asarray(t, np.float64) / 2
        exact = _causal_chunk(t, cap) if chunked else _causal_window(t, cap)
        return exact / np.asarray(t, np.float64) - 0.5  # W - 1/2 - W(W-1)/2T, not W/2
    if how == "full":
        return t * np.asarray(_cap(t, cap), np.float64)
    return _causal_chunk(t, cap) if chunked else _causal_window(t, cap)


def layer_key_sum(s: ConfigBatch, t: np.ndarray, how: str = "decode") -> Any:
    """Keys attended summed over layers, for one query at context t (``"decode"``), over a
    causal prefill of t tokens (``"causal"``), over t queries that each see every allowed key
    of t (``"full"``), or the mean context of one query in causal training (``"half"``: the
    paper's T/2 for a full layer, i.e. the exact mean (T + 1)/2 less half a key; a window or
    chunked layer's exact causal mean less the same half key, about W - 1/2 once T >> W,
    not W/2). A full layer sees t, a window layer min(t, W), a chunked one min(t, C) (the
    exact chunk sum for "causal")."""
    check_choice("how", how, KEY_SUMS)
    nw, nc = s.n_window_layers, s.n_chunk_layers
    if not np.any(nw) and not np.any(nc):
        return _layers_times(s.n_layer, _per_layer(t, np.inf, how))
    if not np.any(nc) and np.all(nw == s.n_layer):
        return _layers_times(s.n_layer, _per_layer(t, s.window, how))
    out = _layers_times(s.n_full_layers, _per_layer(t, np.inf, how)) + \
        _layers_times(nw, _per_layer(t, s.window, how))
    if np.any(nc):
        out = out + _layers_times(nc, _per_layer(t, s.chunk, how, chunked=True))
    return out


def _layers_times(n: Any, keys: Any) -> Any:
    """n layers times the keys of one: integers while the product is exact (<= 2**53), else
    float64, never a wrapped int64 (the callers refuse counts beyond 2**53)."""
    n, keys = np.asarray(n), np.asarray(keys)
    if n.dtype.kind in "iu" and keys.dtype.kind in "iu" and \
            float(n.max(initial=0)) * float(keys.max(initial=0)) > MAX_EXACT:
        return n.astype(np.float64) * keys
    return n * keys


def _mla(s: ConfigBatch) -> np.ndarray:
    return np.asarray(s.kv_lora_rank) > 0


def kv_width(s: ConfigBatch, mla: str = "latent") -> Any:
    """Values cached per token and layer: 2 n_kv d_h, or MLA's (see the module docstring)."""
    check_choice("mla", mla, MLA_CONVENTIONS)
    gqa = 2 * s.n_kv_head * s.d_head
    m = _mla(s)
    if not m.any():
        return gqa
    if mla == "latent":
        return np.where(m, s.kv_lora_rank + s.qk_rope_dim, gqa)
    return np.where(m, s.n_head * (s.d_head + s.v_head_dim), gqa)


def attention_flops(s: ConfigBatch, keys: Any, mla: str = "latent") -> Any:
    """2 n_h (d_k + d_v) FLOPs per key attended, times `keys` (summed over layers), as float64;
    4 n_h d_h keys for GQA, in as few array passes as the explorers need."""
    keys = np.asarray(keys)
    if not _mla(s).any():
        check_choice("mla", mla, MLA_CONVENTIONS)
        return product(keys, 4.0, s.n_head, s.d_head, dtype=np.float64)
    return product(keys, 2.0, s.n_head, score_width(s, mla), dtype=np.float64)


def score_width(s: ConfigBatch, mla: str = "latent") -> Any:
    """d_k + d_v, so that attention costs 2 n_h (d_k + d_v) FLOPs per key and layer (= 4 n_h
    d_h for GQA)."""
    check_choice("mla", mla, MLA_CONVENTIONS)
    gqa = 2 * s.d_head
    m = _mla(s)
    if not m.any():
        return gqa
    if mla == "latent":
        return np.where(m, 2 * s.kv_lora_rank + s.qk_rope_dim, gqa)
    return np.where(m, s.d_head + s.v_head_dim, gqa)
