"""Annotate section: an editable class list, assign classes to selected wells, plate-map CSV."""

from __future__ import annotations

from pathlib import Path
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

from napari_dcmix._napari.overlays import style_annotations
from napari_dcmix.errors import DcmixError

if TYPE_CHECKING:
    from napari_dcmix._napari.widget import DcmixWidget

DEFAULT_CLASSES = ["control", "treated"]


class AnnotateSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        super().__init__("Annotate wells")
        self.owner = owner
        self.annotations: dict[str, str] = {}  # the current plate's
        self.by_plate: dict[str, dict[str, str]] = {}  # plate path -> its annotations
        self.class_list = QListWidget()
        self.class_list.setMaximumHeight(90)
        self.class_list.setToolTip("Double-click a class to rename it")
        self._names: list[str] = []
        self.set_classes(DEFAULT_CLASSES)
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

    # --- classes ------------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return list(self._names)

    def set_classes(self, names: list[str]) -> None:
        self.class_list.blockSignals(True)
        self.class_list.clear()
        for name in names:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.class_list.addItem(item)
        self.class_list.blockSignals(False)
        self._names = list(names)
        if names:
            self.class_list.setCurrentRow(0)

    def add_class(self, name: str | None = None) -> str:
        if name is None:
            i = len(self._names) + 1
            while f"class {i}" in self._names:
                i += 1
            name = f"class {i}"
        if name not in self._names:
            self.set_classes([*self._names, name])
        self.class_list.setCurrentRow(self._names.index(name))
        return name

    def _remove_clicked(self) -> None:
        row = self.class_list.currentRow()
        if row < 0:
            return
        name = self._names[row]
        count = sum(c == name for c in self.annotations.values())
        if count and not self.owner.dialogs.confirm(
            "Remove class?",
            f"{count} wells are annotated {name!r}. Remove the class and clear them?",
        ):
            return
        self.set_classes([n for n in self._names if n != name])
        self.set_annotations({w: c for w, c in self.annotations.items() if c != name})

    def _renamed(self, item: QListWidgetItem) -> None:
        row = self.class_list.row(item)
        old, new = self._names[row], item.text().strip()
        if not new or (new in self._names and new != old):
            self.owner.notify_warning(f"Class names must be unique and non-empty: kept {old!r}.")
            self.set_classes(self._names)
            return
        self._names[row] = new
        self.set_annotations({w: (new if c == old else c) for w, c in self.annotations.items()})

    # --- annotations --------------------------------------------------------------------------
    def show_plate(self) -> None:
        """Show the current plate's annotations (kept per plate path while switching plates)."""
        plate = self.owner.plate
        if plate is None:
            self.set_annotations({})
            return
        wells = set(plate.wells)
        saved = self.by_plate.get(_plate_key(plate), {})
        self.set_annotations({w: c for w, c in saved.items() if w in wells})

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

    def assign_selected(self, name: str | bool | None = False) -> None:
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
        new = dict(self.annotations)
        for w in wells:
            if name is None:
                new.pop(w, None)
            else:
                new[w] = str(name)
        self.set_annotations(new)

    def set_annotations(self, labels: dict[str, str]) -> None:
        from napari_dcmix.plate.wells import normalise_well

        labels = {normalise_well(w): str(c) for w, c in labels.items()}
        for c in dict.fromkeys(labels.values()):
            if c not in self._names:
                self.set_classes([*self._names, c])
        self.annotations = labels
        if self.owner.plate is not None:
            self.by_plate[_plate_key(self.owner.plate)] = labels
        layer = self.owner.wells_layer
        if layer is not None:
            style_annotations(layer, labels, self._names)
        counts = {c: sum(v == c for v in labels.values()) for c in self._names}
        self.count.setText(
            ", ".join(f"{n} {c}" for c, n in counts.items() if n) or "No wells annotated."
        )

    def _import_clicked(self) -> None:
        path = self.owner.dialogs.open_file("Import plate map", "CSV (*.csv);;All (*)")
        if path:
            self.import_csv(path)

    def import_csv(self, path: str | Path) -> bool:
        from napari_dcmix.plate.labels import check_labels_fit, read_labels_csv

        plate = self.owner.plate
        if not self.owner.require_plate("Import plate map"):
            return False
        try:
            labels = read_labels_csv(path, plate=plate.name)
            check_labels_fit(labels, plate)
        except DcmixError as exc:
            self.owner.notify_error(f"Import plate map: {exc}")
            return False
        if self.annotations and not self.owner.dialogs.confirm(
            "Replace annotations?",
            f"{len(self.annotations)} wells are annotated. Replace them with the plate map "
            f"{Path(path).name} ({len(labels)} wells)?",
        ):
            return False
        self.set_annotations(labels)
        return True

    def _save_clicked(self) -> None:
        path = self.owner.dialogs.save_file("Save annotations", "CSV (*.csv)")
        if path:
            self.save_csv(path)

    def save_csv(self, path: str | Path) -> Path | None:
        from napari_dcmix.plate.labels import write_labels_csv

        if not self.annotations:
            self.owner.notify_warning("Save annotations: no wells are annotated.")
            return None
        path = Path(path)
        if path.exists() and not self.owner.dialogs.confirm(
            "Overwrite?", f"{path} exists. Replace it?"
        ):
            return None
        try:
            return write_labels_csv(path, self.annotations)
        except OSError as exc:
            self.owner.notify_error(f"Save annotations: could not write {path}: {exc}")
            return None


def _plate_key(plate: Any) -> str:
    """Annotations belong to a plate's folder: reopening it finds them again."""
    try:
        return str(Path(plate.path).resolve())
    except (OSError, RuntimeError, TypeError):
        return str(plate.path)
