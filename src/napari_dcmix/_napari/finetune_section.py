"""Fine-tune section: train on the annotated wells in a worker, live loss and importance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QCheckBox,
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
#: form defaults. With a fresh mixing layer and head on a frozen backbone, 10 epochs at the
#: core's mixing lr (0.01) barely move the mixing weights from uniform on a few annotated
#: wells (the sample's 8 wells: its phenotype stain Mito first for 2 of seeds 0..4); 30 epochs
#: at 0.1 rank it first for all 5, clearly (weight 0.38-0.55 against 0.2 uniform)
EPOCHS = 30
MIXING_LR = 0.1
#: what ``run_finetune(**overrides)`` accepts (each beats its form field)
OVERRIDES = ("mode", "epochs", "lr", "mixing_lr", "seed", "fresh_mixing")


class FinetuneSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        super().__init__("Fine-tune")
        self.owner = owner
        self.mode_combo = QComboBox()
        for key, text in MODES.items():
            self.mode_combo.addItem(text, key)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(EPOCHS)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(1e-3)
        self.lr.setToolTip("Learning rate of the backbone and the class head")
        self.mixing_lr = QDoubleSpinBox()
        self.mixing_lr.setDecimals(4)
        self.mixing_lr.setRange(1e-4, 10.0)
        self.mixing_lr.setSingleStep(1e-2)
        self.mixing_lr.setValue(MIXING_LR)
        self.mixing_lr.setToolTip("Learning rate of the channel-mixing layer (the chart's weights)")
        self.fresh_mixing = QCheckBox("Fresh mixing layer")
        self.fresh_mixing.setChecked(True)
        self.fresh_mixing.setToolTip(
            "Start the channel-mixing layer (equal weights) and the class head afresh, so the "
            "chart answers which stain separates the classes you annotated; the backbone is "
            "kept. Unchecked: continue from the model's mixing layer and head."
        )
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form = QFormLayout()
        form.addRow("Train", self.mode_combo)
        form.addRow("Epochs", self.epochs)
        form.addRow("Learning rate", self.lr)
        form.addRow("Mixing learning rate", self.mixing_lr)
        form.addRow("", self.fresh_mixing)
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
        """Train on the annotations; ``overrides`` (see ``OVERRIDES``) beat the form."""
        unknown = sorted(set(overrides) - set(OVERRIDES))
        if unknown:
            raise TypeError(
                f"run_finetune() got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(OVERRIDES)}"
            )
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
        seed = int(overrides.get("seed", self.seed.value()))
        same_stains = base is not None and list(base.channel_names) == list(plate.channels)
        fresh = bool(overrides.get("fresh_mixing", self.fresh_mixing.isChecked()))
        try:
            config = TrainConfig(
                mode=mode,
                epochs=int(overrides.get("epochs", self.epochs.value())),
                lr=float(overrides.get("lr", self.lr.value())),
                mixing_lr=float(overrides.get("mixing_lr", self.mixing_lr.value())),
                seed=seed,
                device=owner.model_section.device,
                # another plate's stains: a fresh mixing layer, the backbone is kept
                fresh_mixing=base is not None and not same_stains,
            )
            if fresh and same_stains and mode != "scratch":
                # the same stains: the core's fresh mixing layer and class head (backbone
                # kept), so the chart ranks the stains for the annotated classes, not the
                # stains the model was trained on (its old head favours its old mixing)
                classes = sorted(set(labels.values()))
                base = base.adapted(base.channel_names, seed=seed).with_classes(classes, seed)
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
        device = getattr(event, "device", None)
        if device is not None:
            self.owner.model_section.show_device(device)
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
            self.owner.refresh_chart()  # the chart showed the discarded model's epochs
        elif job is not None and job.failed:
            self.status.setText("Fine-tune failed: the previous model is kept.")
            self.owner.refresh_chart()
        self.owner.set_busy(None)


def _progress_of(event: Any) -> tuple[int, int]:
    if event.epoch == 0:  # reading the annotated sites
        return int(event.step), int(event.steps)
    return (int(event.epoch) - 1) * int(event.steps) + int(event.step), int(event.epochs) * int(
        event.steps
    )
