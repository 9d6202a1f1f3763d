"""The explorers: recompute the cost-optimal configuration as the reader moves a slider.

One pure function and two front ends:

* :func:`explore` is the pure function behind the live version (the static one recomputes
  the last step of the same recipe in the browser): an :class:`ExplorerState` in, the
  recipe's recommendation, the baseline comparison and (optionally) "your model" out.
* :func:`explorer` is the live ipywidgets version for Jupyter and Colab; every change of a
  control calls :func:`explore` through gqa_lib (tens of ms).
* :func:`gqa_lib.book.explorer_html.static_explorer` is the version for the HTML book, with
  no kernel: an Altair chart whose sliders and dropdowns (Vega-Lite parameters) recompute
  Z = lam M^alpha + (1 - lam) C^beta and pick the optimum in the browser, from a table
  precomputed at build time.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from gqa_lib import cost
from gqa_lib.arch.config import ModelConfig, get_preset
from gqa_lib.errors import GQAError, check_choice
from gqa_lib.units import (format_context, format_count, format_flops, format_heads, format_saving,
                           format_z, HEADS_TITLE)

CONTEXTS = tuple(2**k for k in range(12, 21))  # 4K ... 1M
BASELINES = ("llama3", "none")
# The controls' grids. Every default of ExplorerState lies on its grid exactly (the paper's
# beta = 1/3 included; tests/test_widgets.py checks), so no front end snaps it elsewhere.
TARGETS = tuple(round(2.30 + 0.005 * k, 3) for k in range(181))          # 2.300 ... 3.200
LAMBDAS = tuple(round(0.05 * k, 2) for k in range(21))                   # 0 ... 1
EXPONENTS = (0.1, 0.2, 0.25, 0.3, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.7, 0.75, 0.8, 0.9, 1.0)
# The static explorer's targets: the rows of the paper's Table 4 and its headline target.
STATIC_TARGETS = (2.35, 2.4, 2.45, 2.5, 2.55, 2.6, 2.615, 2.65, 2.7, 2.75, 2.8, 2.85, 2.9,
                  2.95, 3.0)
BASELINE_LABEL = "Llama-3 (d/64, 8)"
# Tokens generated per request, for the serving figures: None = decode only (prompts cached)
OUTPUT_TOKENS = (None, 256, 1024, 4096, 16384, 131072)


def exponent_label(v: float) -> str:
    """1/3 -> '1/3', 0.25 -> '0.25'."""
    return {1 / 3: "1/3", 2 / 3: "2/3"}.get(v, f"{v:g}")


@functools.lru_cache(maxsize=4)
def loss_model(fit: str = "paper"):
    """The loss model the explorers use: the joint extrapolation of the paper's digitised
    losses (``"paper"``) or the seven measured curves only (``"paper-measured"``)."""
    from gqa_lib.evidence import paper

    check_choice("fit", fit, ("paper", "paper-measured"))
    return paper.joint_model() if fit == "paper" else paper.measured_model()


@dataclass(frozen=True)
class ExplorerState:
    """Everything the reader can set. ``your_model`` is any ModelConfig (a preset or one read
    from a Hugging Face config.json) to compare with the recipe's choice at its own loss."""

    context: int = 131_072
    target_loss: float = 2.615
    lam: float = 0.9
    alpha: float = 0.5
    beta: float = 1 / 3
    convention: str = "fig2"
    baseline: str = "llama3"
    fit: str = "paper"
    your_model: ModelConfig | None = None
    objective: str = "z"             # or a serving objective: latency, throughput, cost
    hardware: str | None = None      # an accelerator key (gqa hardware), for serving figures
    output_tokens: int | None = None  # tokens generated per request (None: decode only)

    def __post_init__(self):
        check_choice("baseline", self.baseline, BASELINES)
        check_choice("convention", self.convention, cost.COMPUTE_CONVENTIONS)
        if not (isinstance(self.context, (int, np.integer)) and self.context > 0):
            raise GQAError(f"context must be a positive number of tokens, got {self.context!r}")

    @property
    def settings(self):
        from gqa_lib.fit.recipe import CostSettings

        return CostSettings(lam=self.lam, alpha=self.alpha, beta=self.beta,
                            convention=self.convention, objective=self.objective,
                            hardware=self.hardware, output_tokens=self.output_tokens)


@dataclass(frozen=True)
class ExplorerResult:
    state: ExplorerState
    recommendation: Any  # recipe.Recommendation
    your_model: dict[str, Any] | None

    @property
    def best(self) -> dict[str, Any]:
        """The cheapest candidate H of the recipe (powers of two)."""
        return self.recommendation.best

    @property
    def baseline_wins(self) -> bool:
        """True when the Llama-3 baseline itself costs less than every candidate: the recipe
        then recommends the baseline, never something dearer than what it is compared with."""
        base = self.recommendation.baseline
        return bool(base is not None and base["z"] <= self.best["z"])

    @property
    def pick(self) -> dict[str, Any]:
        """What the explorer recommends: the best candidate, or the baseline when it wins."""
        return dict(self.recommendation.baseline) if self.baseline_wins else self.best

    @property
    def savings(self) -> dict[str, float] | None:
        """Savings (%) of the pick against the baseline (zero when the baseline wins)."""
        if self.recommendation.savings is None:
            return None
        return ({k: 0.0 for k in self.recommendation.savings} if self.baseline_wins
                else dict(self.recommendation.savings))

    def summary(self) -> str:
        """A few sentences for the page (plain text, also used in HTML)."""
        s, b = self.state, self.best
        head = f"At T = {format_context(s.context)} and target loss {s.target_loss:.3f}, "
        if s.objective != "z":  # a serving objective: name it, report it, not Z
            words = cost.OBJECTIVE_NAMES[s.objective]
            if s.objective == "throughput" and s.output_tokens is not None:
                words = "tokens/s per accelerator with each request's prefill counted"
            lines = [head + f"the pick by {words} is H = "
                     f"{format_heads(b['n_head'], b['n_kv_head'])} with N* = "
                     f"{format_count(b['params_non_embedding'])} non-embedding parameters "
                     f"(L = {b['n_layer']:.1f}, d = {b['d_model']:,.0f})"
                     + (" (H outside the measured configurations: extrapolated.)"
                        if b.get("extrapolated") else ".")]
            lines.append(_serving_line(self.recommendation))
            return "\n".join(lines + self._cautions())
        if self.baseline_wins:
            base = self.recommendation.baseline
            lines = [
                head + f"the Llama-3 GQA baseline (d/64, 8) of the same loss "
                f"(N = {format_count(base['params_non_embedding'])}, "
                f"{base['n_head']:.1f} query heads) costs less than every power-of-two "
                f"candidate (Z = {format_z(base['z'])}; the best candidate, "
                f"H = {format_heads(b['n_head'], b['n_kv_head'])}, has Z = {format_z(b['z'])}): "
                "the recipe keeps the baseline here."]
        else:
            lines = [
                head + "the cost-optimal configuration is H = "
                f"{format_heads(b['n_head'], b['n_kv_head'])} with N* = {format_count(b['params_non_embedding'])} "
                f"non-embedding parameters (L = {b['n_layer']:.1f}, d = {b['d_model']:.0f}): "
                f"memory {format_count(b['memory_values'])} values, compute "
                f"{format_flops(b['flops'])} ({cost.CONVENTION_LABELS[s.convention]}), "
                f"Z = {format_z(b['z'])}."
                + (" (H outside the measured configurations: extrapolated.)"
                   if b.get("extrapolated") else "")]
        sv = self.savings
        if sv and not self.baseline_wins:
            base = self.recommendation.baseline
            lines.append(
                f"Against Llama-3 GQA (d/64, 8) of the same loss "
                f"(N = {format_count(base['params_non_embedding'])}): "
                f"{format_saving(sv['memory_pct'], 'memory')}, "
                f"{format_saving(sv['flops_pct'], 'FLOPs')}, {format_saving(sv['z_pct'], 'Z')}.")
        if s.hardware is not None:
            lines.append(_serving_line(self.recommendation))
        y = self.your_model
        if y:
            same = (y["best_n_head"], y["best_n_kv_head"]) == (y["n_head"], y["n_kv_head"])
            heads_differ = y["d_head"] != y["law_d_head"]
            name = "" if y["name"] == "your config.json" else f" ({y['name']})"
            lines.append(
                f"Your model{name}, H = {format_heads(y['n_head'], y['n_kv_head'])} with "
                f"N = {format_count(y['params_non_embedding'])}, would reach loss "
                f"{y['predicted_loss']:.3f} by the fitted law"
                + (" (an extrapolation: outside the fitted range or head size)"
                   if y["extrapolated"] else "")
                + ". At that loss (not the target above) the recipe picks H = "
                f"{format_heads(y['best_n_head'], y['best_n_kv_head'])}"
                + (f" of {y['law_d_head']} dimensions" if heads_differ else "")
                + (", your head counts" if same else "")
                + f" at N* = {format_count(y['best_params_non_embedding'])}"
                + ((f" (yours are of {y['d_head']} dimensions: the saving comes mostly from "
                    "the head size)") if same and heads_differ else
                   " (the saving is in the shape, not the heads)" if same else "")
                + f": {format_saving(y['memory_pct'], 'memory')} and "
                f"{format_saving(y['z_pct'], 'Z')} than your model at T = {format_context(s.context)}.")
        return "\n".join(lines + self._cautions())

    def _cautions(self) -> list[str]:
        """The recipe's warnings (a context outside its losses', a size or a pick far from
        the data), one line each, as `gqa optimize` prints them."""
        return [f"Caution: {w[0].upper()}{w[1:]}." for w in self.recommendation.warnings]

    def table(self) -> pd.DataFrame:
        """The frontier: every reachable H with N*, shape, M, C, Z; best first by the
        objective the state minimises (Z, or the serving objective)."""
        cand = self.recommendation.candidates
        key = "objective" if "objective" in cand else "z"
        return cand.sort_values(key).reset_index(drop=True)


def _hardware_label(key: str) -> str:
    """'NVIDIA H200 SXM 141GB (calibrated)': the menu's words for an accelerator key."""
    from gqa_lib.arch.hardware import get_accelerator

    return f"{get_accelerator(key).name} ({cost.basis(key)})"


def _serving_line(rec) -> str:
    """The pick (and the baseline) in serving units on the chosen accelerator."""
    b, hw = rec.best, rec.settings.hardware
    st = rec.settings
    note = cost.basis_note(hw, st.calibration, flops_efficiency=st.flops_efficiency,
                           bandwidth_efficiency=st.bandwidth_efficiency)
    rate = ("decode tokens/s (prompts already cached)" if st.output_tokens is None else
            f"generated tokens/s (requests of a {format_context(rec.context)}-token prompt "
            f"and {st.output_tokens:,} tokens out, prefill counted)")
    line = (f"On {hw.name} ({note}): "
            f"{b['tokens_per_s']:,.0f} {rate} per accelerator at batch "
            f"{b['max_batch']:.0f}, {1e3 * b['latency_s']:.3g} ms per token at batch 1, "
            f"prefill {b['prefill_s']:.3g} s.")
    if rec.baseline is not None:
        line += (f" Llama-3 GQA: {rec.baseline['tokens_per_s']:,.0f} tokens/s "
                 f"(x{rec.savings['tokens_per_s_ratio']:.2f} for the pick).")
    return line


def explore(state: ExplorerState) -> ExplorerResult:
    """Run the recipe for one explorer state (and cost "your model" if given)."""
    from gqa_lib.fit.recipe import optimize

    model = loss_model(state.fit)
    base = None if state.baseline == "none" else state.baseline
    rec = optimize(model, state.target_loss, state.context, baseline=base,
                   settings=state.settings)
    mine = _your_model(model, state) if state.your_model is not None else None
    return ExplorerResult(state, rec, mine)


def _your_model(model, state: ExplorerState) -> dict[str, Any]:
    from gqa_lib.fit.recipe import optimize

    m = state.your_model
    N = float(cost.params_non_embedding(m, include_norms=False))
    loss = float(np.asarray(model.loss(N, m.n_head, m.n_kv_head)))
    M = float(cost.inference_memory_values(m, state.context, include_norms=False))
    C = float(cost.compute_flops(m, state.context, state.convention))
    s = state.settings
    Z = float(cost.hardware_cost(M, C, lam=s.lam, alpha=s.alpha, beta=s.beta))
    try:
        rec = optimize(model, loss, state.context, settings=s)
    except GQAError as e:  # the loss is your model's, not a target the reader set
        raise GQAError(f"your model ({format_count(N)} non-embedding parameters) would reach "
                       f"a loss of {loss:.3f} by the fitted law, and no candidate the recipe "
                       f"builds reaches that loss ({str(e).split(';')[0]})") from None
    b = rec.best
    lo, hi = float(np.min(model.fit.N)), float(np.max(model.fit.N))  # sizes the fit measured
    return {
        "name": m.name or "custom", "n_head": m.n_head, "n_kv_head": m.n_kv_head,
        "d_head": m.d_head, "law_d_head": model.d_head,
        "params_non_embedding": N, "predicted_loss": loss, "memory_values": M, "flops": C,
        "z": Z, "best_n_head": int(b["n_head"]), "best_n_kv_head": int(b["n_kv_head"]),
        "best_params_non_embedding": float(b["params_non_embedding"]),
        "memory_pct": 100 * (1 - b["memory_values"] / M), "flops_pct": 100 * (1 - b["flops"] / C),
        "z_pct": 100 * (1 - b["z"] / Z),
        "extrapolated": bool(m.d_head != model.d_head or not lo <= N <= hi
                             or bool(np.asarray(model.extrapolated(m.n_head, m.n_kv_head)))),
    }


# ----- live: ipywidgets ---------------------------------------------------------------------
def explorer(state: ExplorerState | None = None):
    """The live explorer (Jupyter, Colab): controls on top, the recommendation below."""
    import ipywidgets as w

    state = state or ExplorerState(hardware="h200")  # a named accelerator, calibrated
    style = {"description_width": "150px"}
    layout = w.Layout(width="100%", max_width="520px")
    def pick(name, options, value, label=lambda v: f"{v:g}"):
        _on_grid(name, options, value, label)
        return w.SelectionSlider(options=[(label(v), v) for v in options], value=value,
                                 description=name, style=style, layout=layout)

    hardware = _hardware_keys()
    _on_grid("accelerator", [*hardware, None], state.hardware, str)
    _on_grid("tokens out", OUTPUT_TOKENS, state.output_tokens, str)
    for name, options, value in (("compute convention", cost.COMPUTE_CONVENTIONS,
                                  state.convention), ("baseline", BASELINES, state.baseline),
                                 ("minimise", cost.OBJECTIVES[:3], state.objective)):
        _on_grid(name, list(options), value, str)

    ctl = {
        "context": pick("context T", CONTEXTS, state.context, format_context),
        "target_loss": pick("target loss (nats)", TARGETS, state.target_loss, "{:.3f}".format),
        "lam": pick("lambda (memory weight)", LAMBDAS, state.lam, "{:.2f}".format),
        "alpha": pick("alpha (M exponent)", EXPONENTS, state.alpha, exponent_label),
        "beta": pick("beta (C exponent)", EXPONENTS, state.beta, exponent_label),
        "convention": w.Dropdown(options=list(cost.COMPUTE_CONVENTIONS), value=state.convention,
                                 description="compute convention", style=style),
        "baseline": w.Dropdown(options=list(BASELINES), value=state.baseline,
                               description="baseline", style=style),
        "objective": w.Dropdown(options=list(cost.OBJECTIVES[:3]), value=state.objective,
                                description="minimise", style=style),
        "hardware": w.Dropdown(options=[(_hardware_label(k), k) for k in hardware]
                               + [("none (no serving figures)", None)],
                               value=state.hardware, description="accelerator", style=style),
        "output_tokens": w.Dropdown(options=[("decode only (prompts cached)", None)]
                                    + [(f"{g:,} per request, prefill counted", g)
                                       for g in OUTPUT_TOKENS[1:]],
                                    value=state.output_tokens, description="tokens out",
                                    style=style),
    }
    yours = w.Textarea(placeholder="Paste a Hugging Face config.json, or a preset name "
                       "(e.g. llama-3.2-1b), to compare your model", layout=w.Layout(
                           width="520px", height="70px"), description="your model",
                       style=style)
    out = w.HTML()

    def update(*_):
        try:
            s = dataclasses.replace(state, your_model=parse_your_model(yours.value),
                                    **{k: c.value for k, c in ctl.items()})
            out.value = result_html(explore(s))
        except GQAError as e:
            out.value = f"<p style='color:#b00'>{html.escape(str(e))}</p>"

    for c in [*ctl.values(), yours]:
        c.observe(update, names="value")
    update()
    box = w.VBox([*ctl.values(), yours, out])
    box.controls, box.your_model, box.result = ctl, yours, out  # handles for tests and users
    return box


def _on_grid(name: str, options: Sequence[Any], value: Any, label: Any) -> None:
    """A live control takes only its own values (ipywidgets raises a TraitError naming none
    otherwise): a state off the grid is refused naming the control and its values."""
    if value in options:
        return
    shown = [label(v) if v is not None else "none" for v in options]
    choices = ", ".join(shown) if len(shown) <= 12 else \
        f"{shown[0]} to {shown[-1]} in {len(shown)} steps ({shown[0]}, {shown[1]}, ...)"
    raise GQAError(f"the live explorer's {name} control has no value {value!r}: it offers "
                   f"{choices} (explore() takes any value)")


def show_explorer(state: ExplorerState | None = None):
    """In Jupyter or Colab, the live explorer. In the HTML book (no kernel behind the page),
    its default answer as static HTML with a pointer to the live version."""
    from IPython.display import HTML

    from gqa_lib.book.render import RENDERER, RENDERER_ENV

    import os

    if os.environ.get(RENDERER_ENV) != RENDERER:
        return explorer(state)
    note = ("<p><em>This is the explorer's default answer, computed when the book was built. "
            "Open this page in Colab (rocket icon above) or Jupyter to move the controls; "
            "the static chart above works right here.</em></p>")
    return HTML(note + result_html(explore(state or ExplorerState())))


def parse_your_model(text: str) -> ModelConfig | None:
    """'' -> None; a preset name -> that preset; otherwise the text of a config.json."""
    if not isinstance(text, (str, type(None))):
        raise GQAError(f"your model: a preset name or a config.json's text, got "
                       f"{type(text).__name__}")
    text = (text or "").strip().lstrip("\ufeff").strip()  # a pasted file's byte-order mark
    if not text:
        return None
    if text.startswith("["):
        raise GQAError("your model: expected a JSON object (a config.json), got a list")
    if not text.startswith("{"):
        if len(text) > 60 or any(ch in text for ch in '{}":\n'):
            raise GQAError("your model: neither a preset name (`gqa models` lists them) nor a "
                           "config.json (a JSON object, starting with '{')")
        return get_preset(text)
    from gqa_lib.arch.hf import from_hf_config

    try:
        data = json.loads(text)
    except ValueError as e:
        raise GQAError(f"your model: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise GQAError("your model: expected a JSON object (a config.json)")
    cfg = from_hf_config(data)
    return cfg if "_name_or_path" in data else dataclasses.replace(cfg, name="your config.json")


def result_html(res: ExplorerResult) -> str:
    """The recommendation as HTML: the summary, then the frontier table (best first), with
    the baseline as its own row when there is one. Styles are inline, so ipywidgets 7 and 8
    show the same readable table. With an accelerator, tokens/s and latency columns too."""
    from gqa_lib.book.tables import show

    serving = [c for c in ("tokens_per_s", "latency_s") if c in res.table()]
    cols = ["n_head", "n_kv_head", "params_non_embedding", "n_layer", "d_model",
            "memory_values", "flops", "z", *serving, "extrapolated"]
    df = res.table()[cols].head(8).copy()
    df["H"] = [format_heads(h, k) + (" (pick)" if i == 0 else "")
               for i, (h, k) in enumerate(zip(df.n_head, df.n_kv_head))]
    base = res.recommendation.baseline
    if base is not None:
        row = {**{c: base[c] for c in cols if c in base}, "extrapolated": False,
               "H": BASELINE_LABEL}
        df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
        if res.state.objective == "z":
            df = df.sort_values("z")
    if serving:
        df["latency_s"] = 1e3 * df["latency_s"]
    table = show(df, ["H", "params_non_embedding", "n_layer", "d_model", "memory_values",
                      "flops", "z", *serving, "extrapolated"],
                 headers={"H": HEADS_TITLE, "tokens_per_s": "tokens/s per accelerator",
                          "latency_s": "ms/token (batch 1)"},
                 formats={"tokens_per_s": "{:,.0f}".format,
                          "latency_s": "{:.3g}".format})
    paras = "".join(f"<p>{html.escape(p)}</p>" for p in res.summary().split("\n"))
    return paras + table._repr_html_()


def _hardware_keys() -> list[str]:
    from gqa_lib.arch.hardware import accelerators

    return list(accelerators())
