"""DCMIX model (torch): channel mixing layer, classifier, checkpoints, training, inference."""

from napari_dcmix.model.backbones import BACKBONES, build_backbone
from napari_dcmix.model.checkpoint import (
    FORMAT_VERSION,
    default_model_path,
    load_model,
    save_model,
)
from napari_dcmix.model.classifier import DcmixClassifier, build_model
from napari_dcmix.model.device import resolve_device
from napari_dcmix.model.ensemble import DcmixEnsemble
from napari_dcmix.model.inference import (
    blended_images,
    predict_arrays,
    predict_plate,
    predict_plate_all,
)
from napari_dcmix.model.mixing import MODES, ChannelMixing
from napari_dcmix.model.predictions import (
    PlatePredictions,
    PredictProgress,
    SitePrediction,
    WellPrediction,
    write_predictions_csv,
)
from napari_dcmix.model.scale import PixelScale
from napari_dcmix.model.train_settings import (
    TRAIN_MODES,
    PredictConfig,
    TrainConfig,
    TrainProgress,
    TrainResult,
)
from napari_dcmix.model.training import train, train_arrays

__all__ = [
    "BACKBONES",
    "FORMAT_VERSION",
    "MODES",
    "TRAIN_MODES",
    "ChannelMixing",
    "DcmixClassifier",
    "DcmixEnsemble",
    "PixelScale",
    "PlatePredictions",
    "PredictConfig",
    "PredictProgress",
    "SitePrediction",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "WellPrediction",
    "blended_images",
    "build_backbone",
    "build_model",
    "default_model_path",
    "load_model",
    "predict_arrays",
    "predict_plate",
    "predict_plate_all",
    "resolve_device",
    "save_model",
    "train",
    "train_arrays",
    "write_predictions_csv",
]
