"""DcmixSession: what a user works with (plates, annotations, model, predictions, settings),
its actions, and events (psygnal) that views redraw on. Qt-free and napari-free.

Every change goes through a method that emits an event; views (the napari widget, scripts)
never set fields. Long actions are tasks (``predict_task``, ``finetune_task``) that a view runs
in a worker, or generators (``predict``, ``fine_tune``) that run in the caller's thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

from napari_dcmix.errors import DcmixError, ModelError
from napari_dcmix.session.annotations import AnnotationActions
from napari_dcmix.session.scores import ScoreSpec
from napari_dcmix.session.stains import StainActions
from napari_dcmix.session.state import (
    DEFAULT_CLASSES,
    FINETUNE_DEFAULTS,
    MissingPlate,
    NetworkView,
    PlateState,
    SessionEvents,
    _open_raw,
    _refuse_existing,
    plate_key,
    train_overrides,
)
from napari_dcmix.session.tasks import DONE, Task

__all__ = [
    "DEFAULT_CLASSES",
    "FINETUNE_DEFAULTS",
    "DcmixSession",
    "MissingPlate",
    "NetworkView",
    "PlateState",
    "SessionEvents",
    "plate_key",
    "train_overrides",
]


class DcmixSession(AnnotationActions, StainActions):
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
        self.ablation: Any = None  # the last per-stain ablation check of this model
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
        self._refuse_while_running(state, "plane or timepoint")
        raw = _open_raw(state.raw.path, state.layout, plane, timepoint)
        state.raw, state.plane, state.timepoint = raw, plane, timepoint
        self._refresh_view(state)
        state.predictions = None
        self.events.plate_changed.emit(state.key)
        self.events.predictions_changed.emit(state.key)

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
        self.ablation = None  # it checked the previous model
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

    def update_settings(self, which: str, **values: Any) -> Any:
        """Change fine-tune (``which="train"``) or predict settings; the settings class
        checks them (ModelError says what was expected). Returns the new settings."""
        current = self.train_settings if which == "train" else self.predict_settings
        new = dataclasses.replace(current, **values)
        if which == "train":
            self.train_settings = new
        else:
            self.predict_settings = new
        self.events.settings_changed.emit()
        return new

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
        """Stop the running task at its next step; its result is discarded. A task whose work
        never started (made by ``predict_task`` and never run) ends here and now."""
        task = self.task
        if task is None:
            return
        task.cancel()
        if not task.started:
            task.end(None)

    def run(self, task: Task) -> Generator[Any, None, Any]:
        """Run a task in this thread: yields its progress events, returns its result (None when
        cancelled); the session is updated as the widget's worker would update it."""
        if task.outcome is not None:  # ended before it ran (cancelled)
            return None
        if task.cancelled:
            task.end(None)
            return None
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
        """``result = yield from session.predict()`` (or drain it): predict the current plate.
        The task starts at the first ``next()``: a generator never run leaves the session
        idle."""
        return (yield from self.run(self.predict_task(**overrides)))

    def fine_tune(self, **overrides: Any) -> Generator[Any, None, Any]:
        """Fine-tune on the current plate's annotations; a cancelled run keeps the model. The
        task starts at the first ``next()``."""
        return (yield from self.run(self.finetune_task(**overrides)))

    def predict_task(self, **overrides: Any) -> Task:
        from napari_dcmix.session.actions import predict_task

        return self._start(predict_task(self, **overrides))

    def ablation_task(self) -> Task:
        """Check the model's importance by per-stain ablation on the annotated wells."""
        from napari_dcmix.session.actions import ablation_task

        return self._start(ablation_task(self))

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
        """Open a missing plate from ``path`` with what the session saved of it (what cannot
        be restored is said in ``load_notes``)."""
        from napari_dcmix.session.store import is_url, restore_plate

        where = str(path) if is_url(path) else Path(path)
        state = restore_plate(self, missing.entry, missing.folder, where)
        self.missing = [m for m in self.missing if m is not missing]
        self.events.missing_changed.emit()
        return state

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
        self.ablation = None  # it checked the dropped model
        self.history, self.runs, self.losses = [], [], []
        self.train_settings = TrainConfig(**FINETUNE_DEFAULTS)
        self.predict_settings = PredictConfig()
        self.heatmap, self.device_used, self.view, self.missing = None, None, {}, []
        self.events.model_changed.emit()
        self.events.ablation_changed.emit()
        self.events.settings_changed.emit()
        self.events.heatmap_changed.emit()
        self.events.missing_changed.emit()
