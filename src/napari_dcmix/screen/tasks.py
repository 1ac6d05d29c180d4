"""Screen tasks: a batch of whole wells of one plate, predicted on a Dask worker.

The model travels to the workers once per run as a worker plugin (``_plugin.ModelPlugin``: the
model file's bytes; workers that join later get it too) and each worker process loads it once,
cached by the file's SHA-256. A task reopens its plate on the worker (cached per worker) with the
same opener the client used and calls the core ``predict_plate(model, plate, wells=...)``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_dcmix.errors import DcmixError, PlateError
from napari_dcmix.model.predictions import SitePrediction, SkippedSite, csv_text

__all__ = [
    "PlateSpec",
    "Task",
    "TaskResult",
    "forget_model",
    "plan_tasks",
    "predict_task",
    "register_model",
]


@dataclass(frozen=True)
class PlateSpec:
    """How a worker opens a plate: ``opener()`` returns it (a picklable callable, e.g.
    ``functools.partial(open_plate, path)``); ``key`` identifies the plate (its absolute path
    or URL) in partial results and caches."""

    key: str
    opener: Callable[[], Any]
    run: str = ""  # the run it belongs to: workers reopen plates per run (options may differ)


@dataclass(frozen=True)
class Task:
    index: int
    plate_index: int
    wells: tuple[str, ...]
    n_sites: int

    def describe(self, plate_label: str) -> str:
        wells = self.wells[0] if len(self.wells) == 1 else f"{self.wells[0]}-{self.wells[-1]}"
        return f"plate {plate_label} well(s) {wells} ({self.n_sites} sites)"


@dataclass
class TaskResult:
    task: Task
    sites: list[SitePrediction]
    skipped: list[SkippedSite]
    device: str
    worker: str = ""  # the worker's address ("" in-process)
    pid: int = 0
    model_loaded: bool = False  # this task loaded the model into its worker process
    load_s: float = 0.0  # time spent loading the model (0 when it was cached)
    compute_s: float = 0.0  # time inside predict_plate (reading + forward)
    started: float = 0.0  # time.time() on the worker
    finished: float = 0.0


def plan_tasks(
    well_sites: Sequence[Mapping[str, int]], max_sites: int, first_index: int = 0
) -> list[Task]:
    """Tasks of whole wells, in plate then well order, each of at most ``max_sites`` sites (a
    well with more sites is a task of its own). ``well_sites[p]`` maps the wells of plate
    ``p`` still to predict to their site counts (in plate order)."""
    tasks: list[Task] = []
    for p, wells in enumerate(well_sites):
        batch: list[str] = []
        n = 0
        for well, count in wells.items():
            if batch and n + count > max_sites:
                tasks.append(Task(first_index + len(tasks), p, tuple(batch), n))
                batch, n = [], 0
            batch.append(well)
            n += count
        if batch:
            tasks.append(Task(first_index + len(tasks), p, tuple(batch), n))
    return tasks


# --- on the worker -------------------------------------------------------------------------

_lock = threading.Lock()
_MODEL_BYTES: dict[str, bytes] = {}  # sha256 -> the model file (set by the worker plugin)
_MODELS: OrderedDict[tuple[str, str], Any] = OrderedDict()  # (sha256, device) -> model
_PLATES: OrderedDict[tuple[str, str], Any] = OrderedDict()  # (run, plate key) -> plate
_MAX_MODELS = 2
_MAX_PLATES = 4


def plugin_name(sha256: str) -> str:
    """The name of the worker plugin that carries the model with this SHA-256."""
    return f"napari-dcmix-model-{sha256[:16]}"


def register_model(sha256: str, data: bytes) -> None:
    """Make a model file's bytes available to ``predict_task`` in this process."""
    with _lock:
        _MODEL_BYTES[sha256] = data


def forget_model(sha256: str) -> None:
    """Drop a model's bytes and loaded copies from this process (the plugin's teardown)."""
    with _lock:
        _MODEL_BYTES.pop(sha256, None)
        for key in [k for k in _MODELS if k[0] == sha256]:
            del _MODELS[key]


def _model(sha256: str, device: str) -> tuple[Any, bool, float]:
    """(model on its device, loaded now?, seconds spent loading) from the per-process cache."""
    from napari_dcmix.model import load_model, resolve_device

    resolved = str(resolve_device(device))
    key = (sha256, resolved)
    with _lock:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key], False, 0.0
        data = _MODEL_BYTES.get(sha256)
        if data is None:
            raise DcmixError(
                f"model {sha256[:12]} was not sent to this worker (its plugin is missing)"
            )
        start = time.perf_counter()
        fd, tmp = tempfile.mkstemp(prefix="dcmix-model-", suffix=".pt")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            model = load_model(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)
        model = model.to(resolved).eval()
        _MODELS[key] = model
        while len(_MODELS) > _MAX_MODELS:
            _MODELS.popitem(last=False)
        return model, True, time.perf_counter() - start


def _plate(spec: PlateSpec) -> Any:
    key = (spec.run, spec.key)
    with _lock:
        if key in _PLATES:
            _PLATES.move_to_end(key)
            return _PLATES[key]
    try:
        plate = spec.opener()
    except DcmixError as exc:
        raise PlateError(
            f"cannot open plate {csv_text(spec.key)} on a Dask worker ({_worker_name()}): "
            f"{exc} (the workers must see the plates at the same path or URL)"
        ) from None
    with _lock:
        _PLATES[key] = plate
        while len(_PLATES) > _MAX_PLATES:
            _PLATES.popitem(last=False)
    return plate


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except Exception:
        return "in-process"


def predict_task(
    task: Task, spec: PlateSpec, sha256: str, options: Mapping[str, Any]
) -> TaskResult:
    """Predict the wells of ``task`` (runs on a worker; ``options``: device, batch_size,
    read_threads, skip_bad_sites, max_tiles for ``predict_plate``)."""
    from napari_dcmix.model.inference import predict_plate_all

    started = time.time()
    model, loaded, load_s = _model(sha256, str(options.get("device", "auto")))
    plate = _plate(spec)
    t0 = time.perf_counter()
    result = predict_plate_all(
        model,
        plate,
        wells=list(task.wells),
        device=options.get("device", "auto"),
        batch_size=int(options.get("batch_size", 32)),
        read_threads=int(options.get("read_threads", 2)),
        skip_bad_sites=bool(options.get("skip_bad_sites", False)),
        max_tiles=options.get("max_tiles"),
    )
    compute_s = time.perf_counter() - t0
    return TaskResult(
        task=task,
        sites=result.sites,
        skipped=result.skipped,
        device=result.device,
        worker=_worker_name(),
        pid=os.getpid(),
        model_loaded=loaded,
        load_s=load_s,
        compute_s=compute_s,
        started=started,
        finished=time.time(),
    )
