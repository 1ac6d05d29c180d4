"""DCMIX model (torch): channel mixing, classifiers and ensembles, checkpoints, training,
inference, and the evidence a chart may claim.

Names are imported lazily, so that importing a light submodule (``train_settings``,
``evidence``, ``scale``, ``folds``: numpy only) does not import torch; torch is imported when
a torch-backed name is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "BACKBONES": "backbones",
    "build_backbone": "backbones",
    "FORMAT_VERSION": "checkpoint",
    "default_model_path": "checkpoint",
    "load_model": "checkpoint",
    "save_model": "checkpoint",
    "DcmixClassifier": "classifier",
    "build_model": "classifier",
    "resolve_device": "device",
    "DcmixEnsemble": "ensemble",
    "blended_images": "inference",
    "predict_arrays": "inference",
    "predict_plate": "inference",
    "predict_plate_all": "inference",
    "MODES": "mixing",
    "ChannelMixing": "mixing",
    "PlatePredictions": "predictions",
    "PredictProgress": "predictions",
    "SitePrediction": "predictions",
    "SkippedSite": "predictions",
    "WellPrediction": "predictions",
    "write_predictions_csv": "predictions",
    "PixelScale": "scale",
    "FINETUNE_DEFAULTS": "train_settings",
    "TRAIN_MODES": "train_settings",
    "PredictConfig": "train_settings",
    "TrainConfig": "train_settings",
    "TrainProgress": "train_settings",
    "TrainResult": "train_settings",
    "finetune_config": "train_settings",
    "train": "training",
    "train_arrays": "training",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'napari_dcmix.model' has no attribute {name!r}")
    value = getattr(import_module(f"napari_dcmix.model.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
