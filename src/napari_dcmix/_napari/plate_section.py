"""Plate section: open a plate folder / zarr, or use one the reader already opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from napari_dcmix._napari.layers import PLATE_KEY, ROLE_KEY

if TYPE_CHECKING:
    from napari_dcmix._napari.widget import DcmixWidget


class PlateSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        super().__init__("Plate")
        self.owner = owner
        self.info = QLabel("No plate. Open a plate folder or drop one on napari.")
        self.info.setWordWrap(True)
        self.open_button = QPushButton("Open plate…")
        self.open_button.setToolTip("A plate folder (ImageXpress, Operetta, RxRx1, TIFF) or .zarr")
        self.open_button.clicked.connect(self._open_clicked)
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Plates already open in the viewer")
        self.layer_combo.activated.connect(self._layer_chosen)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.layer_combo, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.info)

    def _open_clicked(self) -> None:
        path = self.owner.dialogs.open_dir("Open plate folder")
        if path:
            self.owner.open_plate(path)

    def wells_layers(self) -> list:
        viewer = self.owner.viewer
        if viewer is None:
            return []
        return [
            layer
            for layer in viewer.layers
            if layer.metadata.get(ROLE_KEY) == "wells" and PLATE_KEY in layer.metadata
        ]

    def refresh(self) -> None:
        layers = self.wells_layers()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        for layer in layers:
            self.layer_combo.addItem(f"{layer.metadata[PLATE_KEY].name} ({layer.name})")
        current = self.owner.wells_layer
        if current in layers:
            self.layer_combo.setCurrentIndex(layers.index(current))
        self.layer_combo.blockSignals(False)
        plate = self.owner.plate
        if plate is not None:
            n_sites = max((len(plate.sites(w)) for w in plate.wells), default=0)
            h, w = plate.image_shape
            self.info.setText(
                f"<b>{plate.name}</b> ({plate.layout}): {len(plate.wells)} wells × up to "
                f"{n_sites} sites, {w}×{h} {plate.dtype}<br>channels: {', '.join(plate.channels)}"
            )

    def _layer_chosen(self, index: int) -> None:
        layers = self.wells_layers()
        if 0 <= index < len(layers):
            self.owner.use_wells_layer(layers[index])
