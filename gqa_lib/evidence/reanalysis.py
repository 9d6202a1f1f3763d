"""What the cpu-v2 sweep can and cannot say (issue 23's reanalysis), computed from its rows
and the count-model baselines, for the training and fitting pages and the scoreboard:

* :func:`ngram_baselines`, :func:`against_baselines`, :func:`baseline_counts`: every run's
  loss beside the unigram, bigram and trigram models on the same validation tokens;
* :func:`context_gap`: T = 512 minus T = 128 at equal shape and seed (does a longer context
  help these models at all?);
* :func:`seed_offset`: seed 1 minus seed 0 at equal shape (batches depend only on seed and
  step, so every configuration of one seed shares a data order);
* :func:`common_slope`: L = a_H + b log N + c_seed with one slope b shared by the head
  configurations, on non-embedding N and on total parameters, side by side;
* :func:`size_predicted_deltas`: each configuration's loss minus (8, 8)'s at equal shape,
  beside what its size difference alone predicts through the common slope.

Every cpu-v0/v1/v2 and mqar-v1 loss (``val_loss_nats``) was measured on the first 65,536
validation tokens (``eval_tokens``), all of them World English Bible text, 16% of the
training stream; their checkpoints were not kept, so they cannot be re-evaluated on the
whole split. The baselines are given on that set (``first-65536``) and on the whole split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from gqa_lib.errors import GQAError
from gqa_lib.fit.per_head import SIZE, config_label, family_masks, size_labels
from gqa_lib.io import DATA_DIR

BASELINE_CSV = DATA_DIR / "baselines" / "ngram-pd.csv"
OLD_SET = "first-65536"
MODELS = ("unigram", "bigram", "trigram")
AXES = {"params_non_embedding": "non-embedding N", "params_total": "total parameters"}


def ngram_baselines(path=BASELINE_CSV) -> pd.DataFrame:
    """data/baselines/ngram-pd.csv (:func:`gqa_lib.train.ngram.baseline_table`)."""
    if not path.is_file():
        raise GQAError(f"{path} does not exist: run `python -m gqa_lib.train.ngram`")
    return pd.read_csv(path)


def baseline(eval_set: str = OLD_SET, context: int = 512, source: str = "all",
             table: pd.DataFrame | None = None) -> dict[str, float]:
    """{model: nats} over whole windows of one evaluation set, context and source."""
    b = ngram_baselines() if table is None else table
    w = b[(b.eval_set == eval_set) & (b.context == context) & (b.source == source)
          & (b.first_position == 0) & (b.last_position == context - 1)]
    if w.empty:
        raise GQAError(f"no baseline rows for {eval_set}, T = {context}, {source}")
    return dict(zip(w.model, w.val_loss_nats.astype(float)))


def grid_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the explicit head grid, labelled ``config`` and ``size``."""
    g = runs[family_masks(runs)[0]].copy()
    g["config"] = [config_label((int(h), int(k))) for h, k in zip(g.n_head, g.n_kv_head)]
    g["size"] = size_labels(g)
    return g


def against_baselines(runs: pd.DataFrame, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every run with the count models' losses on its own evaluation set and context
    (the old set), and ``beats_<model>`` (loss below it)."""
    table = ngram_baselines() if table is None else table
    out = runs.copy()
    for T in sorted(out.context.unique()):
        base = baseline(OLD_SET, int(T), table=table)
        for m in MODELS:
            out.loc[out.context == T, f"{m}_nats"] = base[m]
    for m in MODELS:
        out[f"beats_{m}"] = out.val_loss_nats < out[f"{m}_nats"]
    return out


def baseline_counts(runs: pd.DataFrame, table: pd.DataFrame | None = None) -> dict[str, int]:
    """How many runs there are and how many beat each count model (old set)."""
    a = against_baselines(runs, table)
    return {"runs": len(a), **{m: int(a[f"beats_{m}"].sum()) for m in MODELS}}


def context_gap(runs: pd.DataFrame, short: int = 128, long: int = 512) -> dict[str, float]:
    """Loss at T = ``long`` minus T = ``short`` for every (shape, heads, seed) run at both:
    ``mean``, ``n_pairs``, ``n_worse`` (long worse), ``min``, ``max``."""
    key = [*SIZE, "n_head", "n_kv_head", "seed"]
    a = runs[runs.context == short].set_index(key).val_loss_nats
    b = runs[runs.context == long].set_index(key).val_loss_nats
    d = (b - a).dropna()
    if d.empty:
        raise GQAError(f"no run shape was trained at both T = {short} and T = {long}")
    return {"mean": float(d.mean()), "n_pairs": len(d), "n_worse": int((d > 0).sum()),
            "min": float(d.min()), "max": float(d.max())}


def seed_offset(runs: pd.DataFrame, a: int = 0, b: int = 1) -> dict[str, float]:
    """Seed ``b`` minus seed ``a`` at equal shape, heads and context: ``mean``, ``n_pairs``,
    ``n_lower`` (b lower), ``p`` (two-sided paired t-test)."""
    key = [*SIZE, "n_head", "n_kv_head", "context"]
    x = runs[runs.seed == a].set_index(key).val_loss_nats
    y = runs[runs.seed == b].set_index(key).val_loss_nats
    d = (y - x).dropna()
    if len(d) < 2:
        raise GQAError(f"fewer than two run shapes were trained with seeds {a} and {b}")
    p = float(stats.ttest_1samp(d, 0.0).pvalue)
    return {"mean": float(d.mean()), "n_pairs": len(d), "n_lower": int((d < 0).sum()), "p": p}


def common_slope(runs: pd.DataFrame, axis: str = "params_non_embedding", *,
                 reference: str = "(8, 8)", level: float = 0.95) -> pd.DataFrame:
    """Least squares L = a_H + b log N + c_seed over the grid runs of one context, one
    slope b for every head configuration H (``axis``: a column of :data:`AXES`). One row
    per H: ``offset`` = a_H - a_reference (nats at equal size on that axis; negative =
    lower loss), its ``se`` and t interval (``lo``, ``hi``) from the residual variance
    (seed noise and the ladders' misfit together), and the shared ``slope`` b with its
    ``slope_se``. Runs of other contexts must be filtered out first."""
    if axis not in AXES:
        raise GQAError(f"axis {axis!r} is not one of {sorted(AXES)}")
    g = grid_runs(runs)
    if g.context.nunique() != 1:
        raise GQAError(f"runs of {g.context.nunique()} contexts: fit one context at a time")
    cfgs = [reference] + sorted(set(g.config) - {reference},
                                key=lambda c: tuple(-int(x) for x in c.strip("()").split(",")))
    seeds = sorted(g.seed.unique())
    X = np.column_stack([np.log(g[axis].to_numpy(float))]
                        + [(g.config == c).to_numpy(float) for c in cfgs]
                        + [(g.seed == s).to_numpy(float) for s in seeds[1:]])
    y = g.val_loss_nats.to_numpy(float)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    dof = len(y) - X.shape[1]
    if dof < 1:
        raise GQAError(f"{len(y)} runs cannot fit {X.shape[1]} coefficients")
    s2 = float(((y - X @ coef) ** 2).sum() / dof)
    cov = s2 * np.linalg.inv(X.T @ X)
    q = stats.t.ppf((1 + level) / 2, dof)
    rows = []
    for i, c in enumerate(cfgs):
        if c == reference:
            off, se = 0.0, 0.0
        else:  # a_c - a_ref and its variance
            off = coef[1 + i] - coef[1]
            se = float(np.sqrt(cov[1 + i, 1 + i] + cov[1, 1] - 2 * cov[1, 1 + i]))
        rows.append({"config": c, "axis": AXES[axis], "offset": float(off), "se": se,
                     "lo": off - q * se, "hi": off + q * se, "slope": float(coef[0]),
                     "slope_se": float(np.sqrt(cov[0, 0])), "n_runs": len(y), "dof": dof,
                     "resid_sd": float(np.sqrt(s2))})
    return pd.DataFrame(rows)


def both_axes(runs: pd.DataFrame, **kw) -> pd.DataFrame:
    """:func:`common_slope` on both axes, one row per configuration: ``offset_<axis>``,
    ``lo_<axis>``, ``hi_<axis>`` for axis ``n`` (non-embedding) and ``total``."""
    out = None
    for axis, tag in (("params_non_embedding", "n"), ("params_total", "total")):
        f = common_slope(runs, axis, **kw).set_index("config")[["offset", "lo", "hi"]]
        f = f.add_suffix(f"_{tag}")
        out = f if out is None else out.join(f)
    return out.reset_index()


def size_predicted_deltas(runs: pd.DataFrame, *, reference: str = "(8, 8)") -> pd.DataFrame:
    """Each grid configuration's loss minus the reference's at the same shape, context and
    seed (``delta``), beside ``predicted``: what the size difference alone gives through
    the common slope on non-embedding N (at 20 tokens per parameter, tokens scale with N,
    so the slope carries both), b (log N - log N_ref); ``residual`` = delta - predicted
    is the head configuration's own part. Fitted per context."""
    g = grid_runs(runs)
    out = []
    for T, at in g.groupby("context"):
        b = float(common_slope(at, reference=reference).slope.iloc[0])
        key = [*SIZE, "seed"]
        ref = at[at.config == reference].set_index(key)[["val_loss_nats", "params_non_embedding",
                                                         "tokens"]].add_suffix("_ref")
        j = at.join(ref, on=key).dropna(subset=["val_loss_nats_ref"])
        j = j[j.config != reference]
        j["delta"] = j.val_loss_nats - j.val_loss_nats_ref
        j["predicted"] = b * np.log(j.params_non_embedding / j.params_non_embedding_ref)
        j["residual"] = j.delta - j.predicted
        j["token_ratio"] = j.tokens_ref / j.tokens  # tokens the reference trains per ours
        out.append(j)
    cols = ["config", "size", "context", "seed", "params_non_embedding", "token_ratio",
            "delta", "predicted", "residual"]
    return pd.concat(out)[cols].reset_index(drop=True) if out else pd.DataFrame(columns=cols)


def embedding_share(runs: pd.DataFrame) -> tuple[float, float]:
    """(min, max) share of the total parameters that the (tied) embedding holds."""
    s = 1 - runs.params_non_embedding / runs.params_total
    return float(s.min()), float(s.max())


def labelled(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run (the Llama-3 style baseline included) with ``config`` and ``size``."""
    from gqa_lib.evidence.sweep_recipe import _configs

    return runs.assign(config=_configs(runs), size=size_labels(runs))


def old_set_sources(n_tokens: int = 65_536, corpus: str = "pd") -> dict[str, float]:
    """Share of each source among the first ``n_tokens`` validation targets (the set every
    cpu-v0/v1/v2 and mqar-v1 loss was measured on); tokenises the corpus (cached)."""
    from gqa_lib.train.evaluate import val_token_sources

    names, index = val_token_sources(corpus)
    counts = np.bincount(index[1:1 + n_tokens], minlength=len(names))
    return {n: float(c / counts.sum()) for n, c in zip(names, counts) if c}


def _pd_sources() -> list[dict[str, Any]]:
    """The pd corpus's sources as its build recorded them (data/corpus/pd.manifest.json)."""
    import json

    return json.loads((DATA_DIR / "corpus" / "pd.manifest.json").read_text())["sources"]


def train_byte_share(source: str = "engWEB2015eb") -> float:
    """``source``'s share of the pd training split in UTF-8 bytes (data/corpus/pd.manifest.json)."""
    train = {s["name"]: s["bytes"] - s["val_bytes"] for s in _pd_sources()}
    return train[source] / sum(train.values())


def source_titles() -> dict[str, str]:
    """Each pd source's module name (engWEB2015eb) -> what it is, in words ("World English
    Bible with Deuterocanon"), from the corpus manifest: what a table shows a reader."""
    return {s["name"]: s["what"] for s in _pd_sources()}


def baselines_by_source(context: int = 512, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The count models on the whole validation split per source: ``source`` (the module
    name), ``title`` (what it is, :func:`source_titles`), ``tokens`` and one column per
    model (nats), at training context ``context``."""
    b = ngram_baselines() if table is None else table
    b = b[(b.eval_set == "full") & (b.context == context) & (b.source != "all")
          & (b.first_position == 0) & (b.last_position == context - 1)]
    out = b.pivot_table(index="source", columns="model", values="val_loss_nats", sort=False)
    out = out[[m for m in MODELS if m in out]]
    out.insert(0, "tokens", b[b.model == b.model.iloc[0]].set_index("source").tokens)
    out = out.reset_index()
    out.insert(1, "title", out.source.map(source_titles()).fillna(out.source))
    return out


def curvature(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration (the Llama-3 style family on its own shapes included), context and
    seed with >= 3 sizes: ``curv``, the quadratic coefficient of log loss against log N
    (least squares). A power law is straight here; a floor E > 0 bends it upward (curv > 0,
    flattening); curv < 0 means the curve steepens with size, the wrong way for a floor, so
    a fitted floor sits at its bound."""
    rows = []
    for (c, T, s), d in labelled(runs).groupby(["config", "context", "seed"], sort=False):
        if d[SIZE].drop_duplicates().shape[0] >= 3:
            x, y = np.log(d.params_non_embedding.to_numpy(float)), np.log(d.val_loss_nats)
            rows.append({"config": c, "context": int(T), "seed": int(s), "n_sizes": len(d),
                         "curv": float(np.polyfit(x, y, 2)[0])})
    return pd.DataFrame(rows, columns=["config", "context", "seed", "n_sizes", "curv"])
