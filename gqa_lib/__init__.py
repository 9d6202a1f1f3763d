"""gqa_lib: the library behind the book companion to "Cost-Optimal Grouped-Query Attention
for Long-Context Modeling" (Chen et al., EMNLP 2025).

Modules: config (model shapes and presets), hf (Hugging Face config import), cost (parameters,
FLOPs, memory, Z), units (parsing and formatting). Training and the recipe live in their own
modules and import torch / scipy only when used.
"""

from .config import PRESETS, ModelConfig, get_preset
from .errors import GQAError

__all__ = ["PRESETS", "GQAError", "ModelConfig", "get_preset"]
__version__ = "0.1.0"
