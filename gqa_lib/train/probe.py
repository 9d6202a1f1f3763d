"""A synthetic long-context recall probe, generated on the fly from a seed.

Each sample is a validation window of T tokens in which a "needle" span of m tokens, taken
from early in the window, is copied near its end. A model that retrieves through attention
predicts the copy far better than it predicted the original (which it saw cold). We report
top-1 accuracy on the copy (``recall_acc``), on the original (``recall_base_acc``), and the
loss gain in nats/token: the in-context retrieval that fewer KV heads might hurt.
"""

from __future__ import annotations

import numpy as np
import torch

from gqa_lib.errors import GQAError
from gqa_lib.units import format_context


def needle_length(context_len: int, needle_len: int | None = None) -> int:
    """Tokens in the needle: `needle_len`, or max(8, T / 16) by default."""
    return needle_len or max(8, context_len // 16)


def check_probe_fits(context_len: int, needle_len: int | None = None) -> None:
    """GQAError unless a needle fits the window: it is drawn from the first quarter (so
    T // 4 > m) and copied into the last part."""
    m = needle_length(context_len, needle_len)
    if context_len // 4 <= m:
        raise GQAError(f"the recall probe needs context_len > 4 x its needle of {m} tokens "
                       f"(context_len >= {4 * m + 4}), got {format_context(context_len)}; use "
                       "a longer context or probe_samples = 0")


@torch.no_grad()
def recall_probe(model: torch.nn.Module, tokens: np.ndarray, context_len: int, n_samples: int,
                 *, seed: int = 0, needle_len: int | None = None, device: str | torch.device =
                 "cpu", batch_size: int = 8) -> dict[str, float]:
    check_probe_fits(context_len, needle_len)
    m = needle_length(context_len, needle_len)
    if len(tokens) < context_len + 2:
        raise GQAError(f"the recall probe needs a validation stream longer than context_len "
                       f"{format_context(context_len)} + 1, got {len(tokens):,} tokens")
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1:
        raise GQAError(f"probe samples must be a positive integer, got {n_samples!r}")
    rng = np.random.default_rng([seed, 7919])
    starts = rng.integers(0, len(tokens) - context_len - 1, size=n_samples)
    src = rng.integers(0, context_len // 4 - m, size=n_samples)  # needle in the first quarter
    dst = context_len - m - rng.integers(0, context_len // 8, size=n_samples)  # copy near the end
    x = np.stack([tokens[s:s + context_len].astype(np.int64) for s in starts])
    for i in range(n_samples):
        x[i, dst[i]:dst[i] + m] = x[i, src[i]:src[i] + m]
    was_training = model.training
    model.eval()
    hits_copy, hits_orig, nll_copy, nll_orig, count = 0.0, 0.0, 0.0, 0.0, 0
    for b in range(0, n_samples, batch_size):
        xb = torch.from_numpy(x[b:b + batch_size]).to(device)
        logits, _ = model(xb)
        logp = torch.log_softmax(logits.float(), -1)  # (B, T, V)
        for j in range(xb.shape[0]):
            i = b + j
            # positions predicting needle tokens 1..m-1 (token 0 of each span is unpredictable)
            for start, acc in ((dst[i], "copy"), (src[i], "orig")):
                pos = torch.arange(start, start + m - 1, device=xb.device)
                tgt = xb[j, pos + 1]
                lp = logp[j, pos]
                hit = (lp.argmax(-1) == tgt).float().sum().item()
                nll = -lp.gather(-1, tgt[:, None]).sum().item()
                if acc == "copy":
                    hits_copy, nll_copy = hits_copy + hit, nll_copy + nll
                else:
                    hits_orig, nll_orig = hits_orig + hit, nll_orig + nll
            count += m - 1
    model.train(was_training)
    return {
        "recall_acc": hits_copy / count,
        "recall_base_acc": hits_orig / count,
        "recall_gain_nats": (nll_orig - nll_copy) / count,
        "recall_needle_len": m,
        "recall_samples": n_samples,
    }
