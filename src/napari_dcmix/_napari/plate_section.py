"""Plate section (open a plate, choose among the open ones, plane / timepoint, the well in
focus) and the session section (save / open a session, write a report)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

if TYPE_CHECKING:
    from napari_dcmix._napari.widget import DcmixWidget

MAX = "max"  # the maximum projection of the planes


def plane_choices(value: Any) -> list:
    """The planes (or timepoints) a plate offers: a count n means 1..n, else the values."""
    if value is None:
        return []
    if isinstance(value, int):
        return list(range(1, value + 1))
    return list(value)


class SessionSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        super().__init__("Session")
        self.owner = owner
        self.save_button = QPushButton("Save session…")
        self.save_button.setToolTip(
            "One folder with the plates' paths, annotations, classes, predictions, settings and "
            "the model (when it is not saved elsewhere)"
        )
        self.save_button.clicked.connect(self._save_clicked)
        self.open_button = QPushButton("Open session…")
        self.open_button.clicked.connect(self._open_clicked)
        self.report_button = QPushButton("Report…")
        self.report_button.setToolTip(
            "One HTML file to share: importance chart, verdict, held-out accuracy, plate "
            "heatmaps, settings"
        )
        self.report_button.clicked.connect(self._report_clicked)
        row = QHBoxLayout(self)
        for b in (self.save_button, self.open_button, self.report_button):
            row.addWidget(b)
        ev = owner.session.events
        ev.task_started.connect(lambda _t: self.setEnabled(False))
        ev.task_finished.connect(lambda _t: self.setEnabled(True))

    def _save_clicked(self) -> None:
        path = self.owner.dialogs.save_file("Save session folder", "napari-dcmix session (*)")
        if path:
            self.owner.save_session(path)

    def _open_clicked(self) -> None:
        path = self.owner.dialogs.open_dir("Open a napari-dcmix session folder")
        if path:
            self.owner.open_session(path)

    def _report_clicked(self) -> None:
        path = self.owner.dialogs.save_file("Write report", "HTML (*.html)")
        if path:
            self.owner.write_report(path)


class PlateSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        super().__init__("Plate")
        self.owner = owner
        self.info = QLabel("No plate. Open a plate folder or drop one on napari.")
        self.info.setWordWrap(True)
        self.focus = QLabel("")
        self.focus.setWordWrap(True)
        self.open_button = QPushButton("Open plate…")
        self.open_button.setToolTip("A plate folder (ImageXpress, Operetta, RxRx1, TIFF) or .zarr")
        self.open_button.clicked.connect(self._open_clicked)
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Plates open in this session")
        self.layer_combo.activated.connect(self._plate_chosen)
        self.plane_combo = QComboBox()
        self.plane_combo.setToolTip("Plane (z) to read; max: maximum projection of the planes")
        self.plane_combo.activated.connect(self._plane_chosen)
        self.time_combo = QComboBox()
        self.time_combo.setToolTip("Timepoint to read")
        self.time_combo.activated.connect(self._plane_chosen)
        plane_row = QHBoxLayout()
        self.plane_label, self.time_label = QLabel("Plane"), QLabel("Timepoint")
        for w in (self.plane_label, self.plane_combo, self.time_label, self.time_combo):
            plane_row.addWidget(w)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.layer_combo, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.info)
        layout.addLayout(plane_row)
        layout.addWidget(self.focus)
        ev = owner.session.events
        for signal in (ev.plate_added, ev.plate_removed, ev.plate_changed, ev.current_changed,
                       ev.channels_changed):  # fmt: skip
            signal.connect(self.refresh)
        ev.focus_changed.connect(self.refresh)
        ev.predictions_changed.connect(self.refresh)
        ev.task_started.connect(lambda _t: self.setEnabled(False))
        ev.task_finished.connect(lambda _t: self.setEnabled(True))
        self.refresh()

    def _open_clicked(self) -> None:
        path = self.owner.dialogs.open_dir("Open plate folder")
        if path:
            self.owner.open_plate(path)

    def refresh(self, *_args: Any) -> None:
        session = self.owner.session
        keys = list(session.plates)
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        for key in keys:
            self.layer_combo.addItem(session.plates[key].name, key)
        if session.current_key in keys:
            self.layer_combo.setCurrentIndex(keys.index(session.current_key))
        self.layer_combo.blockSignals(False)
        state = session.current
        self._refresh_planes(state)
        if state is None:
            self.info.setText("No plate. Open a plate folder or drop one on napari.")
            self.focus.setText("")
            return
        plate = state.raw
        n_sites = max((len(plate.sites(w)) for w in plate.wells), default=0)
        h, w = plate.image_shape
        used = ""
        if list(state.plate.channels) != list(plate.channels):
            used = f"<br>the model reads: {', '.join(state.plate.channels)}"
        self.info.setText(
            f"<b>{plate.name}</b> ({plate.layout}): {len(plate.wells)} wells × up to "
            f"{n_sites} sites, {w}×{h} {plate.dtype}<br>channels: {', '.join(plate.channels)}"
            f"{used}"
        )
        self.focus.setText(self._focus_text(state))

    @staticmethod
    def _focus_text(state: Any) -> str:
        if state.focus is None:
            return "<small>Click a well (pan/zoom mode) to zoom to it and see its sites.</small>"
        well, site = state.focus
        text = f"<b>{well}</b>" + (f" site {site}" if site is not None else "")
        preds = state.predictions
        if preds is not None:
            rows = [s for s in preds.sites if s.well == well]
            names = list(preds.class_names)
            shown = ", ".join(
                f"s{s.site} {names[int(s.probs.argmax())]} {float(s.probs.max()):.2f}" for s in rows
            )
            text += f": {shown}"
        return text

    def _refresh_planes(self, state: Any) -> None:
        plate = state.raw if state is not None else None
        for combo, label, attr, current in (
            (self.plane_combo, self.plane_label, "planes", "plane"),
            (self.time_combo, self.time_label, "timepoints", "timepoint"),
        ):
            values = plane_choices(getattr(plate, attr, None))
            if attr == "planes" and len(values) > 1:
                values = [*values, MAX]
            show = len(values) > 1
            combo.setVisible(show)
            label.setVisible(show)
            combo.blockSignals(True)
            combo.clear()
            for v in values:
                combo.addItem(str(v), v)
            chosen = getattr(plate, current, None)
            if chosen in values:
                combo.setCurrentIndex(values.index(chosen))
            combo.blockSignals(False)

    def _plane_chosen(self, _index: int) -> None:
        plane = self.plane_combo.currentData() if not self.plane_combo.isHidden() else None
        timepoint = self.time_combo.currentData() if not self.time_combo.isHidden() else None
        self.owner.attempt("Plane / timepoint", self.owner.session.choose_plane, plane, timepoint)

    def _plate_chosen(self, index: int) -> None:
        key = self.layer_combo.itemData(index)
        if key is not None:
            self.owner.session.set_current(key)
