"""The explorers: recompute the cost-optimal configuration as the reader moves a slider.

One pure function and two front ends:

* :func:`explore` is the pure function behind the live version (the static one recomputes
  the last step of the same recipe in the browser): an :class:`ExplorerState` in, the
  recipe's recommendation, the baseline comparison and (optionally) "your model" out.
* :func:`explorer` is the live ipywidgets version for Jupyter and Colab; every change of a
  control calls :func:`explore` through gqa_lib (tens of ms).
* :func:`static_explorer` is the version for the HTML book, with no kernel: an Altair chart
  whose sliders and dropdowns (Vega-Lite parameters) recompute Z = lam M^alpha +
  (1 - lam) C^beta and pick the optimum in the browser, from a table precomputed at build
  time by :func:`static_explorer_table`.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gqa_lib import cost
from gqa_lib.arch.config import ModelConfig, get_preset
from gqa_lib.errors import GQAError, check_choice
from gqa_lib.units import format_context, format_count, format_flops

CONTEXTS = tuple(2**k for k in range(12, 21))  # 4K ... 1M
BASELINES = ("llama3", "none")


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
                            hardware=self.hardware)


@dataclass(frozen=True)
class ExplorerResult:
    state: ExplorerState
    recommendation: Any  # recipe.Recommendation
    your_model: dict[str, Any] | None

    @property
    def best(self) -> dict[str, Any]:
        return self.recommendation.best

    def summary(self) -> str:
        """A few sentences for the page (plain text, also used in HTML)."""
        s, b = self.state, self.best
        lines = [
            f"At T = {format_context(s.context)} and target loss {s.target_loss:.3f}, the "
            f"cost-optimal configuration is H = ({b['n_head']}, {b['n_kv_head']}) with "
            f"N* = {format_count(b['params_non_embedding'])} non-embedding parameters "
            f"(L = {b['n_layer']:.1f}, d = {b['d_model']:.0f}): memory "
            f"{format_count(b['memory_values'])} values, compute {format_flops(b['flops'])} "
            f"({s.convention}), Z = {b['z']:.4g}."
            + (" (H outside the measured configurations: extrapolated.)"
               if b.get("extrapolated") else "")]
        sv = self.recommendation.savings
        if sv:
            base = self.recommendation.baseline
            lines.append(
                f"Against Llama-3 GQA (d/64, 8) of the same loss "
                f"(N = {format_count(base['params_non_embedding'])}): "
                f"{_change(sv['memory_pct'], 'memory')}, {_change(sv['flops_pct'], 'FLOPs')}, "
                f"{_change(sv['z_pct'], 'Z')}.")
        if s.hardware is not None:
            lines.append(_serving_line(self.recommendation))
        y = self.your_model
        if y:
            lines.append(
                f"Your model {y['name']} (H = ({y['n_head']}, {y['n_kv_head']}), "
                f"N = {format_count(y['params_non_embedding'])}) sits at loss "
                f"{y['predicted_loss']:.3f} on the fitted law"
                + (" (an extrapolation: outside the fitted range or head size)"
                   if y["extrapolated"] else "")
                + f"; at that loss the recipe picks H = ({y['best_n_head']}, "
                f"{y['best_n_kv_head']}): {_change(y['memory_pct'], 'memory')} and "
                f"{_change(y['z_pct'], 'Z')} than your model at T = {format_context(s.context)}.")
        return "\n".join(lines)

    def table(self) -> pd.DataFrame:
        """The frontier: every reachable H with N*, shape, M, C, Z; best first."""
        df = self.recommendation.candidates.sort_values("z").reset_index(drop=True)
        return df


def _serving_line(rec) -> str:
    """The pick (and the baseline) in serving units on the chosen accelerator."""
    b, hw = rec.best, rec.settings.hardware
    line = (f"On {hw.name} (datasheet peaks, not measured; roofline at "
            f"{rec.settings.bandwidth_efficiency:.0%} of bandwidth): "
            f"{b['tokens_per_s']:,.0f} generated tokens/s per accelerator at batch "
            f"{b['max_batch']:.0f}, {1e3 * b['latency_s']:.3g} ms per token at batch 1, "
            f"prefill {b['prefill_s']:.3g} s.")
    if rec.baseline is not None:
        line += (f" Llama-3 GQA: {rec.baseline['tokens_per_s']:,.0f} tokens/s "
                 f"(x{rec.savings['tokens_per_s_ratio']:.2f} for the pick).")
    return line


def _change(saving_pct: float, noun: str) -> str:
    """12.3 -> '12.3% less memory'; -4.0 -> '4.0% more memory'."""
    return f"{abs(saving_pct):.1f}% {'less' if saving_pct >= 0 else 'more'} {noun}"


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
    rec = optimize(model, loss, state.context, settings=s)
    b = rec.best
    lo, hi = float(np.min(model.fit.N)), float(np.max(model.fit.N))  # sizes the fit measured
    return {
        "name": m.name or "custom", "n_head": m.n_head, "n_kv_head": m.n_kv_head,
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

    state = state or ExplorerState()
    style = {"description_width": "150px"}
    layout = w.Layout(width="520px")
    ctl = {
        "context": w.SelectionSlider(options=[(format_context(t), t) for t in CONTEXTS],
                                     value=state.context, description="context T", style=style,
                                     layout=layout),
        "target_loss": w.FloatSlider(value=state.target_loss, min=2.30, max=3.20, step=0.005,
                                     readout_format=".3f", description="target loss (nats)",
                                     style=style, layout=layout),
        "lam": w.FloatSlider(value=state.lam, min=0.0, max=1.0, step=0.05,
                             description="lambda (memory weight)", style=style, layout=layout),
        "alpha": w.FloatSlider(value=state.alpha, min=0.1, max=1.0, step=0.05,
                               description="alpha (M exponent)", style=style, layout=layout),
        "beta": w.FloatSlider(value=state.beta, min=0.1, max=1.0, step=0.05,
                              description="beta (C exponent)", style=style, layout=layout),
        "convention": w.Dropdown(options=list(cost.COMPUTE_CONVENTIONS), value=state.convention,
                                 description="compute convention", style=style),
        "baseline": w.Dropdown(options=list(BASELINES), value=state.baseline,
                               description="baseline", style=style),
        "objective": w.Dropdown(options=list(cost.OBJECTIVES[:3]), value=state.objective,
                                description="minimise", style=style),
        "hardware": w.Dropdown(options=[("none", None)] + [(k, k) for k in _hardware_keys()],
                               value=state.hardware, description="accelerator", style=style),
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
    text = (text or "").strip()
    if not text:
        return None
    if not text.startswith("{"):
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
    """The recommendation as HTML: the summary, then the frontier table (best first)."""
    serving = [c for c in ("tokens_per_s", "latency_s") if c in res.table()]
    df = res.table()[["n_head", "n_kv_head", "params_non_embedding", "n_layer", "d_model",
                      "memory_values", "flops", "z", *serving, "extrapolated"]].head(8).copy()
    if serving:
        df["tokens_per_s"] = df["tokens_per_s"].map("{:,.0f}".format)
        df["latency_s"] = (1e3 * df["latency_s"]).map("{:.3g}".format)
        df = df.rename(columns={"tokens_per_s": "tokens/s per accelerator",
                                "latency_s": "ms/token (batch 1)"})
    df["params_non_embedding"] = df["params_non_embedding"].map(format_count)
    df["memory_values"] = df["memory_values"].map(format_count)
    df["flops"] = df["flops"].map(format_flops)
    df["n_layer"] = df["n_layer"].map("{:.1f}".format)
    df["d_model"] = df["d_model"].map("{:.0f}".format)
    df["z"] = df["z"].map("{:.5g}".format)
    paras = "".join(f"<p>{html.escape(p)}</p>" for p in res.summary().split("\n"))
    return paras + df.to_html(index=False, border=0)


# ----- static: Vega-Lite parameters in the HTML book ------------------------------------------
def static_explorer_table(fit: str = "paper", contexts=CONTEXTS,
                          targets=tuple(np.round(np.arange(2.35, 3.001, 0.05), 2)),
                          hardware=()) -> pd.DataFrame:
    """Every (context, target, H) with N*, memory (values) and C under each convention, to 5
    significant digits: what the static explorer recomputes Z from in the browser.
    Unreachable H (target at or below their floor) are dropped. For each accelerator in
    ``hardware``, also ``tps_<key>`` (tokens/s per accelerator at the largest batch) and
    ``lat_<key>`` (seconds per token at batch 1), keys with '-' as '_'
    (:func:`static_serving_explorer` reads them)."""
    from gqa_lib.fit.recipe import CostSettings, cost_grid

    model = loss_model(fit)
    frames = []
    for conv in cost.COMPUTE_CONVENTIONS:
        g = cost_grid(model, np.asarray(targets), np.asarray(contexts, float),
                      settings=CostSettings(convention=conv))
        if not frames:
            base = g
        frames.append(g.values["flops"])
    i, j, c = np.meshgrid(np.arange(len(targets)), np.arange(len(contexts)),
                          np.arange(len(base.configs)), indexing="ij")
    sig = lambda a: np.asarray([float(f"{v:.5g}") for v in np.ravel(a)])  # noqa: E731
    df = pd.DataFrame({
        "target_loss": base.target_loss[i].ravel(),
        "log2_context": np.log2(base.context[j]).ravel().astype(int),
        "n_head": np.array([h for h, _ in base.configs])[c].ravel(),
        "n_kv_head": np.array([k for _, k in base.configs])[c].ravel(),
        "params_non_embedding": base.values["params_non_embedding"].ravel(),
        "memory_values": base.values["memory_values"].ravel(),
        **{f"flops_{conv}": f.ravel() for conv, f in zip(cost.COMPUTE_CONVENTIONS, frames)},
        "extrapolated": base.extrapolated[c].ravel().astype(int),
    })
    serving_cols = []
    for hw in hardware:  # the serving figures on each accelerator (independent of convention)
        g = cost_grid(model, np.asarray(targets), np.asarray(contexts, float),
                      settings=CostSettings(hardware=hw))
        key = _column_key(g.settings.hardware.key)
        for name, col in (("tps", "tokens_per_s"), ("lat", "latency_s")):
            df[f"{name}_{key}"] = g.values[col].ravel()
            serving_cols.append(f"{name}_{key}")
    df = df[np.isfinite(df["memory_values"])].reset_index(drop=True)
    for col in ["params_non_embedding", "memory_values", *serving_cols,
                *(f"flops_{conv}" for conv in cost.COMPUTE_CONVENTIONS)]:
        df[col] = sig(df[col])  # 5 significant digits: the chart's data stays small
    df["H"] = "(" + df["n_head"].astype(str) + "," + df["n_kv_head"].astype(str) + ")"
    return df.drop(columns="n_kv_head")


def static_explorer(table: pd.DataFrame):
    """An Altair chart: Z of every H at the chosen context and target, recomputed in the
    browser from sliders (lambda, alpha, beta, log2 T, target) and a convention dropdown;
    the cheapest H is highlighted and named in the title line above the bars."""
    import altair as alt

    from gqa_lib.book.render import mark_explorer

    targets = sorted(table["target_loss"].unique())
    p_ctx = alt.param("log2T", value=17, bind=alt.binding_range(
        min=12, max=20, step=1, name="log2 context T (17 = 128K) "))
    p_target = alt.param("target", value=2.6, bind=alt.binding_range(
        min=min(targets), max=max(targets), step=0.05, name="target loss (nats) "))
    p_lam = alt.param("lam", value=0.9, bind=alt.binding_range(min=0, max=1, step=0.05,
                                                                 name="lambda "))
    p_alpha = alt.param("alpha", value=0.5, bind=alt.binding_range(min=0.1, max=1, step=0.05,
                                                                     name="alpha "))
    p_beta = alt.param("beta", value=round(1 / 3, 3), bind=alt.binding_range(
        min=0.1, max=1, step=0.01, name="beta "))
    p_conv = alt.param("convention", value="fig2", bind=alt.binding_select(
        options=list(cost.COMPUTE_CONVENTIONS), name="compute convention "))
    flops = ("convention == 'per_token' ? datum.flops_per_token : convention == 'fig1' ? "
             "datum.flops_fig1 : convention == 'prefill' ? datum.flops_prefill : "
             "datum.flops_fig2")
    base = alt.Chart(table).transform_filter(
        "datum.log2_context == log2T && abs(datum.target_loss - target) < 0.001"
    ).transform_calculate(
        C=flops, Z=f"lam * pow(datum.memory_values, alpha) + (1 - lam) * pow({flops}, beta)"
    ).transform_window(rank="rank()", sort=[alt.SortField("Z", order="ascending")])
    bars = base.mark_bar().encode(
        x=alt.X("H:N", title="(n_head, n_kv_head)", sort=alt.SortField("n_head")),
        y=alt.Y("Z:Q", title="Z = lam M^alpha + (1-lam) C^beta (M in values, C in FLOPs)",
                scale=alt.Scale(zero=False)),
        color=alt.condition("datum.rank == 1", alt.value("#d62728"), alt.value("#9ecae1")),
        tooltip=["H:N", alt.Tooltip("params_non_embedding:Q", title="N* (params)",
                                    format=".3~s"),
                 alt.Tooltip("memory_values:Q", title="M (values)", format=".3~s"),
                 alt.Tooltip("C:Q", title="C (FLOPs)", format=".3~s"),
                 alt.Tooltip("Z:Q", format=".5~g"), "extrapolated:N"],
    )
    text = base.transform_filter("datum.rank == 1").mark_text(
        align="left", x=5, y=-12, fontSize=13, fontWeight="bold"
    ).encode(text=alt.Text("label:N")).transform_calculate(
        label="'optimum: H = ' + datum.H + ', N* = ' + format(datum.params_non_embedding / 1e9, "
              "'.3~r') + ' B non-embedding parameters' + (datum.extrapolated ? "
              "' (extrapolated)' : '')"
    ).properties(name="optimum")
    chart = alt.layer(bars, text).add_params(
        p_ctx, p_target, p_lam, p_alpha, p_beta, p_conv).properties(width=560, height=280)
    return mark_explorer(chart, "optimum")


# ----- serving: the accelerator and objective choice ----------------------------------------
def _hardware_keys() -> list[str]:
    from gqa_lib.arch.hardware import accelerators

    return list(accelerators())


def _column_key(key: str) -> str:
    return key.replace("-", "_")


def static_serving_explorer(table: pd.DataFrame, hardware: tuple[str, ...]):
    """The static explorer with an objective and an accelerator dropdown: each H's objective
    relative to the best one (1 = the pick) at the chosen context and target, from a
    :func:`static_explorer_table` built with the same ``hardware``. Objectives: Z (fig2
    convention, lambda 0.9, the paper's exponents), decode latency at batch 1, tokens/s per
    accelerator at the largest batch."""
    import altair as alt

    from gqa_lib.book.render import mark_explorer

    keys = [_column_key(h) for h in hardware]
    missing = [f"tps_{k}" for k in keys if f"tps_{k}" not in table]
    if not keys or missing:
        raise GQAError(f"the table lacks serving columns {missing or 'for any accelerator'}; "
                       "build it with static_explorer_table(hardware=...)")
    targets = sorted(table["target_loss"].unique())
    p_ctx = alt.param("log2T", value=17, bind=alt.binding_range(
        min=12, max=20, step=1, name="log2 context T (17 = 128K) "))
    p_target = alt.param("target", value=2.6, bind=alt.binding_range(
        min=min(targets), max=max(targets), step=0.05, name="target loss (nats) "))
    p_obj = alt.param("objective", value="throughput", bind=alt.binding_select(
        options=["z", "latency", "throughput"], name="minimise "))
    p_hw = alt.param("hw", value=keys[0], bind=alt.binding_select(
        options=keys, name="accelerator "))

    def pick(prefix):
        expr = f"datum.{prefix}_{keys[-1]}"
        for k in reversed(keys[:-1]):
            expr = f"hw == '{k}' ? datum.{prefix}_{k} : {expr}"
        return f"({expr})"

    z = "0.9 * pow(datum.memory_values, 0.5) + 0.1 * pow(datum.flops_fig2, 1 / 3)"
    score = (f"objective == 'z' ? {z} : objective == 'latency' ? {pick('lat')} : "
             f"({pick('tps')} > 0 ? 1 / {pick('tps')} : 1 / 0)")
    base = alt.Chart(table).transform_filter(
        "datum.log2_context == log2T && abs(datum.target_loss - target) < 0.001"
    ).transform_calculate(score=score, tps=pick("tps"), lat_ms=f"1000 * {pick('lat')}"
    ).transform_filter("isFinite(datum.score)").transform_joinaggregate(
        best="min(score)").transform_calculate(ratio="datum.score / datum.best"
    ).transform_window(rank="rank()", sort=[alt.SortField("score", order="ascending")])
    bars = base.mark_bar().encode(
        x=alt.X("H:N", title="(n_head, n_kv_head)", sort=alt.SortField("n_head")),
        y=alt.Y("ratio:Q", title="objective relative to the pick (ratio, 1 = best)",
                scale=alt.Scale(type="log")),
        color=alt.condition("datum.rank == 1", alt.value("#d62728"), alt.value("#9ecae1")),
        tooltip=["H:N", alt.Tooltip("params_non_embedding:Q", title="N* (params)",
                                    format=".3~s"),
                 alt.Tooltip("tps:Q", title="tokens/s per accelerator", format=",.0f"),
                 alt.Tooltip("lat_ms:Q", title="ms/token, batch 1", format=".3~g"),
                 alt.Tooltip("ratio:Q", format=".3~g"), "extrapolated:N"],
    )
    text = base.transform_filter("datum.rank == 1").mark_text(
        align="left", x=5, y=-12, fontSize=13, fontWeight="bold"
    ).encode(text=alt.Text("label:N")).transform_calculate(
        label="'pick: H = ' + datum.H + ', N* = ' + format(datum.params_non_embedding / 1e9, "
              "'.3~r') + ' B, ' + format(datum.tps, ',.0f') + ' tokens/s per accelerator'"
              " + (datum.extrapolated ? ' (extrapolated)' : '')"
    ).properties(name="optimum")
    chart = alt.layer(bars, text).add_params(p_ctx, p_target, p_obj, p_hw).properties(
        width=560, height=280)
    return mark_explorer(chart, "optimum")
