"""Hold back repaints of napari's OpenGL canvas while layers change (plain Qt calls)."""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtWidgets import QOpenGLWidget, QWidget


class CanvasHold:
    """Holds back repaints of the OpenGL canvases (napari's vispy canvas) in a widget's window.

    Changing a layer asks the canvas for a repaint, which Qt runs in the next turns of the event
    loop ahead of most timers and input: a layer update and the (much longer) repaint it causes
    then freeze the viewer as one. Held back, the update and the repaint run in separate turns.
    """

    def __init__(self, widget: QWidget) -> None:
        self.widget = widget
        self._canvases: list[QWidget] = []

    def canvases(self) -> list[QWidget]:
        """The window's OpenGL canvases, looked up once (a search of the window's widget tree
        takes ~10 ms with a plate's layer controls) and again once one is deleted."""
        if not self._canvases or not all(_alive(c) for c in self._canvases):
            self._canvases = self.widget.window().findChildren(QOpenGLWidget)
        return self._canvases

    def hold(self) -> Callable[[], None]:
        """Stop the canvases repainting; call the returned function to let them repaint (each
        canvas held back then repaints once)."""
        held = [c for c in self.canvases() if c.updatesEnabled()]
        for canvas in held:
            canvas.setUpdatesEnabled(False)

        def release() -> None:
            for canvas in held:
                if _alive(canvas):
                    canvas.setUpdatesEnabled(True)  # Qt repaints a widget whose updates resume

        return release


def _alive(widget: QWidget) -> bool:
    try:
        widget.objectName()  # a deleted Qt widget raises RuntimeError
    except RuntimeError:
        return False
    return True
