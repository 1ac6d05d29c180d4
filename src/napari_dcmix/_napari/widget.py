"""The DCMIX dock widget: a view of a ``DcmixSession`` (napari_dcmix.session).

The session holds the state and does the work; the widget's sections call it and redraw on
its events, ``PlateLayers`` keeps the napari layers in step with it, and long tasks run in
napari thread workers (``Job``). The public methods here are what the buttons call and what
scripts call; each asks the user first where something would be lost or replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QScrollArea, QVBoxLayout, QWidget

from napari_dcmix._napari.annotate_section import AnnotateSection
from napari_dcmix._napari.chart import ImportanceChart, charts_of
from napari_dcmix._napari.colors import layer_colors
from napari_dcmix._napari.dialogs import Dialogs
from napari_dcmix._napari.finetune_section import FinetuneSection
from napari_dcmix._napari.model_section import ModelSection
from napari_dcmix._napari.plate_layers import PlateLayers, camera_of
from napari_dcmix._napari.plate_section import PlateSection, SessionSection
from napari_dcmix._napari.predict_section import PredictSection
from napari_dcmix._napari.stain_section import StainSection
from napari_dcmix._napari.workers import Job, error_text, wait_until, warm_progress, warm_torch
from napari_dcmix.errors import DcmixError
from napari_dcmix.session import DcmixSession


class DcmixWidget(QWidget):
    """Dock widget; its public methods are what the buttons call (and what scripts call)."""

    def __init__(self, napari_viewer: Any = None) -> None:
        super().__init__()
        # napari hands plugins a proxy of the viewer; we use public API only, and the real
        # objects keep layer identity checks (``is``) and attribute access cheap
        napari_viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.viewer = napari_viewer
        self.session = DcmixSession()
        self.dialogs = Dialogs(self)
        self.job: Job | None = None
        self._chart: ImportanceChart | None = None
        self._after_job: list[Callable[[], None]] = []
        self.warm_thread: Any = None  # pre-imports torch's training stack once a model loads
        self.layers = PlateLayers(self, napari_viewer, self.session)

        self.session_section = SessionSection(self)
        self.plate_section = PlateSection(self)
        self.stain_section = StainSection(self)
        self.model_section = ModelSection(self)
        self.predict_section = PredictSection(self)
        self.annotate_section = AnnotateSection(self)
        self.finetune_section = FinetuneSection(self)
        body = QWidget()
        inner = QVBoxLayout(body)
        for section in (
            self.session_section,
            self.plate_section,
            self.stain_section,
            self.model_section,
            self.predict_section,
            self.annotate_section,
            self.finetune_section,
        ):
            inner.addWidget(section)
        inner.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        QVBoxLayout(self).addWidget(scroll)
        self._scroll, self._body = scroll, body
        self._fit_width()

        ev = self.session.events
        ev.model_changed.connect(self._model_changed)
        ev.importance_preview.connect(self._importance_preview)
        ev.constant_channels.connect(self._offer_exclusion)
        ev.channels_changed.connect(lambda _key: self.refresh_chart())
        ev.current_changed.connect(lambda _key: self.refresh_chart())
        if napari_viewer is not None:
            # the activity dock's first progress bar is slow to build: not during the first job
            QTimer.singleShot(0, warm_progress)
            napari_viewer.layers.events.inserted.connect(self._layers_changed)
            napari_viewer.layers.events.removed.connect(self._layers_changed)
            self._layers_changed()

    def _fit_width(self) -> None:
        # wide enough for the sections and the vertical scroll bar: nothing is clipped
        bar = self._scroll.verticalScrollBar().sizeHint().width()
        self.setMinimumWidth(max(340, self._body.minimumSizeHint().width() + bar + 12))

    def showEvent(self, event: Any) -> None:
        self._fit_width()  # styled and polished now: the real size hints
        super().showEvent(event)

    # --- notifications ------------------------------------------------------------------------
    def notify_error(self, text: str) -> None:
        from napari.utils.notifications import show_error

        show_error(text)

    def notify_warning(self, text: str) -> None:
        from napari.utils.notifications import show_warning

        show_warning(text)

    def attempt(self, action: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)``; a failure becomes a notification (and None)."""
        try:
            return func(*args, **kwargs)
        except DcmixError as exc:
            self.notify_error(f"{action}: {exc}")
        except OSError as exc:
            self.notify_error(f"{action}: {exc.strerror or exc}: {exc.filename or ''}")
        except Exception as exc:
            self.notify_error(error_text(action, exc))
        return None

    # --- state, as the session has it -------------------------------------------------------------
    @property
    def plate(self) -> Any:
        return self.session.plate

    @property
    def model(self) -> Any:
        return self.session.model

    @property
    def model_path(self) -> Path | None:
        return self.session.model_path

    @property
    def model_dirty(self) -> bool:
        return self.session.model_dirty

    @property
    def predictions(self) -> Any:
        return self.session.predictions

    @property
    def history(self) -> list:
        return list(self.session.history)

    @property
    def annotations(self) -> dict[str, str]:
        return self.session.annotations

    @property
    def class_names(self) -> list[str]:
        return self.session.classes()

    @property
    def wells_layer(self) -> Any:
        found = self.layers.current
        return found.wells if found is not None else None

    @property
    def well_layer(self) -> Any:
        found = self.layers.current
        return found.well_overlay if found is not None else None

    @property
    def site_layer(self) -> Any:
        found = self.layers.current
        return found.site_overlay if found is not None else None

    @property
    def geometry(self) -> Any:
        found = self.layers.current
        return found.geometry if found is not None else None

    # --- plate --------------------------------------------------------------------------------
    def open_plate(self, path: str | Path, **choice: Any) -> bool:
        """Open a plate folder / zarr as mosaic layers and make it the current plate
        (``plane=``, ``timepoint=`` choose a plane / timepoint where the plate has several)."""
        state = self.attempt(f"Open plate {path}", self.session.open_plate, path, **choice)
        if state is None:
            return False
        if self.viewer is not None:
            self.viewer.reset_view()
        return True

    def use_wells_layer(self, layer: Any) -> None:
        """Work on the plate behind a "wells" layer (opened by the reader or by this widget)."""
        self.layers.adopt(layer)

    def require_plate(self, action: str) -> bool:
        if self.session.current is None:
            self.notify_error(f"{action}: open a plate first (Plate ▸ Open plate…).")
            return False
        return True

    def _layers_changed(self, event: Any = None) -> None:
        present = self.layers.wells_layers()
        for key, found in list(self.layers.sets.items()):
            if found.wells not in present:
                self.session.close_plate(key)
        for layer in present:
            if self.layers.key_of(layer) not in self.layers.sets and self.layers.adoptable():
                self.layers.adopt(layer)

    # --- model --------------------------------------------------------------------------------
    def load_model(self, path_or_model: Any = None) -> bool:
        """Load a model file, take a model object, or (None) the shipped default model.

        Asks first when the current model is fine-tuned and unsaved; declining keeps it."""
        if (
            self.session.model is not None
            and self.session.model_dirty
            and not self.dialogs.confirm(
                "Discard the fine-tuned model?",
                "The fine-tuned model is not saved. Discard it and load another model?",
            )
        ):
            return False
        return self.attempt("Load model", self.session.load_model, path_or_model) is not None

    def ensure_model(self) -> bool:
        return self.session.model is not None or self.load_model(None)

    def _model_changed(self) -> None:
        if self.session.model is not None:
            self.warm_thread = warm_torch()
        self.refresh_chart()

    def save_model(self, path: str | Path) -> Path | None:
        """Save the current model; asks before overwriting an existing file."""
        if self.session.model is None:
            self.notify_error("Save model: there is no model to save.")
            return None
        path = Path(path)
        target = path.with_suffix(".pt") if path.suffix == "" else path
        if not self._may_replace(target):
            return None
        return self.attempt("Save model", self.session.save_model, target, overwrite=True)

    def _may_replace(self, path: Path) -> bool:
        return not path.exists() or self.dialogs.confirm(
            "Overwrite?", f"{path} exists. Replace it?"
        )

    # --- chart --------------------------------------------------------------------------------
    @property
    def chart(self) -> ImportanceChart:
        if self._chart is None:
            self._chart = ImportanceChart(self.viewer)
        return self._chart

    def show_chart(self) -> Any:
        """Dock the importance chart (once) and return its dock widget."""
        dock = getattr(self, "_chart_dock", None)
        if dock is None and self.viewer is not None:
            dock = self.viewer.window.add_dock_widget(
                self.chart, name="Channel importance", area="right"
            )
            self._chart_dock = dock
        self.refresh_chart()
        return dock

    def _charts(self) -> list[ImportanceChart]:
        return list({id(c): c for c in [self.chart, *charts_of(self.viewer)]}.values())

    def channel_colors(self, names: list[str]) -> list[tuple]:
        """The colour of each (model) stain's image layer (or the colour it would get); mapped
        stains take the colour of the plate stain they read."""
        state = self.session.current
        source = {t: s for s, t in state.channel_map.items()} if state is not None else {}
        return layer_colors(self.viewer, [source.get(n, n) for n in names])

    def show_importance(self, importance: dict[str, float], title: str | None = None) -> None:
        names = list(importance)
        for chart in self._charts():
            chart.set_importance(
                names, [importance[n] for n in names], self.channel_colors(names), title=title
            )

    def refresh_chart(self) -> None:
        view = self.session.importance_view()
        if view is None:
            return
        colors = self.channel_colors(view["names"])
        for chart in self._charts():
            chart.set_view(view, colors)

    def _importance_preview(self, importance: Any, title: str) -> None:
        if importance is None:
            self.refresh_chart()  # back to the model's (a fine-tune was cancelled or failed)
        else:
            self.show_importance(importance, title=title)

    # --- jobs ---------------------------------------------------------------------------------
    def _run(self, action: str, make_task: Callable[[], Any]) -> Job | None:
        if self.job is not None:
            return None
        task = self.attempt(action, make_task)
        if task is None:
            return None
        job = Job(task, on_error=self.notify_error, on_end=self._job_ended)
        self.job = job
        return job.start()

    def _job_ended(self) -> None:
        job = self.job

        def done() -> None:
            if job is not None:
                job.release()
            if self.job is job:
                self.job = None
            callbacks, self._after_job = self._after_job, []
            for callback in callbacks:
                callback()

        self.layers.when_drawn(done)

    def wait_until_idle(self, timeout_s: float = 300.0) -> bool:
        """Run the Qt event loop until the current job and its drawing are done (scripts)."""
        return wait_until(lambda: self.job is None, timeout_s)

    def cancel(self) -> None:
        """Cancel the running predict / fine-tune (its result is discarded)."""
        if self.job is not None:
            self.job.cancel()

    def run_predict(self) -> Job | None:
        """Predict every site of the plate in a worker; overlays appear when it returns."""
        if self.job is None and not self.require_plate("Predict"):
            return None
        return self._run("Predict", self.session.predict_task)

    def run_ablation(self) -> Job | None:
        """Check the model's importance by per-stain ablation on the annotated wells."""
        if self.job is None and not self.require_plate("Ablation"):
            return None
        return self._run("Ablation", self.session.ablation_task)

    def run_finetune(self, **overrides: Any) -> Job | None:
        """Fine-tune on the annotated wells in a worker; ``overrides`` (training settings:
        mode, epochs, lr, mixing_lr, seed, fresh_mixing...) beat the form's values."""
        from napari_dcmix.session.session import train_overrides

        train_overrides(overrides)  # a wrong keyword is a programming error: TypeError
        if self.job is None and not self.require_plate("Fine-tune"):
            return None
        self._last_finetune = dict(overrides)
        return self._run("Fine-tune", lambda: self.session.finetune_task(**overrides))

    def _offer_exclusion(self, key: str, names: list) -> None:
        stains = ", ".join(names)
        if self.dialogs.confirm(
            "Exclude empty stains?",
            f"{stains} has one value over every annotated site (an empty channel): the model "
            f"cannot learn from it. Exclude {stains} and fine-tune on the other stains?",
        ):
            self.attempt("Exclude stains", self.session.exclude_channels, names, key)
            overrides = dict(getattr(self, "_last_finetune", {}))
            self._after_job.append(lambda: self.run_finetune(**overrides))

    def export_csv(self, path: str | Path) -> Path | None:
        """Write the per-well numbers shown on the plate to CSV (asks before replacing)."""
        if self.session.predictions is None:
            self.notify_error("Export: nothing to export yet; run Predict first.")
            return None
        path = Path(path)
        target = path if path.suffix.lower() == ".csv" else path.with_suffix(".csv")
        if not self._may_replace(target):
            return None
        return self.attempt("Export", self.session.export_predictions, target, overwrite=True)

    # --- annotations --------------------------------------------------------------------------
    def set_annotations(self, labels: dict[str, str]) -> None:
        """Replace the annotations (well -> class); new classes join the class list."""
        if self.require_plate("Annotate"):
            self.attempt("Annotate", self.session.set_annotations, labels)

    def assign_selected(self, class_name: str | None) -> None:
        self.annotate_section.assign_selected(class_name)

    def import_annotations(self, path: str | Path) -> bool:
        """Read a plate map CSV (well,label[,plate]); asks before replacing annotations."""
        if not self.require_plate("Import plate map"):
            return False
        labels = self.attempt("Import plate map", self.session.read_plate_map, path)
        if labels is None:
            return False
        current = self.session.annotations
        if current and not self.dialogs.confirm(
            "Replace annotations?",
            f"{len(current)} wells are annotated. Replace them with the plate map "
            f"{Path(path).name} ({len(labels)} wells)?",
        ):
            return False
        self.session.set_annotations(labels)
        return True

    def save_annotations(self, path: str | Path) -> Path | None:
        if not self.session.annotations:
            self.notify_warning("Save annotations: no wells are annotated.")
            return None
        if not self._may_replace(Path(path)):
            return None
        return self.attempt("Save annotations", self.session.save_annotations, path, True)

    # --- what the network sees, the report, sessions --------------------------------------------
    def show_network_view(self, well: str | None = None, site: int | None = None) -> list | None:
        """The model's K blended images of the well / site in focus as image layers."""
        if not self.require_plate("What the network sees") or not self.ensure_model():
            return None
        view = self.attempt("What the network sees", self.session.network_view, well, site)
        return None if view is None else self.layers.show_network_view(view)

    def write_report(self, path: str | Path) -> Path | None:
        """The HTML report of the model and the plates' predictions (asks before replacing)."""
        path = Path(path)
        if not self._may_replace(path):
            return None
        result = self.attempt("Report", self.session.write_report, path, overwrite=True)
        if result is None:
            return None
        if result.missing:
            self.notify_warning("Report: " + " ".join(result.missing))
        return result.path

    def save_session(self, folder: str | Path) -> Path | None:
        """Save plates, annotations, model, predictions, settings and the view to a folder.
        An existing folder is replaced only when it holds a saved session (and none of the
        session's plates or its model), after asking."""
        from napari_dcmix.session.store import check_session_target

        folder = Path(folder)
        if folder.is_dir() and any(folder.iterdir()):
            if self.attempt("Save session", check_session_target, self.session, folder,
                            True) is None:  # fmt: skip
                return None  # not a session folder, or it holds a plate or the model
            if not self.dialogs.confirm(
                "Replace the session folder?",
                f"{folder} holds a saved session. Its contents will be replaced by this "
                "session (everything in the folder is deleted). Replace it?",
            ):
                return None
        self.session.set_view(self._view_state())
        return self.attempt("Save session", self.session.save, folder, overwrite=True)

    def open_session(self, folder: str | Path) -> bool:
        """Open a saved session (asks first when a fine-tuned model is unsaved); plates that
        moved are asked for."""
        if self.job is not None:
            self.notify_error("Open session: wait for the running task or cancel it.")
            return False
        if self.session.model_dirty and not self.dialogs.confirm(
            "Discard the fine-tuned model?",
            "The fine-tuned model is not saved. Discard it and open the session?",
        ):
            return False
        missing = self.attempt("Open session", self.session.load, folder)
        if missing is None:
            return False
        for plate in list(missing):
            problem = (
                f"is not at {plate.path}"
                if plate.reason == "not found"
                else f"at {plate.path} does not open ({plate.reason})"
            )
            where = self.dialogs.open_dir(f"Plate {plate.name} {problem}: where is it now?")
            if where and self.attempt("Open session", self.session.locate_plate, plate, where):
                continue
            self.notify_warning(
                f"Open session: plate {plate.name} ({plate.path}) left out of the view; the "
                "session keeps its annotations and predictions and saves them again with it."
            )
        for note in self.session.load_notes:
            self.notify_warning(f"Open session: {note}")
        self._apply_view_state(self.session.view)
        return True

    def _view_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "show_sites": self.layers.show_sites,
            "sort_chart": self.chart.sort_box.isChecked(),
        }
        if self.viewer is not None:
            camera = camera_of(self.viewer)
            state["camera"] = {"center": list(camera.center), "zoom": float(camera.zoom)}
        return state

    def _apply_view_state(self, state: dict[str, Any]) -> None:
        self.layers.set_show_sites(bool(state.get("show_sites", False)))
        self.chart.sort_box.setChecked(bool(state.get("sort_chart", False)))
        camera = state.get("camera")
        if camera and self.viewer is not None:
            camera_of(self.viewer).center = tuple(camera["center"])
            camera_of(self.viewer).zoom = float(camera["zoom"])
