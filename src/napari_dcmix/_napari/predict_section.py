"""Predict section: predict the plate in a worker (options from PredictConfig's metadata), the
class legend, the per-site overlay, the heatmap (a class probability or the margin between two,
with its colour bar) and the CSV export."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from napari_dcmix._napari import overlays
from napari_dcmix._napari.settings_form import SettingsForm
from napari_dcmix.session.scores import MARGIN, PROBABILITY, ScoreSpec

if TYPE_CHECKING:
    from napari_dcmix._napari.widget import DcmixWidget


class PredictSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        from napari_dcmix.model.train_settings import PredictConfig

        super().__init__("Predict")
        self.owner = owner
        session = owner.session
        self.predict_button = QPushButton("Predict plate")
        self.predict_button.clicked.connect(lambda: self.owner.run_predict())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.owner.cancel)
        self.form = SettingsForm(
            PredictConfig, session.predict_settings, self._setting_changed, skip=["device"]
        )
        self.sites_box = QCheckBox("Per-site overlay")
        self.sites_box.toggled.connect(self.owner.layers.set_show_sites)
        self.owner.layers.sites_listeners.append(self._sites_shown)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._export_clicked)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        # the heatmap: a score per well, its colour bar
        self.heatmap_box = QCheckBox("Heatmap")
        self.heatmap_box.setToolTip("Colour each well by a class probability or a margin")
        self.kind_combo = QComboBox()
        self.kind_combo.addItem("p(class)", PROBABILITY)
        self.kind_combo.addItem("p(a) - p(b)", MARGIN)
        self.a_combo, self.b_combo = QComboBox(), QComboBox()
        for w in (self.heatmap_box, self.kind_combo, self.a_combo, self.b_combo):
            (w.toggled if w is self.heatmap_box else w.activated).connect(self._heatmap_chosen)
        self.colorbar = FigureCanvasQTAgg(Figure(figsize=(3, 0.55)))
        self.colorbar.setFixedHeight(48)
        self.colorbar.setVisible(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.predict_button, 1)
        buttons.addWidget(self.cancel_button)
        heat = QHBoxLayout()
        for w in (self.heatmap_box, self.kind_combo, self.a_combo, self.b_combo):
            heat.addWidget(w)
        row = QHBoxLayout()
        row.addWidget(self.sites_box, 1)
        row.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.form)
        layout.addWidget(self.status)
        layout.addWidget(self.legend)
        layout.addLayout(row)
        layout.addLayout(heat)
        layout.addWidget(self.colorbar)
        ev = session.events
        ev.task_started.connect(self._task_started)
        ev.task_progress.connect(self._progress)
        ev.task_finished.connect(self._task_finished)
        ev.predictions_changed.connect(lambda _k: self.refresh())
        ev.current_changed.connect(lambda _k: self.refresh())
        ev.heatmap_changed.connect(self.refresh)
        ev.settings_changed.connect(lambda: self.form.set_values(session.predict_settings))
        self.refresh()

    # --- the job ------------------------------------------------------------------------------
    def _setting_changed(self, name: str, value: Any) -> None:
        session = self.owner.session
        if self.owner.attempt("Predict settings", session.update_settings, "predict",
                              **{name: value}) is None:  # fmt: skip
            self.form.set_values(session.predict_settings)  # refused: show what holds

    def _task_started(self, task: Any) -> None:
        self.predict_button.setEnabled(False)
        self.cancel_button.setEnabled(task.kind == "predict")
        if task.kind == "predict":
            self.status.setText("Predicting…")

    def _progress(self, task: Any, event: Any) -> None:
        if task.kind == "predict":
            self.status.setText(f"Predicting: {event.done}/{event.total} sites on {event.device}")

    def _task_finished(self, task: Any) -> None:
        self.predict_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if task.kind != "predict":
            return
        if task.outcome == "cancelled":
            self.status.setText("Prediction cancelled.")
        elif task.outcome == "failed":
            self.status.setText("Prediction failed.")
        else:
            preds = task.result
            wells = preds.wells()
            counts = {c: sum(w.prediction == c for w in wells) for c in preds.class_names}
            summary = ", ".join(f"{n} {c}" for c, n in counts.items())
            self.status.setText(f"{len(wells)} wells predicted on {preds.device}: {summary}")

    # --- what is shown --------------------------------------------------------------------------
    def _sites_shown(self, on: bool) -> None:
        self.sites_box.blockSignals(True)
        self.sites_box.setChecked(on)
        self.sites_box.blockSignals(False)

    def refresh(self) -> None:
        session = self.owner.session
        preds = session.predictions
        shown = preds is not None
        self.export_button.setEnabled(shown)
        self.legend.setText(overlays.legend_html(list(preds.class_names)) if shown else "")
        if not shown and session.task is None:
            self.status.setText("")
        classes = list(preds.class_names) if shown else []
        spec = session.heatmap.resolved(classes) if session.heatmap and shown else None
        # shown before the heatmap is on: its defaults (the last class, against the first)
        default = ScoreSpec(MARGIN).resolved(classes) if len(classes) > 1 else None
        shown_spec = spec or default
        for combo, chosen in (
            (self.a_combo, shown_spec.a if shown_spec else None),
            (self.b_combo, shown_spec.b if shown_spec else None),
        ):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(classes)
            if chosen in classes:
                combo.setCurrentText(chosen)
            combo.blockSignals(False)
        self.heatmap_box.blockSignals(True)
        self.heatmap_box.setChecked(session.heatmap is not None)
        self.heatmap_box.blockSignals(False)
        self.heatmap_box.setEnabled(shown)
        if session.heatmap is not None:
            self.kind_combo.setCurrentIndex(0 if session.heatmap.kind == PROBABILITY else 1)
        for w in (self.kind_combo, self.a_combo):
            w.setEnabled(spec is not None)
        self.b_combo.setVisible(spec is not None and spec.kind == MARGIN)
        self._draw_colorbar(spec)

    def _heatmap_chosen(self, *_args: Any) -> None:
        if not self.heatmap_box.isChecked():
            self.owner.session.set_heatmap(None)
            return
        kind = self.kind_combo.currentData()
        a = self.a_combo.currentText() or None
        b = self.b_combo.currentText() or None
        self.owner.session.set_heatmap(ScoreSpec(kind, a, b))

    def _draw_colorbar(self, spec: ScoreSpec | None) -> None:
        from napari_dcmix.figures import draw_colorbar

        self.colorbar.setVisible(spec is not None)
        if spec is None:
            return
        theme = self.owner.chart._theme()
        fig = self.colorbar.figure
        fig.clear()
        fig.set_facecolor(theme["bg"])
        draw_colorbar(fig, fig.add_axes((0.05, 0.55, 0.9, 0.3)), spec.colormap, spec.limits,
                      spec.label(), theme)  # fmt: skip
        self.colorbar.draw_idle()

    def _export_clicked(self) -> None:
        path = self.owner.dialogs.save_file("Export predictions", "CSV (*.csv)")
        if path:
            out = self.owner.export_csv(path)
            if out is not None:
                self.status.setText(f"Exported the wells to {out}")
