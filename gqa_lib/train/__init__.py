"""Stage 3, tiny models trained for real (PyTorch): the GQA transformer
(:mod:`~gqa_lib.train.model`), the shipped corpus and tokenizer (:mod:`~gqa_lib.train.data`),
a run's settings and identity (:mod:`~gqa_lib.train.settings`), the training loop
(:mod:`~gqa_lib.train.loop`), resumable sweeps over grid files
(:mod:`~gqa_lib.train.sweep`), their estimated time on a device
(:mod:`~gqa_lib.train.estimate`), the recall probe (:mod:`~gqa_lib.train.probe`) and
count-model baselines (:mod:`~gqa_lib.train.ngram`, numpy only).

The names below import from here (``from gqa_lib.train import train, TrainConfig``); each
submodule is imported on first use, so importing the package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {  # name -> submodule
    "apply_rope": "model", "Attention": "model", "Block": "model", "FeedForward": "model",
    "GQATransformer": "model", "KVCache": "model", "rope_cos_sin": "model", "sdpa_gqa": "model",
    "batch_windows": "data", "CORPORA": "data", "DEFAULT_CORPUS": "data",
    "DEFAULT_TOKENIZER": "data", "EOS": "data", "eval_windows": "data",
    "load_documents": "data", "load_tokenizer": "data", "prepare": "data",
    "split_documents": "data", "TokenData": "data", "train_tokenizer": "data",
    "VAL_FRACTION": "data",
    "evaluate": "loop", "load_checkpoint": "loop", "lr_at": "loop", "make_optimizer": "loop",
    "pick_device": "loop", "pick_precision": "loop", "train": "loop", "TrainConfig": "settings",
    "TrainingDiverged": "loop",
    "run_identity": "settings", "run_key": "settings",
    "COLUMNS": "sweep", "git_commit": "sweep", "llama3_heads": "sweep", "load_grid": "sweep",
    "parse_shard": "sweep", "record": "sweep", "run_sweep": "sweep", "RunSpec": "sweep",
    "recall_probe": "probe",
    "estimate_run": "estimate", "estimate_sweep": "estimate",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"gqa_lib.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'gqa_lib.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
