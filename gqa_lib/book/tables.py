"""Tidy tables of inference costs for the book's pages and charts: one row per model and context.

:func:`cost_table` tabulates :mod:`gqa_lib.cost` for several models at several context
lengths; the chart builders in :mod:`gqa_lib.book.plots` read its columns. Column names carry their
unit: ``*_values`` (numbers stored), ``*_bytes``, ``flops_*`` (FLOPs per generated token,
eq. 3), ``*_share_*`` (a fraction in [0, 1]). :func:`readable` turns a table into text for
display; nothing here prints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from gqa_lib import cost, units
from gqa_lib.arch.config import model_title, ModelConfig
from gqa_lib.errors import GQAError

Models = Mapping[str, ModelConfig] | Sequence[ModelConfig]


def _named(models: Models) -> dict[str, ModelConfig]:
    if isinstance(models, Mapping):
        return dict(models)
    if isinstance(models, ModelConfig):
        models = [models]
    named = {(m.name or m.label): m for m in models}
    if len(named) != len(models):
        raise GQAError("models have duplicate names; pass a mapping {name: ModelConfig}")
    return named


def cost_table(
    models: Models, contexts: Any, *, dtype: str = "bf16", include_embeddings: bool = False,
    ffn_matrices: int | None = None, include_norms: bool = True,
) -> pd.DataFrame:
    """Parameters, KV cache, memory (eq. 4) and FLOPs per token (eq. 3) for every model and
    context length, as a long table (rows ordered by model, then context).

    ``models``: a mapping ``{name: ModelConfig}`` or a sequence (named by ``cfg.name``, else
    ``cfg.label``). ``contexts``: context lengths T in tokens. Memory counts the weights and the
    KV cache of one sequence, both stored in ``dtype`` (activations ignored, as in the paper);
    weights are the non-embedding N unless ``include_embeddings``. The two conventions
    ``ffn_matrices`` and ``include_norms`` are those of :func:`gqa_lib.cost.param_counts`.
    """
    named = _named(models)
    batch = cost.ConfigBatch.of(list(named.values()))
    T = np.asarray(contexts, dtype=np.int64).reshape(-1, 1)  # (n_ctx, 1) x (n_models,)
    p = cost.param_counts(batch, ffn_matrices=ffn_matrices, include_norms=include_norms)
    weights = np.asarray(p["total" if include_embeddings else "non_embedding"])
    kv = np.asarray(cost.kv_cache_values(batch, T))
    flops = cost.inference_flops(batch, T, ffn_matrices=ffn_matrices)
    bytes_per_value = cost.bits_per_value(dtype) / 8
    shape = kv.shape  # (n_ctx, n_models)
    memory = weights + kv
    cols = {
        "model": np.broadcast_to(np.array(list(named), dtype=object), shape),
        "context_len": np.broadcast_to(T, shape),
        "n_layer": np.broadcast_to(batch.n_layer, shape),
        "d_model": np.broadcast_to(batch.d_model, shape),
        "n_head": np.broadcast_to(batch.n_head, shape),
        "n_kv_head": np.broadcast_to(batch.n_kv_head, shape),
        "d_head": np.broadcast_to(batch.d_head, shape),
        "params_non_embedding": np.broadcast_to(p["non_embedding"], shape),
        "params_attention": np.broadcast_to(
            p["attn_q"] + p["attn_k"] + p["attn_v"] + p["attn_o"] + p["attn_bias"], shape),
        "weights_values": np.broadcast_to(weights, shape),
        "kv_cache_values": kv,
        "memory_values": memory,
        "weights_bytes": np.broadcast_to(weights * bytes_per_value, shape),
        "kv_cache_bytes": kv * bytes_per_value,
        "memory_bytes": memory * bytes_per_value,
        "kv_share_of_memory": kv / memory,
        "flops_time_invariant": flops["time_invariant"],
        "flops_time_variant": flops["time_variant"],
        "flops_per_token": flops["total"],
        "attention_share_of_flops": flops["time_variant"] / flops["total"],
    }
    df = pd.DataFrame({k: np.asarray(v).T.ravel() for k, v in cols.items()})
    return df.astype({"model": "string"})


def _shape(v: float) -> str:
    """2048 -> '2048'; a continuous shape 38.94 -> '38.9'."""
    return str(int(v)) if float(v).is_integer() else f"{float(v):.1f}"


# A cost setting's name and value in words (the sensitivity table's "changed" and "to")
SETTING_NAMES = {"lam": "λ, weight of memory in Z", "alpha": "α, exponent of memory",
                 "beta": "β, exponent of compute", "convention": "what C counts",
                 "aspect": "shape rule"}


def convention_words(conv: str) -> str:
    """A compute convention in words: "fig2+lm_head" -> "T/2 tokens ..., with the LM head"."""
    name, _, lm = conv.partition("+")
    return cost.CONVENTION_LABELS.get(name, name) + (", with the LM head" if lm else "")


def _setting(v: Any) -> str:
    if isinstance(v, float):
        f = Fraction(v).limit_denominator(12)  # 1/3 reads as 1/3, not 0.333
        return f"{f.numerator}/{f.denominator}" if abs(float(f) - v) < 1e-12 and \
            f.denominator > 1 and v < 1 and f.denominator not in (2, 5, 10) else f"{v:.3g}"
    if v in _ASPECT_WORDS:
        return _ASPECT_WORDS[v]
    return convention_words(v) if isinstance(v, str) and v.split("+")[0] in \
        cost.CONVENTION_LABELS else str(v)


# The shape rules (gqa_lib.arch.ASPECT_RULES) in words
_ASPECT_WORDS = {"d64L": "d = 64 L", "paper": "the paper's Table 9 shapes"}


def _pct(v: float) -> str:
    return f"{v:.1f}%"


# column -> (display header, formatter); the header names the unit when the text does not
_READABLE = {
    "model": ("model", model_title),
    "context_len": ("T", units.format_context),
    "heads": (units.HEADS_TITLE, str),
    "n_head": ("n_h", str),
    "n_kv_head": ("n_kv", str),
    "d_head": ("d_h", str),
    "n_layer": ("L", _shape),
    "d_model": ("d", _shape),
    "params_non_embedding": ("N (non-embedding)", units.format_count),
    "params_attention": ("attention params", units.format_count),
    "kv_cache_bytes": ("KV cache", units.format_bytes),
    "weights_bytes": ("weights", units.format_bytes),
    "memory_bytes": ("memory (eq. 4)", units.format_bytes),
    "kv_share_of_memory": ("KV share of memory", "{:.0%}".format),
    "flops_per_token": ("FLOPs / token", units.format_flops),
    "flops_time_invariant": ("weight FLOPs / token", units.format_flops),
    "flops_time_variant": ("attention FLOPs / token", units.format_flops),
    "attention_share_of_flops": ("attention share of FLOPs", "{:.0%}".format),
    # the recipe's frames (gqa_lib.fit.recipe, reproduce, sensitivity)
    "target_loss": ("L* (nats)", "{:.3f}".format),  # a loss: 3 decimals, as everywhere
    "context": ("T", units.format_context),
    "paper_heads": ("paper's H", str),
    "paper_n_head": ("paper's n_h", str),
    "paper_n_kv_head": ("paper's n_kv", str),
    "memory_values": ("M (values)", units.format_count),
    "flops": ("C in Z (FLOPs)", units.format_flops),
    "z": ("Z", units.format_z),
    "extrapolated": ("extrapolated", {True: "yes", False: "no"}.get),
    "best": ("cheapest", {True: "yes", False: ""}.get),
    "loss_gap": ("loss gap (nats)", "{:.4f}".format),
    "share": ("bootstrap share, ours", "{:.0%}".format),
    "in_range": ("N* within measured sizes", {True: "yes", False: "no"}.get),
    "paper_share": ("bootstrap share, paper's", "{:.0%}".format),
    "cause_kind": ("most likely cause", str),
    "cause": ("the cause in full", str),
    "field": ("changed", lambda f: SETTING_NAMES.get(f, f)),
    "convention": ("compute convention", convention_words),
    "value": ("to", _setting),
    "memory_pct": ("memory saving", _pct),
    "flops_pct": ("FLOPs saving", _pct),
    "z_pct": ("Z saving", _pct),
    "equal_z_loss_gain": ("loss gain at equal Z (nats)", "{:.3f}".format),
    "matches": ("Table 4 cells matched", str),
    "measured_matches": ("measured cells matched", str),
}


def _cell(fmt: Any, v: Any) -> Any:
    """One cell, ``fmt(v)`` without a negative zero; a missing value (None, NaN) that its
    format cannot show, or shows as "nan", is blank (a format may name it: "decode only")."""
    missing = v is None or isinstance(v, float) and np.isnan(v)
    try:
        text = _no_negative_zero(fmt, v)
    except (ValueError, TypeError):
        if missing:
            return ""
        raise
    return "" if missing and str(text).strip().lower() in ("nan", "none", "nan%") else text


_NEGATIVE_ZERO = re.compile(r"^-0(?:\.0+)?(?![\d.])")


def _no_negative_zero(fmt: Any, v: Any) -> Any:
    """``fmt(v)``, except that a float that rounds to '-0.000' shows as zero does in the same
    format ('+0.000' with a sign, '0.000' without): a change too small to print is no loss."""
    text = fmt(v)
    if isinstance(v, float) and isinstance(text, str) and _NEGATIVE_ZERO.match(text):
        return fmt(0.0)
    return text


def readable(df: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A display copy of a :func:`cost_table`, a recipe frame or a Table 4 frame: the chosen
    columns formatted as text with units
    (``1.41 B``, ``4 GiB``, ``75%``), renamed to the book's notation."""
    columns = [c for c in _READABLE if c in df] if columns is None else list(columns)
    unknown = [c for c in columns if c not in _READABLE]
    if unknown:
        raise GQAError(f"no display format for column(s) {unknown}; known: {list(_READABLE)}")
    df = _derive(df, columns)
    return pd.DataFrame(
        {_READABLE[c][0]: [_READABLE[c][1](v) for v in df[c]] for c in columns}
    )


# columns a frame need not hold: derived from two it does, in the one form of a head
# configuration, "(8, 1)" (units.format_heads)
_DERIVED = {
    "heads": ("n_head", "n_kv_head"),
    "paper_heads": ("paper_n_head", "paper_n_kv_head"),
}


def _derive(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    wanted = [c for c in columns if c not in df and c in _DERIVED]
    if not wanted:
        return df
    out = {}
    for c in wanted:
        h, k = _DERIVED[c]
        if h not in df or k not in df:
            raise GQAError(f"column {c!r} is derived from {h!r} and {k!r}; the table has "
                           f"{list(df.columns)}")
        out[c] = [_heads(a, b) for a, b in zip(df[h], df[k])]
    return df.assign(**out)


def _heads(n_head: Any, n_kv_head: Any) -> str:
    """(8, 1) as units.format_heads writes it; a head count that is no whole number (the
    Llama-3 family's continuous d/64) as itself, never truncated; a blank where one is
    missing."""
    if any(pd.isna(v) for v in (n_head, n_kv_head)):
        return ""
    if all(float(v).is_integer() for v in (n_head, n_kv_head)):
        return units.format_heads(n_head, n_kv_head)
    return f"({float(n_head):.3g}, {float(n_kv_head):.3g})"


# ----- display: the one table helper of the book ------------------------------------------
def _default_header(column: str) -> str:
    """snake_case names become words; a header already in words (spaces, symbols) is kept."""
    text = str(column)
    parts = text.split("_")
    if not text.isidentifier() or all(len(p) <= 2 for p in parts):  # words, or notation: b_H
        return text
    return " ".join(parts)


def _default_format(values: pd.Series):
    """A formatter for a column by its kind: integers with thousands separators, floats to 4
    significant digits (from 1,000 as whole numbers, from a million as counts: 1.83 B),
    booleans as yes/no, NaN as an empty cell, text as it is."""
    if pd.api.types.is_bool_dtype(values):
        return {True: "yes", False: "no"}.get
    if pd.api.types.is_integer_dtype(values):
        return "{:,}".format
    if pd.api.types.is_float_dtype(values):
        def number(v):
            if pd.isna(v):
                return ""
            if abs(v) >= 1e6:
                return units.format_count(v)
            if float(v).is_integer() or abs(v) >= 1000:
                return f"{v:,.0f}"
            return f"{v:.4g}"
        return number
    return lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


class Table:
    """A formatted table for display: no index column, headers in words (with units), cells
    formatted as text, headers and long text wrapped, wide tables scrolling inside their box.
    Shows as HTML in the book, JupyterLab and Colab (styles inline, so ipywidgets 7 and 8
    render it alike) and as plain text elsewhere. ``frame`` holds the formatted cells;
    ``details``, a second :class:`Table` of secondary columns, shows in a toggle below
    (``summary`` is its label). With ``fold`` (a label), the whole table shows folded in a
    toggle."""

    def __init__(self, frame: pd.DataFrame, numeric: Sequence[bool], caption: str = "",
                 hrefs: Mapping[str, Sequence[str]] | None = None,
                 details: Table | None = None, summary: str = "", fold: str = ""):
        self.frame, self.numeric, self.caption = frame, list(numeric), caption
        self.hrefs = dict(hrefs or {})  # header -> one link per row ("" for none)
        self.details, self.summary, self.fold = details, summary, fold

    def __repr__(self) -> str:
        text = self.frame.to_string(index=False)
        text = f"{self.caption}\n{text}" if self.caption else text
        if self.details is not None:
            text += f"\n\n{self.summary}\n{self.details!r}"
        return text

    def _repr_html_(self) -> str:
        import html

        pad = "padding:0.25em 0.6em;border-bottom:1px solid rgba(128,128,128,0.35);"
        def cell(tag, text, num, href=""):
            text = html.escape(str(text))
            kind = "num" if num else ("text" if len(text) > 40 else "")
            if tag == "th":  # headers wrap, so that words never widen a column of numbers
                align = f"{'right' if num else 'left'};white-space:normal"
            else:  # numbers and short labels such as "(8, 1)" stay on one line
                wrap = "nowrap" if num or len(text) <= 10 else "normal"
                align = f"{'right' if num else 'left'};white-space:{wrap}"
            if href:
                text = f'<a href="{html.escape(href)}">{text}</a>'
            return f'<{tag} class="{kind}" style="{pad}text-align:{align}">{text}</{tag}>'

        cols = list(self.frame.columns)
        head = "".join(cell("th", c, n) for c, n in zip(cols, self.numeric))
        body = "".join(
            "<tr>" + "".join(cell("td", v, n, self.hrefs.get(c, [""] * (i + 1))[i])
                             for c, v, n in zip(cols, row, self.numeric)) + "</tr>"
            for i, row in enumerate(self.frame.itertuples(index=False)))
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        out = ('<div class="gqa-table" style="max-width:100%;overflow-x:auto">'
               '<table style="border-collapse:collapse">'
               f"{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")
        if self.details is not None:
            out += (f'<details class="gqa-details"><summary>{html.escape(self.summary)}'
                    f"</summary>{self.details._repr_html_()}</details>")
        if self.fold:
            out = (f'<details class="gqa-details gqa-fold"><summary>{html.escape(self.fold)}'
                   f"</summary>{out}</details>")
        return out


def show(df: pd.DataFrame, columns: Sequence[str] | None = None, *,
         headers: Mapping[str, str] | None = None, formats: Mapping[str, Any] | None = None,
         caption: str = "", max_rows: int | None = None,
         links: Mapping[str, Sequence[str]] | None = None,
         details: Sequence[str] | None = None, key: Sequence[str] | None = None,
         summary: str = "", fold: str = "") -> Table:
    """The book's one way to display a table.

    ``columns``: which columns, in order (default: all). A column known to :func:`readable`
    gets its header and format from there; ``headers`` and ``formats`` (a callable or a
    format string such as ``"{:.1%}"``) override or add to them; any other column gets its
    name in words and a format by kind (integers with separators, floats to 4 significant
    digits, yes/no). The index is never shown (put what it held in a column first:
    ``df.reset_index()``). ``"heads"`` (and ``"paper_heads"``) shows a head configuration
    H = (n_h, n_kv) in one column, from the ``n_head`` and ``n_kv_head`` columns
    (``paper_n_head``, ``paper_n_kv_head``). ``max_rows`` keeps the first rows only.
    ``links`` maps a column to one URL per row: in HTML its cells link there.

    ``details``: secondary columns, shown in a toggle below the table (``summary`` labels
    it; by default "More columns: ..."), each row named again by the ``key`` columns (by
    default the first shown column). A table too wide for the page keeps there what the
    prose does not discuss. ``fold``: a label; the whole table shows folded under it (a long
    table whose one fact the page states in a sentence or a smaller table).
    """
    if details:
        key = list(key) if key is not None else list(columns or df.columns)[:1]
        main = show(df, columns, headers=headers, formats=formats, caption=caption,
                    max_rows=max_rows, links=links)
        extra = show(df, [*key, *[c for c in details if c not in key]], headers=headers,
                     formats=formats, max_rows=max_rows)
        named = list(extra.frame.columns)[len(key):]
        main.details = extra
        main.summary = summary or "More columns: " + ", ".join(named)
        main.fold = fold
        return main
    if not isinstance(df, pd.DataFrame):
        raise GQAError(f"show() takes a DataFrame, got {type(df).__name__}")
    if isinstance(columns, str):  # show(df, "abc") would show columns a, b and c
        raise GQAError(f"columns must be a list of names, got the string {columns!r}")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int)
                                 or max_rows < 0):
        raise GQAError(f"max_rows must be a whole number >= 0, got {max_rows!r}")
    columns = list(df.columns) if columns is None else list(columns)
    df = _derive(df, columns)
    missing = [c for c in columns if c not in df]
    if missing:
        raise GQAError(f"columns {missing} are not in the table; it has {list(df.columns)}")
    headers, formats = dict(headers or {}), dict(formats or {})
    data = df if max_rows is None else df.head(max_rows)
    out, numeric = {}, []
    for c in columns:
        known = _READABLE.get(c)
        header = headers.get(c) or (known[0] if known else _default_header(c))
        fmt = formats.get(c) or (known[1] if known else _default_format(data[c]))
        if isinstance(fmt, str):
            fmt = fmt.format
        try:
            out[header] = [_cell(fmt, v) for v in data[c]]
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise GQAError(f"column {c!r}: its format cannot show its values ({e})") from None
        numeric.append(pd.api.types.is_numeric_dtype(data[c])
                       and not pd.api.types.is_bool_dtype(data[c]))
    if len(out) != len(columns):
        raise GQAError("two columns would show under the same header; pass headers=")
    hrefs = {}
    for c, urls in (links or {}).items():
        if c not in columns or len(urls) < len(data):
            raise GQAError(f"links for {c!r}: need a shown column and one URL per row")
        hrefs[list(out)[columns.index(c)]] = list(urls)[:len(data)]
    return Table(pd.DataFrame(out), numeric, caption, hrefs, fold=fold)
