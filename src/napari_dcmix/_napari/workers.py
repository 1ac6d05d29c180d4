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
    # mostly holding the GIL): done here, not in the middle of the user's first fine-tune;
    # so are the training, evidence and ablation modules a fine-tune imports
    torch.optim.AdamW(torch.nn.Linear(1, 1).parameters(), lr=1e-3)
    import napari_dcmix.model.ablation
    import napari_dcmix.model.evidence
    import napari_dcmix.model.training  # noqa: F401


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


def _guarded(make_gen: Callable[[], Any]) -> Any:
    try:
        return (yield from make_gen())
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
    """Runs a session ``Task`` in a napari thread worker with a progress bar and Cancel.

    The task's work runs in the worker thread; its progress and end are applied on the main
    thread (``task.progress`` / ``task.end``), so the session's events reach the views there.
    ``on_error(text)`` shows a failure; ``on_end()`` runs last, always.
    """

    def __init__(
        self,
        task: Any,
        on_error: Callable[[str], None],
        on_end: Callable[[], None],
    ) -> None:
        from napari.qt.threading import create_worker

        self.task = task
        self.action = task.action
        self._released = False
        self._on_error, self._on_end = on_error, on_end
        self._pbar = None
        self.worker = create_worker(
            _guarded,
            task.work,
            _start_thread=False,
            _connect={"errored": self._errored},
        )
        self.worker.yielded.connect(self._yielded)
        self.worker.returned.connect(self._returned)
        self.worker.finished.connect(self._finished)

    @property
    def cancelled(self) -> bool:
        return self.task.outcome == "cancelled" or (
            self.task.outcome is None and self.task.cancelled
        )

    @property
    def failed(self) -> bool:
        return self.task.outcome == "failed"

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
        self.task.cancel()
        self.worker.quit()

    # --- slots (main thread) ---------------------------------------------------------------
    def _yielded(self, event: Any) -> None:
        if self._pbar is not None:
            try:
                done, total = self.task.progress_of(event)
                if self._pbar.total != total:
                    self._pbar.total = total
                self._pbar.n = done
                self._pbar.refresh()
            except Exception:  # a progress bar must never break the job
                log.debug("progress update failed", exc_info=True)
        self.task.progress(event)

    def _returned(self, result: Any) -> None:
        self.task.end(result)

    def _errored(self, exc: BaseException) -> None:
        log.debug("%s failed", self.action, exc_info=exc)
        original = exc.original if isinstance(exc, JobError) else exc
        self.task.end(None, original)
        self._on_error(error_text(self.action, exc))

    def _finished(self) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        self.task.end(None)  # quit before returning: cancelled (no-op when it has ended)
        self._on_end()
