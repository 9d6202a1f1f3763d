"""Stage 4, from losses to a choice: the loss laws and their robust fits
(:mod:`~gqa_lib.fit.scaling`), one law per head configuration on a table of runs
(:mod:`~gqa_lib.fit.per_head`), and the paper's three-step cost-optimal recipe
(:mod:`~gqa_lib.fit.recipe`) with its shapes (:mod:`~gqa_lib.fit.shapes`). Needs numpy,
scipy and pandas, not torch."""

from gqa_lib.fit.scaling import (Bootstrap, bootstrap_fit, BOOTSTRAP_SCHEMES, fit_head_count_law,
                                 FIT_METHODS, fit_power_laws, FitQuality, HeadCountLaw,
                                 loo_unpredictable, LossFit, OPTIMIZERS, PowerLaw, resample)
from gqa_lib.fit.per_head import (config_label, coupling, family_masks, fit_curves, fit_runs,
                                  format_intervals, interval_table, PerHeadModel, quality_table,
                                  read_runs, RUN_COLUMNS)
from gqa_lib.fit.recipe import (affordable_params, baseline_costs, BASELINES, bootstrap_choice,
                                bootstrap_grids, candidates, choice_counts, choice_shares,
                                cost_grid, CostSettings, LossModel, max_context_for_memory,
                                min_loss_for_budget, model_costs, model_floor, optimize,
                                RecipeGrid, Recommendation)
from gqa_lib.fit.shapes import (build_config, build_for_target, config_batch, paper_params,
                                shape_for_params)

__all__ = [
    "affordable_params", "baseline_costs", "BASELINES", "Bootstrap", "bootstrap_choice",
    "bootstrap_fit", "bootstrap_grids", "build_config", "build_for_target", "BOOTSTRAP_SCHEMES",
    "candidates", "choice_counts",
    "choice_shares", "config_batch", "config_label", "cost_grid", "CostSettings", "coupling",
    "family_masks", "fit_curves", "fit_head_count_law", "FIT_METHODS", "fit_power_laws",
    "fit_runs", "FitQuality", "format_intervals", "HeadCountLaw", "interval_table",
    "loo_unpredictable", "LossFit", "LossModel", "max_context_for_memory",
    "min_loss_for_budget", "model_costs", "model_floor", "optimize", "OPTIMIZERS",
    "paper_params", "PerHeadModel", "PowerLaw", "quality_table", "read_runs", "RecipeGrid", "Recommendation",
    "resample", "RUN_COLUMNS", "shape_for_params",
]
