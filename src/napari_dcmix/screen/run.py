"""Predict a whole screen: many plates, in this process or on Dask workers, resumable.

``predict_screen`` is a generator like the rest of the core: it yields ``ScreenProgress`` and
returns a ``ScreenResult``. In-process it streams each plate through ``predict_plate`` (reading
ahead of the model, as a single plate does); on a cluster each task predicts a batch of whole
wells (``PredictConfig.max_task_sites``) with the same ``predict_plate``. Either way every
finished batch of wells is saved beside the target (``OUT.partial``, see ``partial.py``) and
the CSV is written at the end, atomically, in plate, well, site order.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_dcmix.errors import ModelError
from napari_dcmix.model.predictions import (
    PlatePredictions,
    SitePrediction,
    SkippedSite,
    csv_text,
    plate_path_text,
    write_predictions_csv,
)
from napari_dcmix.model.train_settings import PredictConfig
from napari_dcmix.screen.executor import connected, dask_client, run_tasks, worker_count
from napari_dcmix.screen.partial import RESULT_SETTINGS, PartialStore, PlateRecord, ResumeError
from napari_dcmix.screen.tasks import PlateSpec, TaskResult, plan_tasks, predict_task

__all__ = [
    "ScreenProgress",
    "ScreenResult",
    "model_sha256",
    "plate_options",
    "plate_spec",
    "predict_screen",
]


@dataclass
class ScreenProgress:
    """After each batch of sites: the plate it belongs to and the counts so far (sites
    predicted or skipped, including those an earlier run finished when resuming)."""

    plate_index: int
    plate_name: str
    plate_done: int
    plate_total: int
    done: int
    total: int
    device: str
    workers: int  # 0 in-process
    plate_resumed: int = 0  # of plate_done, sites an earlier run finished


@dataclass
class ScreenResult:
    predictions: list[PlatePredictions]
    out: Path | None
    workers: int  # 0 in-process
    resumed_sites: int  # sites taken from an earlier run's partial results
    tasks: list[TaskResult] = field(default_factory=list)  # cluster runs: one per task
    wall_s: float = 0.0


def model_sha256(path: str | Path) -> tuple[str, bytes]:
    """(SHA-256 hex, bytes) of a model file."""
    data = Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest(), data


def plate_spec(plate: Any, opener: Callable[[], Any] | None = None, run: str = "") -> PlateSpec:
    """How workers reopen ``plate``: ``opener`` (picklable), else ``open_plate`` on its path or
    URL with its layout, plane and timepoint; ``run`` keeps workers from reusing a plate opened
    for another run."""
    key = plate_path_text(plate)
    if opener is None:
        from napari_dcmix.plate import open_plate

        selection = {k: getattr(plate, k) for k in ("plane", "timepoint") if hasattr(plate, k)}
        opener = functools.partial(open_plate, key, getattr(plate, "layout", None), **selection)
    return PlateSpec(key, opener, run)


def _label(plate: Any) -> str:
    return repr(csv_text(str(plate.name)))


def plate_options(plate: Any) -> dict[str, Any]:
    """What a plate was read with (recorded for ``--resume``): its layout, plane, timepoint,
    and which plate stain feeds each stain it presents (``channel_map``: presented name ->
    plate stain; the same for a plate read as named and for a map pairing equal names)."""
    sources = getattr(plate, "sources", None) or list(plate.channels)
    return {
        "name": csv_text(str(plate.name)),
        "layout": getattr(plate, "layout", None),
        "plane": getattr(plate, "plane", None),
        "timepoint": getattr(plate, "timepoint", None),
        "channel_map": dict(zip(plate.channels, sources, strict=True)),
    }


def _check_records(plates: Sequence[Any], keys: list[str], done: dict[str, PlateRecord],
                   folder: Path) -> None:  # fmt: skip
    """Partial results of wells or sites a plate no longer has are refused (ResumeError)."""
    for plate, key in zip(plates, keys, strict=True):
        record = done.get(key)
        if record is None:
            continue
        wells = set(plate.wells)
        for s in [*record.sites, *record.skipped]:
            if s.well not in wells or s.site not in plate.sites(s.well):
                what = f"well {s.well}" if s.well not in wells else f"well {s.well} site {s.site}"
                raise ResumeError(
                    f"cannot resume from {folder}: it holds results of {what} of plate "
                    f"{_label(plate)} ({csv_text(key)}), which the plate no longer has (it "
                    "changed since the interrupted run); pass --overwrite to start again"
                )


def predict_screen(
    model_path: str | Path,
    plates: Sequence[Any],
    config: PredictConfig | None = None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    openers: Sequence[Callable[[], Any]] | None = None,
    client: Any = None,
    model: Any = None,
) -> Generator[ScreenProgress, None, ScreenResult]:
    """Predict ``plates`` (opened ``Plate`` objects) with the model file ``model_path``.

    ``config`` chooses the device, batches and where tasks run (``workers``: a local Dask
    cluster; ``scheduler``: a running one; neither: this process). With ``out`` the CSV is
    written there (atomically; an existing file only with ``overwrite``) and finished wells
    are kept in ``OUT.partial`` until it is; ``resume`` continues from them. ``openers[i]``
    reopens plate ``i`` on a worker (default: ``open_plate`` on its path or URL). ``client``:
    a ``distributed.Client`` to run on instead of the one ``config`` would start (kept open).
    ``model``: ``model_path`` already loaded (else it is loaded here).
    """
    from napari_dcmix.atomic import check_writable
    from napari_dcmix.model import load_model
    from napari_dcmix.model.inference import check_channels

    config = config or PredictConfig()
    start = time.perf_counter()
    plates = list(plates)
    if not plates:
        raise ModelError("no plates to predict")
    if model is None:
        model = load_model(model_path)  # (errors name the file: missing, a folder, not a model)
    sha, data = model_sha256(model_path)
    for plate in plates:
        check_channels(model, plate)
    classes = list(model.class_names)
    keys = [plate_path_text(p) for p in plates]
    columns = PlatePredictions("", classes, "").columns()

    store: PartialStore | None = None
    done: dict[str, PlateRecord] = {}
    if out is not None:
        out = Path(out)
        if out.exists() and not overwrite:
            raise ModelError(f"{out} exists; pass --overwrite to replace it")
        check_writable(out, "predictions CSV")
        store = PartialStore(out)
        read_with = {k: plate_options(p) for k, p in zip(keys, plates, strict=True)}
        settings = {name: getattr(config, name, None) for name in RESULT_SETTINGS}
        done = store.open(sha, columns, resume=resume, overwrite=overwrite, plates=read_with,
                          settings=settings)  # fmt: skip
        _check_records(plates, keys, done, store.folder)

    records = [done.get(k, PlateRecord()) for k in keys]
    # Two plates given twice (same key): both get the same rows, predicted once per mention.
    remaining = [
        {w: len(p.sites(w)) for w in p.wells if w not in rec.wells}
        for p, rec in zip(plates, records, strict=True)
    ]
    totals = [sum(len(p.sites(w)) for w in p.wells) for p in plates]
    counts = [totals[i] - sum(remaining[i].values()) for i in range(len(plates))]
    resumed_counts = list(counts)
    resumed = sum(counts)
    sites: list[list[SitePrediction]] = [list(r.sites) for r in records]
    skipped: list[list[SkippedSite]] = [list(r.skipped) for r in records]
    total = sum(totals)
    progress_done = resumed
    devices = [r.device for r in records]
    task_results: list[TaskResult] = []
    workers = 0

    def event(i: int) -> ScreenProgress:
        return ScreenProgress(i, plates[i].name, counts[i], totals[i], progress_done, total,
                              devices[i], workers, resumed_counts[i])  # fmt: skip

    for i in range(len(plates)):
        if counts[i]:
            yield event(i)

    def keep(i: int, wells: Sequence[str], new_sites: list, new_skipped: list, device: str):
        if store is not None:
            store.save(keys[i], wells, new_sites, new_skipped, device)
        sites[i].extend(new_sites)
        skipped[i].extend(new_skipped)

    options = {"device": config.device, "batch_size": config.batch_size,
               "read_threads": config.read_threads, "skip_bad_sites": config.skip_bad_sites,
               "max_tiles": getattr(config, "max_tiles", None)}  # fmt: skip
    if client is not None:
        cluster = contextlib.nullcontext(client)
    else:
        cluster = dask_client(config.workers, config.scheduler, config.scheduler_timeout)
    with cluster as client:
        if client is None:
            for i, plate in enumerate(plates):
                for n, device in _predict_in_process(model, plate, remaining[i], options,
                                                     config.max_task_sites,
                                                     functools.partial(keep, i)):  # fmt: skip
                    counts[i] += n
                    progress_done += n
                    devices[i] = device
                    yield event(i)
        else:
            from napari_dcmix.screen._plugin import ModelPlugin

            workers = max(1, worker_count(client))
            plugin = ModelPlugin(sha, data)
            client.register_plugin(plugin)
            run = uuid.uuid4().hex
            specs = [
                plate_spec(p, openers[i] if openers else None, run) for i, p in enumerate(plates)
            ]
            tasks = plan_tasks(remaining, config.max_task_sites)
            args = [(t, specs[t.plate_index], sha, options) for t in tasks]

            def describe(j: int) -> str:
                return tasks[j].describe(_label(plates[tasks[j].plate_index]))

            try:
                for j, res in run_tasks(client, predict_task, args, describe=describe,
                                        key_prefix="dcmix-predict"):  # fmt: skip
                    task = tasks[j]
                    i = task.plate_index
                    keep(i, task.wells, res.sites, res.skipped, res.device)
                    task_results.append(res)
                    counts[i] += task.n_sites
                    progress_done += task.n_sites
                    devices[i] = res.device
                    # (no call to the scheduler here: it may just have been lost)
                    workers = max(workers, len({(r.worker, r.pid) for r in task_results}))
                    yield event(i)
            finally:
                _unregister(client, plugin.name)

    predictions = []
    for i, plate in enumerate(plates):
        order = {w: n for n, w in enumerate(plate.wells)}
        pred = PlatePredictions(plate.name, classes, devices[i] or "-", path=keys[i])
        pred.sites = sorted(sites[i], key=lambda s: (order[s.well], s.site))
        pred.skipped = sorted(skipped[i], key=lambda s: (order[s.well], s.site))
        predictions.append(pred)
    if out is not None:
        write_predictions_csv(predictions, out)
        if store is not None:
            store.remove()
    return ScreenResult(predictions, out, workers, resumed, task_results,
                        time.perf_counter() - start)  # fmt: skip


def _unregister(client: Any, name: str) -> None:
    if connected(client):
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(name)


def _predict_in_process(
    model: Any,
    plate: Any,
    wells: dict[str, int],
    options: dict[str, Any],
    batch_sites: int,
    keep: Callable[[Sequence[str], list, list, str], None],
) -> Generator[tuple[int, str], None, None]:
    """Stream ``wells`` of ``plate`` through ``predict_plate``; whenever finished wells add up to
    ``batch_sites`` sites, ``keep`` them (the partial results). Yields (sites done, device)."""
    from napari_dcmix.model.inference import predict_plate

    if not wells:
        return
    gen = predict_plate(model, plate, wells=list(wells), device=options["device"],
                        batch_size=options["batch_size"], read_threads=options["read_threads"],
                        skip_bad_sites=options["skip_bad_sites"],
                        max_tiles=options["max_tiles"])  # fmt: skip
    order = list(wells)
    next_well = 0  # wells before this one are kept
    seen_sites = seen_skipped = 0
    per_well: dict[str, int] = {}
    last_done = 0
    pending: list[str] = []
    pending_sites = 0
    partial = None

    def flush() -> None:
        nonlocal pending, pending_sites
        if pending:
            chosen = set(pending)
            keep(list(pending), [s for s in partial.sites if s.well in chosen],
                 [s for s in partial.skipped if s.well in chosen], partial.device)  # fmt: skip
            pending, pending_sites = [], 0

    while True:
        try:
            progress = next(gen)
        except StopIteration as stop:
            partial = stop.value
            break
        partial = progress.partial
        for s in partial.sites[seen_sites:]:
            per_well[s.well] = per_well.get(s.well, 0) + 1
        for s in partial.skipped[seen_skipped:]:
            per_well[s.well] = per_well.get(s.well, 0) + 1
        seen_sites, seen_skipped = len(partial.sites), len(partial.skipped)
        while next_well < len(order):
            well = order[next_well]
            if per_well.get(well, 0) < wells[well]:
                break
            pending.append(well)
            pending_sites += wells[well]
            next_well += 1
            if pending_sites >= batch_sites:
                flush()
        yield progress.done - last_done, progress.device
        last_done = progress.done
    flush()
