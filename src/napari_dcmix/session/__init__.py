"""The session: what a user works with in napari-dcmix (plates, annotations, model,
predictions, settings), its actions and events, Qt-free. The napari widget is a view of it;
scripts and tests use it directly::

    from napari_dcmix.session import DcmixSession

    session = DcmixSession()
    session.open_plate("plate/")
    session.load_model(None)                      # the shipped default model
    predictions = drain(session.predict())
    session.save("my-session/")
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from napari_dcmix.session.scores import ScoreSpec
from napari_dcmix.session.session import (
    DcmixSession,
    MissingPlate,
    NetworkView,
    PlateState,
    SessionEvents,
)
from napari_dcmix.session.store import SessionError
from napari_dcmix.session.tasks import CANCELLED, DONE, FAILED, ConstantChannelsError, Task


def drain(gen: Generator[Any, None, Any]) -> Any:
    """Run a generator to the end and return its result (``session.predict()`` etc.)."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


__all__ = [
    "CANCELLED",
    "DONE",
    "FAILED",
    "ConstantChannelsError",
    "DcmixSession",
    "MissingPlate",
    "NetworkView",
    "PlateState",
    "ScoreSpec",
    "SessionError",
    "SessionEvents",
    "Task",
    "drain",
]
