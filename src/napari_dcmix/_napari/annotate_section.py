"""Annotate section: the plate's editable class list, assign classes to selected wells,
plate-map CSV import and save. A view of the session's classes and annotations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from napari_dcmix.errors import DcmixError

if TYPE_CHECKING:
    from napari_dcmix._napari.widget import DcmixWidget


class AnnotateSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        super().__init__("Annotate wells")
        self.owner = owner
        self.class_list = QListWidget()
        self.class_list.setMaximumHeight(90)
        self.class_list.setToolTip("Double-click a class to rename it")
        self._names: list[str] = []
        self.class_list.itemChanged.connect(self._renamed)
        add, remove = QPushButton("Add class"), QPushButton("Remove class")
        add.clicked.connect(lambda: self.add_class())
        remove.clicked.connect(self._remove_clicked)
        self.select_button = QPushButton("Select wells")
        self.select_button.setCheckable(True)
        self.select_button.setToolTip(
            "Click, shift-click or drag on the plate to select wells (the 'wells' layer's "
            "select mode); click again to pan and zoom"
        )
        self.select_button.toggled.connect(self.set_select_mode)
        self.assign_button = QPushButton("Assign to selected wells")
        self.assign_button.setToolTip(
            "Select wells on the 'wells' layer (click, shift-click or drag), then assign"
        )
        self.assign_button.clicked.connect(lambda: self.assign_selected())
        self.clear_button = QPushButton("Clear selected")
        self.clear_button.clicked.connect(lambda: self.assign_selected(None))
        self.import_button = QPushButton("Import plate map…")
        self.import_button.clicked.connect(self._import_clicked)
        self.save_button = QPushButton("Save…")
        self.save_button.clicked.connect(self._save_clicked)
        self.count = QLabel("No wells annotated.")
        layout = QVBoxLayout(self)
        for widgets in (
            (self.class_list,),
            (add, remove),
            (self.select_button,),
            (self.assign_button, self.clear_button),
            (self.import_button, self.save_button),
            (self.count,),
        ):
            row = QHBoxLayout()
            for w in widgets:
                row.addWidget(w)
            layout.addLayout(row)
        ev = owner.session.events
        ev.classes_changed.connect(self._refresh_for)
        ev.annotations_changed.connect(self._refresh_for)
        ev.current_changed.connect(lambda _key: self.refresh())
        self.refresh()

    # --- classes ------------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return list(self._names)

    def _refresh_for(self, key: str) -> None:
        if key == self.owner.session.current_key:
            self.refresh()

    def refresh(self) -> None:
        session = self.owner.session
        names = session.classes()
        row = max(self.class_list.currentRow(), 0)
        self.class_list.blockSignals(True)
        self.class_list.clear()
        for name in names:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.class_list.addItem(item)
        self.class_list.blockSignals(False)
        self._names = list(names)
        if names:
            self.class_list.setCurrentRow(min(row, len(names) - 1))
        labels = session.annotations
        counts = {c: sum(v == c for v in labels.values()) for c in names}
        self.count.setText(
            ", ".join(f"{n} {c}" for c, n in counts.items() if n) or "No wells annotated."
        )

    def add_class(self, name: str | None = None) -> str | None:
        if not self.owner.require_plate("Add class"):
            return None
        name = self.owner.session.add_class(name)
        self.class_list.setCurrentRow(self._names.index(name))
        return name

    def _remove_clicked(self) -> None:
        row = self.class_list.currentRow()
        if row < 0 or self.owner.session.current is None:
            return
        name = self._names[row]
        count = sum(c == name for c in self.owner.session.annotations.values())
        if count and not self.owner.dialogs.confirm(
            "Remove class?",
            f"{count} wells are annotated {name!r}. Remove the class and clear them?",
        ):
            return
        self.owner.session.remove_class(name)

    def _renamed(self, item: QListWidgetItem) -> None:
        row = self.class_list.row(item)
        old, new = self._names[row], item.text().strip()
        try:
            self.owner.session.rename_class(old, new)
        except DcmixError as exc:
            self.owner.notify_warning(f"Rename class: {exc}")
            self.refresh()

    # --- annotations --------------------------------------------------------------------------
    def set_select_mode(self, on: bool) -> None:
        """Put the wells layer in select mode (click / shift-click / drag) or back to pan-zoom."""
        layer, viewer = self.owner.wells_layer, self.owner.viewer
        if layer is None or viewer is None or layer not in viewer.layers:
            return
        viewer.layers.selection.active = layer
        layer.mode = "select" if on else "pan_zoom"

    def selected_wells(self) -> list[str]:
        layer = self.owner.wells_layer
        if layer is None:
            return []
        wells = list(layer.features["well"])
        return [wells[i] for i in sorted(layer.selected_data)]

    def assign_selected(self, name: Any = False) -> None:
        """Give the selected wells the current class (``None`` clears them)."""
        if name is False:
            item = self.class_list.currentItem()
            if item is None:
                self.owner.notify_warning("Annotate: add a class first.")
                return
            name = item.text()
        wells = self.selected_wells()
        if not wells:
            self.owner.notify_warning(
                "Annotate: select wells on the 'wells' layer first (click, shift-click or drag)."
            )
            return
        self.owner.attempt("Annotate", self.owner.session.annotate, wells, name)

    def _import_clicked(self) -> None:
        path = self.owner.dialogs.open_file("Import plate map", "CSV (*.csv);;All (*)")
        if path:
            self.owner.import_annotations(path)

    def _save_clicked(self) -> None:
        path = self.owner.dialogs.save_file("Save annotations", "CSV (*.csv)")
        if path:
            self.owner.save_annotations(path)
