"""How the recipe's answer moves with the choices made in costing it.

Step 3 of the recipe picks the H with the smallest Z = lam M^alpha + (1 - lam) C^beta
(eq. 5). Everything in that sentence is a choice: the weights lam, alpha, beta (the paper's
0.9, 1/2, 1/3 come from its authors' hardware tests), the compute convention of C (the
paper's Fig. 2 axes use T (N + 2 T L d_h n_h), eq. 3 the per-token count), and the aspect
rule that turns N* into a shape. :func:`choice_across` redoes the search for each value of one
:class:`~gqa_lib.fit.recipe.CostSettings` field; :func:`settings_variants` changes one field at a
time and reports the choice at the paper's headline cell and how many Table 4 cells the
changed recipe still reproduces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from gqa_lib.errors import GQAError
from gqa_lib.evidence.paper import PAPER_HEADLINE, joint_model, table4_comparison, table4_summary
from gqa_lib.fit.recipe import (CostSettings, LossModel, cost_grid, min_loss_for_budget,
                               optimize)

FIELDS = tuple(f.name for f in dataclasses.fields(CostSettings))
# One-at-a-time departures from the paper's settings (lam 0.9, alpha 1/2, beta 1/3, Fig. 2's
# compute convention, d = 64 L).
DEFAULT_VARIANTS: Mapping[str, Sequence[Any]] = {
    "lam": (0.5, 0.99),
    "alpha": (1 / 3, 2 / 3),
    "beta": (1 / 4, 1 / 2),
    "convention": ("per_token", "fig1", "prefill"),
    "aspect": ("paper",),
}


def _check_field(field: str) -> None:
    if field not in FIELDS:
        raise GQAError(f"field={field!r} is not a CostSettings field; choose one of {FIELDS}")


def choice_across(model: LossModel, target_loss: Any, context: Any, field: str,
                  values: Sequence[Any], *, settings: CostSettings = CostSettings()
                  ) -> pd.DataFrame:
    """The cost-optimal H for each value of one CostSettings ``field`` (the others as in
    ``settings``): one row per (value, target, context), the value in a column named
    ``field``, then the columns of :meth:`gqa_lib.fit.recipe.RecipeGrid.cells`."""
    _check_field(field)
    if len(values) == 0:
        raise GQAError(f"no values given for {field}")
    frames = [cost_grid(model, target_loss, context,
                        settings=dataclasses.replace(settings, **{field: v})).cells()
              for v in values]
    return pd.concat([f.assign(**{field: v}) for f, v in zip(frames, values)],
                     ignore_index=True)[[field, *frames[0].columns]]


def settings_variants(model: LossModel | None = None,
                      variants: Mapping[str, Sequence[Any]] = DEFAULT_VARIANTS, *,
                      target_loss: float = PAPER_HEADLINE["target_loss"],
                      context: int = PAPER_HEADLINE["context"]) -> pd.DataFrame:
    """The paper's settings, then each departure in ``variants`` one at a time.

    Columns: ``field`` and ``value`` changed (``"paper's settings"`` first), the recipe's
    choice at (target_loss, context) (``n_head``, ``n_kv_head``), the savings of *that choice*
    against the Llama-3 GQA baseline of the same loss (``memory_pct``, ``flops_pct``,
    ``z_pct``; the baseline of `gqa optimize --baseline llama3` and of the headline,
    ``headline(baseline="fit")``; FLOPs under the variant's own convention), the loss gain of
    the choice at the baseline's Z (``equal_z_loss_gain``), and the Table 4 cells it
    reproduces (``matches`` of 40, ``measured_matches`` of the 9 whose optimum was measured).
    """
    model = joint_model() if model is None else model
    for field in variants:
        _check_field(field)
    runs = [("paper's settings", None)] + [(f, v) for f, vs in variants.items() for v in vs]
    rows = []
    for field, value in runs:
        s = CostSettings() if value is None else \
            dataclasses.replace(CostSettings(), **{field: value})
        rec = optimize(model, target_loss, context, baseline="llama3", settings=s)
        H = (int(rec.best["n_head"]), int(rec.best["n_kv_head"]))
        at_z = min_loss_for_budget(model, context, rec.baseline["z"], configs=[H], settings=s)
        t4 = table4_summary(table4_comparison(model, settings=s))
        rows.append({"field": field, "value": "" if value is None else value,
                     "n_head": H[0], "n_kv_head": H[1], **rec.savings,
                     "equal_z_loss_gain": target_loss - float(at_z["loss_nats"].iloc[0]),
                     "matches": t4["matches"], "measured_matches": t4["measured_matches"]})
    return pd.DataFrame(rows)
