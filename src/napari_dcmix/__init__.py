"""napari-dcmix: which fluorescence stain drives a phenotype? DCMIX models for HCS plates.

The public API is imported lazily so that ``import napari_dcmix`` (what napari does at start-up)
stays light: torch is imported only when a model function is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "open_plate": "napari_dcmix.plate",
    "Plate": "napari_dcmix.plate",
    "read_labels_csv": "napari_dcmix.plate.labels",
    "write_synthetic_plate": "napari_dcmix.synthetic",
    "build_model": "napari_dcmix.model",
    "load_model": "napari_dcmix.model",
    "save_model": "napari_dcmix.model",
    "train": "napari_dcmix.model",
    "TrainConfig": "napari_dcmix.model",
    "predict_plate": "napari_dcmix.model",
    "default_model_path": "napari_dcmix.model",
    "predict_screen": "napari_dcmix.screen",
    "PredictConfig": "napari_dcmix.model",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'napari_dcmix' has no attribute {name!r}")
    return getattr(import_module(module), name)
