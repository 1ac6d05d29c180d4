"""The session's state types, events and small helpers (Qt-free)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psygnal import Signal, SignalGroup

from napari_dcmix.errors import DcmixError
from napari_dcmix.model.train_settings import FINETUNE_DEFAULTS  # noqa: F401 (re-exported)

DEFAULT_CLASSES = ["control", "treated"]


class SessionEvents(SignalGroup):
    plate_added = Signal(str)  # key
    plate_removed = Signal(str)
    plate_changed = Signal(str)  # reopened (plane / timepoint): new pixels
    channels_changed = Signal(str)  # the stain mapping / excluded stains of a plate
    current_changed = Signal(object)  # key or None
    classes_changed = Signal(str)
    annotations_changed = Signal(str)
    predictions_changed = Signal(str)
    model_changed = Signal()
    ablation_changed = Signal()  # the per-stain ablation check of the model finished
    settings_changed = Signal()
    heatmap_changed = Signal()
    focus_changed = Signal(str)  # a well (and site) was chosen on a plate
    task_started = Signal(object)  # Task
    task_progress = Signal(object, object)  # Task, event
    task_finished = Signal(object)  # Task (task.outcome: done | cancelled | failed)
    importance_preview = Signal(object, str)  # importance (None: back to the model's), title
    device_used = Signal(str)
    constant_channels = Signal(str, object)  # plate key, stain names
    missing_changed = Signal()  # plates of an opened session that are still to be located


@dataclass
class PlateState:
    """One open plate: ``raw`` as opened (every stain), ``plate`` the view the model reads
    (the stain mapping applied, excluded stains left out), its classes, annotations,
    predictions and the well (and site) in focus."""

    key: str
    raw: Any
    plate: Any
    layout: str | None = None
    plane: Any = None
    timepoint: Any = None
    channel_map: dict[str, str] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=lambda: list(DEFAULT_CLASSES))
    annotations: dict[str, str] = field(default_factory=dict)
    predictions: Any = None
    focus: tuple[str, int | None] | None = None

    @property
    def name(self) -> str:
        return str(self.raw.name)

    @property
    def path(self) -> Path:
        return Path(self.raw.path)


@dataclass
class MissingPlate:
    """A plate of an opened session that is not where the session says (moved or renamed);
    ``locate_plate`` opens it from its new place with its annotations and predictions."""

    name: str
    path: str
    reason: str
    entry: dict[str, Any]
    folder: Path


@dataclass(frozen=True)
class NetworkView:
    """What the network sees of one site: its K blended images (K, h, w), at the model's
    scale (``site_shape`` is the site's own (H, W): a binned model sees fewer pixels)."""

    images: Any
    well: str
    site: int
    plate_key: str
    site_shape: tuple[int, int] = (0, 0)


def plate_key(plate: Any) -> str:
    """Plates are told apart by their folder (or URL): reopening it finds its state again."""
    if "://" in str(plate.path):
        return str(plate.path)
    try:
        return str(Path(plate.path).resolve())
    except (OSError, RuntimeError, TypeError):
        return str(plate.path)


def _train_fields() -> list[str]:
    from napari_dcmix.model.train_settings import TrainConfig, settings_fields

    return [f.name for f in settings_fields(TrainConfig)]


def _open_raw(path: Any, layout: str | None, plane: Any, timepoint: Any) -> Any:
    from napari_dcmix.plate import open_plate

    if plane is None and timepoint is None:
        return open_plate(path, layout)
    try:
        return open_plate(path, layout, plane=plane, timepoint=timepoint)
    except TypeError:
        raise DcmixError(
            "choosing a plane or timepoint needs a newer napari-dcmix plate reader"
        ) from None


def _resolved(mapping: Mapping[str, str], plate: Any) -> dict[str, str]:
    from napari_dcmix.plate.channel_map import _resolve_source

    return {_resolve_source(s, plate): t for s, t in mapping.items()}


def _refuse_existing(path: Path, overwrite: bool) -> None:
    from napari_dcmix.atomic import OutputError

    if path.is_dir():
        raise OutputError(f"{path} is a folder; expected the path of a file")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists (nothing was written); choose another name or replace it")


def train_overrides(overrides: Mapping[str, Any]) -> None:
    """TypeError for fine-tune options that are not training settings."""
    allowed = _train_fields()
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise TypeError(
            f"run_finetune() got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(allowed)}"
        )
