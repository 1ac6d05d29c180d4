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


class StallSampler:
    """Where the main thread is while its event loop is blocked: a watchdog thread looks every
    ``every_ms``; when the last ``TickGaps`` tick is older than ``threshold_ms`` it records the
    main thread's innermost frames of our code and libraries (a sampling profile of stalls).

    A main thread that holds the interpreter in C code cannot be sampled until it lets go;
    such a stall shows up as a gap with no sample, which says as much."""

    def __init__(self, gaps: TickGaps, threshold_ms: float = 120, every_ms: float = 20) -> None:
        import threading

        self.gaps, self.threshold, self.every = gaps, threshold_ms / 1000, every_ms / 1000
        self.samples: list[tuple[float, str]] = []  # (seconds since start, where)
        self._stop = threading.Event()
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._run, name="stall-sampler", daemon=True)

    def start(self) -> StallSampler:
        self.t0 = time.perf_counter()
        self._thread.start()
        return self

    def stop(self) -> StallSampler:
        self._stop.set()
        self._thread.join(5)
        return self

    def _run(self) -> None:
        import sys
        import traceback

        while not self._stop.wait(self.every):
            last = self.gaps.ticks[-1] if self.gaps.ticks else self.t0
            now = time.perf_counter()
            if now - last < self.threshold:
                continue
            frame = sys._current_frames().get(self._main)
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)
            where = [
                f"{'/'.join(f.filename.split('/')[-2:])}:{f.lineno} {f.name}"
                for f in stack
                if "site-packages/pyqt" not in f.filename.lower()
            ][-6:]
            self.samples.append((now - self.t0, " <- ".join(reversed(where))))

    def summary(self, top: int = 8) -> list[tuple[int, str]]:
        """The most frequent stall locations: (samples, where)."""
        from collections import Counter

        return [(n, w) for w, n in Counter(w for _, w in self.samples).most_common(top)]
