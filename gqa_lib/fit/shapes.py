"""Step 3's shapes: from a size N and heads H to (n_layer, d_model) under an aspect rule, the
paper's family as a :class:`~gqa_lib.cost.ConfigBatch` for costing, and the model one would
build from a recipe row (whole layers, aligned d_ff).

Aspect rules (``aspect``): ``"d64L"`` is d_model = 64 n_layer, the family of the paper's
figures; ``"paper"`` interpolates the aspect ratio d/L of the paper's predefined shapes
(Table 9) in log N and binary-searches n_layer (held at the end ratios outside 3M-1.2B).
Shapes are continuous here (the paper's N, d_ff = 8 d / 3, norms excluded), so Z and its
numbers match the paper's; :func:`build_config` rounds to a shape one would build.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gqa_lib import cost
from gqa_lib.arch.config import (aligned, ASPECT_RULES, FFN_MULTIPLE_OF, ModelConfig,
                                 PAPER_TABLE9_SHAPES, PAPER_VOCAB)
from gqa_lib.errors import GQAError, check_choice
from gqa_lib.fit.inputs import vocab_of


def paper_params(n_layer, d_model, n_head, n_kv_head, d_head):
    """The paper's non-embedding N of a shape: N = L (2 d d_h (n_h + n_kv) + 3 d d_ff) with
    d_ff = 8 d / 3, i.e. cost.param_counts(..., include_norms=False) in closed form (the
    bisections below evaluate it ~100 times). Arrays broadcast."""
    return n_layer * (2.0 * d_model * d_head * (n_head + n_kv_head) + 8.0 * d_model**2)


def _heads(n_head, n_kv_head, d_model, d_head):
    """Candidate heads, or the Llama-3 rule (n_head = d/d_h, n_kv = min(8, n_head)) where
    n_head is NaN."""
    base = np.isnan(n_head)
    nh = np.where(base, d_model / d_head, n_head)
    return nh, np.where(base, np.minimum(8.0, nh), n_kv_head)


def bisect_log(f, target, lo, hi, iters=64):
    """Vectorised bisection in log space for an increasing f: the x in [lo, hi] with
    f(x) = target (a bound where the root lies outside)."""
    lo, hi = np.broadcast_arrays(np.log(lo) + 0 * target, np.log(hi) + 0 * target)
    lo, hi = lo.copy(), hi.copy()
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        up = f(np.exp(mid)) < target
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    return np.exp(0.5 * (lo + hi))


def _table9_ratio(N, n_head, n_kv_head, d_head):
    """Aspect ratio d/L at size N: piecewise linear in log N over the Table 9 shapes (whose N
    grows along the table for any heads), held at the end ratios outside them."""
    L9 = np.array([s[0] for s in PAPER_TABLE9_SHAPES], float)
    d9 = np.array([s[1] for s in PAPER_TABLE9_SHAPES], float)
    logN = np.log(N)[..., None]
    h9, k9 = _heads(np.asarray(n_head)[..., None] + 0 * d9, np.asarray(n_kv_head)[..., None],
                    d9, d_head)
    x9 = np.log(paper_params(L9, d9, h9, k9, d_head))          # (..., 8)
    x9, logN = np.broadcast_arrays(x9, logN)
    j = np.clip((logN >= x9).sum(-1) - 1, 0, len(L9) - 2)[..., None]
    x0, x1 = np.take_along_axis(x9, j, -1), np.take_along_axis(x9, j + 1, -1)
    w = np.clip((logN[..., :1] - x0) / (x1 - x0), 0.0, 1.0)
    r9 = d9 / L9
    return (r9[j] + w * (r9[j + 1] - r9[j]))[..., 0]


def shape_for_params(N: Any, n_head: Any, n_kv_head: Any, *, d_head: int = 64,
                     aspect: str = "d64L") -> tuple[np.ndarray, np.ndarray]:
    """Continuous (n_layer, d_model) with N non-embedding parameters under an aspect rule.

    ``n_head = NaN`` means the Llama-3 family, whose heads follow d (d/d_h, min(8, d/d_h)).
    d64L: d = 64 L, so N(L) = L (2 64 L d_h (n_h + n_kv) + 8 (64 L)^2) is solved for L.
    paper: d = r L with r interpolated over Table 9 at N, then the same solve (bisection).
    """
    check_choice("aspect", aspect, ASPECT_RULES)
    N = np.asarray(N, np.float64)
    nh0, nkv0 = np.asarray(n_head, np.float64), np.asarray(n_kv_head, np.float64)
    if np.any(~np.isfinite(N)) or np.any(N <= 0):
        raise GQAError("N must be finite and > 0 to map it to a shape")
    if aspect == "d64L":
        ratio = np.full(np.broadcast(N, nh0).shape, 64.0)
    else:
        ratio = _table9_ratio(N, nh0, nkv0, d_head)

    def n_of_layers(L):
        nh, nkv = _heads(nh0, nkv0, ratio * L, d_head)
        return paper_params(L, ratio * L, nh, nkv, d_head)

    L = bisect_log(n_of_layers, N, 1e-2, 1e5)
    return L, ratio * L


def config_batch(n_layer, d_model, n_head, n_kv_head, d_head, *, ffn_multiple_of: int = 1,
                 vocab_size: int = PAPER_VOCAB) -> cost.ConfigBatch:
    """The paper's family on continuous shapes: SwiGLU, d_ff = 8 d / 3, tied, V = 50,304
    (or ``vocab_size``: a sweep's own).
    ``ffn_multiple_of`` > 1 rounds d_ff up to a multiple (the shape one would build,
    :func:`gqa_lib.arch.aligned`); 1 keeps the paper's rule, on which Z and its numbers
    depend."""
    nh, nkv = _heads(np.asarray(n_head, float), np.asarray(n_kv_head, float),
                     np.asarray(d_model, float), d_head)
    d_ff = 8.0 * np.asarray(d_model, float) / 3.0
    if ffn_multiple_of > 1:
        d_ff = np.ceil(d_ff / ffn_multiple_of) * ffn_multiple_of
    return cost.ConfigBatch.from_arrays(
        n_layer=n_layer, d_model=d_model, n_head=nh, n_kv_head=nkv, d_head=d_head,
        d_ff=d_ff, vocab_size=vocab_size)


def build_config(row: dict[str, Any], *, aspect: str = "d64L",
                 multiple_of: int = FFN_MULTIPLE_OF, n_layer: int | None = None,
                 vocab_size: int = PAPER_VOCAB) -> ModelConfig:
    """The model one would build for a recipe row (``n_layer``, ``d_model``, ``n_head``,
    ``n_kv_head``, ``d_head``): whole layers (``n_layer``, default the row's rounded), d =
    64 L (aspect d64L) or the row's d/L times L rounded to a multiple of 64 (aspect paper),
    d_ff = int(8 d / 3) rounded up to ``multiple_of`` (aligned shapes:
    :func:`gqa_lib.arch.aligned`), a tied ``vocab_size`` embedding. A Llama-3 row (n_head
    NaN) takes d / d_head query heads."""
    check_choice("aspect", aspect, ASPECT_RULES)
    L = max(1, int(round(float(row["n_layer"])))) if n_layer is None else int(n_layer)
    ratio = float(row["d_model"]) / float(row["n_layer"])
    d = 64 * L if aspect == "d64L" else max(64, int(round(ratio * L / 64)) * 64)
    d_head = int(row["d_head"])
    nh, nkv = row["n_head"], row["n_kv_head"]
    if not np.isfinite(float(nh)):
        nh, nkv = d // d_head, min(8, d // d_head)
    cfg = ModelConfig(n_layer=L, d_model=d, n_head=int(nh), n_kv_head=int(nkv), d_head=d_head,
                      vocab_size=vocab_size, name=f"build-L{L}-d{d}-h{int(nh)}-kv{int(nkv)}")
    return aligned(cfg, multiple_of)


def build_for_target(row: dict[str, Any], model: Any, target_loss: float, *,
                     aspect: str = "d64L", multiple_of: int = FFN_MULTIPLE_OF
                     ) -> tuple[ModelConfig, float]:
    """(config, fitted loss): the smallest whole-layer :func:`build_config` of a recipe row
    whose loss by ``model`` (on the paper's N: norms excluded) reaches ``target_loss``,
    trying floor(L*) upwards (rounding L* to the nearest can fall short of the target);
    the last tried, and its loss, if three layers past L* still do not reach it."""
    L_star = float(row["n_layer"])
    vocab = vocab_of(model)
    for L in range(max(1, int(np.floor(L_star))), int(np.ceil(L_star)) + 3):
        cfg = build_config(row, aspect=aspect, multiple_of=multiple_of, n_layer=L,
                           vocab_size=vocab)
        n_paper = cost.params_non_embedding(cfg, include_norms=False)
        loss = float(model.loss(n_paper, cfg.n_head, cfg.n_kv_head))
        if loss <= target_loss:
            break
    return cfg, loss
