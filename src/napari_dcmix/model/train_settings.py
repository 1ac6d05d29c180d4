"""Training settings (TrainConfig) and what a training run yields (TrainProgress) and returns
(TrainResult)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from napari_dcmix.errors import ModelError
from napari_dcmix.model.classifier import DcmixClassifier

TRAIN_MODES = ("scratch", "mixing", "all")


@dataclass
class TrainConfig:
    """Training settings. ``backbone``, ``k``, ``mixing_mode``, ``temperature``, ``input_size``
    only matter when a model is built from scratch without a model to copy the architecture."""

    mode: str = "scratch"  # "scratch" | "mixing" (backbone frozen) | "all"
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    mixing_lr: float = 1e-2
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "cpu"
    val_fraction: float = 0.2
    augment: bool = True  # random flips and 90-degree rotations
    read_threads: int = 2
    fresh_mixing: bool = False  # model channels differ from the plate: fresh mixing layer
    cosine_schedule: bool = True
    backbone: str = "small_cnn"
    k: int = 3
    mixing_mode: str = "softmax"
    temperature: float = 1.0
    input_size: int = 128
    pretrained_path: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in TRAIN_MODES:
            raise ModelError(f"training mode: expected one of {TRAIN_MODES}, found {self.mode!r}")
        # (setting, value, test, what is expected): each failing one raises with expected/found
        checks = (
            ("epochs", self.epochs, lambda v: v >= 1, ">= 1"),
            ("batch size", self.batch_size, lambda v: v >= 1, ">= 1"),
            ("learning rate", self.lr, lambda v: v > 0, "> 0"),
            ("mixing learning rate", self.mixing_lr, lambda v: v > 0, "> 0"),
            ("weight decay", self.weight_decay, lambda v: v >= 0, ">= 0"),
            ("read threads", self.read_threads, lambda v: v >= 1, ">= 1"),
            ("k (blended images)", self.k, lambda v: v >= 1, ">= 1"),
            ("temperature", self.temperature, lambda v: v > 0, "> 0"),
            ("input size", self.input_size, lambda v: v >= 8, ">= 8 pixels"),
            ("validation fraction", self.val_fraction, lambda v: 0 <= v < 1, "0 <= f < 1"),
        )
        for what, value, ok, expected in checks:
            # NaN fails every comparison, so it is reported too
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not ok(value):
                raise ModelError(f"training {what}: expected {expected}, found {value!r}")


@dataclass
class TrainProgress:
    epoch: int  # 0 while reading sites, then 1..epochs
    epochs: int
    step: int
    steps: int
    loss: float | None
    train_accuracy: float | None
    val_accuracy: float | None
    importance: dict[str, float]
    message: str
    phase: str = "train"  # "read" | "train"
    device: str = "cpu"  # the device training runs on ("cpu", "cuda:0", "mps")


@dataclass
class TrainResult:
    model: DcmixClassifier | None  # trained copy; None when cancelled
    history: list[dict[str, Any]] = field(default_factory=list)
    importance: dict[str, float] = field(default_factory=dict)
    cancelled: bool = False
