"""The recipe applied to our own sweep: fits, seed noise, our Table 4, the long-context claim.

The sweep (data/sweeps/cpu-v2.toml, rows in cpu-v2.csv; cpu-v1 is the earlier regime)
trains tiny GQA models on CPU; the book reads whatever rows exist when it is built, so every
function here works on a partial sweep and says what is missing instead of failing:

* :func:`progress`: runs finished against runs planned, per head configuration and context;
* :func:`fit_context`: step 2 at one training context (configurations with fewer than 3
  sizes are left out and named), with bootstrap intervals; :func:`longest_fitted` picks the
  fits the recipe uses; :func:`fit_tables` gathers the
  fits of every context for the page; :func:`fitted_spread` compares H at equal N;
  :func:`relative_gaps` asks whether H's loss differences move with the training context;
* :func:`leave_one_size_out` predicts each size from a refit without it;
  :func:`floor_check` asks whether the fitted floor hugs the data (data-limited) or sits at
  its bound (not identified); :func:`widest_fitted` picks the context with the most sizes;
* :func:`seed_noise`, :func:`loss_differences`, :func:`noise_summary`: the loss difference
  between two seeds of one configuration beside the differences between configurations;
* :func:`target_grid`, :func:`recipe_evidence`: step 3 on our fits over targets x contexts,
  with residual-bootstrap replicates; :class:`RecipeEvidence` gives our Table 4 with the
  share of each choice, and :meth:`RecipeEvidence.trend` tests the paper's claim that at a
  fixed target a longer context favours fewer heads and a bigger model.

Losses are validation losses in nats per token; N is non-embedding parameters (values).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from gqa_lib.errors import GQAError
from gqa_lib.fit.per_head import (SIZE, PerHeadModel, config_label, family_masks, fit_curves,
                                  fit_runs, interval_table, quality_table, size_labels)
from gqa_lib.fit.recipe import (CostSettings, RecipeGrid, bootstrap_grids, choice_counts, choice_shares)
from gqa_lib.fit.scaling import Bootstrap, bootstrap_fit
from gqa_lib.io import REPO_ROOT
from gqa_lib.units import format_count, format_heads

SWEEP_DIR = REPO_ROOT / "data" / "sweeps"
SWEEP_GRID = SWEEP_DIR / "cpu-v2.toml"   # the evidence sweep: 20 tokens per parameter
SWEEP_CSV = SWEEP_DIR / "cpu-v2.csv"
V1_GRID = SWEEP_DIR / "cpu-v1.toml"      # the earlier regime: 0.06-1.2 tokens per parameter
V1_CSV = SWEEP_DIR / "cpu-v1.csv"
SERVING_CONTEXTS = (512, 2048, 8192, 32768, 131072)  # our Table 4's serving contexts T (tokens)
N_BOOT = 100           # bootstrap refits behind every interval and share of our sweep
MIN_SIZES = 3          # a power law with its own a_H, b_H needs three sizes (E shared)
SEED_KIND = "same H and size, other seed"
HEAD_KIND = "same size and seed, other H"
LLAMA3 = "Llama-3 style"


def _configs(df: pd.DataFrame) -> list[str]:
    """Label per row: "(8, 1)" for the grid, "Llama-3 style" for baseline-only rows."""
    in_grid, _ = family_masks(df)
    return [config_label((int(h), int(k))) if g else LLAMA3
            for g, h, k in zip(in_grid, df["n_head"], df["n_kv_head"])]


# ----- what has run ---------------------------------------------------------------------------
def planned_runs(grid_path: str | Path = SWEEP_GRID) -> pd.DataFrame:
    """The grid file's runs (:func:`gqa_lib.train.sweep.load_grid`): family, shape, heads,
    context, seed; one row per run."""
    from gqa_lib.train.sweep import load_grid  # imports torch (via the training config): only when asked

    _, specs = load_grid(grid_path)
    return pd.DataFrame([{"family": s.family, "n_layer": s.model.n_layer,
                          "d_model": s.model.d_model, "n_head": s.model.n_head,
                          "n_kv_head": s.model.n_kv_head, "context": s.train.context_len,
                          "seed": s.train.seed} for s in specs])


def progress(runs: pd.DataFrame, planned: pd.DataFrame) -> pd.DataFrame:
    """Finished ``ok`` runs against planned ones per (config, context, seed): ``done``,
    ``planned``, and the sizes still ``missing`` ("L2 d64, ..."; "" when complete)."""
    key = [*SIZE, "n_head", "n_kv_head", "context", "seed"]
    plan = planned.assign(config=_configs(planned), size=size_labels(planned))
    done = set(map(tuple, runs[key].astype(int).to_numpy()))
    plan["done"] = [tuple(r) in done for r in plan[key].astype(int).to_numpy()]
    rows = []
    for (cfg, T, seed), g in plan.groupby(["config", "context", "seed"], sort=False):
        rows.append({"config": cfg, "context": int(T), "seed": int(seed),
                     "done": int(g["done"].sum()), "planned": len(g),
                     "missing": ", ".join(g.loc[~g["done"], "size"])})
    return pd.DataFrame(rows)


# ----- step 2 per training context ----------------------------------------------------------
def _size_counts(at: pd.DataFrame) -> pd.DataFrame:
    """Distinct sizes (N) per grid H and for the Llama-3 family (whose (8, 8) point at the
    smallest size is also a grid run: family "grid+llama3"), as fits.fit_runs splits them."""
    in_grid, in_llama3 = family_masks(at)
    N = "params_non_embedding"
    n = at[in_grid].groupby(["n_head", "n_kv_head"], sort=False)[N].nunique()
    rows = [(config_label((int(h), int(k))), int(v)) for (h, k), v in n.items()]
    if in_llama3.any():
        rows.append((LLAMA3, int(at.loc[in_llama3, N].nunique())))
    df = pd.DataFrame(rows, columns=["config", "n_sizes"])
    return df.assign(fitted=df["n_sizes"] >= MIN_SIZES)


@dataclass(frozen=True, eq=False)  # holds a fit: compare by identity
class ContextFit:
    """Step 2 at one training context. ``sizes``: every configuration at that context with
    its number of distinct sizes and whether it was fitted; ``model`` and ``boot`` are None
    when nothing could be fitted, and ``note`` then says why (also which configurations wait
    for more sizes when only some were fitted; "" when all were)."""

    context: int
    sizes: pd.DataFrame
    model: PerHeadModel | None
    boot: Bootstrap | None
    note: str


def fit_context(runs: pd.DataFrame, context: int, *, n_boot: int = 100, seed: int = 0,
                method: str = "huber") -> ContextFit:
    """Fit L(N; H) = (a_H / N)^b_H + E (E shared) to the runs at one training ``context``,
    every seed's run a point, with leave-one-out and a residual bootstrap of ``n_boot``
    refits. Configurations with fewer than 3 sizes are left out and named in ``note``."""
    at = runs[runs["context"].astype(int) == int(context)]
    if at.empty:
        return ContextFit(int(context), pd.DataFrame(columns=["config", "n_sizes", "fitted"]),
                          None, None, f"no finished runs at training context {context} yet")
    sizes = _size_counts(at)
    waiting = sizes[~sizes["fitted"]]
    note = "" if waiting.empty else (
        f"not fitted yet at T = {context} (fewer than {MIN_SIZES} sizes): " + ", ".join(
            f"{c} ({n} size{'s' * (n != 1)})" for c, n in zip(waiting["config"],
                                                            waiting["n_sizes"])))
    try:
        model = fit_runs(runs, train_context=int(context), method=method, allow_partial=True,
                         loo=True, label=f"fits of our runs at T = {context}")
        boot = bootstrap_fit(model.fit, n_boot=n_boot, seed=seed)
    except GQAError as e:
        return ContextFit(int(context), sizes, None, None,
                          f"no fit at T = {context}: {e}" + (f"; {note}" if note else ""))
    return ContextFit(int(context), sizes, model, boot, note)


def leave_one_size_out(runs: pd.DataFrame, context: int, *, method: str = "huber"
                       ) -> pd.DataFrame:
    """Leave-one-size-out error of step 2 at one training ``context``: for each size (L, d),
    refit without every run of that size and predict those runs from their configuration's
    law. One row per left-out size: ``size``, ``params`` (its N range), ``n_runs`` predicted,
    ``rmse`` and ``bias`` (mean of predicted - measured, nats), ``extrapolation`` (the size
    lies outside the sizes left in: the smallest or the largest), and ``note`` where no
    refit was possible (fewer than 3 sizes left for every configuration)."""
    at = runs[runs["context"].astype(int) == int(context)]
    at = at.assign(size=size_labels(at))
    order = at.groupby("size")["params_non_embedding"].median().sort_values().index
    rows = []
    for i, size in enumerate(order):
        out, keep = at[at["size"] == size], runs.drop(index=at.index[at["size"] == size])
        row = {"size": size, "params": f"{format_count(out['params_non_embedding'].min())}-"
                                       f"{format_count(out['params_non_embedding'].max())}",
               "n_runs": 0, "rmse": np.nan, "bias": np.nan,
               "extrapolation": i in (0, len(order) - 1), "note": ""}
        try:
            model = fit_runs(keep, train_context=int(context), method=method,
                             allow_partial=True)
        except GQAError as e:
            rows.append(row | {"note": str(e).split(";")[0]})
            continue
        in_grid, _ = family_masks(out)
        fitted = set(model.configs())
        pred = out[in_grid.to_numpy() & np.array([(int(h), int(k)) in fitted for h, k in
                                                  zip(out["n_head"], out["n_kv_head"])])]
        if pred.empty:
            rows.append(row | {"note": "no fitted configuration left at this size"})
            continue
        err = model.loss(pred["params_non_embedding"], pred["n_head"], pred["n_kv_head"]) \
            - pred["val_loss_nats"].to_numpy(float)
        rows.append(row | {"n_runs": len(pred), "rmse": float(np.sqrt(np.mean(err ** 2))),
                           "bias": float(np.mean(err))})
    return pd.DataFrame(rows)


def floor_check(fit: ContextFit, runs: pd.DataFrame) -> dict[str, Any]:
    """Is the sweep still data-limited? The fitted floor E (with its bootstrap interval)
    against the best run's loss at that context and the spread of the head configurations
    at the largest size, both over the same runs (seed 0, the grid's configurations: the
    Llama-3-style family is fitted apart): ``margin`` = best loss - E;
    ``hugs`` when the margin is not larger than the spread (a floor at the data: the curves
    have flattened, as cpu-v1's did); ``at_bound`` when E sits at its lower bound 0 (the
    data want no floor at all: E is not identified, the laws are pure power laws)."""
    if fit.model is None or fit.boot is None:
        raise GQAError(f"no fit at T = {fit.context}: {fit.note}")
    at = runs[(runs["context"].astype(int) == fit.context)]
    in_grid, _ = family_masks(at)
    g = at[in_grid & (at["seed"].astype(int) == 0)]
    top = g.assign(size=size_labels(g))
    largest = top.groupby("size")["params_non_embedding"].median().idxmax()
    big = top[top["size"] == largest]["val_loss_nats"]
    iv = interval_table(fit.boot, llama3=LLAMA3).iloc[0]
    E, best = float(iv["E"]), float(g["val_loss_nats"].min())
    spread = float(big.max() - big.min())
    return {"E": E, "E_lo": float(iv["E_lo"]), "E_hi": float(iv["E_hi"]), "best_loss": best,
            "margin": best - E, "largest": largest, "spread_largest": spread,
            "hugs": bool(best - E <= spread), "at_bound": bool(E < 1e-6)}


def longest_fitted(fits: Mapping[int, ContextFit]) -> int:
    """The longest training context with a fit (the recipe's fits, as the paper uses its
    longest); GQAError, with every context's note, when no context has one yet."""
    done = [T for T, f in fits.items() if f.model is not None]
    if not done:
        raise GQAError("the sweep has no fit yet at any training context: "
                       + "; ".join(f.note for f in fits.values())
                       + ". The recipe needs 3 sizes of a configuration; wait for more runs")
    return max(done)


def widest_fitted(fits: Mapping[int, ContextFit]) -> int:
    """The training context whose fit spans the most sizes (the longest among equals): the
    fits our recipe uses. The paper uses its longest context, where its sizes are the same at
    every context; ours are not (cpu-v2: 5 sizes at T = 128, 3 at T = 512), and a law of 3
    sizes leaves one degree of freedom per configuration. GQAError as :func:`longest_fitted`."""
    longest_fitted(fits)  # the same refusal when nothing is fitted
    n_sizes = {T: int(f.sizes.loc[f.sizes["fitted"], "n_sizes"].max()) if f.model is not None
               else -1 for T, f in fits.items()}
    return max(fits, key=lambda T: (n_sizes[T], T))


def fit_tables(fits: Mapping[int, ContextFit]) -> dict[str, pd.DataFrame]:
    """The fits of several training contexts as three frames with a ``fit`` column
    ("T = 512"): ``curves`` (:func:`gqa_lib.fit.per_head.fit_curves`), ``intervals``
    (:func:`gqa_lib.fit.per_head.interval_table`) and ``quality`` (:func:`gqa_lib.fit.per_head.quality_table`);
    contexts without a fit are left out (their ``note`` says why)."""
    done = {f"T = {T}": f for T, f in fits.items() if f.model is not None}
    curves = [fit_curves(f.model.fit, llama3=LLAMA3).assign(fit=k) for k, f in done.items()]
    iv = [interval_table(f.boot, llama3=LLAMA3).assign(fit=k) for k, f in done.items()]
    empty = pd.DataFrame(columns=["fit"])
    return {"curves": pd.concat(curves, ignore_index=True) if curves else empty,
            "intervals": pd.concat(iv, ignore_index=True) if iv else empty,
            "quality": quality_table({k: f.model.fit for k, f in done.items()})}


def fitted_spread(model: PerHeadModel, N: float | None = None) -> dict[str, Any]:
    """Fitted losses of every H at one size N (default: the geometric mean of the measured
    sizes), where the laws compare H at equal parameters: ``N``, ``best`` and ``worst`` H
    (labels) and ``spread`` = worst - best (nats)."""
    N = float(np.exp(np.mean(np.log(model.fit.N)))) if N is None else float(N)
    loss = {config_label(k): float(model.fit.law(k).loss(N)) for k in model.configs()}
    best, worst = min(loss, key=loss.get), max(loss, key=loss.get)
    return {"N": N, "best": best, "worst": worst, "spread": loss[worst] - loss[best]}


def relative_gaps(runs: pd.DataFrame, reference: tuple[int, int] = (8, 8)) -> pd.DataFrame:
    """Does the loss difference between head configurations move with the training context?
    (The paper reuses its T = 8K fits for every T because relative differences change < 1%
    beyond 8K.) Seed-0 grid runs; one row per (size, config) measured at every context:
    the relative gap (L_H - L_ref) / L_ref at each context (columns ``gap_T<context>``) and
    ``change``, the last context's gap minus the first's (fractions, not percent)."""
    df = runs[(runs["seed"].astype(int) == 0)]
    df = df.assign(config=_configs(df), size=size_labels(df))
    df = df[df["config"] != LLAMA3]
    ref = config_label(reference)
    loss = df.pivot_table(index=[*SIZE, "size", "config"], columns="context",
                          values="val_loss_nats")
    contexts = sorted(loss.columns)
    if len(contexts) < 2:
        raise GQAError("relative gaps need runs at two or more training contexts")
    base = loss.xs(ref, level="config")
    gap = loss.div(base.reindex(loss.index.droplevel("config"))
                   .set_axis(loss.index, axis=0)) - 1.0
    gap = gap.dropna().drop(index=ref, level="config", errors="ignore")
    out = gap.rename(columns=lambda T: f"gap_T{int(T)}").reset_index()
    out["change"] = gap[contexts[-1]].to_numpy() - gap[contexts[0]].to_numpy()
    return out


# ----- seed noise -------------------------------------------------------------------------------
_SHAPE = ["n_layer", "d_model", "n_head", "n_kv_head", "d_head", "context"]


def seed_groups(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration trained with two or more seeds: ``config`` (its heads;
    "Llama-3 style (2, 2)" for a run of the baseline family only), ``n_layer``,
    ``d_model``, ``size``,
    ``params_non_embedding``, ``context``, ``seeds``, ``n_seeds``, ``loss_min``, ``loss_max``,
    ``spread`` (max - min, nats) and ``var`` (sample variance, nats^2)."""
    rows = []
    for shape, g in runs.groupby(_SHAPE, sort=True):
        if g["seed"].nunique() < 2:
            continue
        y = g["val_loss_nats"].to_numpy(float)
        in_grid, _ = family_masks(g)
        label = config_label((int(shape[2]), int(shape[3])))
        rows.append({"config": label if in_grid.any() else f"Llama-3 style {label}",
                     "n_layer": int(shape[0]), "d_model": int(shape[1]),
                     "size": f"L{int(shape[0])} d{int(shape[1])}",
                     "params_non_embedding": int(g["params_non_embedding"].iloc[0]),
                     "context": int(shape[5]),
                     "seeds": ", ".join(map(str, sorted(g["seed"].astype(int)))),
                     "n_seeds": len(y), "loss_min": y.min(), "loss_max": y.max(),
                     "spread": np.ptp(y), "var": np.var(y, ddof=1)})
    return pd.DataFrame(rows, columns=["config", "n_layer", "d_model", "size",
                                       "params_non_embedding", "context",
                                       "seeds", "n_seeds", "loss_min", "loss_max", "spread",
                                       "var"])


@dataclass(frozen=True)
class SeedNoise:
    """The loss noise of a single run from repeated seeds: ``sd`` (nats), pooled over the
    groups of :func:`seed_groups`, with its chi-square interval (``lo``, ``hi``) at ``level``
    assuming normal noise of one size everywhere; ``dof`` = sum of (seeds - 1). NaN, and a
    ``note``, when no configuration has been repeated yet."""

    sd: float
    lo: float
    hi: float
    dof: int
    n_groups: int
    level: float
    note: str = ""

    @property
    def diff_sd(self) -> float:
        """Standard deviation of the difference between two single runs: sqrt(2) sd."""
        return float(np.sqrt(2.0) * self.sd)


def seed_noise(runs: pd.DataFrame, *, level: float = 0.95) -> SeedNoise:
    """Pooled seed-to-seed standard deviation of the validation loss (see :class:`SeedNoise`)."""
    if not 0 < level < 1:
        raise GQAError(f"level must be in (0, 1), got {level!r}")
    g = seed_groups(runs)
    if g.empty:
        return SeedNoise(np.nan, np.nan, np.nan, 0, 0, level,
                         "no configuration has finished with a second seed yet")
    dof = int((g["n_seeds"] - 1).sum())
    ss = float(((g["n_seeds"] - 1) * g["var"]).sum())
    lo, hi = (np.sqrt(ss / stats.chi2.ppf(q, dof)) for q in ((1 + level) / 2, (1 - level) / 2))
    return SeedNoise(float(np.sqrt(ss / dof)), float(lo), float(hi), dof, len(g), level)


def loss_differences(runs: pd.DataFrame, context: int | None = None) -> pd.DataFrame:
    """Absolute loss differences of two kinds, one row each: between seeds of one run shape
    (``kind`` = :data:`SEED_KIND`, every pair of seeds) and between head configurations of
    the grid at one size, context and seed (:data:`HEAD_KIND`, every pair of H). Columns
    ``kind``, ``context``, ``n_layer``, ``d_model``, ``size``, ``pair`` (what was compared),
    ``abs_diff_nats``.
    ``context`` None: every context."""
    df = runs if context is None else runs[runs["context"].astype(int) == int(context)]
    df = df.assign(config=_configs(df))
    rows = []
    for (L, d, T), g in df.groupby([*SIZE, "context"], sort=True):
        at = (T, L, d, f"L{L} d{d}")
        for cfg, s in g.groupby("config", sort=False):
            for (sa, ya), (sb, yb) in itertools.combinations(
                    zip(s["seed"].astype(int), s["val_loss_nats"]), 2):
                rows.append((SEED_KIND, *at, f"{cfg}: seed {sa} vs {sb}", abs(ya - yb)))
        for seed, s in g[g["config"] != LLAMA3].groupby("seed", sort=True):
            for (ca, ya), (cb, yb) in itertools.combinations(
                    zip(s["config"], s["val_loss_nats"]), 2):
                rows.append((HEAD_KIND, *at, f"{ca} vs {cb} (seed {seed})", abs(ya - yb)))
    return pd.DataFrame(rows, columns=["kind", "context", "n_layer", "d_model", "size", "pair",
                                       "abs_diff_nats"])


def noise_summary(diffs: pd.DataFrame, noise: SeedNoise, *, level: float = 0.95
                  ) -> dict[str, float]:
    """Differences between H against the noise of a difference of two runs: the median and
    largest |difference| between H, ``threshold`` = z sqrt(2) sd (z for a two-sided
    ``level``), the share of H pairs whose difference exceeds it (``share_resolved``), and
    ``ratio`` = median |difference| / (sqrt(2) sd). NaN where the noise is unknown."""
    heads = diffs.loc[diffs["kind"] == HEAD_KIND, "abs_diff_nats"].to_numpy(float)
    if heads.size == 0:
        raise GQAError("no two head configurations of one size have finished yet")
    threshold = stats.norm.ppf((1 + level) / 2) * noise.diff_sd
    return {"n_head_pairs": int(heads.size), "median_abs_diff": float(np.median(heads)),
            "max_abs_diff": float(heads.max()), "threshold": float(threshold),
            "share_resolved": float(np.mean(heads > threshold)) if np.isfinite(threshold)
            else np.nan, "ratio": float(np.median(heads) / noise.diff_sd)}


# ----- step 3 on our fits -------------------------------------------------------------------
def measured_sizes(model: PerHeadModel) -> dict[tuple[int, int], tuple[float, float]]:
    """The smallest and largest measured N of each fitted H."""
    N, keys = model.fit.N, model.fit.keys
    return {k: (float(N[m].min()), float(N[m].max()))
            for k in model.configs() for m in [np.array([kk == k for kk in keys])]}


def smallest_shape_N(key: tuple[int, int], d_head: int) -> float:
    """N of the smallest model step 3 can shape for H = ``key`` under the d = 64 L rule
    (L = 1, d = 64; norms left out as in step 3): targets whose N* lies below it have no
    shape, and :func:`gqa_lib.fit.recipe.cost_grid` refuses them."""
    from gqa_lib import cost
    from gqa_lib.fit.shapes import config_batch

    return float(cost.params_non_embedding(config_batch(1.0, 64.0, key[0], key[1], d_head),
                                           include_norms=False))


def target_grid(model: PerHeadModel, n: int = 5, *, margin: float = 0.1
                ) -> tuple[np.ndarray, bool]:
    """``n`` target losses (nats, 3 decimals, falling) inside our measurements, and whether
    they are inside for every H. Preferred range: the losses every fitted H reaches within
    its own measured sizes, [max_H L_H(N_max), min_H L_H(N_min)] (so every N* is an
    interpolation); when that is empty, the losses any H reaches, [min_H L_H(N_max),
    max_H L_H(N_min)], and False. ``margin``: the fraction trimmed from each end. A size
    below the smallest shape step 3 can cost (:func:`smallest_shape_N`: cpu-v2's narrow
    models, d = 32 at L = 1 and 2) counts from that shape's N instead."""
    if n < 1:
        raise GQAError(f"n must be >= 1, got {n!r}")
    ends = np.array([(model.fit.law(k).loss(hi),
                      model.fit.law(k).loss(max(lo, smallest_shape_N(k, model.d_head))))
                     for k, (lo, hi) in measured_sizes(model).items()])
    lo, hi = ends[:, 0].max(), ends[:, 1].min()
    inside = bool(hi > lo)
    if not inside:
        lo, hi = ends[:, 0].min(), ends[:, 1].max()
    pad = margin * (hi - lo)
    return np.round(np.linspace(hi - pad, lo + pad, n), 3), inside


def _head_steps(h: np.ndarray, k: np.ndarray) -> np.ndarray:
    """-1 / 0 / +1 where both head counts fall / stay / rise between contexts, 2 otherwise."""
    dh, dk = np.sign(np.diff(h)), np.sign(np.diff(k))
    down, up = (dh <= 0) & (dk <= 0), (dh >= 0) & (dk >= 0)
    return np.where(down & up, 0, np.where(down, -1, np.where(up, 1, 2)))


def _direction(steps: np.ndarray, words=("fewer", "same", "more")) -> str:
    s = set(steps.tolist())
    if s <= {0}:
        return words[1]
    if s <= {-1, 0}:
        return words[0]
    if s <= {0, 1}:
        return words[2]
    return "mixed"


def _trend(grid: RecipeGrid) -> tuple[list[str], list[str]]:
    """Per target: how the chosen heads and N* move as the context grows."""
    best = grid.best_index                                             # (n_target, n_context)
    h = np.array(grid.configs)[best]                                   # (n_target, n_context, 2)
    N = np.take_along_axis(grid.values["params_non_embedding"], best[..., None], -1)[..., 0]
    heads, size = [], []
    for i in range(best.shape[0]):
        heads.append(_direction(_head_steps(h[i, :, 0], h[i, :, 1])))
        rel = np.diff(N[i]) / N[i, :-1]
        size.append(_direction(np.where(np.abs(rel) < 1e-9, 0, np.sign(rel)).astype(int),
                               ("smaller", "same", "larger")))
    return heads, size


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class RecipeEvidence:
    """Step 3 on one loss model over targets x contexts, and the same on bootstrap refits.

    ``point``: the grid of the fit itself; ``replicates``: the grids of the refits that
    succeeded (``n_failed`` did not: a refit failed, or a target fell below every floor);
    ``sizes``: the measured N range of each H."""

    point: RecipeGrid
    replicates: tuple[RecipeGrid, ...]
    sizes: Mapping[tuple[int, int], tuple[float, float]]
    n_failed: int

    def _counts(self) -> np.ndarray:
        return choice_counts(self.point, self.replicates)         # (target, context, H)

    def shares(self) -> pd.DataFrame:
        """One row per (target, context, H) chosen by at least one replicate: ``share`` of
        the replicates, ``point`` = the fit's own choice (as
        :func:`gqa_lib.fit.recipe.bootstrap_choice`)."""
        return choice_shares(self.point, self.replicates)

    def table(self) -> pd.DataFrame:
        """Our Table 4, one row per (target, context): the chosen H, its N*, shape, M, C, Z
        (:meth:`gqa_lib.fit.recipe.RecipeGrid.cells`), ``share`` of the replicates that chose the
        same H, and ``in_range``: N* lies within the sizes measured for that H."""
        cells = self.point.cells()
        counts, best = self._counts(), self.point.best_index
        cells["share"] = (np.take_along_axis(counts, best[..., None], -1)[..., 0].ravel()
                          / max(1, len(self.replicates)))
        cells["in_range"] = [self.sizes[(h, k)][0] <= n <= self.sizes[(h, k)][1] for h, k, n
                             in zip(cells["n_head"], cells["n_kv_head"],
                                    cells["params_non_embedding"])]
        return cells.drop(columns="extrapolated")

    def trend(self) -> pd.DataFrame:
        """The paper's claim at each target: as the context grows, do the chosen heads fall
        (``heads``: fewer / same / more / mixed, both n_h and n_kv compared) and N* grow
        (``size``: larger / same / smaller / mixed)? ``claim``: fewer heads and a larger N*.
        ``choices``: the chosen H from the shortest to the longest context. ``share_*``: the
        fraction of bootstrap replicates where the claim holds, the heads fall, N* grows,
        and where one H wins at every context (``share_unchanged``)."""
        p = self.point
        heads, size = _trend(p)
        reps = [_trend(g) for g in self.replicates]
        n = max(1, len(reps))
        path = [" > ".join(h for h, _ in itertools.groupby(      # consecutive repeats once
                    format_heads(h, k) for h, k in zip(row.n_head, row.n_kv_head)))
                for _, row in p.cells().groupby("target_loss", sort=False)]
        df = pd.DataFrame({"target_loss": p.target_loss, "choices": path, "heads": heads,
                           "size": size})
        df["claim"] = (df["heads"] == "fewer") & (df["size"] == "larger")
        for name, test in (("claim", lambda h, s: h == "fewer" and s == "larger"),
                           ("fewer", lambda h, s: h == "fewer"),
                           ("larger", lambda h, s: s == "larger"),
                           ("unchanged", lambda h, s: h == "same")):
            df[f"share_{name}"] = [sum(test(r[0][i], r[1][i]) for r in reps) / n
                                   for i in range(len(df))]
        return df


def recipe_evidence(model: PerHeadModel, target_loss: Any, context: Any, *, n_boot: int = 100,
                    seed: int = 0, settings: CostSettings = CostSettings()) -> RecipeEvidence:
    """Step 3 on ``model`` over targets x contexts, and on ``n_boot`` residual-bootstrap
    refits drawn as :func:`gqa_lib.fit.recipe.bootstrap_choice` draws them (same ``seed``, same
    replicates, so the same shares). Candidates are the fitted H only."""
    point, reps, failed = bootstrap_grids(model, target_loss, context, n_boot=n_boot, seed=seed,
                                          settings=settings)
    return RecipeEvidence(point, tuple(reps), measured_sizes(model), failed)


def claim_verdict(trend: pd.DataFrame) -> str:
    """One phrase for the page: what :meth:`RecipeEvidence.trend` says about the claim."""
    held, n = int(trend["claim"].sum()), len(trend)
    if (trend["heads"] == "same").all():
        return "cannot be tested here: the same configuration wins at every context"
    if held == n:
        return "holds at every target"
    if held:
        return f"holds at {held} of {n} targets"
    if (trend["heads"] == "fewer").any():
        return "holds for the heads but not for the model size"
    return "does not hold"
