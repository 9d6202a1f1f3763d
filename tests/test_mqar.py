"""MQAR sequences: structure, determinism, the training mix, and the evaluation against
retrievers whose accuracy is known (a perfect lookup table, a model that never retrieves)."""

import numpy as np
import pytest
import torch

from gqa_lib.errors import GQAError
from gqa_lib.train import mqar

V = 2048


def _filler(T, seed=0):
    return np.random.default_rng(seed).integers(0, V - 2 * mqar.BLOCK, size=T + 1)


def test_sequence_targets_are_the_stated_values_after_repeated_keys():
    rng = np.random.default_rng(1)
    x, y, dist = mqar.sequence(rng, _filler(128), 8, V)
    k0, v0 = V - 2 * mqar.BLOCK, V - mqar.BLOCK
    scored = np.flatnonzero(y != mqar.IGNORE)
    assert len(scored) == 8
    stated = {int(x[2 * i]): int(x[2 * i + 1]) for i in range(8)}
    assert all(k0 <= k < v0 <= v < V for k, v in stated.items())
    for t in scored:
        assert stated[int(x[t])] == y[t]  # the value stated with this key
        assert x[t - dist[t]] == x[t]  # distance points back to the key's first appearance
        assert dist[t] >= 2 * 8 - 1
    assert (dist[y == mqar.IGNORE] == 0).all()


def test_sequence_is_deterministic_and_checks_its_arguments():
    a = mqar.sequence(np.random.default_rng(3), _filler(64), 4, V)
    b = mqar.sequence(np.random.default_rng(3), _filler(64), 4, V)
    assert all((u == w).all() for u, w in zip(a, b))
    with pytest.raises(GQAError, match="n_pairs"):
        mqar.sequence(np.random.default_rng(0), _filler(64), 17, V)
    with pytest.raises(GQAError, match="gap"):
        mqar.sequence(np.random.default_rng(0), _filler(64), 4, V, gap=64)
    with pytest.raises(GQAError, match="vocab_size"):
        mqar.sequence(np.random.default_rng(0), _filler(64), 4, 512)


def test_mix_replaces_the_stated_share_of_rows_and_keeps_the_rest():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1000, size=(2000, 32))
    y = rng.integers(0, 1000, size=(2000, 32))
    mx, my = mqar.mix_into_batch(x, y, 0.1, vocab_size=V, seed=0, step=5)
    changed = (my == mqar.IGNORE).any(axis=1)
    assert 0.08 < changed.mean() < 0.12  # Bernoulli(0.1) rows: sd 0.0067
    assert (mx[~changed] == x[~changed]).all() and (my[~changed] == y[~changed]).all()
    with pytest.raises(GQAError, match="mqar_share"):
        mqar.mix_into_batch(x, y, 1.5, vocab_size=V, seed=0, step=5)
    again = mqar.mix_into_batch(x, y, 0.1, vocab_size=V, seed=0, step=5)
    assert (again[0] == mx).all() and (again[1] == my).all()
    other = mqar.mix_into_batch(x, y, 0.1, vocab_size=V, seed=0, step=6)
    assert not (other[0] == mx).all()
    assert mqar.mix_into_batch(x, y, 0.0, vocab_size=V, seed=0, step=5)[0] is x


class _Lookup(torch.nn.Module):
    """Predicts, at a repeated key, the token that followed its first appearance: perfect
    MQAR recall; elsewhere, token 0. ``forget`` > 0 forgets keys further back than that."""

    def __init__(self, forget=None):
        super().__init__()
        self.forget = forget

    def forward(self, x):
        B, T = x.shape
        logits = torch.zeros(B, T, V)
        for b in range(B):
            first = {}
            for t in range(T):
                k = int(x[b, t])
                if k in first and (self.forget is None or t - first[k] <= self.forget):
                    logits[b, t, int(x[b, first[k] + 1])] = 1.0
                first.setdefault(k, t)
        return logits, None


def test_evaluate_scores_a_perfect_retriever_at_one_and_a_forgetful_one_by_distance():
    tokens = np.random.default_rng(0).integers(0, V - 2 * mqar.BLOCK, size=5000)
    perfect = mqar.evaluate(_Lookup(), tokens, 96, V, per_pairs=4)
    assert perfect["mqar_acc"] == 1.0
    assert all(perfect[f"mqar_acc_pairs_{p}"] == 1.0 for p in mqar.EVAL_PAIRS)
    assert perfect["mqar_eval_sequences"] == 16
    near_only = mqar.evaluate(_Lookup(forget=32), tokens, 96, V, per_pairs=4)
    assert near_only["mqar_acc_dist_near"] == 1.0
    assert near_only["mqar_acc_dist_far"] == 0.0
    assert 0 < near_only["mqar_acc"] < 1
