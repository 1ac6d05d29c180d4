"""Fine-tune section: the training settings form (built with magicgui from TrainConfig's
metadata), Fine-tune / Cancel, and the run's live status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from napari_dcmix._napari.settings_form import SettingsForm

if TYPE_CHECKING:
    from napari_dcmix._napari.widget import DcmixWidget


class FinetuneSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        from napari_dcmix.model.train_settings import TrainConfig

        super().__init__("Fine-tune")
        self.owner = owner
        session = owner.session
        self.form = SettingsForm(TrainConfig, session.train_settings, self._setting_changed)
        fresh = self.form.widgets.get("fresh_mixing")
        if fresh is not None:  # what the session makes of it (a fresh layer and head)
            fresh.tooltip = (
                "Start the channel-mixing layer (equal weights) and the class head afresh, so "
                "the chart answers which stain separates the classes you annotated; the "
                "backbone is kept. Unchecked: continue from the model's mixing layer and head."
            )
        self.train_button = QPushButton("Fine-tune")
        self.train_button.clicked.connect(lambda: self.owner.run_finetune())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.owner.cancel)
        self.status = QLabel("Annotate wells of at least two classes, then Fine-tune.")
        self.status.setWordWrap(True)
        self.coverage = QLabel("")  # what one network input covers (also drawn on the plate)
        self.coverage.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button, 1)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        layout.addWidget(self.coverage)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        ev = session.events
        ev.settings_changed.connect(lambda: self.form.set_values(session.train_settings))
        for signal in (ev.settings_changed, ev.model_changed, ev.current_changed, ev.plate_added,
                       ev.focus_changed):  # fmt: skip
            signal.connect(lambda *_: self.show_coverage())
        self.show_coverage()
        ev.task_started.connect(self._task_started)
        ev.task_progress.connect(self._progress)
        ev.task_finished.connect(self._task_finished)

    def show_coverage(self) -> str:
        """Say (and draw on the plate) what one network input of the fine-tune will cover:
        the settings' bin and crop, else the model's, else the defaults; in micrometres when
        the plate's pixel size is known."""
        from napari_dcmix.errors import DcmixError
        from napari_dcmix.model.scale import coverage_text, effective_scale

        session = self.owner.session
        state = session.current
        settings, model = session.train_settings, session.model
        plate = state.plate if state is not None else None
        try:
            scale = effective_scale(
                settings.bin, settings.crop, getattr(model, "scale", None),
                [tuple(plate.image_shape)] if plate is not None else [],
            )  # fmt: skip
            if plate is not None:
                scale.check_site(tuple(plate.image_shape), f"plate {plate.name!r}'s sites")
        except DcmixError as exc:
            self.coverage.setText(f"Fine-tune cannot use this scale: {exc}")
            layers = getattr(self.owner, "layers", None)
            if layers is not None and state is not None:
                layers.show_crop(state.key, None, "")
            return str(exc)
        size = scale.crop or (model.input_size if model is not None else settings.input_size)
        text = coverage_text(scale, size, getattr(plate, "pixel_size_um", None))
        self.coverage.setText(text)
        layers = getattr(self.owner, "layers", None)
        if layers is not None and state is not None:
            layers.show_crop(state.key, scale.footprint(), text)
        return text

    @property
    def mode(self) -> str:
        return self.owner.session.train_settings.mode

    def _setting_changed(self, name: str, value: Any) -> None:
        session = self.owner.session
        if self.owner.attempt("Fine-tune settings", session.update_settings, "train",
                              **{name: value}) is None:  # fmt: skip
            self.form.set_values(session.train_settings)  # refused: show what holds

    def _task_started(self, task: Any) -> None:
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(task.kind == "fine-tune")
        if task.kind == "fine-tune":
            wells = len(self.owner.session.annotations)
            self.status.setText(f"Fine-tuning on {wells} wells…")

    def _progress(self, task: Any, event: Any) -> None:
        if task.kind != "fine-tune":
            return
        if event.epoch == 0 or event.loss is None:
            self.status.setText(event.message)
            return
        val = event.val_accuracy
        acc = f", validation accuracy {val:.2f}" if val is not None else ""
        self.status.setText(
            f"Epoch {event.epoch}/{event.epochs}, step {event.step}/{event.steps}: "
            f"loss {event.loss:.3f}{acc}"
        )

    def _task_finished(self, task: Any) -> None:
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if task.kind != "fine-tune":
            return
        if task.outcome == "cancelled":
            self.status.setText("Fine-tune cancelled: the previous model is kept.")
        elif task.outcome == "failed":
            self.status.setText("Fine-tune failed: the previous model is kept.")
        else:
            last = self.owner.session.history[-1] if self.owner.session.history else None
            loss = f" (final loss {last['loss']:.3f})" if last else ""
            self.status.setText(
                f"Fine-tuned{loss}. Click Predict plate to refresh the predictions."
            )
