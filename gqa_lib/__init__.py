"""gqa_lib: the library behind the book companion to "Cost-Optimal Grouped-Query Attention
for Long-Context Modeling" (Chen et al., EMNLP 2025).

One sub-package per stage, in the order the data travel; each imports only the ones above it
in this list (tests/test_layering.py checks it):

- errors, units, io: the one error type, parsing/formatting, file locations and atomic writes
- arch: what a model is (ModelConfig, presets, Hugging Face config.json import)
- cost: what it costs (parameters, FLOPs, KV cache, memory, Z), pure and vectorised
- train: tiny GQA transformers trained in PyTorch, the corpus, resumable sweeps
- fit: loss laws, robust fits per head configuration, the three-step recipe
- evidence: the paper's digitised results and our own sweeps through the recipe
- book: the Sphinx extension, charts, tables, explorers, the Colab cell
- cli: the `gqa` command line

torch, altair and ipywidgets are imported only by the stages that need them.
"""

from gqa_lib.arch.config import PRESETS, ModelConfig, get_preset
from gqa_lib.errors import GQAError

# The stages, bottom first: a module may import its own stage and those before it, never one
# after it. The one declaration of the order (tests/test_layering.py enforces it).
LAYERS = (("errors", "units", "io"), ("arch",), ("cost",), ("train",), ("fit",), ("evidence",),
          ("book",), ("cli",))

__all__ = ["LAYERS", "PRESETS", "GQAError", "ModelConfig", "get_preset"]
__version__ = "0.1.0"
