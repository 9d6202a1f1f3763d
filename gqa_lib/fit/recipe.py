"""The paper's three-step recipe for the cost-optimal GQA configuration (Sec. 4).

1. Candidates H = (n_head, n_kv_head): powers of two, n_kv <= n_h <= max (21 for max 32).
2. For each H, a loss law L(N; H) against non-embedding parameters N (fitted at one training
   context, reused for every T: the paper finds relative losses move < 1% beyond 8K).
3. For each H, invert the law at the target loss, N*(H) = a_H / (L* - E)^(1/b_H); map N* to a
   shape (n_layer, d_model) by an aspect-ratio rule; cost the model at context T and pick the
   H with the smallest Z = lam M^alpha + (1 - lam) C^beta (eq. 5) -- or, with
   ``CostSettings(objective=..., hardware=...)``, the smallest decode latency, the most
   tokens/s per accelerator or the lowest cost per million tokens on a named accelerator
   (the roofline of :mod:`gqa_lib.cost.serving`).

Costs come from :mod:`gqa_lib.cost` on continuous shapes (``ConfigBatch.from_arrays``, d_ff =
8 d / 3, norms excluded: the paper's N). ``convention`` names the compute term C inside Z; the
default ``"fig2"``, C = T (N + 2 T L d_h n_h) = (T/2) C_infer, is the one that reproduces the
paper: with it the fits to the digitised Fig. 2 losses recover every Table 4 cell whose optimum
is a measured configuration, while eq. 3's per-token C (``"per_token"``) is so small beside
M^0.5 that Z ignores compute and long contexts pick n_h = 32 (see tests/test_recipe.py).
Memory M is eq. 4 in values (weights + KV cache). Z is not scale-free (alpha != beta), so the
convention changes answers, not just units.

Aspect rules (``aspect``: ``"d64L"``, d_model = 64 n_layer, or ``"paper"``, Table 9's ratios)
and the shapes themselves live in :mod:`gqa_lib.fit.shapes`.

Every loss model (a per-H fit, :class:`gqa_lib.fit.per_head.PerHeadModel`, or the joint
extrapolation of :mod:`gqa_lib.evidence.paper`) offers ``loss``, ``params_for_loss``,
``extrapolated``, ``configs``, ``d_head``, ``baseline`` and ``resample``; the functions here
take any of them.
Everything is vectorised: a grid of targets x contexts x candidates is one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from gqa_lib import cost
from gqa_lib.cost import DEFAULT_CONVENTION
from gqa_lib.arch.config import ASPECT_RULES, FFN_MULTIPLE_OF, PAPER_VOCAB
from gqa_lib.arch.hardware import get_accelerator
from gqa_lib.errors import MAX_EXACT, GQAError, check_choice, check_numbers
from gqa_lib.units import (format_bound, format_context, format_count, format_heads,
                            format_tokens)
from gqa_lib.fit.inputs import (budgets, check_configs, check_model, check_settings, contexts,
                                targets, vocab_of)
from gqa_lib.fit.shapes import bisect_log, config_batch, shape_for_params

if TYPE_CHECKING:
    from gqa_lib.fit.scaling import LossFit, PowerLaw

BASELINES = ("llama3",)


class LossModel(Protocol):
    """What step 3 needs from a loss model (:class:`gqa_lib.fit.per_head.PerHeadModel`,
    :class:`gqa_lib.evidence.paper.JointLossModel`). Arrays broadcast; losses in nats. A
    model may also carry ``loss_contexts``, the (shortest, longest) context its losses speak
    for (measured there, or reported to hold there): :func:`optimize` warns outside it."""

    fit: LossFit
    d_head: int
    label: str

    @property
    def baseline(self) -> PowerLaw | None: ...            # the Llama-3 family's law
    def configs(self) -> list[tuple[int, int]]: ...        # the H it can predict
    def loss(self, N: Any, n_head: Any, n_kv_head: Any) -> np.ndarray: ...
    def params_for_loss(self, target: Any, n_head: Any, n_kv_head: Any) -> np.ndarray: ...
    def extrapolated(self, n_head: Any, n_kv_head: Any) -> np.ndarray: ...
    def resample(self, rng: np.random.Generator) -> LossModel: ...


def candidates(max_heads: int = 32) -> list[tuple[int, int]]:
    """Step 1: (n_head, n_kv_head), both powers of two, n_kv_head <= n_head <= max_heads."""
    if not isinstance(max_heads, (int, np.integer)) or max_heads < 1:
        raise GQAError(f"max_heads must be a positive integer, got {max_heads!r}")
    powers = [2**i for i in range(int(np.log2(max_heads)) + 1)]
    return [(h, k) for h in powers for k in powers if k <= h]


# ----- step 3: costs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CostSettings:
    """How step 3 costs a model: Z's weights (eq. 5), the compute convention, the shape rule,
    and what step 3 minimises (``objective``).

    ``objective="z"`` (default) is the paper's Z. The serving objectives need ``hardware``
    (an accelerator name, alias or :class:`~gqa_lib.arch.hardware.Accelerator`) and are
    costed by :mod:`gqa_lib.cost.serving`: ``"latency"`` = seconds per generated token at
    ``batch`` sequences (default 1), ``"throughput"`` = accelerator-seconds per token at the
    largest batch that fits (i.e. maximum tokens/s per accelerator), ``"cost"`` = money per
    million tokens at ``price_per_hour`` (a user input, no default). Throughput and cost
    count decode only (prompts already cached) unless ``output_tokens`` = G is given: then
    each request prefills its T-token prompt and generates G tokens
    (:func:`gqa_lib.cost.request_seconds`). With hardware given and
    objective "z", the serving columns are reported beside Z without changing the choice.
    ``calibration`` (:mod:`gqa_lib.cost.serving`): "auto" uses a measured accelerator's
    fitted constants (the datasheet roofline otherwise), "datasheet" the plain roofline at
    ``flops_efficiency`` / ``bandwidth_efficiency`` (defaults 0.5 / 0.7).
    """

    lam: float = 0.9
    alpha: float = 0.5
    beta: float = 1 / 3
    convention: str = DEFAULT_CONVENTION
    aspect: str = "d64L"
    objective: str = "z"
    hardware: Any = None
    batch: int = 1
    price_per_hour: float | None = None
    output_tokens: int | None = None
    calibration: Any = "auto"
    flops_efficiency: float | None = None
    bandwidth_efficiency: float | None = None
    memory_fraction: float = cost.MEMORY_FRACTION

    def __post_init__(self):
        check_choice("convention", self.convention, cost.COMPUTE_CONVENTIONS)
        check_choice("aspect", self.aspect, ASPECT_RULES)
        cost.hardware_cost(1.0, 1.0, lam=self.lam, alpha=self.alpha, beta=self.beta)
        check_choice("objective", self.objective, cost.OBJECTIVES)
        if self.objective != "z" and self.hardware is None:
            raise GQAError(f"objective={self.objective!r} needs hardware (an accelerator, "
                           "e.g. hardware='h100')")
        if self.objective == "cost" and self.price_per_hour is None:
            raise GQAError("objective='cost' needs price_per_hour (price per accelerator-hour: "
                           "a user input, no default)")
        if self.hardware is not None:
            object.__setattr__(self, "hardware", get_accelerator(self.hardware))
            if not isinstance(self.batch, (int, np.integer)) or self.batch < 1:
                raise GQAError(f"batch must be a positive integer, got {self.batch!r}")
            if self.price_per_hour is not None:
                cost.cost_per_million_tokens(self.price_per_hour, 1.0)  # validates it
            if self.output_tokens is not None:
                cost.check_output_tokens(self.output_tokens)
            cost.serving_costs(cost.ConfigBatch.from_arrays(
                n_layer=1, d_model=64, n_head=1, n_kv_head=1, d_head=64, d_ff=128), 1,
                self.hardware, **self.serving_kwargs())  # validates the efficiencies

    def serving_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`gqa_lib.cost.serving_costs` these settings imply."""
        return {"batch": self.batch, "price_per_hour": self.price_per_hour,
                "output_tokens": self.output_tokens, "calibration": self.calibration,
                "flops_efficiency": self.flops_efficiency,
                "bandwidth_efficiency": self.bandwidth_efficiency,
                "memory_fraction": self.memory_fraction}


def model_costs(N, n_head, n_kv_head, T, *, d_head: int, settings: CostSettings,
                vocab_size: int = PAPER_VOCAB) -> dict[str, np.ndarray]:
    """Shape, M (values), C (FLOPs, ``settings.convention``) and Z of size-N models at T (the
    embedding, ``vocab_size``, counts only in the serving figures: M and C leave it out)."""
    L, d = shape_for_params(N, n_head, n_kv_head, d_head=d_head, aspect=settings.aspect)
    batch = config_batch(L, d, n_head, n_kv_head, d_head)
    M = cost.inference_memory_values(batch, T, include_norms=False)
    C = cost.compute_flops(batch, T, settings.convention)
    out = {"params_non_embedding": np.asarray(N, float), "n_layer": L, "d_model": d,
           "memory_values": np.asarray(M, float), "flops": np.asarray(C, float),
           "z": np.asarray(cost.hardware_cost(M, C, lam=settings.lam, alpha=settings.alpha,
                                              beta=settings.beta), float)}
    if settings.hardware is not None:  # seconds, tokens/s, money, on the aligned shape
        built = config_batch(L, d, n_head, n_kv_head, d_head, ffn_multiple_of=FFN_MULTIPLE_OF,
                             vocab_size=vocab_size)
        serving = cost.serving_costs(built, T, settings.hardware, **settings.serving_kwargs())
        out.update({k: np.asarray(v, float) for k, v in serving.items()})
        if settings.objective != "z":
            out["objective"] = np.asarray(cost.objective_value(serving, settings.objective),
                                          float)
    return out


def _family(model: LossModel) -> dict[str, int]:
    """The head size and vocabulary a loss model's runs had (the paper's: 64, 50,304)."""
    return {"d_head": model.d_head, "vocab_size": vocab_of(model)}


# ----- step 3: the grid, the argmin, the baseline ---------------------------------------------
@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class RecipeGrid:
    """Step 3 over targets x contexts x candidates. Arrays are (n_target, n_context, n_config);
    unreachable candidates (target at or below their floor) have ``z = inf``."""

    target_loss: np.ndarray
    context: np.ndarray
    configs: tuple[tuple[int, int], ...]
    extrapolated: np.ndarray
    values: dict[str, np.ndarray]
    settings: CostSettings

    @property
    def best_index(self) -> np.ndarray:
        """(n_target, n_context) index of the cheapest candidate (by Z, or by the serving
        objective when ``settings.objective`` names one)."""
        return np.argmin(self.values.get("objective", self.values["z"]), axis=-1)

    def cells(self) -> pd.DataFrame:
        """One row per (target, context): the chosen H and its shape and costs."""
        i, j = np.meshgrid(np.arange(self.target_loss.size), np.arange(self.context.size),
                           indexing="ij")
        b = self.best_index
        rows = {"target_loss": self.target_loss[i].ravel(), "context": self.context[j].ravel(),
                "n_head": np.array([self.configs[x][0] for x in b.ravel()]),
                "n_kv_head": np.array([self.configs[x][1] for x in b.ravel()]),
                "extrapolated": self.extrapolated[b].ravel()}
        for k, v in self.values.items():
            rows[k] = np.take_along_axis(v, b[..., None], -1)[..., 0].ravel()
        return pd.DataFrame(rows)

    def frontier(self, i: int = 0, j: int = 0) -> pd.DataFrame:
        """Every reachable H at target i and context j: N*, shape, M, C, Z; ``best`` marked."""
        df = pd.DataFrame({"n_head": [c[0] for c in self.configs],
                           "n_kv_head": [c[1] for c in self.configs],
                           **{k: v[i, j] for k, v in self.values.items()},
                           "extrapolated": self.extrapolated})
        df["best"] = np.arange(len(df)) == self.best_index[i, j]
        return df[np.isfinite(df["z"])].reset_index(drop=True)


def cost_grid(model: LossModel, target_loss: Any, context: Any, *, configs=None,
              settings: CostSettings = CostSettings()) -> RecipeGrid:
    """Steps 3a-c for every target x context x candidate in one vectorised pass."""
    model, settings = check_model(model), check_settings(settings, CostSettings)
    t, T = targets(target_loss), contexts(context)
    configs = check_configs(model, configs)
    if not configs:
        raise GQAError("no candidate configurations to cost")
    h = np.array([c[0] for c in configs], float)
    k = np.array([c[1] for c in configs], float)
    N = np.asarray(model.params_for_loss(t[:, None], h[None], k[None]), float)  # (nt, nH)
    ok = np.isfinite(N) & (N > 0)
    dead = ~ok.any(axis=1)
    if dead.any():
        _refuse_unreachable(model, float(t[dead][0]))
    # The target must lie within what each law spans: N* has to give back the target (a
    # bisection stopped at its bound, e.g. a target above the loss of the smallest size a
    # law covers, does not), and map to a real shape (at least one layer, under 1e5).
    with np.errstate(all="ignore"):
        back = np.asarray(model.loss(np.where(ok, N, 1.0), h[None], k[None]), float)
    spans = ok & (np.abs(back - t[:, None]) <= SPAN_RTOL * t[:, None])
    _refuse_outside(t, spans, ok, N, "above the loss of the smallest model the fit spans "
                    "for every candidate")
    vals = model_costs(np.where(spans, N, 1.0)[:, None, :], h, k, T[None, :, None],
                       **_family(model), settings=settings)
    shaped = spans & (vals["n_layer"][:, 0, :] >= 1.0) & (vals["n_layer"][:, 0, :] < MAX_LAYERS)
    _refuse_outside(t, shaped, spans, N, f"reached by no candidate with between 1 and "
                    f"{MAX_LAYERS:g} layers")
    shape = (t.size, T.size, len(configs))
    vals = {key: np.where(shaped[:, None, :], np.broadcast_to(v, shape), np.inf)
            for key, v in vals.items()}
    if "objective" in vals:
        _check_serveable(vals["objective"], vals["max_batch"], t, T, settings)
    return RecipeGrid(t, T, configs, np.asarray(model.extrapolated(h, k), bool), vals, settings)


SPAN_RTOL = 1e-6  # |L(N*) - target| / target above which N* is a bisection bound, not a root
MAX_LAYERS = 1e5  # the upper bound of shape_for_params' bisection


def _refuse_unreachable(model: LossModel, t: float) -> None:
    """GQAError for a target no candidate reaches: at or below the floor E, or above it but
    too close for any law to be solved at a size it covers. E is printed with the digits
    that keep the message true (2.05997, not 2.0600, for a target of 2.06)."""
    E = model_floor(model)
    shown = format_bound(E, t)
    if t <= E:
        raise GQAError(f"target_loss={t!r} is at or below the fitted irreducible loss of "
                       f"every candidate (E = {shown} nats); choose a target above it")
    raise GQAError(f"target_loss={t!r} is above the fitted irreducible loss (E = {shown} "
                   "nats) but too close to the floors: no candidate's law reaches it at a size "
                   "it is solved for; choose a higher target")


def _refuse_outside(t: np.ndarray, now: np.ndarray, before: np.ndarray, N: np.ndarray,
                    why: str) -> None:
    """GQAError for the first target that no candidate reaches any more (``now``), naming
    the range of N* it would have needed (from the candidates that passed ``before``)."""
    dead = ~now.any(axis=1)
    if dead.any():
        i = int(np.argmax(dead))
        n = N[i][before[i]]
        lo, hi = f"{np.min(n):.3g}", f"{np.max(n):.3g}"
        raise GQAError(f"target_loss={t[i]:g} is {why} (N* would be {lo}"
                       + (f" to {hi}" if hi != lo else "")
                       + "): outside what the law can say; choose a target within it")


def _check_serveable(objective: np.ndarray, max_batch: np.ndarray, t: np.ndarray,
                     T: np.ndarray, settings: CostSettings) -> None:
    """GQAError where no candidate has a finite serving objective: none fits in memory, or
    none fits the ``batch`` asked for (then the message names it and the largest that fits)."""
    dead = ~np.isfinite(objective).any(axis=-1)
    if dead.any():
        i, j = np.argwhere(dead)[0]
        where = (f"hardware={settings.hardware.key!r}: no candidate reaching target_loss="
                 f"{t[i]:g} fits")
        cap = cost.memory_capacity_bytes(settings.hardware, settings.calibration)
        measured = cost.basis(settings.hardware, settings.calibration) == "calibrated"
        shown = format_context(T[j]) if float(T[j]).is_integer() else format_tokens(T[j])
        mem = (f"at context {shown} (memory_fraction {settings.memory_fraction:g} of "
               f"{cap / 1e9:,.1f} GB{' as measured' if measured else ''})")
        most = np.max(np.where(np.isfinite(max_batch[i, j]), max_batch[i, j], 0))
        if settings.batch > 1 and most >= 1:
            raise GQAError(f"{where} batch={settings.batch} in its memory {mem}: the largest "
                           f"batch any fits is {int(most)}; choose a smaller batch, larger "
                           "hardware or a shorter context")
        raise GQAError(f"{where} in its memory {mem}; choose larger hardware, a shorter "
                       "context or a higher target")


def model_floor(model: LossModel) -> float:
    """The smallest irreducible loss E among the model's laws."""
    return float(model.fit.E)


def baseline_costs(model: LossModel, target_loss: Any, context: Any, *,
                   baseline: str = "llama3", settings: CostSettings = CostSettings()
                   ) -> dict[str, np.ndarray]:
    """The Llama-3 GQA family, (d/d_h, 8), sized to reach the target: (n_target, n_context)."""
    model, settings = check_model(model), check_settings(settings, CostSettings)
    check_choice("baseline", baseline, BASELINES)
    law = model.baseline
    if law is None:
        raise GQAError("this fit has no Llama-3 family (rows with family 'llama3'), so "
                       "--baseline llama3 cannot be costed")
    t, T = targets(target_loss), contexts(context)
    N = law.params_for_loss(t)[:, None]
    out = model_costs(N, np.nan, np.nan, T[None, :], **_family(model), settings=settings)
    out["n_head"] = out["d_model"] / model.d_head
    out["n_kv_head"] = np.minimum(8.0, out["n_head"])
    return {key: np.broadcast_to(v, (t.size, T.size)) for key, v in out.items()}


def _serving_savings(best: dict, base: dict) -> dict[str, float]:
    """The pick against the baseline in serving units: latency and cost saved (%), and how
    many times the baseline's tokens/s per accelerator the pick serves (inf: the baseline
    does not fit). No ``latency_pct`` where the batch does not fit the pick or the
    baseline."""
    out = {"tokens_per_s_ratio": (best["tokens_per_s"] / base["tokens_per_s"]
                                  if base["tokens_per_s"] > 0 else float("inf"))}
    if best["fits"] and base["fits"]:  # a latency at a batch that cannot run is no saving
        out["latency_pct"] = 100.0 * (1.0 - best["latency_s"] / base["latency_s"])
    if np.isfinite(best["usd_per_mtok"]) and np.isfinite(base["usd_per_mtok"]):
        out["cost_pct"] = 100.0 * (1.0 - best["usd_per_mtok"] / base["usd_per_mtok"])
    return out


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Recommendation:
    """The recipe's answer at one target and context (what `gqa optimize` prints)."""

    target_loss: float
    context: int
    best: dict
    candidates: pd.DataFrame
    baseline: dict | None
    savings: dict | None
    settings: CostSettings
    model: str
    warnings: tuple[str, ...] = ()  # e.g. the pick far outside the sizes the fit was made on


def optimize(model: LossModel, target_loss: float, context: int, *,
             baseline: str | None = None, settings: CostSettings = CostSettings(),
             configs=None) -> Recommendation:
    """The cost-optimal H and size at one (target, context), with the full frontier.

    One target and one context (scalars): lists are refused, not truncated to their first
    element; :func:`cost_grid` takes arrays of both."""
    for name, v in (("target_loss", target_loss), ("context", context)):
        if np.ndim(v) != 0:
            raise GQAError(f"optimize takes one {name}, got {v!r}; cost_grid takes arrays")
    g = cost_grid(model, target_loss, context, configs=configs, settings=settings)
    front = g.frontier()
    best = front[front["best"]].iloc[0].to_dict()
    base = savings = None
    if baseline is not None:
        b = baseline_costs(model, target_loss, context, baseline=baseline, settings=settings)
        base = {k: float(v[0, 0]) for k, v in b.items()}
        savings = {f"{name}_pct": 100.0 * (1.0 - best[key] / base[key]) for name, key in
                   (("memory", "memory_values"), ("flops", "flops"), ("z", "z"))}
        if settings.hardware is not None:
            savings.update(_serving_savings(best, base))
    return Recommendation(float(g.target_loss[0]), int(g.context[0]), best, front, base,
                          savings, settings, getattr(model, "label", ""),
                          _size_warnings(model, best) + _extrapolated_pick(front)
                          + _context_warnings(model, int(g.context[0])))


EXTRAPOLATION_FACTOR = 2.0  # how far past the fitted sizes a pick's N* is worth a warning


def _size_warnings(model: LossModel, best: dict) -> tuple[str, ...]:
    """A warning when the pick's N* lies more than EXTRAPOLATION_FACTOR outside the sizes the
    model's laws were fitted on (``model.fit.N``, where the model has one)."""
    N = getattr(getattr(model, "fit", None), "N", None)
    if N is None or np.size(N) == 0:
        return ()
    lo, hi, n = float(np.min(N)), float(np.max(N)), float(best["params_non_embedding"])
    if lo / EXTRAPOLATION_FACTOR <= n <= hi * EXTRAPOLATION_FACTOR:
        return ()
    how = f"{lo / n:.0f}x below the smallest" if n < lo else f"{n / hi:.0f}x above the largest"
    return (f"N* = {format_count(n)} ({best['n_layer']:.1f} layers) lies outside the sizes "
            f"the fit was made on ({format_count(lo)} to {format_count(hi)} non-embedding "
            f"parameters), {how}: the law is extrapolated far beyond its data",)


def _context_warnings(model: LossModel, context: int) -> tuple[str, ...]:
    """A warning when T lies outside the contexts the model's losses speak for
    (``model.loss_contexts``, where the model has them): the recipe then carries the
    configurations' relative losses to T unchanged, an assumption nothing here checks."""
    span = getattr(model, "loss_contexts", None)
    if span is None or span[0] <= context <= span[1]:
        return ()
    lo, hi = (format_context(t) for t in span)
    where = f"at T = {lo}" if lo == hi else f"from T = {lo} to {hi}"
    return (f"T = {format_context(context)} lies outside the contexts the losses come from "
            f"({where}): the recipe assumes the configurations' relative losses do not move "
            "with context (the paper reports < 1% for T > 8K; its Table 4 stops at 128K), "
            "unchecked at this T",)


def _extrapolated_pick(front: pd.DataFrame) -> tuple[str, ...]:
    """A warning when the pick has no measured loss curve (its loss is the head-count law
    carried past the measured heads), naming the best measured configuration."""
    best = front[front["best"]].iloc[0]
    if "extrapolated" not in front or not bool(best["extrapolated"]):
        return ()
    key = "objective" if "objective" in front else "z"
    measured = front[~front["extrapolated"].astype(bool)]
    alt = ""
    if len(measured):
        m = measured.loc[measured[key].idxmin()]
        alt = (f"; the best configuration with a measured curve is "
               f"{format_heads(m['n_head'], m['n_kv_head'])}")
    return (f"the pick {format_heads(best['n_head'], best['n_kv_head'])} has no measured loss "
            "curve: its size comes from the head-count law extrapolated past the measured "
            f"heads, whose error is unknown{alt}",)


# ----- inverse questions and the bootstrap --------------------------------------------------
def max_context_for_memory(model: LossModel, target_loss: float, memory_values: float, *,
                           configs=None, settings: CostSettings = CostSettings()
                           ) -> pd.DataFrame:
    """Longest context each H serves within a memory budget (values) at the target loss.

    M(T) = N* + 2 T L d_h n_kv (eq. 4) <= budget gives T_max = (budget - N*) / (2 L d_h n_kv);
    0 where the weights alone exceed the budget. ``best`` marks the largest T_max.
    """
    if np.ndim(memory_values) != 0:
        raise GQAError(f"memory_values must be one number of values, got {memory_values!r}")
    memory_values = float(budgets("memory_values", memory_values)[0])
    g = cost_grid(model, target_loss, 1.0, configs=configs, settings=settings)
    df = g.frontier()
    per_token = df["memory_values"] - df["params_non_embedding"]      # KV values at T = 1
    longest = np.maximum(0.0, (memory_values - df["params_non_embedding"]) / per_token).round()
    if longest.max() > MAX_EXACT:
        raise GQAError(f"memory budget {memory_values:.3g} values holds contexts above 2**53 "
                       "tokens (no exact count); give a real memory budget")
    df["max_context"] = longest.astype(np.int64)
    df = df.drop(columns=["memory_values", "flops", "z", "best"])
    if not (df["max_context"] > 0).any():
        raise GQAError(f"memory budget {memory_values:.3g} values is below the weights of every "
                       f"model reaching target_loss={target_loss}")
    df["best"] = np.arange(len(df)) == int(np.argmax(df["max_context"]))
    return df


def affordable_params(model: LossModel, n_head: Any, n_kv_head: Any, context: Any,
                      budget: Any, *, kind: str = "z",
                      settings: CostSettings = CostSettings()) -> np.ndarray:
    """Largest N whose cost (``kind``: z or memory, at context T) is at most ``budget``, for
    broadcast arrays of H, T and budgets (bisection in ln N over [1e3, 1e15]; cost grows with
    N). NaN where even N = 1e3 is over budget."""
    check_choice("kind", kind, ("z", "memory"))
    key = "z" if kind == "z" else "memory_values"
    model, settings = check_model(model), check_settings(settings, CostSettings)
    h, k, T, B = np.broadcast_arrays(*(check_numbers(n, v, w) for n, v, w in (
        ("n_head", n_head, "a number of heads"), ("n_kv_head", n_kv_head, "a number of heads"),
        ("context", context, "a number of tokens"), ("budget", budget, "a number > 0"))))
    contexts(T.ravel())
    budgets("budget", B.ravel())

    def spend(N):
        return model_costs(N, h, k, T, **_family(model), settings=settings)[key]

    lo, hi = np.full(h.shape, 1e3), np.full(h.shape, 1e15)
    if np.any(spend(hi) < B):  # the bisection would stop at its bound, not at the budget
        raise GQAError(f"{kind} budget {np.max(B):.4g} affords more than 1e15 non-embedding "
                       "parameters, beyond the sizes this search covers; give a real budget")
    N = bisect_log(spend, B, lo, hi)
    return np.where(spend(lo) <= B, N, np.nan)


def min_loss_for_budget(model: LossModel, context: int, budget: float, *, kind: str = "z",
                        configs=None, settings: CostSettings = CostSettings()
                        ) -> pd.DataFrame:
    """Lowest loss each H reaches at context T with its cost (``kind``: z or memory) at most
    ``budget``: the largest affordable N (:func:`affordable_params`), then L(N; H)."""
    configs = check_configs(check_model(model), configs)
    h = np.array([c[0] for c in configs], float)
    k = np.array([c[1] for c in configs], float)
    N = affordable_params(model, h, k, context, budget, kind=kind, settings=settings)
    feasible = np.isfinite(N)
    if not feasible.any():
        raise GQAError(f"{kind} budget {budget:.4g} is below the cost of the smallest model")
    h, k, N = h[feasible], k[feasible], N[feasible]
    vals = model_costs(N, h, k, contexts(context)[0], **_family(model), settings=settings)
    df = pd.DataFrame({"n_head": h.astype(int), "n_kv_head": k.astype(int),
                       "loss_nats": model.loss(N, h, k), **vals,
                       "extrapolated": model.extrapolated(h, k)})
    df["best"] = np.arange(len(df)) == int(np.argmin(df["loss_nats"]))
    return df


def bootstrap_grids(model: LossModel, target_loss: Any, context: Any, *, n_boot: int,
                    seed: int = 0, settings: CostSettings = CostSettings()
                    ) -> tuple[RecipeGrid, list[RecipeGrid], int]:
    """Step 3 on the fit (``point``) and on ``n_boot`` refits to bootstrap replicates of its
    data, drawn from ``seed``: (point, the replicates' grids, how many refits failed)."""
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise GQAError(f"n_boot must be a positive integer, got {n_boot!r}")
    point = cost_grid(model, target_loss, context, settings=settings)
    reps, failed = on_refits(model, lambda m: cost_grid(
        m, target_loss, context, configs=point.configs, settings=settings),
        n_boot=n_boot, seed=seed)
    return point, reps, failed


def on_refits(model: LossModel, fn: Any, *, n_boot: int, seed: int = 0) -> tuple[list, int]:
    """``fn`` applied to ``n_boot`` residual-bootstrap refits of ``model`` (``model.resample``),
    drawn in order from ``seed``: (the results of the refits that succeeded, how many failed:
    a GQAError from the refit or from ``fn``, e.g. a target below a refit's floor)."""
    rng = np.random.default_rng(seed)
    out, failed = [], 0
    for _ in range(n_boot):
        try:
            out.append(fn(model.resample(rng)))
        except GQAError:
            failed += 1
    return out, failed


def choice_counts(point: RecipeGrid, replicates: Sequence[RecipeGrid]) -> np.ndarray:
    """(target, context, H): how many replicates chose each H."""
    counts = np.zeros(point.values["z"].shape, int)
    for g in replicates:
        np.put_along_axis(counts, g.best_index[..., None],
                          np.take_along_axis(counts, g.best_index[..., None], -1) + 1, -1)
    return counts


def choice_shares(point: RecipeGrid, replicates: Sequence[RecipeGrid]) -> pd.DataFrame:
    """One row per (target, context, H) chosen by at least one replicate: ``share`` of the
    replicates, and ``point`` = whether it is the choice of the unperturbed fit."""
    counts = choice_counts(point, replicates)
    i, j, c = np.nonzero(counts)
    return pd.DataFrame({
        "target_loss": point.target_loss[i], "context": point.context[j].astype(int),
        "n_head": [point.configs[x][0] for x in c], "n_kv_head": [point.configs[x][1] for x in c],
        "share": counts[i, j, c] / max(1, len(replicates)), "point": point.best_index[i, j] == c})


def bootstrap_choice(model: LossModel, target_loss: Any, context: Any, *, n_boot: int = 200,
                     seed: int = 0, settings: CostSettings = CostSettings()) -> pd.DataFrame:
    """How often each H wins when the fits are redone on bootstrap replicates of the data
    (:func:`choice_shares` of :func:`bootstrap_grids`). Refits that fail are left out of the
    shares and counted in ``attrs["n_failed"]``; GQAError if every one failed."""
    point, reps, failed = bootstrap_grids(model, target_loss, context, n_boot=n_boot, seed=seed,
                                          settings=settings)
    if not reps:
        raise GQAError(f"all {n_boot} bootstrap refits failed")
    out = choice_shares(point, reps)
    out.attrs["n_failed"] = failed
    return out
