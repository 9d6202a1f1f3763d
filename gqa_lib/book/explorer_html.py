"""The explorers drawn into the HTML book: no kernel, the last step of the recipe recomputed
in the browser.

:func:`static_explorer` is an Altair chart whose sliders and dropdowns (Vega-Lite
parameters) recompute Z = lam M^alpha + (1 - lam) C^beta and pick the optimum, from a table
precomputed at build time by :func:`static_explorer_table`; :func:`static_serving_explorer`
does the same for the serving objectives on named accelerators. The live version and the
pure function behind both are in :mod:`gqa_lib.book.widgets`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gqa_lib import cost
from gqa_lib.book.figures import number_expr, tip
from gqa_lib.book.widgets import (_hardware_label, BASELINE_LABEL, CONTEXTS, EXPONENTS,
                                  ExplorerState, exponent_label, loss_model, STATIC_TARGETS)
from gqa_lib.errors import GQAError
from gqa_lib.units import format_context, format_heads_each, HEADS_TITLE
# N* as the tables write it ("1.83 B")
N_SHOWN = number_expr("count", "datum.params_non_embedding")


def _context_caution() -> str:
    """A Vega expression: a second line for the optimum's label where the chosen context
    (parameter ``log2T``) lies outside the contexts the paper's losses come from (both
    explorer fits are the paper's), '' inside them."""
    from gqa_lib.evidence.paper import PAPER_LOSS_CONTEXTS

    lo, hi = PAPER_LOSS_CONTEXTS
    return (f"(log2T < {int(np.log2(lo))} || log2T > {int(np.log2(hi))} ? '\\n(the losses "
            f"cover {format_context(lo)} to {format_context(hi)}: carried here unchecked)' : '')")


def _optimum_label(base: Any, label: str) -> Any:
    """The text layer naming the ranked-first row of an explorer (Vega expression ``label``),
    named "optimum": what :func:`~gqa_lib.book.render.mark_explorer` and the browser tests
    read back. ``base``: the explorer's ranked Altair chart."""
    import altair as alt

    return base.transform_filter("datum.rank == 1").mark_text(  # "\n" starts a line; the
        align="left", baseline="bottom", x=5, y=-6, fontSize=13, fontWeight="bold",  # last
        lineBreak="\n").encode(text=alt.Text("label:N")).transform_calculate(  # sits above
        label=label).properties(name="optimum")  # the plot


# ----- static: Vega-Lite parameters in the HTML book ------------------------------------------
def _check_table(table: Any) -> None:
    """An explorer's table is :func:`static_explorer_table`'s: rows, and its key columns."""
    need = ["target_loss", "log2_context", "H", "n_head", "params_non_embedding"]
    if not isinstance(table, pd.DataFrame) or table.empty or any(c not in table for c in need):
        raise GQAError("the explorer needs static_explorer_table()'s rows (columns "
                       f"{', '.join(need)}); got {type(table).__name__}"
                       + (" without rows" if isinstance(table, pd.DataFrame) and table.empty
                          else ""))


def _numbers(name: str, values: Any) -> np.ndarray:
    """A non-empty list of finite numbers, or a GQAError naming ``name``."""
    if isinstance(values, (str, bytes)) or not np.iterable(values):
        raise GQAError(f"{name} must be a list of numbers, got {values!r}")
    try:
        out = np.asarray(list(values), float)
    except (TypeError, ValueError):
        raise GQAError(f"{name} must be a list of numbers, got {values!r}") from None
    if out.size == 0 or not np.all(np.isfinite(out)):
        raise GQAError(f"{name} must be a non-empty list of finite numbers, got {values!r}")
    return out


def static_explorer_table(fit: str = "paper", contexts=CONTEXTS, targets=STATIC_TARGETS,
                          hardware=(), output_tokens=()) -> pd.DataFrame:
    """Every (context, target, H) with N*, memory (values) and C under each convention, to 5
    significant digits: what the static explorer recomputes Z from in the browser.
    Unreachable H (target at or below their floor) are dropped. The Llama-3 baseline of the
    same loss is a row of its own (``H`` = :data:`BASELINE_LABEL`, ``baseline`` = 1), so the
    chart can never recommend something dearer than the baseline it is compared with. For
    each accelerator in ``hardware``, also ``tps_<key>`` (tokens/s per accelerator at the
    largest batch, decode only) and ``lat_<key>`` (seconds per token at batch 1), keys with
    '-' as '_', and for each G in ``output_tokens`` ``tps_<key>_out<G>``: generated tokens/s
    per accelerator when each request prefills its context-long prompt and generates G
    tokens (:func:`gqa_lib.cost.request_seconds`); :func:`static_serving_explorer` reads
    them."""
    from gqa_lib.fit.recipe import CostSettings, baseline_costs, cost_grid

    model = loss_model(fit)
    t, T = _numbers("targets", targets), _numbers("contexts", contexts)
    if not all(v >= 1 and float(v).is_integer() and int(v) & (int(v) - 1) == 0 for v in T):
        # the chart keys a context by log2 T: 65,536 and 100,000 would share a key
        raise GQAError(f"contexts must be powers of two (the chart's menu keys them by log2 "
                       f"T), got {', '.join(f'{v:g}' for v in T)}")
    frames, base_flops = [], {}
    for conv in cost.COMPUTE_CONVENTIONS:
        s = CostSettings(convention=conv)
        g = cost_grid(model, t, T, settings=s)
        bc = baseline_costs(model, t, T, settings=s)
        if not frames:
            grid, b = g, bc
        frames.append(g.values["flops"])
        base_flops[conv] = bc["flops"]
    i, j, c = np.meshgrid(np.arange(len(t)), np.arange(len(T)),
                          np.arange(len(grid.configs)), indexing="ij")
    df = pd.DataFrame({
        "target_loss": grid.target_loss[i].ravel(),
        "log2_context": np.log2(grid.context[j]).ravel().astype(int),
        "n_head": np.array([h for h, _ in grid.configs])[c].ravel(),
        "n_kv_head": np.array([k for _, k in grid.configs])[c].ravel(),
        "params_non_embedding": grid.values["params_non_embedding"].ravel(),
        "memory_values": grid.values["memory_values"].ravel(),
        **{f"flops_{conv}": f.ravel() for conv, f in zip(cost.COMPUTE_CONVENTIONS, frames)},
        "extrapolated": grid.extrapolated[c].ravel().astype(int),
    })
    serving_cols, base_serving = [], {}
    for hw in hardware:  # the serving figures on each accelerator (independent of convention)
        for G in (None, *output_tokens):  # decode only, then with each request's prompt
            s = CostSettings(hardware=hw, output_tokens=G)
            g = cost_grid(model, t, T, settings=s)
            bs = baseline_costs(model, t, T, settings=s)
            key = _column_key(g.settings.hardware.key)
            names = ((("tps", "tokens_per_s"), ("lat", "latency_s")) if G is None else
                     ((f"tps_{key}_out{G}", "tokens_per_s"),))
            for name, col in names:
                name = f"{name}_{key}" if G is None else name
                df[name] = g.values[col].ravel()
                base_serving[name] = np.asarray(bs[col]).ravel()
                serving_cols.append(name)
    df = df[np.isfinite(df["memory_values"])]
    df["H"] = format_heads_each(df["n_head"], df["n_kv_head"])
    df["baseline"] = 0
    bi, bj = np.meshgrid(np.arange(len(t)), np.arange(len(T)), indexing="ij")
    base = pd.DataFrame({
        "target_loss": t[bi].ravel(), "log2_context": np.log2(T[bj]).ravel().astype(int),
        "n_head": 99,  # sorts after every candidate on the chart's axis
        "n_kv_head": 8, "params_non_embedding": b["params_non_embedding"].ravel(),
        "memory_values": b["memory_values"].ravel(),
        **{f"flops_{conv}": f.ravel() for conv, f in base_flops.items()},
        **base_serving, "extrapolated": 0, "H": BASELINE_LABEL, "baseline": 1})
    df = pd.concat([df, base], ignore_index=True)
    sig = lambda a: np.asarray([float(f"{v:.5g}") for v in np.ravel(a)])  # noqa: E731
    for col in ["params_non_embedding", "memory_values", *serving_cols,
                *(f"flops_{conv}" for conv in cost.COMPUTE_CONVENTIONS)]:
        df[col] = sig(df[col])  # 5 significant digits: the chart's data stays small
    return df.drop(columns="n_kv_head")


def static_explorer(table: pd.DataFrame):
    """An Altair chart: Z of every H (and of the Llama-3 baseline) at the chosen context and
    target, recomputed in the browser from a slider (lambda) and menus (context, target,
    alpha, beta, convention); the cheapest is highlighted and named above the bars. Every
    default lies on its control's grid (beta = 1/3 exactly)."""
    import altair as alt

    from gqa_lib.book.render import mark_explorer

    _check_table(table)
    d = ExplorerState()
    targets = sorted(table["target_loss"].unique())
    if d.target_loss not in targets:
        raise GQAError(f"target_loss={d.target_loss} is not among the table's targets")
    logs = list(range(12, 21))
    p_ctx = alt.param("log2T", value=int(np.log2(d.context)), bind=alt.binding_select(
        options=logs, labels=[format_context(2**k) for k in logs], name="context T "))
    p_target = alt.param("target", value=d.target_loss, bind=alt.binding_select(
        options=targets, labels=[f"{v:.3f}" for v in targets], name="target loss (nats) "))
    p_lam = alt.param("lam", value=d.lam, bind=alt.binding_range(
        min=0, max=1, step=0.05, name="weight of memory in Z, λ "))
    exps = list(EXPONENTS)
    p_alpha = alt.param("alpha", value=d.alpha, bind=alt.binding_select(
        options=exps, labels=[exponent_label(v) for v in exps], name="exponent of memory, α "))
    p_beta = alt.param("beta", value=d.beta, bind=alt.binding_select(
        options=exps, labels=[exponent_label(v) for v in exps], name="exponent of compute, β "))
    conventions = list(cost.COMPUTE_CONVENTIONS)
    p_conv = alt.param("convention", value=d.convention, bind=alt.binding_select(
        options=conventions, labels=[cost.CONVENTION_LABELS[c] for c in conventions],
        name="compute C counts "))
    flops = ("convention == 'per_token' ? datum.flops_per_token : convention == 'fig1' ? "
             "datum.flops_fig1 : convention == 'prefill' ? datum.flops_prefill : "
             "datum.flops_fig2")
    base = alt.Chart(table).transform_filter(
        "datum.log2_context == log2T && abs(datum.target_loss - target) < 0.0001"
    ).transform_calculate(
        C=flops, Z=f"lam * pow(datum.memory_values, alpha) + (1 - lam) * pow({flops}, beta)"
    ).transform_window(rank="rank()", sort=[alt.SortField("Z", order="ascending")])
    kinds = {"cheapest": "#d62728", "Llama-3 baseline": "#7f7f7f", "candidate": "#6baed6"}
    bars = base.transform_calculate(
        kind="datum.rank == 1 ? 'cheapest' : datum.baseline ? 'Llama-3 baseline' : 'candidate'",
        N_text=N_SHOWN, M_text=number_expr("count", "datum.memory_values"),
        C_text=number_expr("flops", "datum.C"),
        Z_text=number_expr("z", "datum.Z"),
    ).mark_bar().encode(
        x=alt.X("H:N", title=f"{HEADS_TITLE}, and the baseline",
                sort=alt.SortField("n_head"), axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("Z:Q", title="Z = λ M^α + (1-λ) C^β (no unit)", scale=alt.Scale(zero=False)),
        color=alt.Color("kind:N", title=None, scale=alt.Scale(
            domain=list(kinds), range=list(kinds.values())), legend=alt.Legend(orient="bottom")),
        tooltip=[tip("H:N"), tip("N_text:N", "N* (params)"), tip("M_text:N", "M (values)"),
                 tip("C_text:N", "C (FLOPs)"), tip("Z_text:N", "Z"), tip("extrapolated:N")],
    )
    text = _optimum_label(base, "'optimum: ' + (datum.baseline ? 'the baseline' : datum.H)"
                                f" + ', N* = ' + {N_SHOWN}"
                                " + (datum.extrapolated ? ' (extrap.)' : '') + "
                                + _context_caution())
    chart = alt.layer(bars, text).add_params(
        p_ctx, p_target, p_lam, p_alpha, p_beta, p_conv).properties(height=280)
    return mark_explorer(chart, "optimum")


# ----- serving: the accelerator and objective choice ----------------------------------------
def _column_key(key: str) -> str:
    return key.replace("-", "_")


_BAR_FLOOR = 0.8  # where the static explorer's bars start on its log axis


def _outputs(table: pd.DataFrame, key: str) -> list[int]:
    """The G of the table's ``tps_<key>_out<G>`` columns, ascending."""
    pre = f"tps_{key}_out"
    return sorted(int(c[len(pre):]) for c in table.columns
                  if c.startswith(pre) and c[len(pre):].isdigit())


def static_serving_explorer(table: pd.DataFrame, hardware: tuple[str, ...]):
    """The static explorer with an objective and an accelerator dropdown: each H's objective
    relative to the best one (1 = the pick) at the chosen context and target, from a
    :func:`static_explorer_table` built with the same ``hardware``. Objectives: Z (fig2
    convention, lambda 0.9, the paper's exponents), decode latency at batch 1, tokens/s per
    accelerator at the largest batch. Where the table has ``tps_<key>_out<G>`` columns (the
    same G for every accelerator), a "tokens out" menu chooses the rate: decode only (prompts
    cached) or G generated tokens per request with its prompt prefilled."""
    import altair as alt

    from gqa_lib.book.render import mark_explorer

    _check_table(table)
    keys = [_column_key(h) for h in hardware]
    missing = [f"tps_{k}" for k in keys if f"tps_{k}" not in table]
    if not keys or missing:
        raise GQAError(f"the table lacks serving columns {missing or 'for any accelerator'}; "
                       "build it with static_explorer_table(hardware=...)")
    targets = [float(t) for t in sorted(table["target_loss"].unique())]
    logs = sorted(int(v) for v in table["log2_context"].unique())
    p_ctx = alt.param("log2T", value=17 if 17 in logs else logs[-1], bind=alt.binding_select(
        options=logs, labels=[format_context(2**k) for k in logs], name="context T "))
    headline = min(targets, key=lambda t: abs(t - 2.615))  # the paper's headline target
    p_target = alt.param("target", value=headline, bind=alt.binding_select(
        options=targets, labels=[f"{t:.3f}" for t in targets], name="target loss (nats) "))
    outs = _outputs(table, keys[0])
    if any(_outputs(table, k) != outs for k in keys):
        raise GQAError("the table's tokens-out columns differ between accelerators: build it "
                       "with one static_explorer_table(hardware=..., output_tokens=...)")
    objectives = ["z", "latency", "throughput"]
    names = {**cost.OBJECTIVE_NAMES, "z": "the paper's Z (lowest)",
             "latency": f"{cost.OBJECTIVE_NAMES['latency']} (lowest)"}
    names["throughput"] = (  # the rate the tokens-out menu chooses, highest
        "tokens/s per accelerator (highest)" if outs else
        f"{cost.OBJECTIVE_NAMES['throughput']} (highest)")
    p_obj = alt.param("objective", value="throughput", bind=alt.binding_select(
        options=objectives, labels=[names[o] for o in objectives], name="pick by "))
    p_hw = alt.param("hw", value=keys[0], bind=alt.binding_select(
        options=keys, labels=[_hardware_label(h) for h in hardware], name="accelerator "))
    p_out = alt.param("out", value=0, bind=alt.binding_select(
        options=[0, *outs], labels=["decode only (prompts cached)",
                                    *(f"{g:,} per request, prompt prefilled" for g in outs)],
        name="tokens out "))

    def column(prefix, k):  # the rate the menus choose: decode only, or G tokens out
        if prefix != "tps" or not outs:
            return f"datum.{prefix}_{k}"
        expr = f"datum.tps_{k}"
        for g in reversed(outs):
            expr = f"out == {g} ? datum.tps_{k}_out{g} : {expr}"
        return f"({expr})"

    def pick(prefix):
        expr = column(prefix, keys[-1])
        for k in reversed(keys[:-1]):
            expr = f"hw == '{k}' ? {column(prefix, k)} : {expr}"
        return f"({expr})"

    z = "0.9 * pow(datum.memory_values, 0.5) + 0.1 * pow(datum.flops_fig2, 1 / 3)"
    score = (f"objective == 'z' ? {z} : objective == 'latency' ? {pick('lat')} : "
             f"({pick('tps')} > 0 ? 1 / {pick('tps')} : 1 / 0)")
    base = alt.Chart(table).transform_filter(
        "datum.log2_context == log2T && abs(datum.target_loss - target) < 0.001"
    ).transform_calculate(score=score, tps=pick("tps"), lat_ms=f"1000 * {pick('lat')}",
                          N_text=N_SHOWN
    ).transform_filter("isFinite(datum.score)").transform_joinaggregate(
        best="min(score)").transform_calculate(ratio="datum.score / datum.best"
    ).transform_window(rank="rank()", sort=[alt.SortField("score", order="ascending")])
    bars = base.mark_bar().encode(
        x=alt.X("H:N", title=f"{HEADS_TITLE}, and the baseline", sort=alt.SortField("n_head")),
        y=alt.Y("ratio:Q", title="objective relative to the pick (1 = best)",
                scale=alt.Scale(type="log", domainMin=_BAR_FLOOR)),
        # bars rise from below 1 (a log axis has no 0), so the pick's bar has a height
        y2=alt.datum(_BAR_FLOOR),
        color=alt.condition("datum.rank == 1", alt.value("#d62728"), alt.value("#9ecae1")),
        tooltip=[tip("H:N"), tip("N_text:N", "N* (params)"),
                 tip("tps:Q", "generated tokens/s per accelerator" if outs else
                     "decode tokens/s per accelerator", format=",.0f"),
                 tip("lat_ms:Q", "ms/token, batch 1", format=".3~g"),
                 tip("ratio:Q", "objective relative to the pick", format=".3~g"),
                 tip("extrapolated:N")],
    )
    decode, counted = "' decode tokens/s per accelerator'", "' tokens/s per accelerator, " \
        "prompts counted'"
    rate = f"(out == 0 ? {decode} : {counted})" if outs else decode
    # two lines, the second ending where a phone's column does: an extrapolated pick is
    # starred, as in the page's tables (the figure's caption says what the star means)
    text = _optimum_label(base, "'pick: H = ' + datum.H + (datum.extrapolated ? '*' : '') + "
                                f"', N* = ' + {N_SHOWN} + '\\n' + format(datum.tps, ',.0f') "
                                f"+ {rate} + "
                                + _context_caution())
    params = (p_ctx, p_target, p_obj, p_hw, *((p_out,) if outs else ()))
    chart = alt.layer(bars, text).add_params(*params).properties(width=560, height=280)
    return mark_explorer(chart, "optimum")
