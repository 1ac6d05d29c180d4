"""Long session actions (predict, fine-tune) as tasks: the work is a generator that may run in
another thread; what it changes in the session is applied by ``progress`` and ``end`` on the
caller's thread, so session events are always emitted there.

``DcmixSession.run(task)`` drives a task in the calling thread (scripts, tests); the napari
widget runs ``task.work`` in a thread worker and calls ``progress`` / ``end`` from the Qt main
thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from napari_dcmix.errors import ModelError

if TYPE_CHECKING:
    from napari_dcmix.session.session import DcmixSession

DONE, CANCELLED, FAILED = "done", "cancelled", "failed"


class ConstantChannelsError(ModelError):
    """Fine-tune found stains with one value over every annotated site (nothing to learn
    from, and they cannot be normalised); ``channels`` names them, ``plate_key`` the plate."""

    def __init__(self, message: str, plate_key: str, channels: list[str]) -> None:
        super().__init__(message)
        self.plate_key = plate_key
        self.channels = channels


class Task:
    """One long action on a session.

    ``work()`` returns the generator to run (it yields progress events and returns a result;
    it reads only what the task captured, so it may run in a worker thread). ``progress(event)``
    and ``end(outcome, result, error)`` run on the session's thread: they update the session
    and emit its events. ``cancel()`` asks the work to stop at its next step; a cancelled task
    changes nothing (a cancelled fine-tune keeps the model)."""

    def __init__(
        self,
        session: DcmixSession,
        kind: str,
        action: str,
        key: str | None,
        func: Callable[..., Generator],
        args: tuple,
        kwargs: dict[str, Any],
        on_progress: Callable[[Any], None],
        on_result: Callable[[Any], bool],
        progress_of: Callable[[Any], tuple[int, int]],
        on_failed: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self.session = session
        self.kind = kind  # "predict" | "fine-tune"
        self.action = action  # "Predict" | "Fine-tune" (notifications, progress bars)
        self.key = key
        self.outcome: str | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.events_seen = 0
        self.started = False  # work() was called: the work runs (or ran) somewhere
        self._stop = threading.Event()
        self._func, self._args, self._kwargs = func, args, kwargs
        self._on_progress, self._on_result, self._on_failed = on_progress, on_result, on_failed
        self.progress_of = progress_of

    # --- work (any thread) ----------------------------------------------------------------
    def should_stop(self) -> bool:
        return self._stop.is_set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def work(self) -> Generator:
        self.started = True
        return self._func(*self._args, should_stop=self.should_stop, **self._kwargs)

    def cancel(self) -> None:
        self._stop.set()

    # --- the session's thread ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.outcome is None

    def progress(self, event: Any) -> None:
        if self.outcome is not None or self.cancelled:
            return
        self.events_seen += 1
        self._on_progress(event)
        self.session.events.task_progress.emit(self, event)

    def end(self, result: Any = None, error: BaseException | None = None) -> str:
        """Apply the result (unless cancelled or failed) and tell the session the task is
        over; returns the outcome. Called once; later calls change nothing."""
        if self.outcome is not None:
            return self.outcome
        if error is not None:
            self.outcome, self.error = FAILED, error
        elif self.cancelled or result is None:
            self.outcome = CANCELLED
        else:
            self.result = result
            self.outcome = DONE if self._on_result(result) else CANCELLED
        if self.outcome != DONE and self._on_failed is not None:
            self._on_failed(error)
        self.session._task_ended(self)
        return self.outcome
