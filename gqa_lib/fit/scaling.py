"""Loss laws and robust fitting: L(N; H) = (a_H / N)^b_H + E and L(n_h) = a n_h^-b + c.

Step 2 of the paper's recipe (Sec. 4, "fit L(N; H) for each H"): for each head configuration
H = (n_head, n_kv_head), loss against non-embedding parameters N follows a power law with a
floor E, the irreducible loss (shared across H in the paper's reading, or free per H). App. I
of the paper fits loss against query heads at fixed size with L(n_h) = a n_h^-b + c.

The paper does not say how it fitted. Two methods are offered, both over a grid of starting
points (the best objective wins):

``"huber"``  Huber loss (delta = 1e-3) on log-loss residuals, minimised by a quasi-Newton
             method: the robust recipe of the Chinchilla replication (Besiroglu et al. 2024,
             epoch-research/analyzing-chinchilla). ``optimizer="L-BFGS-B"`` is their exact
             choice; the default ``"BFGS"`` is its full-memory parent (same minimum; with
             <= ~30 parameters limited memory buys nothing) and avoids scipy's L-BFGS-B
             BLAS calls, which run ~50x slower when OpenBLAS threads compete with another
             busy process (measured on the 2-core machine that runs our sweeps). Ties
             are broken by least squares (``HUBER_TIE``): on noisy data with few sizes
             per law the Huber minimum is otherwise a flat set, and where the optimiser
             stopped on it depended on the CPU.
``"lsq"``    ordinary least squares on the loss itself (scipy's trust-region ``least_squares``).

Losses are in nats per token, N in parameters (values). Results are frozen dataclasses; every
bad input raises :class:`~gqa_lib.errors.GQAError`.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, minimize

from gqa_lib.errors import GQAError, check_choice
from gqa_lib.units import format_bound

FIT_METHODS = ("huber", "lsq")
OPTIMIZERS = ("BFGS", "L-BFGS-B")
BOOTSTRAP_SCHEMES = ("residual", "cases")


# ----- the laws ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PowerLaw:
    """L(N) = (a / N)^b + E: loss (nats) of one head configuration against non-embedding N."""

    a: float
    b: float
    E: float

    def loss(self, N: Any) -> Any:
        """Predicted loss at non-embedding size N (broadcasts)."""
        return (self.a / np.asarray(N, np.float64)) ** self.b + self.E

    def params_for_loss(self, target: Any) -> Any:
        """N*(L*) = a / (L* - E)^(1/b) (step 3 of the recipe); GQAError when L* <= E."""
        t = np.asarray(target, np.float64)
        bad = np.atleast_1d(t)[~(np.atleast_1d(t) > self.E)]  # NaN included
        if bad.size:
            shown = (format_bound(self.E, float(bad[0])) if np.isfinite(bad[0])
                     else f"{self.E:.4f}")
            raise GQAError(f"target_loss must be above the fitted irreducible loss "
                           f"E = {shown} nats, got {target!r}")
        return self.a / (t - self.E) ** (1.0 / self.b)


@dataclass(frozen=True)
class HeadCountLaw:
    """L(n_h) = a n_h^-b + c: loss against query heads at a fixed model size (paper, App. I)."""

    a: float
    b: float
    c: float

    def loss(self, n_head: Any) -> Any:
        return self.a * np.asarray(n_head, np.float64) ** -self.b + self.c


@dataclass(frozen=True)
class FitQuality:
    """Goodness of fit on the loss scale: R^2, RMSE and leave-one-point-out RMSE (nats)."""

    r2: float
    rmse: float
    loo_rmse: float | None
    n_points: int
    n_params: int


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class LossFit:
    """Power laws for several keys (head configurations or named families) from one fit.

    ``laws`` maps each key to its :class:`PowerLaw`; ``E`` is the shared floor (or the smallest
    per-key floor when ``shared_E`` is False). The data (``N``, ``loss_nats``, ``keys``) and
    the optimiser's parameters (``theta`` around the reference size ``N0``) are kept for
    warm-started refits: the bootstrap and leave-one-out.
    """

    laws: Mapping[Hashable, PowerLaw]
    shared_E: bool
    method: str
    quality: FitQuality
    N: np.ndarray = field(repr=False)
    loss_nats: np.ndarray = field(repr=False)
    keys: tuple = field(repr=False)
    theta: np.ndarray = field(repr=False)
    N0: float = field(default=1.0, repr=False)

    @property
    def E(self) -> float:
        return min(law.E for law in self.laws.values())

    def law(self, key: Hashable) -> PowerLaw:
        if key not in self.laws:
            raise GQAError(f"no fitted law for {key!r}; fitted: "
                           + ", ".join(map(repr, self.laws)))
        return self.laws[key]

    def predict(self) -> np.ndarray:
        """Fitted loss at every data point."""
        return np.array([self.laws[k].loss(n) for k, n in zip(self.keys, self.N)])

    def table(self) -> pd.DataFrame:
        """One row per key: a, b, E."""
        return pd.DataFrame([{"key": k, "a": v.a, "b": v.b, "E": v.E}
                             for k, v in self.laws.items()])


# ----- fitting ------------------------------------------------------------------------------
def _check_data(N: Any, loss: Any, keys: Sequence[Hashable], min_sizes: int,
                order: list | None = None):
    N = np.asarray(N, np.float64)
    y = np.asarray(loss, np.float64)
    keys = list(keys)
    if N.ndim != 1 or N.shape != y.shape or len(keys) != N.size:
        raise GQAError("N, loss and keys must be 1-d and of equal length")
    if N.size == 0:
        raise GQAError("no data points to fit")
    if not (np.all(np.isfinite(N)) and np.all(N > 0)):
        raise GQAError("N (non-embedding parameters) must be finite and > 0")
    if not (np.all(np.isfinite(y)) and np.all(y > 0)):
        raise GQAError("loss must be finite and > 0 (nats)")
    uniq = list(dict.fromkeys(keys)) if order is None else order
    if set(keys) != set(uniq):
        raise GQAError("a warm start must come from a fit of the same configurations")
    few = [f"{k!r} ({len(set(N[[kk == k for kk in keys]]))} sizes)" for k in uniq
           if len(set(N[[kk == k for kk in keys]])) < min_sizes]
    if few:
        raise GQAError(f"too few model sizes to fit a power law (need >= {min_sizes} distinct "
                       f"sizes per configuration): {', '.join(few)}")
    return N, y, uniq, np.array([uniq.index(k) for k in keys])


def _unpack(theta: np.ndarray, n_keys: int, shared_E: bool):
    """theta = [ln E] + [c_k, ln b_k]*n_keys (shared E) or [c_k, ln b_k, ln E_k]*n_keys, where
    c_k = b_k ln(a_k / N0) is the log reducible loss at the reference size N0 (the geometric
    mean of the data): a well-conditioned pair, unlike (ln a, b). Logs keep E and b positive
    without bounds (bounded L-BFGS-B is ~20x slower here)."""
    if shared_E:
        return np.full(n_keys, theta[0]), theta[1::2], np.exp(theta[2::2])
    t = theta.reshape(n_keys, 3)
    return t[:, 2], t[:, 0], np.exp(t[:, 1])


def _jacobian(theta, idx, x, n_keys, shared_E):
    """L_hat and d L_hat / d theta (n_points, n_params); x = ln(N / N0)."""
    le, c, b = _unpack(theta, n_keys, shared_E)
    E, R = np.exp(le[idx]), np.exp(c[idx] - b[idx] * x)
    J = np.zeros((x.size, theta.size))
    rows = np.arange(x.size)
    if shared_E:
        J[:, 0] = E
        J[rows, 1 + 2 * idx] = R
        J[rows, 2 + 2 * idx] = -R * x * b[idx]
    else:
        J[rows, 3 * idx] = R
        J[rows, 3 * idx + 1] = -R * x * b[idx]
        J[rows, 3 * idx + 2] = E
    return E + R, J


# Weight of the least-squares tie-break added to the Huber loss (relative to its quadratic
# part). Where most residuals exceed delta, the Huber loss is a least-absolute-deviation
# loss, whose minimum is a flat set when a configuration has few points: a law with two
# seeds at a size can pass anywhere between them at the same objective (our T = 512 sweep: b of
# one configuration anywhere in 0.758-0.791 at one objective, and a leave-one-size-out
# error anywhere in 0.184-0.217 nats), and the optimiser's stopping point - set by
# floating-point noise that differs between CPUs - chose the number printed. The tie-break
# picks the least-squares point of that set (to ~1e-7 in b from most starts, 1.2e-5 from the
# worst start measured on one CPU); elsewhere it
# moves the fit by < 1e-4 relative (measured: the T = 512 fit's other exponents, 6e-5).
HUBER_TIE = 1e-4


def _huber_objective(theta, idx, x, y, n_keys, shared_E, delta):
    Lhat, J = _jacobian(theta, idx, x, n_keys, shared_E)
    r = np.log(y) - np.log(Lhat)
    small = np.abs(r) <= delta
    h = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)) + 0.5 * HUBER_TIE * r**2
    dh = np.where(small, r, delta * np.sign(r)) + HUBER_TIE * r
    # divided by delta^2 so the objective is O(n) and L-BFGS's tolerances bite
    # einsum, not @: a BLAS call per step is ~50x slower on a busy multi-threaded OpenBLAS
    return h.sum() / delta**2, -np.einsum("i,ij->j", dh / Lhat, J) / delta**2


def _initial_grid(x, y, idx, n_keys, shared_E):
    """Starting points (Chinchilla-replication style): floors below the smallest loss times
    exponents; each c_k then matches the data's mean reducible loss."""
    for frac, b0 in itertools.product((0.5, 0.75, 0.9, 0.97), (0.1, 0.25, 0.5)):
        E0 = frac * y.min()
        c = np.array([np.mean(np.log(y[idx == k] - E0) + b0 * x[idx == k])
                      for k in range(n_keys)])
        if shared_E:
            yield np.r_[np.log(E0), np.column_stack([c, np.full(n_keys, np.log(b0))]).ravel()]
        else:
            yield np.column_stack([c, np.full(n_keys, np.log(b0)),
                                   np.full(n_keys, np.log(E0))]).ravel()


def _minimise(theta0, idx, x, y, n_keys, shared_E, method, delta, max_iter, optimizer):
    if method == "huber":
        tol = {"ftol": 1e-12, "gtol": 1e-8} if optimizer == "L-BFGS-B" else {"gtol": 1e-6}
        res = minimize(_huber_objective, theta0, jac=True, method=optimizer,
                       args=(idx, x, y, n_keys, shared_E, delta),
                       options={"maxiter": max_iter, **tol})
        # status 2 = the line search hit float precision; accept it at a stationary point
        stationary = np.max(np.abs(res.jac)) < 1e-2 * max(1.0, abs(res.fun))
        return res.x, float(res.fun), bool(res.success or (res.status == 2 and stationary))
    res = least_squares(lambda t: _jacobian(t, idx, x, n_keys, shared_E)[0] - y, theta0,
                        jac=lambda t: _jacobian(t, idx, x, n_keys, shared_E)[1],
                        max_nfev=max_iter, x_scale="jac")
    return res.x, float(res.cost), bool(res.status > 0)


def fit_power_laws(
    N: Any, loss: Any, keys: Sequence[Hashable], *, shared_E: bool = True,
    method: str = "huber", delta: float = 1e-3, min_sizes: int = 3, loo: bool = True,
    max_iter: int = 1000, start: LossFit | None = None, optimizer: str = "BFGS",
) -> LossFit:
    """Fit L(N; k) = (a_k / N)^b_k + E (E shared across keys, or E_k per key).

    ``keys`` labels each point with its configuration, e.g. ``(n_head, n_kv_head)`` or a family
    name. ``start`` (a previous fit of the same keys) replaces the grid of initialisations by
    one warm start (the bootstrap and leave-one-out use it). Raises GQAError for too few sizes
    (< ``min_sizes`` per key), a fit that does not converge from any start, or a non-positive
    exponent.
    """
    check_choice("method", method, FIT_METHODS)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    N, y, uniq, idx = _check_data(N, loss, keys, min_sizes,
                                  None if start is None else list(start.laws))
    n_keys = len(uniq)
    N0 = float(np.exp(np.mean(np.log(N)))) if start is None else start.N0
    x = np.log(N / N0)
    starts = [start.theta] if start is not None else _initial_grid(x, y, idx, n_keys, shared_E)
    best = None
    for theta0 in starts:
        if not np.all(np.isfinite(theta0)):
            continue
        with np.errstate(all="ignore"):
            theta, obj, ok = _minimise(theta0, idx, x, y, n_keys, shared_E, method, delta,
                                       max_iter, optimizer)
        if ok and np.all(np.isfinite(theta)) and (best is None or obj < best[1]):
            best = (theta, obj)
    if best is None:
        raise GQAError(f"the {method} fit did not converge from any starting point "
                       f"(max_iter={max_iter}); check that loss falls with N")
    theta = best[0]
    le, c, b = _unpack(theta, n_keys, shared_E)
    if np.any(b <= 2e-3):
        bad = [uniq[i] for i in np.flatnonzero(b <= 2e-3)]
        raise GQAError(f"loss does not fall with N for {', '.join(map(repr, bad))}: the "
                       f"fitted exponent b is ~0, so no power law fits")
    laws = {k: PowerLaw(float(N0 * np.exp(c[i] / b[i])), float(b[i]), float(np.exp(le[i])))
            for i, k in enumerate(uniq)}
    fit = LossFit(laws, shared_E, method, FitQuality(np.nan, np.nan, None, N.size, theta.size),
                  N, y, tuple(keys), theta, N0)
    resid = y - fit.predict()
    r2 = 1.0 - np.sum(resid**2) / np.sum((y - y.mean()) ** 2) if N.size > 1 else np.nan
    loo_rmse = _loo_rmse(fit, delta, max_iter) if loo else None
    quality = FitQuality(float(r2), float(np.sqrt(np.mean(resid**2))), loo_rmse, N.size,
                         theta.size)
    return replace(fit, quality=quality)


def _loo_errors(fit: LossFit, delta: float, max_iter: int, stop_at_failure: bool
                ) -> tuple[list[float], list[Any]]:
    """Leave each point out, refit from the full fit, predict it: the prediction errors, and
    the keys of the points whose refit failed (a key left with losses that no longer fall)."""
    errs, failed = [], []
    for i in range(fit.N.size):
        keep = np.arange(fit.N.size) != i
        try:
            f = fit_power_laws(fit.N[keep], fit.loss_nats[keep],
                               [k for j, k in enumerate(fit.keys) if j != i],
                               shared_E=fit.shared_E, method=fit.method, delta=delta,
                               min_sizes=1, loo=False, max_iter=max_iter, start=fit)
        except GQAError:
            failed.append(fit.keys[i])
            if stop_at_failure:
                break
            continue
        errs.append(f.laws[fit.keys[i]].loss(fit.N[i]) - fit.loss_nats[i])
    return errs, failed


def _loo_rmse(fit: LossFit, delta: float, max_iter: int) -> float | None:
    """RMSE of the leave-one-out prediction errors; None when some point cannot be predicted."""
    errs, failed = _loo_errors(fit, delta, max_iter, stop_at_failure=True)
    return None if failed else float(np.sqrt(np.mean(np.square(errs))))


def loo_unpredictable(fit: LossFit, *, delta: float = 1e-3, max_iter: int = 1000) -> list[Any]:
    """Keys (each once) with a point that the fit without it cannot predict: left out, the
    key's remaining losses no longer fall with N, so no power law fits them. Empty when the
    leave-one-out RMSE exists."""
    _, failed = _loo_errors(fit, delta, max_iter, stop_at_failure=False)
    return list(dict.fromkeys(failed))


def fit_head_count_law(n_head: Any, loss: Any, *, c: float | None = None) -> HeadCountLaw:
    """Least-squares fit of L(n_h) = a n_h^-b + c (App. I); ``c`` fixed when given."""
    h, y = np.asarray(n_head, np.float64), np.asarray(loss, np.float64)
    n_free = 2 if c is not None else 3
    if h.shape != y.shape or h.ndim != 1 or len(set(h)) < n_free + (c is None):
        raise GQAError(f"need >= {n_free + (c is None)} distinct head counts with one loss each")
    if not (np.all(h > 0) and np.all(np.isfinite(y))):
        raise GQAError("n_head must be > 0 and loss finite")

    def resid(p):
        return p[0] * h ** -p[1] + (p[2] if c is None else c) - y

    p0 = [max(y.max() - y.min(), 1e-3), 0.2] + ([y.min() * 0.95] if c is None else [])
    res = least_squares(resid, p0, bounds=([0, 1e-4] + ([-np.inf] if c is None else []),
                                           [np.inf, 5.0] + ([np.inf] if c is None else [])))
    if res.status <= 0:
        raise GQAError("the head-count fit did not converge")
    return HeadCountLaw(float(res.x[0]), float(res.x[1]), float(res.x[2] if c is None else c))


# ----- bootstrap ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Bootstrap:
    """Refits on resampled data. ``intervals``: one row per key and parameter (a, b, E) with
    the point estimate and the percentile interval at ``level``; ``fits``: the refits."""

    intervals: pd.DataFrame
    fits: tuple[LossFit, ...] = field(repr=False)
    level: float
    scheme: str
    n_failed: int


def resample(fit: LossFit, rng: np.random.Generator, scheme: str = "residual") -> np.ndarray:
    """Indices or losses of one bootstrap replicate: ``residual`` returns new losses (fitted
    + residuals drawn with replacement); ``cases`` returns point indices drawn within keys."""
    check_choice("scheme", scheme, BOOTSTRAP_SCHEMES)
    if scheme == "residual":
        pred = fit.predict()
        resid = fit.loss_nats - pred
        return pred + rng.choice(resid, size=resid.size, replace=True)
    order = {k: i for i, k in enumerate(fit.laws)}
    group = np.array([order[k] for k in fit.keys])
    return np.concatenate([rng.choice(np.flatnonzero(group == g), size=np.sum(group == g))
                           for g in range(len(order))])


def bootstrap_fit(fit: LossFit, *, n_boot: int = 200, level: float = 0.95, seed: int = 0,
                  scheme: str = "residual") -> Bootstrap:
    """Percentile bootstrap of every fitted parameter (warm-started refits, no LOO).

    ``residual``: refit to fitted values plus resampled residuals (keeps the design: every
    configuration keeps all its sizes). ``cases``: resample points within each configuration;
    draws with too few distinct sizes are skipped and counted in ``n_failed``.
    """
    if not 0 < level < 1:
        raise GQAError(f"level must be in (0, 1), got {level!r}")
    if n_boot < 2:
        raise GQAError(f"n_boot must be >= 2, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    fits, failed = [], 0
    for _ in range(n_boot):
        draw = resample(fit, rng, scheme)
        if scheme == "residual":
            N, y, keys = fit.N, draw, fit.keys
        else:
            N, y, keys = fit.N[draw], fit.loss_nats[draw], [fit.keys[i] for i in draw]
        try:
            fits.append(fit_power_laws(N, y, keys, shared_E=fit.shared_E, method=fit.method,
                                       loo=False, start=fit,
                                       min_sizes=3 if scheme == "cases" else 1))
        except GQAError:
            failed += 1
    if len(fits) < 2:
        raise GQAError("bootstrap failed: fewer than 2 replicates could be refitted")
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    rows = []
    for key, law in fit.laws.items():
        for p in ("a", "b", "E"):
            vals = np.array([getattr(f.laws[key], p) for f in fits])
            lo, hi = np.percentile(vals, q)
            rows.append({"key": key, "param": p, "estimate": getattr(law, p),
                         "lo": float(lo), "hi": float(hi)})
    return Bootstrap(pd.DataFrame(rows), tuple(fits), level, scheme, failed)
