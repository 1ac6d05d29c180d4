"""Progress on the command line: a bar on a terminal, a line per plate (or epoch) otherwise.

- On a terminal (stdout and stderr both TTYs) a tqdm bar on stderr: done / total, rate and time
  left. tqdm because it already solves what a hand-made bar gets wrong: the rate is smoothed,
  the time left is estimated from it, the bar fits the terminal's width and redraws in place,
  several bars stack (one per plate, with a total over plates), and text printed meanwhile
  (``tqdm.write``) goes above the bars instead of through them.
- Not on a terminal (a log file, a pipe, a batch job): one line per finished plate (per epoch
  for training) on stdout, nothing that redraws.
- ``quiet``: nothing.

``PlatesProgress`` serves ``predict`` (sites of several plates); ``follow_training`` drives a
``train`` generator (``TrainProgress`` events: phase, epoch/epochs, step/steps, and for an
ensemble member/members and done/total steps over all members) and returns its result, for
``train`` to reuse.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Generator, Sequence
from typing import Any, TextIO

MODES = ("bar", "lines", "quiet")


def progress_mode(quiet: bool = False, out: TextIO | None = None, err: TextIO | None = None) -> str:
    """``quiet``, ``bar`` when stdout and stderr are terminals, else ``lines``."""
    if quiet:
        return "quiet"
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        tty = out.isatty() and err.isatty()
    except (AttributeError, ValueError):
        tty = False
    return "bar" if tty else "lines"


def _print(text: str) -> None:
    print(text, flush=True)


class PlatesProgress:
    """Sites done per plate: ``update(i, done)`` with plate ``i``'s count of sites done;
    ``close()`` at the end. ``plates`` is a list of (label, total sites)."""

    def __init__(self, plates: Sequence[tuple[str, int]], mode: str, unit: str = "sites") -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode: expected one of {MODES}, found {mode!r}")
        self.mode = mode
        self.unit = unit
        self.labels = [label for label, _ in plates]
        self.totals = [int(total) for _, total in plates]
        self.done = [0] * len(plates)
        self.started: list[float | None] = [None] * len(plates)
        self.initial = [0] * len(plates)
        self.finished = [False] * len(plates)
        self._last = time.perf_counter()
        self._bars: dict[int, Any] = {}
        self._overall: Any = None
        if mode == "bar" and len(plates) > 1:
            from tqdm import tqdm

            self._overall = tqdm(total=sum(self.totals), desc=f"{len(plates)} plates",
                                 unit=unit[:-1] if unit.endswith("s") else unit,
                                 dynamic_ncols=True, position=0)  # fmt: skip

    def _bar(self, i: int) -> Any:
        bar = self._bars.get(i)
        if bar is None:
            from tqdm import tqdm

            single = len(self.totals) == 1
            bar = tqdm(total=self.totals[i], initial=self.done[i], desc=self.labels[i],
                       unit=self.unit[:-1] if self.unit.endswith("s") else self.unit,
                       dynamic_ncols=True, leave=single)  # fmt: skip
            self._bars[i] = bar
        return bar

    def update(self, i: int, done: int, note: str = "", resumed: int = 0) -> None:
        """Plate ``i`` has ``done`` sites done (predicted or skipped), ``resumed`` of them taken
        from an earlier run; ``note`` (e.g. the device) is shown beside its bar."""
        now = time.perf_counter()
        first = self.started[i] is None
        if first:
            # its work began after the previous event of the run (plates in turn, or a task)
            self.started[i] = self._last
            self.initial[i] = self.done[i] = min(resumed, done)
        self._last = now
        if self.mode == "bar":
            bar = self._bar(i)  # created at the plate's resumed count
            bar.update(done - self.done[i])
            if note:
                bar.set_postfix_str(note, refresh=False)
            if self._overall is not None:
                self._overall.update(done - self.done[i] + (self.initial[i] if first else 0))
        self.done[i] = done
        if done >= self.totals[i] and not self.finished[i]:
            self._finish(i, now, note)

    def _finish(self, i: int, now: float, note: str) -> None:
        self.finished[i] = True
        if self.mode == "quiet":
            return
        seconds = now - (self.started[i] or now)
        new = self.done[i] - self.initial[i]
        rate = f", {new / seconds:.1f} {self.unit}/s" if seconds > 0 and new else ""
        resumed = f" ({self.initial[i]} from an earlier run)" if self.initial[i] else ""
        text = (
            f"{self.labels[i]}: {self.done[i]}/{self.totals[i]} {self.unit}{resumed} in "
            f"{seconds:.1f} s{rate}{f' on {note}' if note else ''}"
        )
        if not new:  # everything came from an earlier run
            count = f"{self.done[i]}/{self.totals[i]} {self.unit}"
            text = f"{self.labels[i]}: {count} from an earlier run"
        if self.mode == "lines":
            _print(text)
            return
        bar = self._bars.pop(i, None)
        if bar is not None and len(self.totals) > 1:
            bar.close()
            from tqdm import tqdm

            tqdm.write(text, file=sys.stderr)
        elif bar is not None:
            bar.close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
        if self._overall is not None:
            self._overall.close()
            self._overall = None


def drive(gen: Generator[Any, None, Any], on_event: Any) -> Any:
    """Run a core generator to its end, calling ``on_event(event)`` for each yielded event;
    returns the generator's result."""
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        on_event(event)


def follow_training(gen: Generator[Any, None, Any], mode: str) -> Any:
    """Drive a ``train`` generator with progress: a bar for reading the sites, then a bar over
    every step of every epoch (loss and accuracy after it) on a terminal; the reading summary
    and one line per epoch otherwise. Returns the ``TrainResult``."""
    bars: dict[str, Any] = {}

    def bar(phase: str, total: int, desc: str) -> Any:
        from tqdm import tqdm

        if phase not in bars:
            for other in list(bars):
                bars.pop(other).close()
            unit = "site" if phase.startswith("read") else "step"
            bars[phase] = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
        return bars[phase]

    def on_event(p: Any) -> None:
        if mode == "quiet":
            return
        if p.phase == "read":  # reading sites, estimating the normalisation...: one bar each
            stem = re.sub(r"\s*\d+/\d+$", "", p.message) or "reading"
            if mode == "bar" and p.steps > 1:
                b = bar(f"read:{stem}", p.steps, stem)
                b.update(p.step - b.n)
            elif mode == "lines" and (p.steps <= 1 or p.step == p.steps):
                _print(p.message)
            return
        if mode == "bar":
            members = getattr(p, "members", 1)
            total = getattr(p, "total", 0)  # steps over every ensemble member
            if total:
                b = bar("train", total, f"training {members} member(s) on {p.device}")
                b.update(p.done - b.n)
            else:
                b = bar("train", p.epochs * max(1, p.steps), f"training on {p.device}")
                b.update((p.epoch - 1) * p.steps + p.step - b.n)
            parts = [f"member {p.member}/{members}"] if members > 1 else []
            parts.append(f"epoch {p.epoch}/{p.epochs}")
            if p.loss is not None:
                parts.append(f"loss {p.loss:.4f}")
            if p.val_accuracy is not None:
                parts.append(f"val acc {p.val_accuracy:.3f}")
            b.set_postfix_str(", ".join(parts), refresh=False)
        elif p.step == p.steps and "done" in p.message:
            _print(p.message)

    try:
        return drive(gen, on_event)
    finally:
        for b in bars.values():
            b.close()
