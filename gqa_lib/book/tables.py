"""Tidy tables of inference costs for the book's pages and charts: one row per model and context.

:func:`cost_table` tabulates :mod:`gqa_lib.cost` for several models at several context
lengths; the chart builders in :mod:`gqa_lib.book.plots` read its columns. Column names carry their
unit: ``*_values`` (numbers stored), ``*_bytes``, ``flops_*`` (FLOPs per generated token,
eq. 3), ``*_share_*`` (a fraction in [0, 1]). :func:`readable` turns a table into text for
display; nothing here prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gqa_lib import cost, units
from gqa_lib.arch.config import ModelConfig
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


def _setting(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _pct(v: float) -> str:
    return f"{v:.1f}%"


# column -> (display header, formatter); the header names the unit when the text does not
_READABLE = {
    "model": ("model", str),
    "context_len": ("T", units.format_context),
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
    "attention_share_of_flops": ("attention share of FLOPs", "{:.0%}".format),
    # the recipe's frames (gqa_lib.fit.recipe, reproduce, sensitivity)
    "target_loss": ("L* (nats)", "{:g}".format),
    "context": ("T", units.format_context),
    "paper_n_head": ("paper's n_h", str),
    "paper_n_kv_head": ("paper's n_kv", str),
    "memory_values": ("M (values)", units.format_count),
    "flops": ("C in Z (FLOPs)", units.format_flops),
    "z": ("Z", "{:.4g}".format),
    "extrapolated": ("extrapolated", {True: "yes", False: "no"}.get),
    "best": ("cheapest", {True: "yes", False: ""}.get),
    "loss_gap": ("loss gap (nats)", "{:.4f}".format),
    "share": ("bootstrap share, ours", "{:.0%}".format),
    "in_range": ("N* within measured sizes", {True: "yes", False: "no"}.get),
    "paper_share": ("bootstrap share, paper's", "{:.0%}".format),
    "cause": ("most likely cause", str),
    "field": ("changed", str),
    "value": ("to", _setting),
    "memory_pct": ("memory saving", _pct),
    "flops_pct": ("FLOPs saving", _pct),
    "z_pct": ("Z saving", _pct),
    "equal_z_loss_gain": ("loss gain at equal Z (nats)", "{:.3f}".format),
    "matches": ("Table 4 cells matched", str),
    "measured_matches": ("measured cells matched", str),
}


def readable(df: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A display copy of a :func:`cost_table`, a recipe frame or a Table 4 frame: the chosen
    columns formatted as text with units
    (``1.41 B``, ``4 GiB``, ``75%``), renamed to the book's notation."""
    columns = [c for c in _READABLE if c in df] if columns is None else list(columns)
    unknown = [c for c in columns if c not in _READABLE]
    if unknown:
        raise GQAError(f"no display format for column(s) {unknown}; known: {list(_READABLE)}")
    return pd.DataFrame(
        {_READABLE[c][0]: [_READABLE[c][1](v) for v in df[c]] for c in columns}
    )
