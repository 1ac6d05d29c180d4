"""File and confirmation dialogs, behind one object so tests can answer them."""

from __future__ import annotations

from qtpy.QtWidgets import QFileDialog, QMessageBox, QWidget


class Dialogs:
    """Ask the user; every method returns None (or False) when they cancel."""

    def __init__(self, parent: QWidget) -> None:
        self.parent = parent

    def open_dir(self, title: str) -> str | None:
        path = QFileDialog.getExistingDirectory(self.parent, title)
        return path or None

    def open_file(self, title: str, filter_: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, title, "", filter_)
        return path or None

    def save_file(self, title: str, filter_: str) -> str | None:
        # we ask about overwriting ourselves (confirm), the same way for every save
        path, _ = QFileDialog.getSaveFileName(
            self.parent, title, "", filter_, options=QFileDialog.Option.DontConfirmOverwrite
        )
        return path or None

    def confirm(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(
            self.parent,
            title,
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes
