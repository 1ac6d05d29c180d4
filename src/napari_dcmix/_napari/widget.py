"""The DCMIX dock widget: plate, model, predict, annotate and fine-tune sections.

The widget holds UI state only; every computation is a core function (``napari_dcmix.plate``,
``napari_dcmix.model``) that the CLI uses too. Long work runs in napari thread workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QScrollArea, QVBoxLayout, QWidget

from napari_dcmix._napari.annotate_section import AnnotateSection
from napari_dcmix._napari.chart import ImportanceChart, charts_of
from napari_dcmix._napari.colors import layer_colors
from napari_dcmix._napari.dialogs import Dialogs
from napari_dcmix._napari.finetune_section import FinetuneSection
from napari_dcmix._napari.layers import GEOMETRY_KEY, PLATE_KEY, plate_layer_data
from napari_dcmix._napari.model_section import ModelSection
from napari_dcmix._napari.plate_section import PlateSection
from napari_dcmix._napari.predict_section import PredictSection
from napari_dcmix._napari.workers import (
    Job,
    error_text,
    wait_until,
    warm_progress,
    warm_torch,
)
from napari_dcmix.errors import DcmixError


class DcmixWidget(QWidget):
    """Dock widget; its public methods are what the buttons call (and what scripts call)."""

    def __init__(self, napari_viewer: Any = None) -> None:
        super().__init__()
        # napari hands plugins a proxy of the viewer; we use public API only, and the real
        # objects keep layer identity checks (``is``) and attribute access cheap
        napari_viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.viewer = napari_viewer
        self.dialogs = Dialogs(self)
        self.plate: Any = None
        self.geometry: Any = None
        self.wells_layer: Any = None
        self.well_layer: Any = None  # per-well predictions overlay
        self.site_layer: Any = None  # per-site predictions overlay
        self.model: Any = None
        self.model_path: Path | None = None
        self.model_dirty = False
        self.predictions: Any = None
        self.history: list = []
        self.job: Job | None = None
        self._chart: ImportanceChart | None = None
        self.warm_thread: Any = None  # pre-imports torch's training stack once a model loads

        self.plate_section = PlateSection(self)
        self.model_section = ModelSection(self)
        self.predict_section = PredictSection(self)
        self.annotate_section = AnnotateSection(self)
        self.finetune_section = FinetuneSection(self)
        body = QWidget()
        inner = QVBoxLayout(body)
        for section in (
            self.plate_section,
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
        self.model_section.refresh()

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

    # --- plate --------------------------------------------------------------------------------
    def open_plate(self, path: str | Path) -> bool:
        """Open a plate folder / zarr as mosaic layers and make it the widget's plate."""
        from napari_dcmix.plate import open_plate

        try:
            plate = open_plate(path)
            layers = plate_layer_data(plate)
        except DcmixError as exc:
            self.notify_error(f"Open plate: {exc}")
            return False
        except Exception as exc:
            self.notify_error(error_text(f"Open plate {path}", exc))
            return False
        wells = None
        for data, kwargs, kind in layers:
            layer = getattr(self.viewer, f"add_{kind}")(data, **kwargs)
            if kind == "shapes":
                wells = layer
        self.use_wells_layer(wells)
        self.viewer.reset_view()
        return True

    def use_wells_layer(self, layer: Any) -> None:
        """Work on the plate behind a "wells" layer (opened by the reader or by this widget)."""
        if layer is self.wells_layer:
            return
        self.wells_layer = layer
        self.plate = layer.metadata[PLATE_KEY]
        self.geometry = layer.metadata[GEOMETRY_KEY]
        # each plate keeps its prediction overlays and its annotations: switching back restores
        self.predict_section.prepare_overlays()
        self.annotate_section.show_plate()
        self.plate_section.refresh()
        self.refresh_chart()

    def require_plate(self, action: str) -> bool:
        if self.plate is None or self.wells_layer not in self.viewer.layers:
            self.notify_error(f"{action}: open a plate first (Plate ▸ Open plate…).")
            return False
        return True

    def _layers_changed(self, event: Any = None) -> None:
        wells = self.plate_section.wells_layers()
        if self.wells_layer is not None and self.wells_layer not in wells:
            self.wells_layer, self.plate, self.geometry = None, None, None
        if self.wells_layer is None and wells and self.job is None:
            self.use_wells_layer(wells[-1])
        self.plate_section.refresh()

    # --- model --------------------------------------------------------------------------------
    def load_model(self, path_or_model: Any = None) -> bool:
        """Load a model file, take a model object, or (None) the shipped default model.

        Asks first when the current model is fine-tuned and unsaved; declining keeps it."""
        from napari_dcmix import model as core

        if (
            self.model is not None
            and self.model_dirty
            and not self.dialogs.confirm(
                "Discard the fine-tuned model?",
                "The fine-tuned model is not saved. Discard it and load another model?",
            )
        ):
            return False
        try:
            if path_or_model is None:
                path = core.default_model_path()
                self.set_model(core.load_model(path), path=Path(path))
            elif isinstance(path_or_model, (str, Path)):
                self.set_model(core.load_model(path_or_model), path=Path(path_or_model))
            else:
                self.set_model(path_or_model, path=None)
        except DcmixError as exc:
            self.notify_error(f"Load model: {exc}")
            return False
        except Exception as exc:
            self.notify_error(error_text("Load model", exc))
            return False
        return True

    def ensure_model(self) -> bool:
        return self.model is not None or self.load_model(None)

    def set_model(self, model: Any, path: Path | None, dirty: bool = False) -> None:
        self.model, self.model_path, self.model_dirty = model, path, dirty
        self.warm_thread = warm_torch()
        if not self.annotate_section.annotations:
            self.annotate_section.set_classes(list(model.class_names))
        self.model_section.refresh()
        self.refresh_chart()

    def save_model(self, path: str | Path) -> Path | None:
        """Save the current model; asks before overwriting an existing file."""
        from napari_dcmix.model import save_model

        if self.model is None:
            self.notify_error("Save model: there is no model to save.")
            return None
        path = Path(path)
        if path.suffix == "":
            path = path.with_suffix(".pt")
        if path.exists() and not self.dialogs.confirm("Overwrite?", f"{path} exists. Replace it?"):
            return None
        try:
            saved = Path(save_model(self.model, path))
        except (DcmixError, OSError) as exc:
            self.notify_error(f"Save model: {exc}")
            return None
        self.model_path, self.model_dirty = saved, False
        self.model_section.refresh()
        return saved

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

    def channel_colors(self, names: list[str]) -> list[tuple]:
        """The colour of each channel's image layer (or the colour it would get)."""
        return layer_colors(self.viewer, names)

    def show_importance(self, importance: dict[str, float], title: str | None = None) -> None:
        names = list(importance)
        charts = {id(c): c for c in [self.chart, *charts_of(self.viewer)]}.values()
        for chart in charts:
            chart.set_importance(
                names, [importance[n] for n in names], self.channel_colors(names), title=title
            )

    def refresh_chart(self) -> None:
        if self.model is not None:
            self.show_importance(self.model.channel_importance(), title="Channel importance")

    # --- jobs ---------------------------------------------------------------------------------
    def set_busy(self, job: Job | None) -> None:
        if job is None and self.job is not None:
            self.job.release()
        self.job = job
        busy = job is not None
        for w in (
            self.predict_section.predict_button,
            self.finetune_section.train_button,
            self.plate_section,
            self.model_section,
        ):
            w.setEnabled(not busy)
        self.predict_section.cancel_button.setEnabled(busy)
        self.finetune_section.cancel_button.setEnabled(busy)
        if not busy:
            self.model_section.refresh()

    def wait_until_idle(self, timeout_s: float = 300.0) -> bool:
        """Run the Qt event loop until the current job and its drawing are done (scripts)."""
        return wait_until(lambda: self.job is None, timeout_s)

    def cancel(self) -> None:
        """Cancel the running predict / fine-tune (its result is discarded)."""
        if self.job is not None:
            self.job.cancel()

    def run_predict(self) -> Job | None:
        """Predict every site of the plate in a worker; overlays appear when it returns."""
        return None if self.job is not None else self.predict_section.start()

    def export_csv(self, path: str | Path) -> Path | None:
        """Write the per-well prediction overlay's features to CSV."""
        return self.predict_section.export(path)

    def run_finetune(self, **overrides: Any) -> Job | None:
        """Fine-tune on the annotated wells in a worker (mode/epochs/lr/seed override the form)."""
        return None if self.job is not None else self.finetune_section.start(**overrides)

    # --- annotations --------------------------------------------------------------------------
    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.annotate_section.annotations)

    @property
    def class_names(self) -> list[str]:
        return self.annotate_section.classes

    def set_annotations(self, labels: dict[str, str]) -> None:
        """Replace the annotations (well -> class); new classes join the class list."""
        self.annotate_section.set_annotations(labels)

    def assign_selected(self, class_name: str | None) -> None:
        self.annotate_section.assign_selected(class_name)

    def import_annotations(self, path: str | Path) -> bool:
        return self.annotate_section.import_csv(path)

    def save_annotations(self, path: str | Path) -> Path | None:
        return self.annotate_section.save_csv(path)
