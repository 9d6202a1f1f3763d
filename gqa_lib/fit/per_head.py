"""Step 2 of the recipe on a table of runs: one loss law per head configuration.

:func:`read_runs` reads a sweep CSV (`gqa sweep`, e.g. data/sweeps/cpu-v1.csv) and keeps the
``status == "ok"`` rows; :func:`fit_runs` fits L(N; H) = (a_H / N)^b_H + E per (n_head,
n_kv_head) with :func:`gqa_lib.fit.scaling.fit_power_laws` (E shared by default) and, when the
runs include the Llama-3 style family, that family's law as the baseline. The result,
:class:`PerHeadModel`, is a loss model :mod:`gqa_lib.fit.recipe` can search.

Reporting a fit (any :class:`~gqa_lib.fit.scaling.LossFit`, ours or the paper's):
:func:`fit_curves` (measured points and fitted curves, for plotting), :func:`interval_table`
(a_H, b_H, E with bootstrap intervals, one row per H; :func:`format_intervals` writes them
for reading), :func:`coupling` (how E and b_H trade off across the refits) and
:func:`quality_table` (R^2, RMSE, leave-one-out RMSE, degrees of freedom).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gqa_lib.arch.config import PAPER_VOCAB
from gqa_lib.errors import GQAError
from gqa_lib.fit.scaling import Bootstrap, LossFit, PowerLaw, fit_power_laws, resample
from gqa_lib.units import format_context, format_count, format_heads

RUN_COLUMNS = ("status", "n_layer", "d_model", "n_head", "n_kv_head", "d_head",
               "params_non_embedding", "context", "seed", "val_loss_nats")


def family_masks(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(grid, llama3): boolean masks of a runs frame's rows in the explicit head grid and in
    the Llama-3 style family. A run can be both (family "grid+llama3": the baseline's heads
    coincide with a grid configuration); runs without a family column count as grid."""
    fam = df["family"].astype(str) if "family" in df.columns else pd.Series("grid", df.index)
    llama3 = fam.str.contains("llama3")
    return fam.str.contains("grid") | ~llama3, llama3


# What gqa sweep writes in a row's status; any other value is a damaged or edited file
STATUSES = ("ok", "failed")


def read_runs(path: str | Path, *, allow_empty: bool = False,
              columns: tuple[str, ...] = (), text_columns: tuple[str, ...] = ()
              ) -> pd.DataFrame:
    """Read a sweep CSV (``gqa sweep``): the ``status == "ok"`` rows, checked column by column
    (also the numeric ``columns`` a reader needs beyond :data:`RUN_COLUMNS`, and that the
    ``text_columns`` it parses itself are there), each run once.
    A file with none is refused, or with ``allow_empty`` read as an empty frame (a sweep
    that has not finished a run yet)."""
    p = Path(path)
    if not p.is_file():
        raise GQAError(f"runs CSV {str(p)!r} does not exist")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise GQAError(f"{p}: not a readable CSV ({str(e).splitlines()[0]})") from None
    need = (*RUN_COLUMNS, *columns, *text_columns)
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise GQAError(f"{p}: missing column(s) {', '.join(missing)}; these runs need "
                       f"{', '.join(need)}")
    status = df["status"].astype(str)
    odd = ~status.isin(STATUSES)
    if odd.any():  # "OK" or "ok " is no status gqa sweep writes: never dropped unseen
        i = odd.idxmax()
        raise GQAError(f"{p}:{_line(df, i)}: status {status[i]!r} is not one of "
                       f"{', '.join(STATUSES)} (what gqa sweep writes)")
    df = df[status == "ok"].copy()
    if df.empty:
        if allow_empty:
            return df.reset_index(drop=True)
        raise GQAError(f"{p}: no rows with status 'ok'")
    if "run_id" in df.columns:  # one finished row per run: a second is an edited file
        twice = df["run_id"].duplicated(keep=False) & df["run_id"].notna()
        if twice.any():
            lines = [_line(df, i).split(" ")[0] for i in df.index[twice][:2]]
            raise GQAError(f"{p}: run {df.loc[twice, 'run_id'].iloc[0]!r} has two finished "
                           f"rows (lines {' and '.join(lines)}); keep one")
    for c in (*RUN_COLUMNS[1:], *(("vocab_size",) if "vocab_size" in df.columns else ()),
              *columns):
        _check_column(p, df, c)
    _check_runs(p, df)
    return df.reset_index(drop=True)


# Columns that count something: whole numbers (a fraction is a damaged file, never rounded)
WHOLE_COLUMNS = ("n_layer", "d_model", "n_head", "n_kv_head", "d_head", "context", "seed",
                 "vocab_size")
# A validation loss more than this many times a uniform guess's (ln V nats per token) is no
# measurement of a trained model: a damaged row, or a run that diverged (our sweeps' worst,
# an MQAR run, is 2.5 ln V). The loss law is fitted to trained models only.
MAX_LOSS_OVER_UNIFORM = 10


def _line(df: pd.DataFrame, i: Any) -> str:
    """A row of the frame as the CSV's line number (the header is line 1), with its run_id."""
    run = df.at[i, "run_id"] if "run_id" in df.columns else None
    return f"{int(i) + 2}" + (f" ({run})" if isinstance(run, str) and run else "")


def _check_column(p: Path, df: pd.DataFrame, c: str) -> None:
    """Column `c` as numbers: each finite, and whole where it counts something; the first
    bad cell is named by line and value."""
    raw = df[c]
    df[c] = pd.to_numeric(raw, errors="coerce")
    checks = [  # (bad cells, what the column must hold), in turn
        (lambda v: v.isna() | ~np.isfinite(v.astype(float)),
         "has a missing or non-numeric value (a finite number expected)"),
        (lambda v: v < 0 if c == "seed" else v <= 0,
         "must be >= 0" if c == "seed" else "must be > 0")]
    if c in WHOLE_COLUMNS:
        checks.insert(1, (lambda v: v.astype(float) % 1 != 0, "must be a whole number"))
    for find, what in checks:
        bad = find(df[c])
        if bad.any():
            i = bad.idxmax()
            got = "an empty cell" if pd.isna(raw.at[i]) else f"{str(raw.at[i])!r:.40}"
            raise GQAError(f"{p}:{_line(df, i)}: column {c!r} {what}, got {got}")


def _check_runs(p: Path, df: pd.DataFrame) -> None:
    """Rows no trained model can have written: a grid row whose n_kv_head does not divide its
    n_head (it would become a candidate no GQA model has; the Llama-3 family's rows only give
    its baseline law, and the paper's own family has such shapes), a loss above
    MAX_LOSS_OVER_UNIFORM ln V."""
    grid, _ = family_masks(df)
    bad = grid & (df["n_head"] % df["n_kv_head"] != 0)
    if bad.any():
        i = bad.idxmax()
        raise GQAError(f"{p}:{_line(df, i)}: n_kv_head={int(df.at[i, 'n_kv_head'])} does not "
                       f"divide n_head={int(df.at[i, 'n_head'])}; no GQA model has these heads")
    vocab = df["vocab_size"] if "vocab_size" in df.columns else PAPER_VOCAB
    limit = MAX_LOSS_OVER_UNIFORM * np.log(np.asarray(vocab, np.float64))
    over = df["val_loss_nats"] > limit
    if over.any():
        i = over.idxmax()
        v = int(df.at[i, "vocab_size"]) if "vocab_size" in df.columns else PAPER_VOCAB
        raise GQAError(f"{p}:{_line(df, i)}: val_loss_nats={df.at[i, 'val_loss_nats']:.6g} is "
                       f"no loss of a trained model: above {MAX_LOSS_OVER_UNIFORM} x ln V = "
                       f"{MAX_LOSS_OVER_UNIFORM * np.log(v):.1f} nats, ten times a uniform "
                       f"guess over vocab_size={v:,} (a damaged row, or a diverged run)")


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class PerHeadModel:
    """Step 2's result: one fitted power law per measured H (keys ``(n_head, n_kv_head)``),
    optionally the baseline family's law (key ``"llama3"``). Nothing is extrapolated: only
    the fitted configurations are candidates. ``loss_contexts``: (shortest, longest) context
    its losses speak for (:func:`fit_runs`: the runs' training context; the paper's: 8K,
    where they were measured, to 128K, where the paper reports them to hold), so that the
    recipe can say when it carries them to another T; None: not known. ``vocab_size``: the
    runs' vocabulary (their losses are per token of it; the serving costs and the shape to
    build use it)."""

    fit: LossFit
    d_head: int = 64
    label: str = ""
    loss_contexts: tuple[int, int] | None = None
    vocab_size: int = PAPER_VOCAB

    def configs(self) -> list[tuple[int, int]]:
        return [k for k in self.fit.laws if isinstance(k, tuple)]

    @property
    def baseline(self) -> PowerLaw | None:
        return self.fit.laws.get("llama3")

    def _ab(self, n_head, n_kv_head):
        h, k = np.broadcast_arrays(np.asarray(n_head), np.asarray(n_kv_head))
        a, b, E = (np.full(h.shape, np.nan) for _ in range(3))
        for key, law in self.fit.laws.items():
            if isinstance(key, tuple):
                m = (h == key[0]) & (k == key[1])
                a[m], b[m], E[m] = law.a, law.b, law.E
        if np.isnan(a).any():
            raise GQAError(f"no fitted law for some of the requested configurations; fitted: "
                           f"{self.configs()}")
        return a, b, E

    def loss(self, N: Any, n_head: Any, n_kv_head: Any) -> np.ndarray:
        a, b, E = self._ab(n_head, n_kv_head)
        return (a / np.asarray(N, np.float64)) ** b + E

    def params_for_loss(self, target: Any, n_head: Any, n_kv_head: Any) -> np.ndarray:
        """N* = a_H / (L* - E)^(1/b_H); ``inf`` where the target is at or below E."""
        a, b, E = self._ab(n_head, n_kv_head)
        gap = np.asarray(target, np.float64) - E
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gap > 0, a / np.where(gap > 0, gap, 1.0) ** (1.0 / b), np.inf)

    def extrapolated(self, n_head: Any, n_kv_head: Any) -> np.ndarray:
        return np.zeros(np.broadcast(np.asarray(n_head), np.asarray(n_kv_head)).shape, bool)

    def resample(self, rng: np.random.Generator) -> PerHeadModel:
        """One residual-bootstrap replicate (refit from this fit)."""
        y = resample(self.fit, rng, "residual")
        f = fit_power_laws(self.fit.N, y, self.fit.keys, shared_E=self.fit.shared_E,
                           method=self.fit.method, loo=False, start=self.fit, min_sizes=1)
        return PerHeadModel(f, self.d_head, self.label, self.loss_contexts, self.vocab_size)


def fit_runs(runs: pd.DataFrame, *, train_context: int | None = None, method: str = "huber",
             shared_E: bool = True, allow_partial: bool = False, loo: bool = False,
             label: str = "") -> PerHeadModel:
    """Step 2 on a runs table (columns of :data:`RUN_COLUMNS`; ``family`` optional).

    Uses the runs at ``train_context`` (default: the longest context present). Rows whose
    ``family`` mentions ``grid`` (all rows without that column) give one law per (n_head,
    n_kv_head); rows whose family mentions ``llama3`` give the baseline family's law. A
    configuration with fewer than 3 sizes is an error, or dropped with ``allow_partial``.
    N is the CSV's ``params_non_embedding`` as the sweep records it (norm gains included,
    < 0.2% of N at our sizes; the recipe's shapes leave them out, as the paper does).
    """
    df = runs
    contexts = sorted(set(df["context"].astype(int)))
    T = contexts[-1] if train_context is None else int(train_context)
    if T not in contexts:
        raise GQAError(f"train_context={format_context(T)} not in the runs; contexts present: "
                       f"{', '.join(map(format_context, contexts))}")
    df = df[df["context"].astype(int) == T]
    d_heads = sorted(set(df["d_head"].astype(int)))
    if len(d_heads) != 1:
        raise GQAError(f"the runs mix head sizes d_head={d_heads}; fit one d_head at a time")
    vocab = PAPER_VOCAB
    if "vocab_size" in df.columns:  # losses per token compare only within one tokenizer
        vocabs = sorted(set(df["vocab_size"].astype(int)))  # read_runs: whole numbers
        if len(vocabs) > 1:
            raise GQAError(f"the runs mix vocabularies vocab_size={vocabs}: losses per token "
                           "are not comparable across tokenizers; fit one vocabulary at a time")
        vocab = vocabs[0] if vocabs else PAPER_VOCAB
    in_grid, in_llama3 = family_masks(df)
    grid, base = df[in_grid], df[in_llama3]
    keys = [(int(h), int(k)) for h, k in zip(grid["n_head"], grid["n_kv_head"])]
    N = list(grid["params_non_embedding"].astype(float))
    y = list(grid["val_loss_nats"].astype(float))
    if len(set(base["params_non_embedding"])) >= 3:
        keys += ["llama3"] * len(base)
        N += list(base["params_non_embedding"].astype(float))
        y += list(base["val_loss_nats"].astype(float))
    sizes = {k: len({n for n, kk in zip(N, keys) if kk == k}) for k in dict.fromkeys(keys)}
    few = [k for k, s in sizes.items() if s < 3]
    if few and not allow_partial:
        raise GQAError(
            f"too few model sizes at context {format_context(T)} to fit a power law (need >= 3 per "
            f"configuration): " + ", ".join(f"{k} has {sizes[k]}" for k in few)
            + "; wait for more runs, or drop them with allow_partial (--allow-partial)")
    if few:
        keep = [kk not in few for kk in keys]
        keys, N, y = ([v for v, m in zip(col, keep) if m] for col in (keys, N, y))
    if not keys:
        raise GQAError("no configuration has the 3 or more sizes needed for a fit (context "
                       f"{format_context(T)})")
    f = fit_power_laws(N, y, keys, shared_E=shared_E, method=method, loo=loo)
    return PerHeadModel(f, d_heads[0], label or f"fits of our runs at T = {T}", (T, T),
                        vocab)


# ----- reporting a fit -------------------------------------------------------------------------
SIZE = ["n_layer", "d_model"]  # a model size of a sweep: several d per L (cpu-v2), or d = 64 L


def size_labels(df: pd.DataFrame) -> list[str]:
    """Label per row of a runs frame for its size (L, d): "L2 d64"."""
    return [f"L{int(L)} d{int(d)}" for L, d in zip(df["n_layer"], df["d_model"])]


def config_label(key: Any, llama3: str = "Llama-3 style") -> str:
    """(8, 1) -> "(8, 1)" (:func:`gqa_lib.units.format_heads`); the baseline family's key
    "llama3" -> ``llama3``."""
    return format_heads(*key) if isinstance(key, tuple) else llama3 if key == "llama3" \
        else str(key)


def fit_curves(fit: LossFit, *, n: int = 41, llama3: str = "Llama-3 style") -> pd.DataFrame:
    """Measured points and fitted curves, one ``config`` per key: ``params_non_embedding``
    (N), ``loss_nats``, ``source`` ("measured" or "fitted"; curves span each key's own
    measured sizes, ``n`` points log-spaced)."""
    frames = []
    for key, law in fit.laws.items():
        m = np.array([k == key for k in fit.keys])
        label = config_label(key, llama3)
        frames.append(pd.DataFrame({"config": label, "params_non_embedding": fit.N[m],
                                    "loss_nats": fit.loss_nats[m], "source": "measured"}))
        N = np.geomspace(fit.N[m].min(), fit.N[m].max(), n)
        frames.append(pd.DataFrame({"config": label, "params_non_embedding": N,
                                    "loss_nats": law.loss(N), "source": "fitted"}))
    return pd.concat(frames, ignore_index=True)


def interval_table(boot: Bootstrap, *, llama3: str = "Llama-3 style") -> pd.DataFrame:
    """One row per key: ``config``, then a, b, E, each with ``_lo`` and ``_hi`` (the
    bootstrap's percentile interval at ``boot.level``). E repeats on every row when shared."""
    rows = []
    for key, g in boot.intervals.groupby("key", sort=False):
        row = {"config": config_label(key, llama3)}
        for r in g.itertuples():
            row |= {r.param: r.estimate, f"{r.param}_lo": r.lo, f"{r.param}_hi": r.hi}
        rows.append(row)
    return pd.DataFrame(rows)


def format_intervals(iv: pd.DataFrame) -> pd.DataFrame:
    """:func:`interval_table` for reading: "estimate [lo, hi]" per parameter, a_H as a
    parameter count (e.g. "98.1 M [75.7 M, 129 M]"), b_H and E to 3 decimals."""
    iv = iv.reset_index(drop=True)

    def fmt(p, f):
        return [f"{f(e)} [{f(lo)}, {f(hi)}]" for e, lo, hi in
                zip(iv[p], iv[f"{p}_lo"], iv[f"{p}_hi"])]

    three = "{:.3f}".format
    return pd.DataFrame({"H": iv["config"], "a_H (parameters)": fmt("a", format_count),
                         "b_H": fmt("b", three), "E (nats/token)": fmt("E", three)})


def coupling(boot: Bootstrap, key: Any, N: float) -> dict[str, float]:
    """How the bootstrap refits of one law move together: the correlation of E with b_H
    (``corr_E_b``), the standard deviations of E (nats) and of the predicted loss at size
    ``N`` (``loss_sd``, nats). A floor that trades off against the exponent leaves the
    predicted losses far better known than E itself."""
    laws = [f.law(key) for f in boot.fits]  # GQAError naming the fitted keys if unknown
    E = np.array([law.E for law in laws])
    b = np.array([law.b for law in laws])
    loss = np.array([law.loss(N) for law in laws])
    return {"corr_E_b": float(np.corrcoef(E, b)[0, 1]), "E_sd": float(E.std(ddof=1)),
            "loss_sd": float(loss.std(ddof=1))}


def quality_table(fits: dict[str, LossFit]) -> pd.DataFrame:
    """Goodness of fit, one row per named fit: points, free parameters, degrees of freedom,
    R^2, RMSE and leave-one-out RMSE (nats; NaN when not computed, or when a left-out point
    could not be predicted: no spare degree of freedom, or its configuration left with fewer
    points than its own parameters)."""
    rows = []
    for name, f in fits.items():
        q = f.quality
        sizes = [int(np.sum([k == key for k in f.keys])) for key in f.laws]
        own = 2 if f.shared_E else 3                       # per-key parameters
        dof = q.n_points - q.n_params
        ok = q.loo_rmse is not None and min(sizes) > own and dof >= 1
        rows.append({"fit": name, "n_points": q.n_points, "n_params": q.n_params, "dof": dof,
                     "r2": q.r2, "rmse": q.rmse, "loo_rmse": q.loo_rmse if ok else np.nan})
    return pd.DataFrame(rows)
