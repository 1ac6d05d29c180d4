"""Predict section: run the model over the plate in a worker, overlay and export the results."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from napari_dcmix._napari import overlays
from napari_dcmix._napari.canvas_hold import CanvasHold
from napari_dcmix._napari.workers import Job
from napari_dcmix.errors import DcmixError

if TYPE_CHECKING:
    from napari_dcmix._napari.widget import DcmixWidget

PREDICTIONS_KEY = "dcmix_predictions"  # the well overlay's PlatePredictions (layer metadata)
STEP_MS = 15  # delay between the steps that draw predictions (see PredictSection._ended)


class PredictSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        super().__init__("Predict")
        self.owner = owner
        self.canvas_hold = CanvasHold(self)
        self.predict_button = QPushButton("Predict plate")
        self.predict_button.clicked.connect(self.owner.run_predict)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.owner.cancel)
        self.sites_box = QCheckBox("Per-site overlay")
        self.sites_box.toggled.connect(self._toggle_sites)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._export_clicked)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.predict_button, 1)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.legend)
        row = QHBoxLayout()
        row.addWidget(self.sites_box, 1)
        row.addWidget(self.export_button)
        layout.addLayout(row)

    # --- the job ------------------------------------------------------------------------------
    def start(self) -> Job | None:
        owner = self.owner
        if not owner.require_plate("Predict") or not owner.ensure_model():
            return None
        from napari_dcmix.model import predict_plate
        from napari_dcmix.model.inference import check_channels

        plate, model = owner.plate, owner.model
        try:
            check_channels(model, plate)
        except DcmixError as exc:
            owner.notify_error(
                f"Predict: {exc}. Annotate wells of each class and click Fine-tune to adapt "
                "the model to this plate's stains."
            )
            return None
        self.status.setText("Predicting…")
        self.canvas_hold.canvases()  # looked up now, not in the turn that draws the results
        job = Job(
            predict_plate,
            model,
            plate,
            device=owner.model_section.device,
            action="Predict",
            on_yield=self._progress,
            on_return=self._done,
            on_error=owner.notify_error,
            on_end=self._ended,
            progress_of=lambda e: (int(e.done), int(e.total)),
        )
        owner.set_busy(job)
        return job.start()

    def _progress(self, event: Any) -> None:
        self.status.setText(f"Predicting: {event.done}/{event.total} sites on {event.device}")
        self.owner.model_section.show_device(event.device)

    def _done(self, predictions: Any) -> None:
        owner = self.owner
        owner.predictions = predictions
        owner.model_section.show_device(predictions.device)
        wells = predictions.wells()
        counts = {c: sum(w.prediction == c for w in wells) for c in predictions.class_names}
        summary = ", ".join(f"{n} {c}" for c, n in counts.items())
        self.status.setText(f"{len(wells)} wells predicted on {predictions.device}: {summary}")

    def _ended(self) -> None:
        owner, job = self.owner, self.owner.job
        if job is not None and job.cancelled:
            self.status.setText("Prediction cancelled.")
        elif job is not None and job.failed:
            self.status.setText("Prediction failed.")
        elif owner.predictions is not None:
            # each overlay in its own event-loop turn, so the viewer never stalls for both.
            # A short timer, not a 0 ms one: Qt runs posted events (the canvas repaint of the
            # site overlay included) ahead of due timers, so chained 0 ms callbacks glue the
            # updates and repaints into one long stall; a timer lets the repaint and other due
            # timers (input, animations) run in between.
            self._draw_sites(owner.predictions)
            QTimer.singleShot(STEP_MS, self._draw_wells_and_finish)
            return
        owner.set_busy(None)

    def _draw_wells_and_finish(self) -> None:
        # the canvas repaints the new overlay in a later turn of its own (the update and the
        # repaint each take a good part of the 100 ms a user tolerates; glued, they take more)
        release = self.canvas_hold.hold()
        try:
            if self.owner.predictions is not None:
                self._draw_wells(self.owner.predictions)
        except Exception:
            release()
            self.owner.set_busy(None)
            raise
        QTimer.singleShot(STEP_MS, release)
        # finish in a later turn, after the canvas has repainted the overlay: the job ends
        # once its results are on screen, and the repaint is not glued to the next step
        QTimer.singleShot(2 * STEP_MS, self._finish)

    def _finish(self) -> None:
        try:
            wells = self.owner.wells_layer
            if wells is not None and wells in self.owner.viewer.layers:
                # the wells layer stays active: selecting wells for annotation just works
                self.owner.viewer.layers.selection.active = wells
        finally:
            self.owner.set_busy(None)

    def prepare_overlays(self) -> None:
        """Use the current plate's overlay layers: the ones it has (its predictions stay), or
        (empty) new ones built before any prediction, so the first prediction only updates them
        in place instead of building layers in the middle of the job."""
        owner = self.owner
        if owner.viewer is None or owner.plate is None:
            return
        plate, viewer = owner.plate, owner.viewer
        wells = overlays.find_overlay(viewer, "well-predictions", plate)
        sites = overlays.find_overlay(viewer, "site-predictions", plate)
        if wells is None or sites is None:
            wells, sites = (
                overlays.show_overlay(viewer, data, above=owner.wells_layer)
                for data in overlays.placeholder_overlays(plate, owner.geometry)
            )
        owner.well_layer, owner.site_layer = wells, sites
        owner.predictions = wells.metadata.get(PREDICTIONS_KEY)
        shown = owner.predictions is not None
        self.export_button.setEnabled(shown)
        self.legend.setText(
            overlays.legend_html(list(owner.predictions.class_names)) if shown else ""
        )
        self.status.setText("")
        viewer.layers.selection.active = owner.wells_layer

    # --- overlays and export ------------------------------------------------------------------
    def _draw_sites(self, predictions: Any) -> None:
        owner = self.owner
        if owner.viewer is None or owner.plate is None:
            return
        owner.site_layer = overlays.show_overlay(
            owner.viewer, overlays.site_overlay_data(predictions, owner.plate, owner.geometry)
        )
        if owner.site_layer.visible != self.sites_box.isChecked():
            # only on a change: napari re-lays the whole scene (and repaints) on every set
            owner.site_layer.visible = self.sites_box.isChecked()

    def _draw_wells(self, predictions: Any) -> Any:
        owner = self.owner
        if owner.viewer is None or owner.plate is None:
            return None
        plate, geometry = owner.plate, owner.geometry
        data = overlays.well_overlay_data(predictions, plate, geometry)
        owner.well_layer = overlays.show_overlay(owner.viewer, data, above=owner.wells_layer)
        owner.well_layer.metadata[PREDICTIONS_KEY] = predictions  # restored on switching back
        self.legend.setText(overlays.legend_html(list(predictions.class_names)))
        self.export_button.setEnabled(True)
        return owner.well_layer

    def _toggle_sites(self, on: bool) -> None:
        layer = self.owner.site_layer
        if layer is not None and layer in self.owner.viewer.layers:
            layer.visible = on

    def _export_clicked(self) -> None:
        path = self.owner.dialogs.save_file("Export predictions", "CSV (*.csv)")
        if path:
            self.owner.export_csv(path)

    def export(self, path: str | Path) -> Path | None:
        """Write the per-well overlay's features (exactly what is shown) to CSV."""
        layer = self.owner.well_layer
        if (
            self.owner.predictions is None
            or layer is None
            or layer not in self.owner.viewer.layers
            or "confidence" not in layer.features
        ):
            self.owner.notify_error("Export: nothing to export yet; run Predict first.")
            return None
        path = Path(path)
        if path.suffix.lower() != ".csv":
            path = path.with_suffix(".csv")
        if path.exists() and not self.owner.dialogs.confirm(
            "Overwrite?", f"{path} exists. Replace it?"
        ):
            return None
        try:
            layer.features.to_csv(path, index=False)
        except OSError as exc:
            self.owner.notify_error(f"Export: could not write {path}: {exc}")
            return None
        self.status.setText(f"Exported {len(layer.features)} wells to {path}")
        return path
