"""DcmixSession: what a user works with (plates, annotations, model, predictions, settings),
its actions, and events (psygnal) that views redraw on. Qt-free and napari-free.

Every change goes through a method that emits an event; views (the napari widget, scripts)
never set fields. Long actions are tasks (``predict_task``, ``finetune_task``) that a view runs
in a worker, or generators (``predict``, ``fine_tune``) that run in the caller's thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psygnal import Signal, SignalGroup

from napari_dcmix.errors import DcmixError, LabelsError, ModelError
from napari_dcmix.session.scores import ScoreSpec
from napari_dcmix.session.tasks import DONE, Task

DEFAULT_CLASSES = ["control", "treated"]
#: fine-tune defaults of the session (the form's). With a fresh mixing layer and head on a
#: frozen backbone, 10 epochs at the core's mixing lr (0.01) barely move the mixing weights
#: from uniform on a few annotated wells (the sample's 8 wells: its phenotype stain Mito first
#: for 2 of seeds 0..4); 30 epochs at 0.1 rank it first for all 5, clearly.
FINETUNE_DEFAULTS: dict[str, Any] = {
    "mode": "mixing",
    "epochs": 30,
    "mixing_lr": 0.1,
    "fresh_mixing": True,
}


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
    """What the network sees of one site: its K blended images (K, H, W)."""

    images: Any
    well: str
    site: int
    plate_key: str


def plate_key(plate: Any) -> str:
    """Plates are told apart by their folder: reopening it finds its state again."""
    try:
        return str(Path(plate.path).resolve())
    except (OSError, RuntimeError, TypeError):
        return str(plate.path)


def _train_fields() -> list[str]:
    from napari_dcmix.model.train_settings import TrainConfig, settings_fields

    return [f.name for f in settings_fields(TrainConfig)]


class DcmixSession:
    """The state of one napari-dcmix session and its actions (see the module docstring)."""

    def __init__(self) -> None:
        from napari_dcmix.model.train_settings import PredictConfig, TrainConfig

        self.events = SessionEvents()
        self.plates: dict[str, PlateState] = {}
        self.current_key: str | None = None
        self.model: Any = None
        self.model_path: Path | None = None
        self.model_is_default = False
        self.model_dirty = False  # fine-tuned and not saved
        self.train_settings = TrainConfig(**FINETUNE_DEFAULTS)
        self.predict_settings = PredictConfig()
        self.history: list[dict[str, Any]] = []  # epochs of the last fine-tune
        self.runs: list[dict[str, Any]] = []  # one summary per finished fine-tune
        self.losses: list[float] = []  # the running (or last) fine-tune's losses
        self.device_used: str | None = None
        self.heatmap: ScoreSpec | None = None
        self.task: Task | None = None
        self.missing: list[MissingPlate] = []
        self.view: dict[str, Any] = {}  # a view's own state (camera...), saved with the session
        self.load_notes: list[str] = []  # what opening a session could not restore

    # --- plates ----------------------------------------------------------------------------------
    @property
    def current(self) -> PlateState | None:
        return self.plates.get(self.current_key) if self.current_key else None

    @property
    def plate(self) -> Any:
        """The current plate as the model reads it (None without a plate)."""
        state = self.current
        return state.plate if state is not None else None

    def state(self, key: str | None = None) -> PlateState:
        key = key or self.current_key
        if key is None or key not in self.plates:
            raise DcmixError("open a plate first (Plate ▸ Open plate…)")
        return self.plates[key]

    def open_plate(
        self,
        path: str | Path,
        layout: str | None = None,
        *,
        plane: Any = None,
        timepoint: Any = None,
    ) -> PlateState:
        """Open a plate folder / zarr and make it the current plate (an open one is reused)."""
        raw = _open_raw(path, layout, plane, timepoint)
        return self.add_plate(raw, layout=layout, plane=plane, timepoint=timepoint)

    def add_plate(self, plate: Any, **opened: Any) -> PlateState:
        """Make an opened Plate (e.g. the napari reader's) a plate of the session, current."""
        key = plate_key(plate)
        state = self.plates.get(key)
        if state is None:
            classes = list(self.model.class_names) if self.model is not None else DEFAULT_CLASSES
            state = PlateState(key, plate, plate, classes=list(classes), **opened)
            self.plates[key] = state
            self._refresh_view(state)
            self.events.plate_added.emit(key)
        elif state.raw is not plate:
            state.raw = plate
            self._refresh_view(state)
            self.events.plate_changed.emit(key)
        self.set_current(key)
        return state

    def set_current(self, key: str | None) -> None:
        if key is not None and key not in self.plates:
            raise DcmixError(f"no open plate {key}")
        if key != self.current_key:
            self.current_key = key
            self.events.current_changed.emit(key)

    def close_plate(self, key: str) -> None:
        if key not in self.plates:
            return
        del self.plates[key]
        self.events.plate_removed.emit(key)
        if self.current_key == key:
            self.set_current(next(reversed(self.plates), None) if self.plates else None)

    def choose_plane(
        self, plane: Any = None, timepoint: Any = None, key: str | None = None
    ) -> None:
        """Reopen a plate at another plane (an index or "max" for the maximum projection) or
        timepoint; annotations stay, predictions (of the other plane) go."""
        state = self.state(key)
        raw = _open_raw(state.raw.path, state.layout, plane, timepoint)
        state.raw, state.plane, state.timepoint = raw, plane, timepoint
        self._refresh_view(state)
        state.predictions = None
        self.events.plate_changed.emit(state.key)
        self.events.predictions_changed.emit(state.key)

    # --- stains ----------------------------------------------------------------------------------
    def _refresh_view(self, state: PlateState) -> None:
        """The plate the model reads: the mapping in the model's stain order when it covers
        them, else the mapped / remaining stains in the plate's order."""
        from napari_dcmix.plate.channel_map import ChannelMapError, map_channels

        order = list(self.model.channel_names) if self.model is not None else None
        if order is not None and (state.channel_map or state.excluded):
            try:
                state.plate = map_channels(state.raw, state.channel_map, order, state.excluded)
                return
            except ChannelMapError:
                pass  # the model's stains are not all there: fine-tune adapts it
        state.plate = map_channels(state.raw, state.channel_map, None, state.excluded)

    def set_channel_map(
        self, mapping: Mapping[str, str] | str | None, key: str | None = None
    ) -> None:
        """Read the plate's stains under other names (``{plate stain: model stain}`` or the
        text form ``"Hoechst 33342=DNA,..."``); None or {} reads them as they are. A stain the
        plate lacks raises ChannelMapError listing the plate's."""
        from napari_dcmix.plate.channel_map import map_channels, parse_channel_map

        state = self.state(key)
        if isinstance(mapping, str):
            mapping = parse_channel_map(mapping)
        mapping = dict(mapping or {})
        map_channels(state.raw, mapping, None, state.excluded)  # checks the names
        state.channel_map = {k: v for k, v in _resolved(mapping, state.raw).items()}
        self._refresh_view(state)
        self.events.channels_changed.emit(state.key)

    def exclude_channels(self, names: Iterable[str], key: str | None = None) -> None:
        """Leave stains out of what the model reads (e.g. an empty channel); [] restores."""
        from napari_dcmix.plate.channel_map import map_channels

        state = self.state(key)
        names = list(dict.fromkeys(names))
        map_channels(state.raw, state.channel_map, None, names)  # checks the names
        state.excluded = names
        self._refresh_view(state)
        self.events.channels_changed.emit(state.key)

    def suggest_channel_map(self, key: str | None = None, by_position: bool = False) -> Any:
        """A suggested mapping of the plate's stains onto the model's (None when they match or
        there is no model)."""
        from napari_dcmix.plate.channel_map import suggest_channel_map

        state = self.state(key)
        if self.model is None or list(self.model.channel_names) == list(state.plate.channels):
            return None
        return suggest_channel_map(
            state.raw.channels, self.model.channel_names, by_position=by_position
        )

    def stains_match(self, key: str | None = None) -> bool:
        state = self.state(key)
        return self.model is None or list(self.model.channel_names) == list(state.plate.channels)

    # --- model -----------------------------------------------------------------------------------
    def load_model(self, path_or_model: Any = None) -> Any:
        """Load a model file, take a model object, or (None) the shipped default model. A view
        asks first when ``model_dirty`` (an unsaved fine-tuned model would be lost)."""
        from napari_dcmix.model import default_model_path, load_model

        if path_or_model is None:
            path = Path(default_model_path())
            self._set_model(load_model(path), path, dirty=False, default=True)
        elif isinstance(path_or_model, (str, Path)):
            path = Path(path_or_model)
            self._set_model(load_model(path), path, dirty=False)
        else:
            self._set_model(path_or_model, None, dirty=False)
        return self.model

    def ensure_model(self) -> Any:
        return self.model if self.model is not None else self.load_model(None)

    def _set_model(self, model: Any, path: Path | None, dirty: bool, default: bool = False) -> None:
        self.model, self.model_path, self.model_dirty = model, path, dirty
        self.model_is_default = default
        for state in self.plates.values():
            if not state.annotations and list(state.classes) != list(model.class_names):
                state.classes = list(model.class_names)
                self.events.classes_changed.emit(state.key)
            self._refresh_view(state)
        self.events.model_changed.emit()

    def save_model(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the model (``.pt`` added when there is no suffix); an existing file is
        replaced only with ``overwrite``."""
        from napari_dcmix.model import save_model

        if self.model is None:
            raise ModelError("there is no model to save")
        path = Path(path)
        if path.suffix == "":
            path = path.with_suffix(".pt")
        _refuse_existing(path, overwrite)
        saved = Path(save_model(self.model, path))
        self.model_path, self.model_dirty, self.model_is_default = saved, False, False
        self.events.model_changed.emit()
        return saved

    def importance_view(self) -> dict[str, Any] | None:
        """What the importance chart shows for the model: its stored evidence (importance,
        intervals, verdict, per class, held-out accuracy) or, without evidence, its weights."""
        if self.model is None:
            return None
        from napari_dcmix.session.importance import importance_view

        return importance_view(self.model)

    # --- settings --------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        return self.predict_settings.device

    def update_settings(self, which: str, **values: Any) -> None:
        """Change fine-tune (``which="train"``) or predict settings; the settings class
        checks them (ModelError says what was expected)."""
        current = self.train_settings if which == "train" else self.predict_settings
        new = dataclasses.replace(current, **values)
        if which == "train":
            self.train_settings = new
        else:
            self.predict_settings = new
        self.events.settings_changed.emit()

    # --- classes and annotations -----------------------------------------------------------------
    def classes(self, key: str | None = None) -> list[str]:
        state = self.current if key is None else self.plates.get(key)
        return list(state.classes) if state is not None else list(DEFAULT_CLASSES)

    @property
    def annotations(self) -> dict[str, str]:
        state = self.current
        return dict(state.annotations) if state is not None else {}

    def set_classes(self, names: list[str], key: str | None = None) -> None:
        names = [str(n).strip() for n in names]
        if any(not n for n in names) or len(set(names)) != len(names):
            raise LabelsError(f"class names must be unique and non-empty, found {names}")
        state = self.state(key)
        state.classes = names
        self.events.classes_changed.emit(state.key)

    def add_class(self, name: str | None = None, key: str | None = None) -> str:
        state = self.state(key)
        if name is None:
            i = len(state.classes) + 1
            while f"class {i}" in state.classes:
                i += 1
            name = f"class {i}"
        if name not in state.classes:
            self.set_classes([*state.classes, name], state.key)
        return name

    def rename_class(self, old: str, new: str, key: str | None = None) -> None:
        state = self.state(key)
        new = new.strip()
        if old not in state.classes:
            raise LabelsError(f"there is no class {old!r} (classes: {', '.join(state.classes)})")
        if new == old:
            return
        if not new or new in state.classes:
            raise LabelsError(f"class names must be unique and non-empty: kept {old!r}")
        state.classes = [new if c == old else c for c in state.classes]
        state.annotations = {w: (new if c == old else c) for w, c in state.annotations.items()}
        self.events.classes_changed.emit(state.key)
        self.events.annotations_changed.emit(state.key)

    def remove_class(self, name: str, key: str | None = None) -> int:
        """Remove a class and the annotations of its wells; returns how many wells lost it."""
        state = self.state(key)
        dropped = sum(c == name for c in state.annotations.values())
        state.classes = [c for c in state.classes if c != name]
        state.annotations = {w: c for w, c in state.annotations.items() if c != name}
        self.events.classes_changed.emit(state.key)
        self.events.annotations_changed.emit(state.key)
        return dropped

    def set_annotations(self, labels: Mapping[str, str], key: str | None = None) -> None:
        """Replace the plate's annotations (well -> class); new classes join its class list.
        Wells the plate does not have raise LabelsError naming them."""
        from napari_dcmix.plate.labels import check_labels_fit

        state = self.state(key)
        labels = check_labels_fit(dict(labels), state.raw)
        new_classes = [c for c in dict.fromkeys(labels.values()) if c not in state.classes]
        state.annotations = labels
        if new_classes:
            state.classes = [*state.classes, *new_classes]
            self.events.classes_changed.emit(state.key)
        self.events.annotations_changed.emit(state.key)

    def annotate(
        self, wells: Iterable[str], class_name: str | None, key: str | None = None
    ) -> None:
        """Give ``wells`` the class ``class_name`` (None clears them)."""
        state = self.state(key)
        new = dict(state.annotations)
        for well in wells:
            if class_name is None:
                new.pop(well, None)
            else:
                new[well] = str(class_name)
        self.set_annotations(new, state.key)

    def read_plate_map(self, path: str | Path, key: str | None = None) -> dict[str, str]:
        """The plate map CSV's labels for the plate (checked against its wells)."""
        from napari_dcmix.plate.labels import check_labels_fit, read_labels_csv

        state = self.state(key)
        return check_labels_fit(read_labels_csv(path, plate=state.name), state.raw)

    def import_annotations(self, path: str | Path, key: str | None = None) -> dict[str, str]:
        labels = self.read_plate_map(path, key)
        self.set_annotations(labels, key)
        return labels

    def save_annotations(
        self, path: str | Path, overwrite: bool = False, key: str | None = None
    ) -> Path:
        from napari_dcmix.plate.labels import write_labels_csv

        state = self.state(key)
        if not state.annotations:
            raise LabelsError("no wells are annotated")
        path = Path(path)
        _refuse_existing(path, overwrite)
        return _write_atomically(
            path, lambda tmp: write_labels_csv(tmp, state.annotations), "annotations"
        )

    # --- predictions and the heatmap -------------------------------------------------------------
    @property
    def predictions(self) -> Any:
        state = self.current
        return state.predictions if state is not None else None

    def set_predictions(self, predictions: Any, key: str | None = None) -> None:
        state = self.state(key)
        state.predictions = predictions
        self.events.predictions_changed.emit(state.key)

    def export_predictions(
        self, path: str | Path, overwrite: bool = False, key: str | None = None
    ) -> Path:
        """Write the per-well numbers shown on the plate (``well_features``) to CSV."""
        import csv

        from napari_dcmix.session.scores import well_features

        state = self.state(key)
        if state.predictions is None:
            raise DcmixError("nothing to export yet; run Predict first")
        path = Path(path)
        if path.suffix.lower() != ".csv":
            path = path.with_suffix(".csv")
        _refuse_existing(path, overwrite)
        features = well_features(state.predictions, state.name)
        columns = list(features)
        rows = zip(*(features[c] for c in columns), strict=True)

        def write(tmp: Path) -> None:
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(columns)
                writer.writerows(rows)

        return _write_atomically(path, write, "predictions CSV")

    def set_heatmap(self, spec: ScoreSpec | None) -> None:
        """Show a per-well score (None: no heatmap); its classes are checked when drawn."""
        self.heatmap = spec
        self.events.heatmap_changed.emit()

    # --- focus and what the network sees ---------------------------------------------------------
    def focus(self, well: str, site: int | None = None, key: str | None = None) -> None:
        from napari_dcmix.plate.wells import normalise_well

        state = self.state(key)
        well = normalise_well(well)
        if well not in state.raw.wells:
            raise DcmixError(f"plate {state.name!r} has no well {well}")
        if site is not None and int(site) not in state.raw.sites(well):
            raise DcmixError(f"plate {state.name!r}: well {well} has no site {site}")
        state.focus = (well, None if site is None else int(site))
        self.events.focus_changed.emit(state.key)

    def network_view(self, well: str | None = None, site: int | None = None) -> NetworkView:
        """The model's K blended images of a site: the given one, else the site in focus, else
        the first site of the well in focus (or of the plate)."""
        from napari_dcmix.model import blended_images

        state = self.state()
        model = self.ensure_model()
        if well is None and state.focus is not None:
            well, site = state.focus
        well = well or state.plate.wells[0]
        site = int(site) if site is not None else state.plate.sites(well)[0]
        self._check_stains(state)
        images = blended_images(model, state.plate.read(well, site))
        return NetworkView(images, well, site, state.key)

    def _check_stains(self, state: PlateState) -> None:
        if list(self.model.channel_names) == list(state.plate.channels):
            return
        suggestion = self.suggest_channel_map(state.key)
        hint = (
            f" A mapping is suggested from the names: {suggestion.text()}."
            if suggestion is not None and suggestion.complete and suggestion.mapping
            else ""
        )
        raise ModelError(
            f"the model's stains {list(self.model.channel_names)} differ from plate "
            f"{state.name!r} stains {list(state.plate.channels)}. Map the plate's stains to the "
            f"model's (Stains), or annotate wells of each class and Fine-tune to adapt the "
            f"model to these stains.{hint}"
        )

    # --- tasks -----------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.task is not None

    def _start(self, task: Task) -> Task:
        if self.task is not None:
            raise DcmixError(f"{self.task.action} is running; wait for it or cancel it")
        self.task = task
        self.events.task_started.emit(task)
        return task

    def _task_ended(self, task: Task) -> None:
        if self.task is task:
            self.task = None
        self.events.task_finished.emit(task)

    def cancel(self) -> None:
        """Stop the running task at its next step; its result is discarded."""
        if self.task is not None:
            self.task.cancel()

    def run(self, task: Task) -> Generator[Any, None, Any]:
        """Run a task in this thread: yields its progress events, returns its result (None when
        cancelled); the session is updated as the widget's worker would update it."""
        if self.task is not task:
            self._start(task)
        try:
            gen = task.work()
            while True:
                try:
                    event = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                task.progress(event)
                yield event
                if task.cancelled:
                    gen.close()
                    result = None
                    break
        except GeneratorExit:
            task.cancel()
            task.end(None)
            raise
        except Exception as exc:
            task.end(None, exc)
            raise
        task.end(result)
        return task.result if task.outcome == DONE else None

    def predict(self, **overrides: Any) -> Generator[Any, None, Any]:
        """``result = yield from session.predict()`` (or drain it): predict the current plate."""
        return self.run(self.predict_task(**overrides))

    def fine_tune(self, **overrides: Any) -> Generator[Any, None, Any]:
        """Fine-tune on the current plate's annotations; a cancelled run keeps the model."""
        return self.run(self.finetune_task(**overrides))

    def predict_task(self, **overrides: Any) -> Task:
        from napari_dcmix.session.actions import predict_task

        return self._start(predict_task(self, **overrides))

    def finetune_task(self, **overrides: Any) -> Task:
        from napari_dcmix.session.actions import finetune_task

        return self._start(finetune_task(self, **overrides))

    # --- report and session files ----------------------------------------------------------------
    def write_report(self, path: str | Path, overwrite: bool = False) -> Any:
        """The HTML report of the model and the plates' predictions (see napari_dcmix.report)."""
        from napari_dcmix.report import write_report

        if self.model is None:
            raise ModelError("there is no model to report on; load or fine-tune one first")
        predictions = [s.predictions for s in self.plates.values() if s.predictions is not None]
        return write_report(
            self.model,
            path,
            predictions=predictions,
            model_path=self.model_path,
            overwrite=overwrite,
        )

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Save the session as one folder (written atomically; see ``session.store``)."""
        from napari_dcmix.session.store import save_session

        return save_session(self, folder, overwrite=overwrite)

    def load(self, folder: str | Path) -> list[MissingPlate]:
        """Replace this session's state with a saved session's; plates not found where it
        says are returned (and kept in ``missing``) for ``locate_plate``."""
        from napari_dcmix.session.store import load_session

        return load_session(self, folder)

    def locate_plate(self, missing: MissingPlate, path: str | Path) -> PlateState:
        from napari_dcmix.session.store import restore_plate

        state = restore_plate(self, missing.entry, missing.folder, Path(path))
        self.missing = [m for m in self.missing if m is not missing]
        self.events.missing_changed.emit()
        return state

    def forget_missing(self, missing: MissingPlate) -> None:
        self.missing = [m for m in self.missing if m is not missing]
        self.events.missing_changed.emit()

    def set_view(self, view: Mapping[str, Any]) -> None:
        """A view's own state (camera, toggles), kept and saved with the session."""
        self.view = dict(view)

    def clear(self) -> None:
        """Close every plate and drop the model, predictions and history."""
        from napari_dcmix.model.train_settings import PredictConfig, TrainConfig

        if self.task is not None:
            raise DcmixError(f"{self.task.action} is running; wait for it or cancel it")
        for key in list(self.plates):
            self.close_plate(key)
        self.model, self.model_path = None, None
        self.model_dirty, self.model_is_default = False, False
        self.history, self.runs, self.losses = [], [], []
        self.train_settings = TrainConfig(**FINETUNE_DEFAULTS)
        self.predict_settings = PredictConfig()
        self.heatmap, self.device_used, self.view, self.missing = None, None, {}, []
        self.events.model_changed.emit()
        self.events.settings_changed.emit()
        self.events.heatmap_changed.emit()
        self.events.missing_changed.emit()


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


def _write_atomically(path: Path, write: Any, what: str) -> Path:
    """``write(tmp_path)`` writes a whole file by path (a core writer); its bytes then reach
    ``path`` through ``atomic_write``: the file appears whole or not at all."""
    import tempfile

    from napari_dcmix.atomic import atomic_write_bytes

    with tempfile.TemporaryDirectory(prefix="dcmix-out-") as tmp:
        staged = Path(tmp) / path.name
        write(staged)
        data = staged.read_bytes()
    return atomic_write_bytes(path, data, what=what)


def train_overrides(overrides: Mapping[str, Any]) -> None:
    """TypeError for fine-tune options that are not training settings."""
    allowed = _train_fields()
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise TypeError(
            f"run_finetune() got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(allowed)}"
        )
