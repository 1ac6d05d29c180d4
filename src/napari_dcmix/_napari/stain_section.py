"""Stains section: when the plate's stain names differ from the model's, offer a mapping
(suggested from the names; by position only when asked), apply it, and show stains left out
(an empty channel excluded from fine-tuning)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from napari_dcmix._napari.widget import DcmixWidget

NONE = "(none)"


class StainSection(QGroupBox):
    def __init__(self, owner: DcmixWidget) -> None:
        super().__init__("Stains")
        self.owner = owner
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.rows = QWidget()
        self.form = QFormLayout(self.rows)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.combos: dict[str, QComboBox] = {}
        self.by_position = QCheckBox("Pair the rest by position (w1, w2, …)")
        self.by_position.setToolTip(
            "The plate's stain names say nothing about the stain: pair them with the model's "
            "in order. Check the pairs before applying."
        )
        self.by_position.toggled.connect(lambda _on: self.refresh(suggest=True))
        self.apply_button = QPushButton("Apply mapping")
        self.apply_button.clicked.connect(self.apply)
        self.reset_button = QPushButton("Read as named")
        self.reset_button.setToolTip("Drop the mapping and the excluded stains")
        self.reset_button.clicked.connect(self.reset)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button, 1)
        buttons.addWidget(self.reset_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.rows)
        layout.addWidget(self.by_position)
        layout.addLayout(buttons)
        ev = owner.session.events
        for signal in (ev.model_changed, ev.current_changed, ev.plate_added, ev.channels_changed):
            signal.connect(lambda *_a: self.refresh(suggest=True))
        # what the model reads stays as it is while a task reads it (the session refuses too)
        ev.task_started.connect(lambda _t: self.setEnabled(False))
        ev.task_finished.connect(lambda _t: self.setEnabled(True))
        self.refresh(suggest=True)

    def _needed(self) -> bool:
        session = self.owner.session
        state = session.current
        if state is None or session.model is None:
            return False
        return bool(state.channel_map or state.excluded) or not session.stains_match()

    def refresh(self, suggest: bool = False) -> None:
        """Show the model's stains, each with the plate stain that feeds it: the current
        mapping, else the suggestion."""
        session = self.owner.session
        needed = self._needed()
        self.setVisible(needed)
        if not needed:
            return
        state, model = session.current, session.model
        current = {t: s for s, t in state.channel_map.items()}
        suggestion = session.suggest_channel_map(by_position=self.by_position.isChecked())
        proposed = {t: s for s, t in (suggestion.mapping if suggestion else {}).items()}
        while self.form.rowCount():
            self.form.removeRow(0)
        self.combos = {}
        plate_stains = [c for c in state.raw.channels if c not in state.excluded]
        for stain in model.channel_names:
            combo = QComboBox()
            combo.addItems([NONE, *plate_stains])
            chosen = current.get(stain) or (proposed.get(stain) if suggest else None)
            if chosen is None and stain in plate_stains:
                chosen = stain
            if chosen in plate_stains:
                combo.setCurrentText(chosen)
            self.combos[stain] = combo
            self.form.addRow(f"{stain} ←", combo)
        lines = []
        if not session.stains_match():
            lines.append(
                f"The model reads {', '.join(model.channel_names)}; this plate has "
                f"{', '.join(state.raw.channels)}. Choose the plate stain for each and Apply."
            )
            if suggestion is not None and suggestion.by_position:
                lines.append("Pairs by position are a guess: check them.")
            elif suggestion is not None and suggestion.mapping:
                lines.append("Suggested from the stain names.")
        else:
            lines.append("The plate's stains feed the model as shown.")
        if state.excluded:
            lines.append(f"Left out: {', '.join(state.excluded)}.")
        self.note.setText(" ".join(lines))
        self.by_position.setEnabled((suggestion is not None and not suggestion.complete)
                                    or self.by_position.isChecked())  # fmt: skip

    def mapping(self) -> dict[str, str]:
        """``{plate stain: model stain}`` as chosen in the form."""
        return {
            c.currentText(): stain for stain, c in self.combos.items() if c.currentText() != NONE
        }

    def apply(self) -> None:
        self.owner.attempt("Map stains", self.owner.session.set_channel_map, self.mapping())

    def reset(self) -> None:
        session = self.owner.session
        if session.current is None:
            return
        self.owner.attempt("Map stains", session.exclude_channels, [])
        self.owner.attempt("Map stains", session.set_channel_map, None)
