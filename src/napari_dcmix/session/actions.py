"""The session's long actions as tasks: predict the current plate, fine-tune on its
annotations, check the importance by ablation. ``DcmixSession.predict_task`` /
``finetune_task`` / ``ablation_task`` call these."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from napari_dcmix.errors import DcmixError
from napari_dcmix.session.tasks import ConstantChannelsError, Task

if TYPE_CHECKING:
    from napari_dcmix.session.session import DcmixSession


def predict_task(session: DcmixSession, **overrides: Any) -> Task:
    """Predict every site of the current plate with the session's model and settings."""
    from napari_dcmix.model import predict_plate

    state = session.state()
    model = session.ensure_model()
    session._check_stains(state)
    settings = dataclasses.replace(session.predict_settings, **overrides)
    key = state.key

    progress = functools.partial(_device, session)

    def result(predictions: Any) -> bool:
        _device(session, predictions)
        if key in session.plates:
            session.set_predictions(predictions, key)
        return True

    # every prediction setting predict_plate takes (a new one follows without code here)
    takes = inspect.signature(predict_plate).parameters
    kwargs = {k: v for k, v in dataclasses.asdict(settings).items() if k in takes}
    return Task(
        session, "predict", "Predict", key, predict_plate, (model, state.plate), kwargs,
        progress, result, lambda e: (int(e.done), int(e.total)),
    )  # fmt: skip


def _device(session: DcmixSession, event: Any) -> None:
    device = getattr(event, "device", None)
    if device and device != session.device_used:
        session.device_used = str(device)
        session.events.device_used.emit(str(device))


def finetune_task(session: DcmixSession, **overrides: Any) -> Task:
    """Fine-tune on the current plate's annotated wells. The session's ``train_settings``
    (overridden by ``overrides``) are used; ``fresh_mixing`` means a fresh mixing layer and
    class head on the kept backbone, so the chart ranks the stains for the annotated classes.
    A plate whose stains differ from the model's always gets a fresh mixing layer."""
    from napari_dcmix.session.session import train_overrides

    train_overrides(overrides)
    state = session.state()
    labels = dict(state.annotations)
    used = list(dict.fromkeys(labels.values()))
    if not labels:
        raise DcmixError(
            "no wells are annotated. Select wells on the 'wells' layer and assign a class, or "
            "import a plate map CSV."
        )
    if len(used) < 2:
        raise DcmixError(
            f"all {len(labels)} annotated wells are {used[0]!r}; annotate wells of at least "
            "two classes."
        )
    settings = dataclasses.replace(session.train_settings, **overrides)
    base = session.ensure_model() if settings.mode != "scratch" else session.model
    plate = state.plate
    same_stains = base is not None and list(base.channel_names) == list(plate.channels)
    # a fresh mixing layer and class head on the kept backbone (the core's fine-tuning: random
    # starts per member), so the chart ranks the stains for the annotated classes; another
    # plate's stains always need one
    fresh = base is not None and (settings.fresh_mixing or not same_stains)
    config = dataclasses.replace(settings, device=session.device, fresh_mixing=fresh)
    key = state.key
    sites = [(w, s) for w in plate.wells if w in labels for s in plate.sites(w)]
    shown: set[tuple[int, int]] = set()
    session.losses = []

    def progress(event: Any) -> None:
        _device(session, event)
        if event.epoch == 0 or event.loss is None:
            return
        session.losses.append(float(event.loss))
        member, members = int(getattr(event, "member", 1)), int(getattr(event, "members", 1))
        if event.importance and (member, int(event.epoch)) not in shown:
            shown.add((member, int(event.epoch)))
            who = f"member {member}/{members}, " if members > 1 else ""
            session.events.importance_preview.emit(
                dict(event.importance), f"Channel importance ({who}epoch {event.epoch})"
            )

    def result(trained: Any) -> bool:
        if trained.cancelled or trained.model is None:
            return False
        session.history = list(trained.history)
        last = trained.history[-1] if trained.history else {}
        session.runs.append(
            {
                "plate": state.name,
                "wells": len(labels),
                "settings": dataclasses.asdict(config),
                "final": {k: v for k, v in last.items() if isinstance(v, (int, float, str))},
            }
        )
        session._set_model(trained.model, None, dirty=True)
        return True

    def failed(error: BaseException | None) -> None:
        if isinstance(error, ConstantChannelsError):
            session.events.constant_channels.emit(error.plate_key, list(error.channels))
        session.events.importance_preview.emit(None, "")  # the chart showed a discarded run

    return Task(
        session, "fine-tune", "Fine-tune", key, _finetune_work,
        (base, plate, labels, config, sites, key), {},
        progress, result, _progress_of, failed,
    )  # fmt: skip


def _finetune_work(
    base: Any,
    plate: Any,
    labels: dict[str, str],
    config: Any,
    sites: list[tuple[str, int]],
    key: str,
    should_stop: Callable[[], bool],
) -> Generator[Any, None, Any]:
    from napari_dcmix.model import train
    from napari_dcmix.plate.channel_map import constant_channels

    empty = constant_channels(plate, sites, should_stop)
    if empty:
        names = ", ".join(repr(c) for c in empty)
        raise ConstantChannelsError(
            f"stain(s) {names} of plate {plate.name!r} have one value over all {len(sites)} "
            "annotated sites (an empty channel): nothing to learn from, and they cannot be "
            "normalised. Exclude them (Stains) and fine-tune again.",
            key,
            empty,
        )
    return (yield from train(base, plate, labels, config, should_stop=should_stop))


def _progress_of(event: Any) -> tuple[int, int]:
    if getattr(event, "total", 0):  # steps over all ensemble members
        return int(event.done), int(event.total)
    if event.epoch == 0:  # reading the annotated sites
        return int(event.step), int(event.steps)
    done = (int(event.epoch) - 1) * int(event.steps) + int(event.step)
    return done, int(event.epochs) * int(event.steps)


def ablation_task(session: DcmixSession) -> Task:
    """Per-stain ablation of the model on the current plate's annotated wells (the check of
    the learned importance: each stain replaced by its normalised mean)."""
    from napari_dcmix.model.ablation import ablation_on_plate

    state = session.state()
    model = session.ensure_model()
    session._check_stains(state)
    labels = dict(state.annotations)
    if len(set(labels.values())) < 2:
        raise DcmixError("ablation compares classes: annotate wells of at least two classes first")
    key = state.key

    def result(found: Any) -> bool:
        session.ablation = found
        session.events.ablation_changed.emit()
        return True

    return Task(
        session, "ablation", "Ablation", key, ablation_on_plate, (model, state.plate, labels),
        {}, lambda _e: None, result, lambda e: (int(e.done), int(e.total)),
    )  # fmt: skip


__all__ = ["ablation_task", "finetune_task", "predict_task"]
