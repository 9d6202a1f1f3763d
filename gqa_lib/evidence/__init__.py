"""Stage 5, the evidence: the paper's digitised results run through the recipe
(:mod:`~gqa_lib.evidence.paper`), the recipe's sensitivity to its cost settings
(:mod:`~gqa_lib.evidence.sensitivity`), and our own sweeps: summaries for the training page
(:mod:`~gqa_lib.evidence.sweep_summary`) and fits, seed noise and the recipe on them
(:mod:`~gqa_lib.evidence.sweep_recipe`); what those sweeps can and cannot say
(:mod:`~gqa_lib.evidence.reanalysis`), the equal-size runs
(:mod:`~gqa_lib.evidence.equal_size`) and the same runs trained longer
(:mod:`~gqa_lib.evidence.longer_training`); and the recipe in serving units, with the paper's
Table 5 as a prediction (:mod:`~gqa_lib.evidence.serving`)."""

from gqa_lib.evidence.paper import (fig2_frame, headline, joint_model, JointLossModel, KV_RULES,
                                    LLAMA3_LABEL, MEASURED, measured_model, mismatches, PAPER_DIR,
                                    paper_headcount_laws, PAPER_HEADLINE, paper_runs, paper_table4,
                                    table4_comparison, TABLE4_CONTEXTS, table4_summary)
from gqa_lib.evidence.sensitivity import (choice_across, DEFAULT_VARIANTS, FIELDS,
                                          settings_variants)
from gqa_lib.evidence.sweep_summary import (head_deltas, head_effect_summary, recall_table,
                                            regime_gap, size_trend)
from gqa_lib.evidence import serving  # module-qualified, like sweep_recipe
from gqa_lib.evidence import sweep_recipe  # module-qualified: its names are generic (progress, seed_noise)

__all__ = [
    "choice_across", "DEFAULT_VARIANTS", "FIELDS", "fig2_frame", "head_deltas",
    "head_effect_summary", "headline", "joint_model", "JointLossModel", "KV_RULES",
    "LLAMA3_LABEL", "MEASURED", "measured_model", "mismatches", "PAPER_DIR",
    "paper_headcount_laws", "PAPER_HEADLINE", "paper_runs", "paper_table4", "recall_table",
    "regime_gap", "serving", "settings_variants", "size_trend", "sweep_recipe", "table4_comparison",
    "TABLE4_CONTEXTS", "table4_summary",
]
