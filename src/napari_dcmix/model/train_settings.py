"""Training settings (TrainConfig) and what a training run yields (TrainProgress) and returns
(TrainResult)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from napari_dcmix.errors import ModelError
from napari_dcmix.model.folds import HOLDOUTS
from napari_dcmix.model.scale import FULL, parse_bin, parse_crop

TRAIN_MODES = ("scratch", "mixing", "all")


def setting(
    default: Any,
    label: str,
    help: str,
    *,
    group: str = "training",
    choices: tuple | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    step: float | None = None,
    widget: bool = True,
    cli: str | None = "",
    advanced: bool = False,
) -> Any:
    """A settings field with the metadata the CLI and the widget forms are built from, so a
    setting is defined once: ``label`` (form label), ``help`` (CLI help and tooltip),
    ``choices``, ``minimum`` / ``maximum`` / ``step`` (form bounds), ``widget`` (shown in the
    widget's form), ``cli`` (the option name; ``""`` means ``--`` + the field name with dashes,
    None keeps it off the command line), ``advanced`` (folded away in the form), ``group``."""
    meta = {
        "label": label,
        "help": help,
        "group": group,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "step": step,
        "widget": widget,
        "cli": cli,
        "advanced": advanced,
    }
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Training settings. ``backbone``, ``k``, ``mixing_mode``, ``temperature``, ``input_size``
    only matter when a model is built from scratch without a model to copy the architecture.
    Each field's metadata (see ``setting``) builds the CLI options and the widget's form."""

    mode: str = setting("scratch", "Train", "scratch: a new model; mixing: fine-tune the mixing "
                        "layer and head (backbone frozen); all: fine-tune every layer",
                        choices=TRAIN_MODES)  # fmt: skip
    epochs: int = setting(10, "Epochs", "passes over the training set", minimum=1, maximum=1000)
    batch_size: int = setting(16, "Batch size", "images per training step", minimum=1,
                              maximum=4096, advanced=True)  # fmt: skip
    lr: float = setting(1e-3, "Learning rate", "learning rate of the backbone and the class head",
                        minimum=1e-6, maximum=1.0, step=1e-4)  # fmt: skip
    mixing_lr: float = setting(1e-2, "Mixing learning rate", "learning rate of the channel-"
                               "mixing layer (the chart's weights)", minimum=1e-5, maximum=10.0,
                               step=1e-2)  # fmt: skip
    weight_decay: float = setting(1e-4, "Weight decay", "AdamW weight decay (not on the mixing "
                                  "layer)", minimum=0.0, maximum=1.0, advanced=True)  # fmt: skip
    seed: int = setting(0, "Seed", "seed of initialisation, sampling and augmentation",
                        minimum=0, maximum=2**63 - 1)  # fmt: skip
    device: str = setting("cpu", "Device", "cpu, auto (CUDA, then MPS, then CPU), cuda, cuda:N "
                          "or mps", widget=False)  # fmt: skip
    val_fraction: float = setting(0.2, "Validation fraction", "share of wells per class held "
                                  "out to report validation accuracy during training",
                                  minimum=0.0, maximum=0.9, advanced=True)  # fmt: skip
    augment: bool = setting(True, "Augment", "random flips and 90-degree rotations",
                            advanced=True, cli=None)  # fmt: skip
    read_threads: int = setting(2, "Read threads", "threads reading sites from the plate",
                                minimum=1, maximum=64, advanced=True)  # fmt: skip
    fresh_mixing: bool = setting(False, "Fresh mixing layer", "fine-tuning: start a fresh "
                                 "mixing layer and class head, keep the backbone (needed when "
                                 "the model's stains differ from the plate's)")  # fmt: skip
    cosine_schedule: bool = setting(True, "Cosine schedule", "cosine learning-rate decay",
                                    advanced=True, cli=None)  # fmt: skip
    backbone: str = setting("small_cnn", "Backbone", "network behind the mixing layer (new "
                            "models)", choices=("small_cnn", "resnet18", "resnet50"),
                            group="architecture", advanced=True)  # fmt: skip
    k: int = setting(3, "Blended images (K)", "blended images the mixing layer feeds the "
                     "backbone (new models)", minimum=1, maximum=16, group="architecture",
                     advanced=True)  # fmt: skip
    mixing_mode: str = setting("softmax", "Mixing mode", "softmax (default) or over "
                               "(alpha compositing)", choices=("softmax", "over"),
                               group="architecture", advanced=True, cli="--mixing")  # fmt: skip
    temperature: float = setting(1.0, "Temperature", "softmax temperature of the mixing layer",
                                 minimum=1e-3, maximum=100.0, group="architecture",
                                 advanced=True, cli=None)  # fmt: skip
    input_size: int = setting(128, "Input size", "pixels per side the network sees when the "
                              "whole site is resized (new models)", minimum=8, maximum=4096,
                              group="architecture", advanced=True)  # fmt: skip
    pretrained_path: str | None = setting(None, "Pretrained weights", "local ImageNet state "
                                          "dict for a ResNet backbone", group="architecture",
                                          widget=False, cli=None)  # fmt: skip
    bin: int | None = setting(None, "Bin", "binning factor applied to each site before the "
                              "network (1 = the camera's pixels); default: the model's, else 1",
                              minimum=1, maximum=32, group="scale")  # fmt: skip
    crop: int | str | None = setting(None, "Crop", "side, in binned pixels, of the square the "
                                     "network sees, or 'full' to resize the whole site; "
                                     "default: the model's, else 128 (or the whole binned site "
                                     "when it is smaller)", group="scale")  # fmt: skip
    crops_per_site: int = setting(1, "Crops per site", "random crops of each labelled site per "
                                  "epoch", minimum=1, maximum=256, group="scale",
                                  advanced=True)  # fmt: skip
    max_tiles: int | None = setting(None, "Max tiles", "tiles per site when held-out wells are "
                                    "predicted (spread evenly); default: all", minimum=1,
                                    maximum=10_000, group="scale", advanced=True)  # fmt: skip
    ensemble: int = setting(5, "Ensemble", "independently seeded members; each holds out a fold "
                            "of the wells, and their spread is each stain's interval",
                            minimum=1, maximum=64, group="evidence")  # fmt: skip
    holdout: str = setting("wells", "Hold out", "wells: cross-validation by well; plate: each "
                           "member holds out a plate", choices=("wells", "plate"),
                           group="evidence")  # fmt: skip
    reference: str | None = setting(None, "Reference class", "class per-class importance is "
                                    "measured against (default: control, DMSO, negative or neg, "
                                    "else the largest class)", group="evidence",
                                    advanced=True)  # fmt: skip
    mixing_init_std: float = setting(0.5, "Mixing start spread", "standard deviation of the "
                                     "random start of fresh mixing-layer logits: members start "
                                     "apart, so weights the data does not settle stay apart",
                                     minimum=0.0, maximum=10.0, group="evidence",
                                     advanced=True)  # fmt: skip
    balance: bool = setting(True, "Balance classes", "weigh the loss by inverse class "
                            "frequency", group="evidence", advanced=True)  # fmt: skip
    parallel: int | None = setting(None, "Parallel members", "members trained at the same "
                                   "time in this process (default: one per CPU core, at most "
                                   "the ensemble size)", minimum=1, maximum=64,
                                   advanced=True)  # fmt: skip
    cache_mb: int = setting(512, "Site cache (MB)", "memory for sites kept between epochs",
                            minimum=0, maximum=1_000_000, advanced=True)  # fmt: skip

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
            ("crops per site", self.crops_per_site, lambda v: v >= 1, ">= 1"),
            ("ensemble size", self.ensemble, lambda v: v >= 1, ">= 1"),
            ("site cache", self.cache_mb, lambda v: v >= 0, ">= 0 MB"),
            ("mixing start spread", self.mixing_init_std, lambda v: v >= 0, ">= 0"),
        )
        for what, value, ok, expected in checks:
            # NaN fails every comparison, so it is reported too
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not ok(value):
                raise ModelError(f"training {what}: expected {expected}, found {value!r}")
        for what, value in (("seed", self.seed),):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
                raise ModelError(
                    f"training {what}: expected an integer from 0 to 2**63 - 1, found {value!r}"
                )
        for what, value in (("max tiles", self.max_tiles), ("parallel members", self.parallel)):
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ModelError(f"training {what}: expected a positive integer, found {value!r}")
        if self.bin is not None:
            self.bin = parse_bin(self.bin)
        if self.crop is not None:
            parsed = parse_crop(self.crop)
            self.crop = FULL if parsed is None else parsed
        if self.holdout not in HOLDOUTS:
            raise ModelError(f"hold out: expected one of {HOLDOUTS}, found {self.holdout!r}")
        if self.reference is not None and not str(self.reference).strip():
            raise ModelError("reference class: expected a class name, found an empty string")


#: Fine-tuning a trained model on annotated wells (the widget's Fine-tune, ``train --init``):
#: the backbone is kept and frozen, a fresh mixing layer and class head are trained, so the
#: chart answers which stain separates the annotated classes. A few wells need larger rates
#: than training from scratch: the head learns at 1e-2 (at 1e-3 it is still near its random
#: start after 60 steps and held-out wells are near chance) and the mixing layer at 0.1.
FINETUNE_DEFAULTS: dict[str, Any] = {
    "mode": "mixing",
    "fresh_mixing": True,
    "epochs": 30,
    "lr": 1e-2,
    "mixing_lr": 0.1,
}


def finetune_config(**overrides: Any) -> TrainConfig:
    """A TrainConfig with the fine-tuning defaults, then ``overrides``."""
    return TrainConfig(**{**FINETUNE_DEFAULTS, **overrides})


@dataclass
class PredictConfig:
    """Prediction settings (CLI ``predict`` options, the widget's predict form)."""

    device: str = setting("auto", "Device", "auto (CUDA, then MPS, then CPU), cpu, cuda, "
                          "cuda:N or mps")  # fmt: skip
    batch_size: int = setting(32, "Batch size", "images per forward pass", minimum=1,
                              maximum=4096, advanced=True)  # fmt: skip
    read_threads: int = setting(2, "Read threads", "threads reading and decoding sites ahead "
                                "of the model", minimum=1, maximum=64, advanced=True)  # fmt: skip
    max_tiles: int | None = setting(None, "Max tiles", "most tiles per site for a model with a "
                                    "crop size (an even sub-grid that still spans the site); "
                                    "default: every tile", minimum=1, maximum=100_000,
                                    advanced=True)  # fmt: skip
    skip_bad_sites: bool = setting(False, "Skip unreadable sites", "leave out sites that cannot "
                                   "be read (a warning per site; well rows count the sites "
                                   "used) instead of stopping at the first",
                                   advanced=True)  # fmt: skip
    workers: int | None = setting(None, "Workers", "start a local Dask cluster of N worker "
                                  "processes (one thread each) and predict on it; without "
                                  "--workers or --scheduler prediction runs in this process",
                                  minimum=1, maximum=1024, group="screen",
                                  widget=False)  # fmt: skip
    scheduler: str | None = setting(None, "Scheduler", "address of a running Dask scheduler "
                                    "(e.g. tcp://host:8786) whose workers predict",
                                    group="screen", widget=False)  # fmt: skip
    scheduler_timeout: float = setting(10.0, "Scheduler timeout", "seconds to wait for "
                                       "--scheduler to answer before giving up", minimum=0.1,
                                       maximum=3600.0, group="screen", widget=False,
                                       advanced=True)  # fmt: skip
    max_task_sites: int = setting(64, "Sites per task", "most sites in one Dask task (whole "
                                  "wells: a well with more sites is a task of its own)",
                                  minimum=1, maximum=100000, group="screen", widget=False,
                                  advanced=True)  # fmt: skip

    def __post_init__(self) -> None:
        for what, value in (("batch size", self.batch_size), ("read threads", self.read_threads),
                            ("sites per task", self.max_task_sites)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ModelError(f"prediction {what}: expected an integer >= 1, found {value!r}")
        if self.max_tiles is not None and (
            not isinstance(self.max_tiles, int) or isinstance(self.max_tiles, bool)
            or self.max_tiles < 1
        ):  # fmt: skip
            raise ModelError(f"--max-tiles: expected a positive integer, found {self.max_tiles!r}")
        if self.workers is not None and (
            not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 1
        ):
            raise ModelError(
                f"--workers: expected a number of worker processes >= 1, found {self.workers!r} "
                "(leave it out to predict in this process)"
            )
        if self.scheduler is not None and not str(self.scheduler).strip():
            raise ModelError("--scheduler: expected a scheduler address such as tcp://host:8786")
        if self.workers is not None and self.scheduler is not None:
            raise ModelError(
                f"--workers {self.workers} and --scheduler {self.scheduler}: give one of them "
                "(--workers starts a local cluster, --scheduler uses a running one)"
            )
        timeout = self.scheduler_timeout
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
            raise ModelError(f"--scheduler-timeout: expected seconds > 0, found {timeout!r}")


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
    phase: str = "train"  # "read" | "train" | "evaluate"
    device: str = "cpu"  # the device training runs on ("cpu", "cuda:0", "mps")
    member: int = 1  # which ensemble member (1-based) this event is about
    members: int = 1
    done: int = 0  # training steps done over all members (for one progress bar)
    total: int = 0


@dataclass
class TrainResult:
    model: Any | None  # the trained DcmixEnsemble; None when cancelled
    history: list[dict[str, Any]] = field(default_factory=list)
    importance: dict[str, float] = field(default_factory=dict)
    cancelled: bool = False
    evidence: dict[str, Any] | None = None


def settings_fields(cls: type = TrainConfig) -> list:
    """The dataclass fields of a settings class that carry ``setting`` metadata, in order."""
    return [f for f in fields(cls) if "label" in f.metadata]
