"""The count-model baselines: proper distributions, a planted Markov chain's entropy
recovered, and data/baselines/ngram-pd.csv current with the code and the corpus."""

import numpy as np
import pytest

from gqa_lib.errors import GQAError
from gqa_lib.io import DATA_DIR, read_csv_rows
from gqa_lib.train.ngram import BASELINE_COLUMNS, NGramLM, OLD_EVAL_TOKENS

V = 8


def _chain(order: int, n: int, seed: int, P: np.ndarray) -> np.ndarray:
    """A Markov chain of the given order over V tokens with transition tensor P."""
    rng = np.random.default_rng(seed)
    t = np.zeros(n, dtype=np.int64)
    t[:order] = rng.integers(0, V, order)
    cum, u = P.cumsum(-1), rng.random(n)
    for i in range(order, n):
        t[i] = min(np.searchsorted(cum[tuple(t[i - order:i])], u[i]), V - 1)
    return t


@pytest.fixture(scope="module")
def planted():
    P = np.random.default_rng(0).dirichlet(np.full(V, 0.5), size=(V, V))
    return P, _chain(2, 200_000, 1, P), _chain(2, 50_001, 2, P)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_probabilities_sum_to_one(planted, order):
    _, train, _ = planted
    lm = NGramLM.fit(train[:5000], order, V + 2)  # two ids never seen
    for ctx in ([], [3], [3, 5], [9, 8], [1, 2, 7], [8, 1]):
        p = lm.prob(ctx)
        assert p.shape == (V + 2,) and (p > 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12), (order, ctx)


def test_a_planted_chain_entropy_is_recovered(planted):
    P, train, test = planted
    truth = -np.log(P[test[:-2], test[1:-1], test[2:]]).mean()  # the chain's entropy rate
    losses = NGramLM.fit(train, 3, V).token_losses(test, 100)
    assert losses[:, 1:].mean() == pytest.approx(truth, abs=0.01)
    # lower orders cannot see the second token back: worse by a clear margin
    assert NGramLM.fit(train, 2, V).token_losses(test, 100).mean() > truth + 0.2


def test_bad_input_is_refused():
    with pytest.raises(GQAError, match="order"):
        NGramLM.fit(np.arange(10), 4, 10)
    with pytest.raises(GQAError, match="ids"):
        NGramLM.fit(np.arange(10), 2, 5)


def test_the_shipped_baselines_are_current():
    """Recompute the bigram on the first 65,536 validation targets at T = 128 (seconds)."""
    from gqa_lib.train.data import prepare

    rows = read_csv_rows(DATA_DIR / "baselines" / "ngram-pd.csv")
    assert rows and list(rows[0]) == BASELINE_COLUMNS
    row = next(r for r in rows if (r["model"], r["eval_set"], r["context"]) ==
               ("bigram", "first-65536", "128"))
    data = prepare("pd")
    got = NGramLM.fit(data.train, 2, data.vocab_size).token_losses(
        data.val[:OLD_EVAL_TOKENS + 1], 128)
    assert int(row["tokens"]) == got.size == OLD_EVAL_TOKENS
    assert float(row["val_loss_nats"]) == pytest.approx(got.mean(), abs=1e-5)
    full = [r for r in rows if r["eval_set"] == "full" and r["source"] == "all"
            and r["last_position"] == "511" and r["first_position"] == "0"]
    order = [float(r["val_loss_nats"]) for r in sorted(full, key=lambda r: r["model"])]
    assert (order[2] > order[0] > order[1])  # unigram > bigram > trigram (sorted b, t, u)
