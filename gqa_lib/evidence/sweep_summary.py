"""Summaries of a training sweep for the training page: does loss fall with size, how each
head configuration compares with a reference at equal size, the recall probe, and how the
head ranking depends on the training regime (two sweeps of the same grid).

The functions take the ``ok`` rows of a sweep CSV (:func:`gqa_lib.fit.per_head.read_runs`; two of
them for :func:`regime_gap`, the output of :func:`head_deltas` for
:func:`head_effect_summary`) and return a tidy DataFrame; losses are validation losses in
nats per token.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from gqa_lib.errors import GQAError
from gqa_lib.evidence.reanalysis import grid_runs as _grid, labelled
from gqa_lib.fit.per_head import SIZE, config_label

_KEY = [*SIZE, "context", "seed"]  # one run shape but its heads


def size_trend(runs: pd.DataFrame, *, mean_over_seeds: bool = False) -> pd.DataFrame:
    """Per (config, context, seed) with >= 2 sizes (L, d), the Llama-3 style family on its
    own shapes as one more configuration: ``n_sizes``; ``falls``, whether
    the loss strictly decreases at every step up in size (sizes ordered by N); ``n_steps``
    and ``n_rises``, the steps and those that rose; ``worst_step_nats``, the largest change
    between neighbouring sizes (positive = a rise), from size ``worst_step_from`` to
    ``worst_step_to`` (labels "L2 d64").

    With ``mean_over_seeds``, one ladder per (config, context) of each size's loss averaged
    over the seeds it was trained with (``seed`` is then -1 and ``max_seeds`` says how many
    seeds the best-covered size had)."""
    g = labelled(runs)
    if mean_over_seeds:
        g = (g.groupby(["config", "context", *SIZE, "size"], sort=False)
             .agg(val_loss_nats=("val_loss_nats", "mean"), n_seeds=("seed", "nunique"),
                  params_non_embedding=("params_non_embedding", "first"))
             .reset_index().assign(seed=-1))
    rows = []
    for (cfg, T, seed), ladder in g.groupby(["config", "context", "seed"], sort=False):
        ladder = ladder.sort_values("params_non_embedding")
        if len(ladder) >= 2:
            y = ladder["val_loss_nats"].to_numpy(float)
            step = np.diff(y)
            i = int(np.argmax(step))
            rows.append({"config": cfg, "context": int(T), "seed": int(seed),
                         "n_sizes": len(ladder), "falls": bool((step < 0).all()),
                         "n_steps": len(step), "n_rises": int((step >= 0).sum()),
                         "worst_step_nats": float(step[i]),
                         "worst_step_from": ladder["size"].iloc[i],
                         "worst_step_to": ladder["size"].iloc[i + 1],
                         "max_seeds": int(ladder["n_seeds"].max()) if mean_over_seeds else 1})
    return pd.DataFrame(rows, columns=["config", "context", "seed", "n_sizes", "falls",
                                       "n_steps", "n_rises", "worst_step_nats",
                                       "worst_step_from", "worst_step_to", "max_seeds"])


def head_deltas(runs: pd.DataFrame, reference: tuple[int, int] = (8, 8)) -> pd.DataFrame:
    """Loss of every grid configuration minus the reference's at the same size, context and
    seed (``delta_nats``; negative = better than the reference)."""
    g = _grid(runs)
    ref = config_label(reference)
    base = g[g["config"] == ref].set_index(_KEY)["val_loss_nats"]
    if base.empty:
        raise GQAError(f"no runs of the reference configuration {ref} yet")
    g = g.join(base.rename("reference_nats"), on=_KEY).dropna(subset=["reference_nats"])
    g["delta_nats"] = g["val_loss_nats"] - g["reference_nats"]
    order = {c: i for i, c in enumerate(sorted(set(g["config"]), key=_head_order))}
    g = g.sort_values(["context", "seed", *SIZE], kind="stable")
    g = g.iloc[g["config"].map(order).argsort(kind="stable")]
    return g[["config", *SIZE, "size", "params_non_embedding", "context", "seed",
              "val_loss_nats", "delta_nats"]].reset_index(drop=True)


def head_effect_summary(deltas: pd.DataFrame, noise_sd: float | Mapping[int, float]
                        ) -> pd.DataFrame:
    """Mean of :func:`head_deltas` over sizes per (config, context) at seed 0, with its
    standard error under seed noise ``noise_sd`` (one run's standard deviation: a difference
    of two runs has sqrt(2) noise_sd, a mean of n of them sqrt(2) noise_sd / sqrt(n)) and
    ``z`` = mean / standard error (> 2: unlikely to be noise). ``noise_sd`` is one value, or
    one per training context ({context: sd}) where the noise differs between contexts."""
    d = deltas[deltas["seed"] == 0]
    g = d.groupby(["config", "context"], sort=False)["delta_nats"].agg(["mean", "count"])
    g = g.rename(columns={"mean": "mean_delta_nats", "count": "n_sizes"}).reset_index()
    if isinstance(noise_sd, Mapping):
        missing = sorted(set(g["context"]) - set(noise_sd))
        if missing:
            raise GQAError(f"noise_sd has no value for context(s) {missing}; it has "
                           f"{sorted(noise_sd)}")
        sd = g["context"].map(noise_sd).astype(float)
    else:
        sd = float(noise_sd)
    g["noise_sd"] = sd
    g["se_nats"] = np.sqrt(2.0) * g["noise_sd"] / np.sqrt(g["n_sizes"])
    g["z"] = g["mean_delta_nats"] / g["se_nats"]
    return g


def _head_order(label: str) -> tuple[int, int]:
    h, k = (int(x) for x in label.strip("()").split(","))
    return (-h, -k)


def recall_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Recall probe per grid run: accuracy on the copy, on the first occurrence, and the gain
    (copy minus first, fraction of needle tokens) with the loss gain in nats/token."""
    g = _grid(runs)
    if "recall_acc" not in g or g["recall_acc"].isna().all():
        raise GQAError("this sweep has no recall-probe columns (probe_samples = 0)")
    g = g.assign(acc_gain=g["recall_acc"] - g["recall_base_acc"])
    return g[["config", *SIZE, "size", "context", "seed", "recall_acc", "recall_base_acc",
              "acc_gain", "recall_gain_nats"]].reset_index(drop=True)


def regime_gap(a: pd.DataFrame, b: pd.DataFrame, *, wide: tuple[int, int] = (8, 8),
               narrow: tuple[int, int] = (1, 1), names: tuple[str, str] = ("a", "b")
               ) -> pd.DataFrame:
    """Loss of the `wide` configuration minus the `narrow` one, at each (size, context, seed)
    measured in both sweeps `a` and `b` (two training regimes of one grid)."""
    out = []
    for name, runs in zip(names, (a, b)):
        d = head_deltas(runs, reference=narrow)
        d = d[d["config"] == config_label(wide)][[*_KEY, "delta_nats"]]
        out.append(d.rename(columns={"delta_nats": f"gap_{name}"}).set_index(_KEY))
    both = out[0].join(out[1], how="inner")
    if both.empty:
        raise GQAError("the two sweeps share no (size, context, seed) with both configurations")
    return both.reset_index()


# ----- retrieval (MQAR runs, data/sweeps/mqar-v1) ------------------------------------------------
MQAR_PAIRS = (2, 4, 8, 16)          # gqa_lib.train.mqar.EVAL_PAIRS (no torch import here)
MQAR_DISTANCES = ("near", "mid", "far")


def mqar_long(runs: pd.DataFrame) -> pd.DataFrame:
    """MQAR accuracy per run in long form: ``config``, ``seed``, ``context``, ``by``
    ("pairs" or "distance"), ``level`` ("2" .. "16" pairs; "near" / "mid" / "far": query
    distance in thirds of the context), ``accuracy``; the overall accuracy as by = "all".
    Most heads first, as :func:`head_deltas`."""
    if "mqar_acc" not in runs or runs["mqar_acc"].isna().all():
        raise GQAError("these runs have no MQAR accuracy (mqar_eval = 0)")
    g = runs.assign(config=[config_label((int(h), int(k)))
                            for h, k in zip(runs["n_head"], runs["n_kv_head"])])
    cols = {"mqar_acc": ("all", "all")}
    cols |= {f"mqar_acc_pairs_{p}": ("pairs", str(p)) for p in MQAR_PAIRS}
    cols |= {f"mqar_acc_dist_{d}": ("distance", d) for d in MQAR_DISTANCES}
    rows = [{"config": r["config"], "seed": int(r["seed"]), "context": int(r["context"]),
             "by": by, "level": level, "accuracy": float(r[c])}
            for _, r in g.iterrows() for c, (by, level) in cols.items()
            if c in g and pd.notna(r[c])]
    out = pd.DataFrame(rows)
    return out.iloc[out["config"].map(_head_order).argsort(kind="stable")].reset_index(drop=True)


def mqar_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per head configuration and (by, level) of :func:`mqar_long`: mean accuracy over seeds,
    the seed standard deviation (``sd``; NaN with one seed), ``n_seeds``, min and max."""
    long = mqar_long(runs)
    g = long.groupby(["config", "by", "level"], sort=False)["accuracy"]
    return g.agg(mean="mean", sd="std", n_seeds="count", lo="min", hi="max").reset_index()


def mqar_separation(runs: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Do two head configurations retrieve differently, beyond the seed noise? One row per
    pair of configurations (overall accuracy): the difference of their seed means
    (``diff``, first minus second), its standard error from the pooled seed-to-seed
    standard deviation of one run (``pooled_sd``, every configuration's seeds pooled: Welch
    would need more seeds than we have), ``z``, its two-sided Student-t ``p`` with the pooled
    degrees of freedom (``dof``), ``p_holm``: Holm's step-down correction for the family of
    all pairs (10 for 5 configurations), and ``separated``: p_holm below 1 - ``level``
    (``separated_uncorrected``: p alone, one test per pair)."""
    from scipy import stats

    s = mqar_summary(runs)
    s = s[s["by"] == "all"].set_index("config")
    many = s[s["n_seeds"] >= 2]
    if many.empty:
        raise GQAError("no head configuration has MQAR runs with two or more seeds yet")
    dof = int((many["n_seeds"] - 1).sum())
    pooled = float(np.sqrt(((many["n_seeds"] - 1) * many["sd"] ** 2).sum() / dof))
    zq = stats.t.ppf((1 + level) / 2, dof)
    rows = []
    cfgs = list(s.index)
    for i, a in enumerate(cfgs):
        for b in cfgs[i + 1:]:
            se = pooled * np.sqrt(1 / s.loc[a, "n_seeds"] + 1 / s.loc[b, "n_seeds"])
            diff = float(s.loc[a, "mean"] - s.loc[b, "mean"])
            z = diff / se if se > 0 else np.inf * np.sign(diff)
            rows.append({"pair": f"{a} vs {b}", "diff": diff, "se": float(se), "z": float(z),
                         "p": float(2 * stats.t.sf(abs(z), dof)),
                         "separated_uncorrected": bool(abs(z) > zq),
                         "pooled_sd": pooled, "dof": dof})
    out = pd.DataFrame(rows)
    out["p_holm"] = holm(out["p"].to_numpy())
    out["separated"] = out["p_holm"] < 1 - level
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values for a family of tests (Holm 1979): the k-th
    smallest p times (m - k + 1), made monotone, capped at 1."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    m = len(p)
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def separation_sentence(sep: pd.DataFrame, means: pd.Series) -> str:
    """What :func:`mqar_separation` decides, in one sentence that claims no more: how many
    pairs differ beyond the seed noise (Holm), and, when every such pair involves one
    configuration, which ones it differs from and that the others cannot be told apart.
    ``means``: accuracy per configuration (names the highest and lowest otherwise)."""
    hit = sep[sep["separated"]]
    if hit.empty:
        return "no two head configurations retrieve differently beyond their seed noise."
    head = (f"{len(hit)} of {len(sep)} pairs of head configurations retrieve differently "
            "beyond their seed noise")
    pairs = [p.split(" vs ") for p in hit["pair"]]
    common = set(pairs[0]).intersection(*map(set, pairs[1:]))
    if len(common) == 1:
        c = common.pop()
        others = [b if a == c else a for a, b in pairs]
        rank = "worse" if all(means[c] < means[o] for o in others) else (
            "better" if all(means[c] > means[o] for o in others) else "differently")
        return (f"{head}, each with {c}: it retrieves {rank} than {', '.join(others)}; the "
                "other configurations cannot be told apart.")
    return (f"{head} (highest mean {means.idxmax()}, lowest {means.idxmin()}; the table "
            "lists which).")
