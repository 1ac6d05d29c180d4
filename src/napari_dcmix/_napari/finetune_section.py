"""Fine-tune section: train on the annotated wells in a worker, live loss and importance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from napari_dcmix._napari.workers import Job
from napari_dcmix.errors import DcmixError

if TYPE_CHECKING:
    from napari_dcmix._napari.widget import DcmixWidget

MODES = {
    "mixing": "Mixing layer + head (backbone frozen)",
    "all": "All layers",
    "scratch": "From scratch",
}


class FinetuneSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        super().__init__("Fine-tune")
        self.owner = owner
        self.mode_combo = QComboBox()
        for key, text in MODES.items():
            self.mode_combo.addItem(text, key)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(10)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(1e-3)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form = QFormLayout()
        form.addRow("Train", self.mode_combo)
        form.addRow("Epochs", self.epochs)
        form.addRow("Learning rate", self.lr)
        form.addRow("Seed", self.seed)
        self.train_button = QPushButton("Fine-tune")
        self.train_button.clicked.connect(lambda: self.owner.run_finetune())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.owner.cancel)
        self.status = QLabel("Annotate wells of at least two classes, then Fine-tune.")
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button, 1)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self._last_epoch = 0
        self.losses = []

    @property
    def mode(self) -> str:
        return str(self.mode_combo.currentData())

    def start(self, **overrides: Any) -> Job | None:
        """Train on the annotations; ``overrides`` (mode, epochs, lr, seed) beat the form."""
        owner = self.owner
        if not owner.require_plate("Fine-tune"):
            return None
        labels = dict(owner.annotations)
        used = [c for c in dict.fromkeys(labels.values())]
        if not labels:
            owner.notify_error(
                "Fine-tune: no wells are annotated. Select wells on the 'wells' layer and assign "
                "a class, or import a plate map CSV."
            )
            return None
        if len(used) < 2:
            owner.notify_error(
                f"Fine-tune: all {len(labels)} annotated wells are {used[0]!r}; annotate wells "
                "of at least two classes."
            )
            return None
        mode = overrides.get("mode", self.mode)
        if mode != "scratch" and not owner.ensure_model():
            return None
        from napari_dcmix.model import TrainConfig, train

        plate, base = owner.plate, owner.model
        try:
            config = TrainConfig(
                mode=mode,
                epochs=int(overrides.get("epochs", self.epochs.value())),
                lr=float(overrides.get("lr", self.lr.value())),
                seed=int(overrides.get("seed", self.seed.value())),
                device=owner.model_section.device,
                # another plate's stains: a fresh mixing layer, the backbone is kept
                fresh_mixing=base is not None and list(base.channel_names) != list(plate.channels),
            )
        except DcmixError as exc:
            owner.notify_error(f"Fine-tune: {exc}")
            return None
        self._last_epoch = 0
        self.losses: list[float] = []
        self.status.setText(f"Fine-tuning on {len(labels)} wells…")
        job = Job(
            train,
            base,
            plate,
            labels,
            config,
            action="Fine-tune",
            on_yield=self._progress,
            on_return=self._done,
            on_error=owner.notify_error,
            on_end=self._ended,
            progress_of=_progress_of,
        )
        owner.set_busy(job)
        return job.start()

    def _progress(self, event: Any) -> None:
        if event.epoch == 0 or event.loss is None:
            self.status.setText(event.message)
            return
        val = event.val_accuracy
        acc = f", validation accuracy {val:.2f}" if val is not None else ""
        self.status.setText(
            f"Epoch {event.epoch}/{event.epochs}, step {event.step}/{event.steps}: "
            f"loss {event.loss:.3f}{acc}"
        )
        self.losses.append(float(event.loss))
        importance = event.importance
        if importance and int(event.epoch) != self._last_epoch:
            self._last_epoch = int(event.epoch)
            title = f"Channel importance (epoch {event.epoch})"
            self.owner.show_importance(importance, title=title)

    def _done(self, result: Any) -> None:
        owner = self.owner
        if result.cancelled or result.model is None:
            return
        owner.set_model(result.model, path=None, dirty=True)
        owner.history = list(result.history)
        last = result.history[-1] if result.history else None
        loss = f" (final loss {last['loss']:.3f})" if last else ""
        self.status.setText(f"Fine-tuned{loss}. Click Predict plate to refresh the predictions.")

    def _ended(self) -> None:
        job = self.owner.job
        if job is not None and job.cancelled:
            self.status.setText("Fine-tune cancelled: the previous model is kept.")
            if self.owner.model is not None:
                self.owner.show_importance(self.owner.model.channel_importance())
        elif job is not None and job.failed:
            self.status.setText("Fine-tune failed: the previous model is kept.")
        self.owner.set_busy(None)


def _progress_of(event: Any) -> tuple[int, int]:
    if event.epoch == 0:  # reading the annotated sites
        return int(event.step), int(event.steps)
    return (int(event.epoch) - 1) * int(event.steps) + int(event.step), int(event.epochs) * int(
        event.steps
    )
