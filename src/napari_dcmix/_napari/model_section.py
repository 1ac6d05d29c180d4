"""Model section: default model, open, save; the device (a form built from PredictConfig's
metadata) and the device actually used; what the network sees of the well in focus."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from napari_dcmix._napari.settings_form import SettingsForm

if TYPE_CHECKING:
    from napari_dcmix._napari.widget import DcmixWidget


class ModelSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        from napari_dcmix.model.train_settings import PredictConfig

        super().__init__("Model")
        self.owner = owner
        session = owner.session
        self.info = QLabel("No model loaded (the default model loads on first use).")
        self.info.setWordWrap(True)
        self.default_button = QPushButton("Default")
        self.default_button.setToolTip("The model shipped with napari-dcmix")
        self.default_button.clicked.connect(lambda: self.owner.load_model(None))
        self.open_button = QPushButton("Open…")
        self.open_button.clicked.connect(self._open_clicked)
        self.save_button = QPushButton("Save…")
        self.save_button.clicked.connect(self._save_clicked)
        self.device_form = SettingsForm(
            PredictConfig, session.predict_settings, self._device_changed, only=["device"]
        )
        self.device_label = QLabel("device used: –")
        self.sees_button = QPushButton("What the network sees")
        self.sees_button.setToolTip(
            "The model's blended images (its K mixes of the stains) of the well or site in "
            "focus, as image layers beside the plate"
        )
        self.sees_button.clicked.connect(lambda: self.owner.show_network_view())
        self.ablation_button = QPushButton("Check with ablation")
        self.ablation_button.setToolTip(
            "Measure how much the predictions change when each stain is replaced by its mean, "
            "on the annotated wells, and compare it with the importance the model reports"
        )
        self.ablation_button.clicked.connect(lambda: self.owner.run_ablation())
        self.ablation_label = QLabel("")
        self.ablation_label.setWordWrap(True)
        buttons = QHBoxLayout()
        for b in (self.default_button, self.open_button, self.save_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.info)
        layout.addWidget(self.device_form)
        layout.addWidget(self.device_label)
        layout.addWidget(self.sees_button)
        layout.addWidget(self.ablation_button)
        layout.addWidget(self.ablation_label)
        ev = session.events
        ev.model_changed.connect(self.refresh)
        ev.model_changed.connect(self.show_ablation)
        ev.ablation_changed.connect(self.show_ablation)
        ev.settings_changed.connect(lambda: self.device_form.set_values(session.predict_settings))
        ev.device_used.connect(self.show_device)
        ev.task_started.connect(lambda _t: self._busy(True))
        ev.task_finished.connect(lambda _t: self._busy(False))
        self.refresh()

    @property
    def device(self) -> str:
        return self.owner.session.device

    def _device_changed(self, name: str, value: Any) -> None:
        value = str(value).strip() or "auto"
        self.owner.attempt("Device", self.owner.session.update_settings, "predict", device=value)

    def _busy(self, busy: bool) -> None:
        for w in (self.default_button, self.open_button, self.save_button, self.device_form,
                  self.sees_button, self.ablation_button):  # fmt: skip
            w.setEnabled(not busy)
        if not busy:
            self.refresh()

    def show_ablation(self) -> None:
        """The last ablation check of the model, beside its learned importance."""
        found = self.owner.session.ablation
        if found is None:
            self.ablation_label.setText("")
            return
        ranked = sorted(found.ablation, key=lambda s: -found.ablation[s])
        parts = ", ".join(
            f"{s} {found.ablation[s]:.2f} (learned {found.learned[s]:.2f})" for s in ranked
        )
        self.ablation_label.setText(
            f"Ablation on {found.n_inputs} inputs of the annotated wells: {parts}; Spearman "
            f"with the learned importance {found.spearman:.2f}."
        )

    def show_device(self, device: object) -> None:
        self.device_label.setText(f"device used: {device}")

    def refresh(self) -> None:
        session = self.owner.session
        model, path = session.model, session.model_path
        self.save_button.setEnabled(model is not None)
        if model is None:
            return
        source = "fine-tuned (unsaved)" if session.model_dirty else (path or "in memory")
        scale = getattr(model, "scale", None)
        scale_text = f"<br>pixel scale: {scale}" if scale is not None else ""
        self.info.setText(
            f"<b>{', '.join(model.class_names)}</b> from {', '.join(model.channel_names)}"
            f"{scale_text}<br><small>{source}</small>"
        )

    def _open_clicked(self) -> None:
        path = self.owner.dialogs.open_file("Open DCMIX model", "DCMIX model (*.pt);;All (*)")
        if path:
            self.owner.load_model(path)

    def _save_clicked(self) -> None:
        path = self.owner.dialogs.save_file("Save DCMIX model", "DCMIX model (*.pt)")
        if path:
            self.owner.save_model(path)
