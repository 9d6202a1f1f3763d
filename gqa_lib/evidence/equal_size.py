"""The equal-size experiment (data/sweeps/cpu-eq-v1 to v4): head configurations whose
non-embedding and total parameters are equal within 1%, one shape, T = 512, three seeds
at least (seven once cpu-eq-v4 has run), evaluated on the whole validation split by
position and by source.

cpu-eq-v1 trained at 1.1e-2 (cpu-v2's rate), which its learning-rate check found too high
for (8, 8) (x0.5 lowered its loss by 0.157 nats, (1, 1)'s by 0.017). cpu-eq-v2 repeats the
comparison at 5.5e-3, the *shared rate* here (:func:`base_lr`: the latest grid's), and does
not rerun the two seed-0 runs that cpu-eq-v1's check already made at that rate with the
same settings and batches: the rows of every file are read together (:data:`GRIDS`), and
cpu-eq-v1's runs at 1.1e-2 and 2.2e-2 become points of the learning-rate check. cpu-eq-v3
adds seeds 3 and 4 at the same rate (three seeds left the paired head contrast at p = 0.09),
cpu-eq-v4 seeds 5 and 6 (five left what KV heads gain alone with an interval across 0).

Every function works on any number of finished rows (none included) and says how many of
the planned runs it rests on:

* :func:`status`: runs finished against planned, seeds per configuration, and whether the
  comparison is ready (:data:`MIN_SEEDS` seeds of every configuration);
* :func:`summary`: per configuration mean loss over seeds, seed spread, seeds so far;
* :func:`paired`: differences from (8, 8) within a seed (all configurations of one seed see
  the same batches, which depend only on seed and step), with t intervals;
* :func:`lr_check`: is the shared rate within noise of the best rate tried (x0.5 to x4)?
* :func:`context_use`: the loss at positions >= 64 against positions 2-3 and the trigram
  (does a model use more than two or three tokens of context?); :func:`by_position`,
  :func:`by_source`: the same beside the count models.

Losses are ``val_loss_full_nats`` (the whole split), nats per token; position p of a window
predicts its token from the p + 1 tokens before it.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from gqa_lib.errors import GQAError
from gqa_lib.evidence.reanalysis import baseline, baselines_by_source, ngram_baselines
from gqa_lib.fit.per_head import config_label, read_runs
from gqa_lib.io import DATA_DIR
from gqa_lib.units import format_list, format_p

GRIDS = tuple(DATA_DIR / "sweeps" / f"cpu-eq-v{i}.toml" for i in (1, 2, 3, 4))  # in run order
EQ_GRID = GRIDS[-1]  # the latest grid: its rate is the shared one, its runs the ones planned
MIN_SEEDS = 3
REFERENCE = "(8, 8)"
CONFIGS = ("(8, 8)", "(8, 2)", "(8, 1)", "(1, 1)")
FAR = 64  # positions >= FAR: "far" context; positions 2-3: the trigram's reach
ALPHA = 0.05  # a paired difference is beyond seed noise at two-sided p < ALPHA / looks
# Seeds were added to the head contrast after it had been read: at three seeds (p = 0.09,
# so cpu-eq-v3 added seeds 3 and 4) and at five (what KV heads gain alone had an interval
# across 0, so cpu-eq-v4 added 5 and 6). Three looks at one contrast: each is judged at
# ALPHA / LOOKS with a 1 - ALPHA / LOOKS interval (Bonferroni), so that adding seeds until
# it looks decided cannot raise the chance of a false "beyond seed noise" above ALPHA.
LOOKS = 3


def level(looks: int = 1) -> float:
    """The interval level (and 1 - the p threshold) for a contrast read ``looks`` times."""
    return 1 - ALPHA / looks


def threshold(looks: int) -> str:
    """'p < 0.05 / 3 = 0.0167, with 98.3% intervals': how a contrast read ``looks`` times
    is judged (:func:`level`)."""
    per = f" / {looks} = {ALPHA / looks:.3g}" if looks > 1 else ""
    return f"p < {ALPHA:g}{per}, with {100 * level(looks):.3g}% intervals"


def _grid(path: Path | None = None) -> dict:
    return tomllib.loads(Path(EQ_GRID if path is None else path).read_text())


def base_lr(path: Path | None = None) -> float:
    return float(_grid(path)["train"]["lr"])


def tokens_per_param(path: Path | None = None) -> float:
    return float(_grid(path)["train"]["tokens_per_param"])


def planned(runs: pd.DataFrame, path: Path | None = None) -> int:
    """Runs planned: every run of the latest grid (each block a full cross product, lrs
    included), and of the earlier, closed grids the runs they finished (cpu-eq-v1's seeds
    1 and 2 at its too-high rate were never run: cpu-eq-v2 replaced them)."""
    n = sum(len(b["sizes"]) * len(b["heads"]) * len(b["contexts"]) * len(b["seeds"])
            * len(b.get("lrs", [None])) for b in _grid(path)["block"])
    latest = _grid(path)["name"]
    closed = int((runs["grid"] != latest).sum()) if len(runs) and "grid" in runs else 0
    return n + closed


def read(path: Path | None = None) -> pd.DataFrame:
    """The finished rows of one CSV, or by default of every grid's (:data:`GRIDS`), with
    ``config``, ``by_position`` and ``by_source`` parsed; an empty frame when none has
    finished (or no file exists yet)."""
    found = []
    for p in [Path(path)] if path is not None else [g.with_suffix(".csv") for g in GRIDS]:
        if p.is_file():  # a damaged file is an error, not "no runs yet"
            found += [_parsed(p, r) for r in [read_runs(
                p, allow_empty=True, columns=("lr", "val_loss_full_nats"),
                text_columns=("val_loss_by_position", "val_loss_by_source"))] if len(r)]
    if not found:
        return pd.DataFrame(columns=["config", "seed", "lr", "val_loss_full_nats",
                                     "by_position", "by_source", "params_non_embedding",
                                     "params_total"])
    runs = pd.concat(found, ignore_index=True)
    # the same run in two files (a grid rerun of an earlier one): the later grid's row
    runs = runs.drop_duplicates(["n_head", "n_kv_head", "seed", "lr"], keep="last")
    runs["config"] = [config_label((int(h), int(k))) for h, k in zip(runs.n_head, runs.n_kv_head)]
    return runs.reset_index(drop=True)


def _parsed(path: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``by_position`` and ``by_source`` parsed from their JSON columns, each
    checked: position bins as equal-length lists of numbers, sources as numbers; a damaged
    cell is refused naming the file, the run and the column."""
    def load(i: int, col: str, valid) -> Any:
        where = f"{path}: run {runs.at[i, 'run_id']!r}, column {col!r}" \
            if "run_id" in runs else f"{path}: row {i + 1}, column {col!r}"
        try:
            v = json.loads(runs.at[i, col])
        except (TypeError, ValueError):
            raise GQAError(f"{where}: not JSON ({str(runs.at[i, col])[:40]!r})") from None
        if not valid(v):
            raise GQAError(f"{where}: {str(runs.at[i, col])[:60]!r} is not {valid.__doc__}")
        return v

    def bins(v) -> bool:
        """an object of equal-length lists first, last and nats (finite numbers)"""
        return (isinstance(v, dict) and {"first", "last", "nats"} <= set(v)
                and all(isinstance(v[k], list) for k in ("first", "last", "nats"))
                and len(v["first"]) == len(v["last"]) == len(v["nats"]) > 0
                and all(_finite(x) for k in ("first", "last", "nats") for x in v[k]))

    def sources(v) -> bool:
        """an object of source names and finite losses"""
        return isinstance(v, dict) and all(_finite(x) for x in v.values())

    runs = runs.copy()
    runs["by_position"] = [load(i, "val_loss_by_position", bins) for i in runs.index]
    runs["by_source"] = [load(i, "val_loss_by_source", sources) for i in runs.index]
    return runs


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)


def main_runs(runs: pd.DataFrame, lr: float | None = None) -> pd.DataFrame:
    """The runs at the grid's shared learning rate (not the learning-rate check)."""
    lr = base_lr() if lr is None else lr
    return runs[np.isclose(runs.lr.astype(float), lr)] if len(runs) else runs


def status(runs: pd.DataFrame) -> dict:
    """``done`` and ``planned`` runs, ``seeds`` per configuration at the shared rate,
    ``min_seeds`` and ``ready`` (every configuration has :data:`MIN_SEEDS` seeds)."""
    m = main_runs(runs)
    seeds = {c: int((m.config == c).sum()) if len(m) else 0 for c in CONFIGS}
    return {"done": len(runs), "planned": planned(runs), "seeds": seeds,
            "min_seeds": min(seeds.values()), "ready": min(seeds.values()) >= MIN_SEEDS}


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration at the shared rate: ``n_seeds``, ``mean`` and ``sd`` (over seeds;
    NaN with one), ``lo``/``hi`` (min, max), parameters."""
    m = main_runs(runs)
    cols = ["config", "n_seeds", "mean", "sd", "lo", "hi", "params_non_embedding",
            "params_total"]
    if not len(m):
        return pd.DataFrame(columns=cols)
    g = m.groupby("config", sort=False)
    out = g.val_loss_full_nats.agg(n_seeds="count", mean="mean", sd="std", lo="min",
                                   hi="max")
    out = out.join(g[["params_non_embedding", "params_total"]].first()).reset_index()
    out["config"] = pd.Categorical(out.config, CONFIGS, ordered=True)
    return out.sort_values("config").astype({"config": str})[cols].reset_index(drop=True)


def paired(runs: pd.DataFrame, reference: str = REFERENCE, level: float = 0.95
           ) -> pd.DataFrame:
    """Each configuration minus ``reference`` within a seed: ``n_seeds`` pairs, ``mean``,
    ``sd`` of the pairs, t interval ``lo``/``hi`` (NaN below two pairs), ``diffs``."""
    m = main_runs(runs)
    cols = ["config", "n_seeds", "mean", "sd", "lo", "hi", "diffs"]
    if not len(m):
        return pd.DataFrame(columns=cols)
    wide = m.pivot_table(index="seed", columns="config", values="val_loss_full_nats")
    rows = []
    for c in CONFIGS:
        if c == reference or c not in wide or reference not in wide:
            continue
        d = (wide[c] - wide[reference]).dropna().to_numpy()
        if not len(d):
            continue
        t = paired_t(d, level)
        rows.append({"config": c, "n_seeds": t["n"], "mean": t["mean"], "sd": t["sd"],
                     "lo": t["lo"], "hi": t["hi"],
                     "diffs": ", ".join(f"{x:+.3f}" for x in d)})
    return pd.DataFrame(rows, columns=cols)


def seed_sd(runs: pd.DataFrame) -> float:
    """Seed-to-seed standard deviation of one run, pooled over configurations (NaN before
    any configuration has two seeds)."""
    s = summary(runs)
    s = s[s.n_seeds >= 2]
    if s.empty:
        return float("nan")
    dof = (s.n_seeds - 1).sum()
    return float(np.sqrt(((s.n_seeds - 1) * s.sd.astype(float) ** 2).sum() / dof))


def seeds_label(seeds) -> str:
    """'0' or '0, 1': the seeds a learning-rate check averages, as its table shows them."""
    return ", ".join(str(int(s)) for s in sorted(seeds))


def seeds_words(seeds) -> str:
    """'seed 0', 'seeds 0 and 1', 'seeds 0, 1 and 2' from a :func:`seeds_label` or from the
    seeds themselves (any iterable of integers, e.g. a dict keyed by seed)."""
    seeds = (seeds if isinstance(seeds, str) else seeds_label(seeds)).split(", ")
    return f"seed{'s' if len(seeds) > 1 else ''} {format_list(seeds)}"


def lr_check(runs: pd.DataFrame) -> pd.DataFrame:
    """For each configuration with learning-rate runs, one row: its loss at each rate tried
    (a column ``loss at <rate>`` per rate any configuration tried, ascending; NaN where it
    did not run), averaged over ``seeds``, the seeds that ran every rate the configuration
    tried (seed 0 alone in the checks so far, seeds 0 and 1 once a second seed has run); the
    ``best_lr``, ``gap`` = loss at the shared rate minus the best, and ``within_noise``: gap
    below two standard deviations of a mean difference of n paired runs (sqrt(2 / n)
    :func:`seed_sd`; NaN until a configuration has two seeds)."""
    cols = ["config", "seeds", "best_lr", "gap", "within_noise"]
    if not len(runs):
        return pd.DataFrame(columns=cols)
    lr0, sd = base_lr(), seed_sd(runs)
    rows = []
    for c, g in runs.groupby("config", sort=False):
        if g.lr.nunique() < 2 or not np.isclose(g.lr, lr0).any():
            continue
        both = g.pivot_table(index="seed", columns="lr", values="val_loss_full_nats").dropna()
        if both.empty:  # no seed ran every rate yet
            continue
        mean = both.mean()
        shared = float(mean[[r for r in mean.index if np.isclose(r, lr0)][0]])
        gap, n = shared - float(mean.min()), len(both)
        rows.append({"config": c, "seeds": seeds_label(both.index),
                     **{f"loss at {r:g}": float(v) for r, v in mean.items()},
                     "best_lr": float(mean.idxmin()), "gap": gap,
                     "within_noise": (gap <= 2 * np.sqrt(2 / n) * sd) if np.isfinite(sd) else np.nan})
    out = pd.DataFrame(rows)
    if not len(out):
        return pd.DataFrame(columns=cols)
    rates = sorted((c for c in out if c.startswith("loss at ")), key=lambda c: float(c[8:]))
    return out[["config", "seeds", *rates, "best_lr", "gap", "within_noise"]]


def by_position(runs: pd.DataFrame) -> pd.DataFrame:
    """Long form: ``config``, ``first``/``last`` position of each bin, ``nats`` (mean over
    the seeds at the shared rate), ``n_seeds``; plus the count models as configs
    "bigram" and "trigram" (whole split, T = 512)."""
    m = main_runs(runs)
    rows = [{"config": r.config, "seed": r.seed, "first": a, "last": b, "nats": x}
            for r in m.itertuples() for a, b, x in zip(r.by_position["first"],
                                                         r.by_position["last"],
                                                         r.by_position["nats"])]
    cols = ["config", "first", "last", "nats", "n_seeds"]
    out = (pd.DataFrame(rows).groupby(["config", "first", "last"], sort=False)
           .agg(nats=("nats", "mean"), n_seeds=("seed", "nunique")).reset_index()
           if rows else pd.DataFrame(columns=cols))
    b = ngram_baselines()
    b = b[(b.eval_set == "full") & (b.context == 512) & (b.source == "all")
          & ~((b.first_position == 0) & (b.last_position == 511))
          & b.model.isin(["bigram", "trigram"])]
    base = pd.DataFrame({"config": b.model, "first": b.first_position,
                         "last": b.last_position, "nats": b.val_loss_nats, "n_seeds": 0})
    return pd.concat([out, base], ignore_index=True)[cols]


def span(pos: pd.DataFrame, lo: int, hi: int) -> float:
    """Mean loss over positions [lo, hi], bins weighted by their number of positions."""
    w = pos[(pos["first"] >= lo) & (pos["last"] <= hi)]
    n = w["last"] - w["first"] + 1
    return float((w.nats * n).sum() / n.sum()) if len(w) else float("nan")


def context_use(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration (and the count models): ``near`` = loss at positions 2-3, ``mid`` =
    at positions 8-15, ``far`` = at positions >= :data:`FAR`, ``gain`` = near - far (> 0: it
    uses context beyond a few tokens), ``vs_trigram`` = far minus the trigram's far (< 0:
    better than two tokens of context can be), ``n_seeds``."""
    pos = by_position(runs)
    tri = span(pos[pos.config == "trigram"], FAR, 10**9)
    rows = []
    for c, g in pos.groupby("config", sort=False):
        near, far = span(g, 2, 3), span(g, FAR, 10**9)
        rows.append({"config": c, "near": near, "mid": span(g, 8, 15), "far": far,
                     "gain": near - far, "vs_trigram": far - tri,
                     "n_seeds": int(g.n_seeds.max())})
    return pd.DataFrame(rows)


def by_source(runs: pd.DataFrame) -> pd.DataFrame:
    """Per validation source: each configuration's loss (mean over seeds at the shared
    rate) beside the bigram's and trigram's on the whole split (T = 512); ``title`` (what
    the source is) and ``tokens``."""
    out = baselines_by_source(512).set_index("source")[["title", "bigram", "trigram", "tokens"]]
    m = main_runs(runs)
    for c in CONFIGS:
        mine = m[m.config == c]
        if len(mine):
            out[c] = pd.DataFrame(list(mine.by_source)).mean().reindex(out.index)
    return out.reset_index()


def paired_t(d: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """One-sample t on per-seed differences ``d``: ``mean``, ``sd``, ``n``, ``se``, ``t``,
    two-sided ``p`` on n - 1 degrees of freedom and the ``level`` interval ``lo``/``hi``
    (NaN below two differences); ``level`` and ``alpha`` = 1 - level, the p below which
    the difference is beyond seed noise (:func:`direction`, :func:`interval`)."""
    d = np.asarray(d, float)
    n = len(d)
    out = {"mean": float(d.mean()) if n else np.nan, "n": n, "sd": np.nan, "se": np.nan,
           "t": np.nan, "p": np.nan, "lo": np.nan, "hi": np.nan, "level": level,
           "alpha": round(1 - level, 12)}
    if n < 2:
        return out
    sd = float(np.std(d, ddof=1))
    se = sd / np.sqrt(n)
    half = float(stats.t.ppf((1 + level) / 2, n - 1) * se)
    t = out["mean"] / se if se > 0 else np.copysign(np.inf, out["mean"])
    out.update(sd=sd, se=se, t=float(t), p=float(2 * stats.t.sf(abs(t), n - 1)),
               lo=out["mean"] - half, hi=out["mean"] + half)
    return out


# What 1 -> 8 query heads (at one KV head) and 1 -> 8 KV heads (at eight query heads) buy:
# the loss of the configuration with fewer heads minus the one with more.
GAINS = {"query": ("(1, 1)", "(8, 1)"), "kv": ("(8, 1)", "(8, 8)")}


def seed_gains(runs: pd.DataFrame, value: str = "val_loss_full_nats") -> pd.DataFrame:
    """Per seed in which (1, 1), (8, 1) and (8, 8) all have ``value``: the ``query`` and
    ``kv`` gains (:data:`GAINS`) in that column, indexed by seed (empty before any)."""
    need = ["(1, 1)", "(8, 1)", "(8, 8)"]
    wide = (runs.pivot_table(index="seed", columns="config", values=value)
            if len(runs) else pd.DataFrame())
    if not set(need) <= set(wide.columns):
        return pd.DataFrame(columns=list(GAINS), dtype=float)
    w = wide[need].dropna()
    return pd.DataFrame({k: w[a] - w[b] for k, (a, b) in GAINS.items()})


def contrast(gains: pd.DataFrame, looks: int = 1) -> dict[str, dict[str, float]]:
    """:func:`paired_t` of the ``query`` and ``kv`` gains (:func:`seed_gains`) and of their
    per-seed ``difference`` (query - kv, i.e. (1, 1) - 2 (8, 1) + (8, 8): the two gains share
    (8, 1) and the seeds, so they are compared in one paired contrast, not as independent
    means), each at the level of ``looks`` looks (:func:`level`)."""
    lv = level(looks)
    q, kv = gains["query"].to_numpy(float), gains["kv"].to_numpy(float)
    return {"query": paired_t(q, lv), "kv": paired_t(kv, lv), "difference": paired_t(q - kv, lv)}


def head_gains(runs: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The paper's App. I comparison at equal size, paired within seeds (:func:`contrast`
    of the runs at the shared rate, at :data:`LOOKS` looks)."""
    return contrast(seed_gains(main_runs(runs)), LOOKS)


def interval(d: dict[str, float]) -> str:
    """'98.3% interval -0.018 to +0.059': a :func:`paired_t` interval with its level."""
    return f"{100 * d['level']:.3g}% interval {d['lo']:+.3f} to {d['hi']:+.3f}"


def baseline_full(table: pd.DataFrame | None = None) -> dict[str, float]:
    """The count models on the whole split, T = 512: {model: nats}."""
    return baseline("full", 512, table=table)


def fmt(spec: str):
    """A table formatter that writes a missing value (one seed so far: no spread, no
    interval) as "needs two seeds"; ``spec`` is a format spec, or "yes/no" for booleans."""
    def f(v) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return "needs two seeds"
        return ("yes" if v else "no") if spec == "yes/no" else format(v, spec)
    return f


def head_comparison(runs: pd.DataFrame) -> dict[str, Any]:
    """The numbers the verdict on heads rests on (this page's and the scoreboard's): the
    ``query`` and ``kv`` gains and their paired ``difference`` (:func:`head_gains`: mean,
    interval, t, p), whether the models ``use_context`` (every configuration's loss at
    positions >= :data:`FAR` below its loss at positions 2-3), and whether the best
    configuration ``beats_trigram`` where context can help: ``far_best`` below
    ``far_trigram`` (positions >= FAR) by more than ``trigram_noise``, two standard errors
    of a mean over its seeds (:func:`seed_sd`, whole-split); ``best`` and ``trigram`` are
    whole-split means, for context (positions 0-3, where no model has context to use,
    favour the count model). ``one_head_penalty``: (1, 1) minus (8, 8) at positions 2-3
    (``near``), 8-15 (``mid``) and >= FAR (``far``)."""
    g = head_gains(runs)
    tri, means = baseline_full()["trigram"], summary(runs)["mean"]
    use = context_use(runs).set_index("config")
    mine = use.drop(index=[c for c in ("bigram", "trigram") if c in use.index])
    far_tri = float(use.loc["trigram", "far"]) if "trigram" in use.index else np.nan
    far_best = float(mine["far"].min()) if len(mine) else np.nan
    best_config = str(mine["far"].idxmin()) if len(mine) else ""
    n = int(mine.loc[best_config, "n_seeds"]) if len(mine) else 0
    sd = seed_sd(runs)
    noise = 2 * sd / np.sqrt(n) if n >= 2 and np.isfinite(sd) else np.nan
    margin = far_tri - far_best  # > noise: better than the trigram beyond seed noise
    pen = {}  # (1, 1) minus (8, 8) at positions 2-3, 8-15 and >= FAR: where heads matter
    if {"(1, 1)", REFERENCE} <= set(mine.index):
        pen = {k: float(mine.loc["(1, 1)", k] - mine.loc[REFERENCE, k])
               for k in ("near", "mid", "far")}
    return {"query": g["query"], "kv": g["kv"], "difference": g["difference"],
            "uses_context": bool(len(mine) and (mine["gain"] > 0).all()),
            "gain_range": (float(mine["gain"].min()), float(mine["gain"].max())) if len(mine)
            else (np.nan, np.nan), "one_head_penalty": pen,
            "far_best": far_best, "far_best_config": best_config, "far_trigram": far_tri,
            "trigram_noise": noise,
            "beats_trigram": bool(margin > (noise if np.isfinite(noise) else 0.0)),
            "best": float(means.min()) if len(means) else np.nan, "trigram": tri}


def short_range(pen: dict[str, float]) -> bool:
    """Is (1, 1)'s deficit (``one_head_penalty``) mostly there by positions 8-15 (at least
    3/4 of what it is beyond :data:`FAR`)?"""
    return bool(pen["far"] > 0 and pen["mid"] >= 0.75 * pen["far"])


def vs_trigram(h: dict[str, Any]) -> str:
    """'3.492 against 3.495 nats, seed noise 0.015': the best model beyond :data:`FAR`
    against the trigram (``h`` from :func:`head_comparison`; no noise before two seeds)."""
    return (f"{h['far_best']:.3f} against {h['far_trigram']:.3f} nats"
            + (f", seed noise {h['trigram_noise']:.3f}" if np.isfinite(h["trigram_noise"])
               else ""))


def trigram_sentence(h: dict[str, Any]) -> str:
    """Whether the best model beats the trigram where context could help, in a sentence for
    a page's takeaways (``h`` from :func:`head_comparison`)."""
    nums = vs_trigram(h)
    if h["beats_trigram"]:
        return (f"Beyond position {FAR} the best model beats a trigram count model ({nums}): "
                "it uses context a count model cannot.")
    return (f"Beyond position {FAR} the best model only ties a trigram count model ({nums}): "
            "these models cannot show what heads buy at long context.")


def near_threshold(d: dict[str, float]) -> bool:
    """Whether a :func:`paired_t` result's p lies within a factor of two of its ``alpha``,
    on either side: its verdict stands, but the words say it was narrow."""
    return bool(np.isfinite(d["p"]) and d["alpha"] / 2 <= d["p"] <= 2 * d["alpha"])


def direction(diff: dict[str, float]) -> str:
    """How the paired query-minus-KV contrast (``difference`` of :func:`head_gains`) reads:
    "the paper's direction" when query heads gain more, else "against the paper's
    direction", and whether beyond seed noise (p below its ``alpha``: :data:`ALPHA` over
    the looks at it) or not, "narrowly" when p is near that threshold
    (:func:`near_threshold`)."""
    side = "the paper's direction" if diff["mean"] > 0 else "against the paper's direction"
    if not np.isfinite(diff["p"]):
        return side + " (one seed so far: no noise estimate)"
    text = side + (", beyond seed noise" if diff["p"] < diff["alpha"]
                   else ", but within seed noise")
    return text + (", narrowly" if near_threshold(diff) else "")


def verdict(runs: pd.DataFrame) -> str:
    """What the equal-size runs say so far, in a sentence or two computed from them: the
    progress until every configuration has :data:`MIN_SEEDS` seeds; then the paired head
    gains and whether the models beat the trigram (without that, heads cannot be judged)."""
    st = status(runs)
    if not st["done"]:
        return "None of the equal-size runs has finished yet, so there is nothing to read."
    if not st["ready"]:
        return (f"{st['done']} of {st['planned']} runs have finished ({st['min_seeds']} "
                f"seed(s) of the least-covered configuration; {MIN_SEEDS} are needed): no "
                "verdict yet.")
    h = head_comparison(runs)
    q, kv, d = h["query"], h["kv"], h["difference"]
    text = ((f"All {st['done']} runs have finished." if st["done"] >= st["planned"] else
             f"{st['done']} of {st['planned']} runs have finished (every configuration has "
             f"{st['min_seeds']} seeds or more; the rest add seeds).") + f" Paired within seeds ({d['n']}), 1 → 8 "
            f"query heads (one KV head) lower the loss by {q['mean']:.3f} nats and 1 → 8 KV "
            f"heads (eight query heads) by {kv['mean']:.3f}"
            + (f" ({interval(kv)})" if np.isfinite(kv["lo"])
               else "")
            + f": {'query' if d['mean'] > 0 else 'KV'} heads gain more")
    if np.isfinite(d["p"]):
        text += (f", by {abs(d['mean']):.3f} nats ({interval(d)}; t = {d['t']:.1f} on "
                 f"{d['n'] - 1} degrees of freedom, {format_p(d['p'], d['alpha'])}, judged at p < "
                 f"{d['alpha']:.3g}: {LOOKS} looks at this contrast): {direction(d)}.")
    else:
        text += "."
    lo, hi = h["gain_range"]
    if h["uses_context"]:
        text += (f" Each model's loss falls with position (beyond position {FAR} it is "
                 f"{lo:.2f}-{hi:.2f} nats below its loss at positions 2-3): they read more than "
                 "the last two tokens, if only to reach what a trigram does with two.")
    pen = h["one_head_penalty"]
    if pen:
        text += (f" (1, 1)'s deficit against {REFERENCE} is {pen['near']:+.3f} nats at "
                 f"positions 2-3, {pen['mid']:+.3f} at 8-15 and {pen['far']:+.3f} beyond {FAR}: "
                 + ("what the query heads buy here is mostly reached within the first 16 "
                    "tokens." if short_range(pen) else "it keeps growing with position."))
    tri = (f"the best configuration, {h['far_best_config']}, "
           f"{'beats' if h['beats_trigram'] else 'only ties'} the trigram ({vs_trigram(h)})")
    if not h["uses_context"] or not h["beats_trigram"]:  # the scoreboard's rule (RULES)
        text += (f" But beyond position {FAR} {tri}: models that "
                 "predict no better than the last two tokens where context could help cannot "
                 "show what heads buy at long context: at this training length the claim is "
                 "not testable here.")
    else:
        text += f" Beyond position {FAR} {tri}."
    return text
