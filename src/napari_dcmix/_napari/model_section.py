"""Model section: default model, open, save; device choice and the device actually used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

if TYPE_CHECKING:
    from napari_dcmix._napari.widget import DcmixWidget

DEVICES = ["auto", "cpu", "cuda:0", "cuda:1", "mps"]


class ModelSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        super().__init__("Model")
        self.owner = owner
        self.info = QLabel("No model loaded (the default model loads on first use).")
        self.info.setWordWrap(True)
        self.default_button = QPushButton("Default")
        self.default_button.setToolTip("The model shipped with napari-dcmix")
        self.default_button.clicked.connect(lambda: self.owner.load_model(None))
        self.open_button = QPushButton("Open…")
        self.open_button.clicked.connect(self._open_clicked)
        self.save_button = QPushButton("Save…")
        self.save_button.clicked.connect(self._save_clicked)
        self.device_combo = QComboBox()
        self.device_combo.setEditable(True)
        self.device_combo.addItems(DEVICES)
        self.device_combo.setToolTip("auto: CUDA, then Apple MPS, then CPU")
        self.device_label = QLabel("device used: –")
        buttons = QHBoxLayout()
        for b in (self.default_button, self.open_button, self.save_button):
            buttons.addWidget(b)
        devices = QHBoxLayout()
        devices.addWidget(QLabel("Device"))
        devices.addWidget(self.device_combo, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.info)
        layout.addLayout(devices)
        layout.addWidget(self.device_label)

    @property
    def device(self) -> str:
        return self.device_combo.currentText().strip() or "auto"

    def show_device(self, device: object) -> None:
        self.device_label.setText(f"device used: {device}")

    def refresh(self) -> None:
        model, path = self.owner.model, self.owner.model_path
        self.save_button.setEnabled(model is not None)
        if model is None:
            return
        source = "fine-tuned (unsaved)" if self.owner.model_dirty else (path or "in memory")
        self.info.setText(
            f"<b>{', '.join(model.class_names)}</b> from {', '.join(model.channel_names)}"
            f"<br><small>{source}</small>"
        )

    def _open_clicked(self) -> None:
        path = self.owner.dialogs.open_file("Open DCMIX model", "DCMIX model (*.pt);;All (*)")
        if path:
            self.owner.load_model(path)

    def _save_clicked(self) -> None:
        path = self.owner.dialogs.save_file("Save DCMIX model", "DCMIX model (*.pt)")
        if path:
            self.owner.save_model(path)
