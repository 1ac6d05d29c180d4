"""Measure how responsive the Qt main thread stays: gaps between ticks of a 10 ms timer."""

from __future__ import annotations

import time
from collections.abc import Callable

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QOpenGLWidget, QWidget


class TickGaps:
    """Start a ``interval_ms`` QTimer; ``max_gap_ms`` is the longest time between two ticks.

    A blocked event loop shows up as a long gap (the timer cannot fire while the main thread
    is busy), so this is the freeze a user would feel.
    """

    def __init__(self, interval_ms: int = 10) -> None:
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.ticks: list[float] = []

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())

    def start(self) -> TickGaps:
        self.ticks = [time.perf_counter()]
        self.timer.start()
        return self

    def stop(self) -> TickGaps:
        self.timer.stop()
        self.ticks.append(time.perf_counter())
        return self

    @property
    def gaps_ms(self) -> list[float]:
        return [1000 * (b - a) for a, b in zip(self.ticks, self.ticks[1:], strict=False)]

    @property
    def max_gap_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)

    def percentile_ms(self, q: float) -> float:
        import numpy as np

        gaps = self.gaps_ms
        return float(np.percentile(gaps, q)) if gaps else 0.0


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
