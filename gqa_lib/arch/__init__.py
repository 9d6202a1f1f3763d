"""Stage 1, what a model is: frozen, self-validating shapes (:class:`ModelConfig`), presets of
published models and of the paper's shapes with their published parameter counts, and the
Hugging Face ``config.json`` import; and what an accelerator is (:class:`Accelerator`, the
datasheet table in data/hardware/). Imports only errors/units/io."""

from gqa_lib.arch.config import (aligned, alternating, ASPECT_RULES, check_positive_int,
                                 FFN_KINDS, FFN_MULTIPLE_OF, ffn_width, get_preset,
                                 LAYER_TYPES, model_title, ModelConfig, NORM_KINDS,
                                 PAPER_D_HEAD, PRESET_TITLES,
                                 paper_family, PAPER_TABLE9_SHAPES, PAPER_VOCAB, PRESETS,
                                 PUBLISHED_PARAMS, read_data_file, round_up)
from gqa_lib.arch.hardware import (Accelerator, accelerators, CALIBRATION_FILE, Calibration,
                                   calibration, calibrations, get_accelerator, HARDWARE_FILE,
                                   read_accelerators)
from gqa_lib.arch.hf import from_hf_config
from gqa_lib.arch.hf import SUPPORTED as HF_MODEL_TYPES

__all__ = [
    "Accelerator", "accelerators", "CALIBRATION_FILE", "Calibration", "calibration",
    "calibrations", "get_accelerator", "HARDWARE_FILE", "read_accelerators",
    "aligned", "alternating", "ASPECT_RULES", "check_positive_int", "FFN_KINDS",
    "FFN_MULTIPLE_OF", "ffn_width", "from_hf_config",
    "get_preset", "HF_MODEL_TYPES", "LAYER_TYPES", "model_title", "ModelConfig", "NORM_KINDS",
    "PAPER_D_HEAD", "paper_family", "PAPER_TABLE9_SHAPES", "PAPER_VOCAB", "PRESET_TITLES",
    "PRESETS", "PUBLISHED_PARAMS",
    "read_data_file", "round_up",
]
