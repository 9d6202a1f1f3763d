"""What the recipe's functions accept: one check per kind of input, each a GQAError naming
the parameter (a loss model, settings, candidate configurations, targets, contexts, budgets),
so that a bad call from a notebook reads like the CLI's one-line refusals."""

from __future__ import annotations

from typing import Any

import numpy as np

from gqa_lib.arch.config import PAPER_VOCAB
from gqa_lib.errors import MAX_EXACT, GQAError, check_numbers

_MODEL_NEEDS = ("loss", "params_for_loss", "configs", "extrapolated", "d_head")


def check_model(model: Any) -> Any:
    """A loss model (what :class:`gqa_lib.fit.recipe.LossModel` describes), or GQAError."""
    if any(not hasattr(model, a) for a in _MODEL_NEEDS):
        raise GQAError(f"model must be a fitted loss model (gqa_lib.fit.fit_runs(...) or "
                       f"gqa_lib.evidence.paper.joint_model()), got {type(model).__name__} "
                       f"{model!r:.60}")
    return model


def vocab_of(model: Any) -> int:
    """The vocabulary a loss model's losses are per token of (a runs fit carries its runs';
    the paper's models the paper's 50,304)."""
    return int(getattr(model, "vocab_size", PAPER_VOCAB))


def check_settings(settings: Any, kind: type) -> Any:
    if not isinstance(settings, kind):
        raise GQAError(f"settings must be a {kind.__name__}(...), got {settings!r:.60}")
    return settings


def check_configs(model: Any, configs: Any) -> tuple[tuple[int, int], ...]:
    """Candidate (n_head, n_kv_head) pairs: the model's own (None) or a list of pairs of
    positive whole numbers, n_kv_head dividing n_head."""
    if configs is None:
        return tuple(model.configs())
    if isinstance(configs, np.ndarray) and configs.ndim == 2:
        configs = configs.tolist()  # an (n, 2) array of pairs
    ok = isinstance(configs, (list, tuple)) and len(configs) > 0 and all(
        isinstance(c, (list, tuple)) and len(c) == 2 for c in configs)
    if ok:
        pairs = np.asarray(configs)
        ok = pairs.dtype.kind in "iuf" and bool(np.all(pairs >= 1)) and bool(
            np.all(pairs == np.floor(pairs))) and bool(np.all(pairs[:, 0] % pairs[:, 1] == 0))
    if not ok:
        raise GQAError(f"configs must be a list of (n_head, n_kv_head) pairs of positive whole "
                       f"numbers, n_kv_head dividing n_head, e.g. [(8, 1), (32, 8)]; got "
                       f"{configs!r:.80}")
    return tuple((int(h), int(k)) for h, k in configs)


def numbers(name: str, value: Any, what: str) -> np.ndarray:
    """A 1-d float array of numbers (no strings, bools or None), or a GQAError."""
    return np.atleast_1d(check_numbers(name, value, what))


def contexts(context: Any) -> np.ndarray:
    t = numbers("context", context, "a number of tokens")
    if (t.ndim != 1 or t.size == 0 or np.any(~np.isfinite(t)) or np.any(t <= 0)
            or np.any(t > MAX_EXACT)):
        raise GQAError(f"context must be > 0 and at most 2**53 tokens, got {context!r}")
    return t


def targets(target_loss: Any) -> np.ndarray:
    t = numbers("target_loss", target_loss, "a number of nats")
    if t.ndim != 1 or t.size == 0 or np.any(~np.isfinite(t)) or np.any(t <= 0):
        raise GQAError(f"target_loss must be a finite number of nats > 0, got {target_loss!r}")
    return t


def budgets(name: str, budget: Any) -> np.ndarray:
    b = numbers(name, budget, "a number > 0")
    if np.any(~np.isfinite(b)) or np.any(b <= 0):
        raise GQAError(f"{name} must be finite and > 0, got {budget!r}")
    return b
