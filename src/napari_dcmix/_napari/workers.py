"""Run a core generator in a napari thread worker, with a progress bar and Cancel."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from napari_dcmix.errors import DcmixError

log = logging.getLogger(__name__)


_warm_thread: threading.Thread | None = None


def _warm() -> None:
    import torch

    # building the first optimizer imports torch._dynamo and sympy (about 800 modules, ~1 s,
    # mostly holding the GIL): done here, not in the middle of the user's first fine-tune
    torch.optim.AdamW(torch.nn.Linear(1, 1).parameters(), lr=1e-3)


def warm_torch() -> threading.Thread:
    """Start (once per process) a background thread that pre-imports torch's training stack."""
    global _warm_thread
    if _warm_thread is None:
        _warm_thread = threading.Thread(target=_warm, name="dcmix-warm-torch", daemon=True)
        _warm_thread.start()
    return _warm_thread


def leave_a_core_for_the_viewer() -> int:
    """Cap torch's CPU threads at (CPUs - 1) so the Qt main thread always finds a free core."""
    import os

    import torch

    cpus = os.cpu_count() or 1
    if cpus > 1 and torch.get_num_threads() > cpus - 1:
        torch.set_num_threads(cpus - 1)
    return torch.get_num_threads()


def warm_progress() -> None:
    """Build napari's activity-dock progress machinery now (slow the first time)."""
    from napari.utils import progress

    progress(total=0, desc="napari-dcmix ready").close()


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Run the Qt event loop until ``predicate()`` holds or ``timeout_s`` passes (scripts)."""
    from qtpy.QtCore import QEventLoop, QTimer

    if predicate():
        return True
    loop = QEventLoop()
    poll = QTimer()
    poll.timeout.connect(lambda: predicate() and loop.quit())
    poll.start(20)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    poll.stop()
    return predicate()


class JobError(Exception):
    """Carries an exception out of the worker thread (superqt drops RuntimeErrors silently)."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _guarded(gen_func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return (yield from gen_func(*args, **kwargs))
    except Exception as exc:
        raise JobError(exc) from exc


def error_text(action: str, exc: BaseException) -> str:
    """The notification text for a failed job: DcmixError messages as they are."""
    if isinstance(exc, JobError):
        exc = exc.original
    if isinstance(exc, DcmixError):
        return f"{action} failed: {exc}"
    return f"{action} failed with an unexpected {type(exc).__name__}: {exc}"


class Job:
    """One long task: ``gen_func(*args, should_stop=..., **kwargs)`` yields progress events.

    ``on_yield(event)``, ``on_return(result)`` (not called when cancelled), ``on_error(text)``
    and ``on_end()`` (always, last) run on the main thread. ``progress_of(event)`` gives
    (done, total) for the activity-dock progress bar.
    """

    def __init__(
        self,
        gen_func: Callable[..., Any],
        *args: Any,
        action: str,
        on_yield: Callable[[Any], None],
        on_return: Callable[[Any], None],
        on_error: Callable[[str], None],
        on_end: Callable[[], None],
        progress_of: Callable[[Any], tuple[int, int]],
        **kwargs: Any,
    ) -> None:
        from napari.qt.threading import create_worker

        self.action = action
        self.cancelled = False
        self.failed = False
        self._released = False
        self._stop = threading.Event()
        self._on_yield, self._on_return = on_yield, on_return
        self._on_error, self._on_end = on_error, on_end
        self._progress_of = progress_of
        self._pbar = None
        self.worker = create_worker(
            _guarded,
            gen_func,
            *args,
            should_stop=self._stop.is_set,
            _start_thread=False,
            _connect={"errored": self._errored},
            **kwargs,
        )
        self.worker.yielded.connect(self._yielded)
        self.worker.returned.connect(self._returned)
        self.worker.finished.connect(self._finished)

    @property
    def is_running(self) -> bool:
        """True until the worker has ended and its results are on screen (``release``)."""
        return not self._released

    def release(self) -> None:
        """Called by the owner once the job's results are drawn: the job is over."""
        self._released = True

    def start(self) -> Job:
        from napari.utils import progress

        leave_a_core_for_the_viewer()
        self._pbar = progress(total=0, desc=self.action)
        self.worker.start()
        return self

    def cancel(self) -> None:
        """Stop at the next step; the job's result is discarded."""
        self.cancelled = True
        self._stop.set()
        self.worker.quit()

    # --- slots (main thread) ---------------------------------------------------------------
    def _yielded(self, event: Any) -> None:
        if self._pbar is not None:
            try:
                done, total = self._progress_of(event)
                if self._pbar.total != total:
                    self._pbar.total = total
                self._pbar.n = done
                self._pbar.refresh()
            except Exception:  # a progress bar must never break the job
                log.debug("progress update failed", exc_info=True)
        if not self.cancelled:
            self._on_yield(event)

    def _returned(self, result: Any) -> None:
        if not self.cancelled:
            self._on_return(result)

    def _errored(self, exc: BaseException) -> None:
        self.failed = True
        log.debug("%s failed", self.action, exc_info=exc)
        self._on_error(error_text(self.action, exc))

    def _finished(self) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        self._on_end()
