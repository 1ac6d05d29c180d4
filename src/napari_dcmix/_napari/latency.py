"""Measure how responsive the Qt main thread stays: gaps between ticks of a 10 ms timer."""

from __future__ import annotations

import time

from qtpy.QtCore import QTimer


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
