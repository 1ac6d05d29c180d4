"""Batched prediction on arrays and streamed prediction over whole plates, at the model's scale.

Each site is binned by the model's ``bin``; a whole-site model (``crop`` full) area-resizes it
to its input size, a crop model tiles it with crops on a grid that covers it (``tile_grid``;
``max_tiles`` caps the tiles per site, spread evenly) and averages the tiles' probabilities
into the site. Sites are averaged into wells by ``PlatePredictions``. An ensemble's members'
probabilities are averaged (its forward pass returns the log of their mean).

``predict_plate`` streams: a thread pool reads and decodes sites in a bounded window ahead of
the forward pass, so memory stays bounded whatever the plate size, and reading overlaps compute.

- CPU: the reader threads also bin, resize or tile, and normalise each site (``SitePrep``, the
  transform training uses: exact numpy block means, so no torch op and no extra OpenMP thread
  team runs in the readers); the calling thread stacks batches and hands them to forward
  threads (``forward_split``): with torch at N > 1 intra-op threads, two forward threads run
  consecutive batches at once, each with its share of the N (1 each on a 2-core machine),
  and their results are collected in order; each runs its batch in passes of a few inputs
  (``cpu_chunk``), whose activations stay in the core's cache. Why two threads: the readers'
  CPU comes from the cores the forward uses. With one forward pass of N OpenMP threads, a
  reader that preempts one of them stalls the whole parallel op (its other threads spin at
  the op's barrier), so each millisecond of reading cost more than a millisecond of forward;
  forward threads of their own each lose only the time they are preempted
  (``bench/predict.py`` measures both).
- CUDA: the reader threads only read the raw site arrays (uint16 etc., no float conversion on
  the host); each batch is copied into a reused pinned buffer, transferred non-blocking, and
  binned, resized (``avg_pool2d`` for integer factors, which equals area interpolation, else
  ``F.interpolate(mode="area")``) or tiled, and normalised on the device before the autocast
  forward.

A CUDA out-of-memory error retries with half the batch, and at batch size 1 falls back to the
CPU with a warning (raw batches are then preprocessed on the host). The device actually used is
reported. A model without stored normalisation (fresh or adapted, never trained) is refused.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import warnings
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from napari_dcmix.errors import DcmixError, ModelError, PlateError
from napari_dcmix.model.classifier import DcmixClassifier
from napari_dcmix.model.data import Normaliser, normalise_well, site_name
from napari_dcmix.model.device import resolve_device
from napari_dcmix.model.predictions import (
    PlatePredictions,
    PredictProgress,
    SitePrediction,
    SkippedSite,
    input_notes,
    plate_path_text,
)
from napari_dcmix.model.scale import check_max_tiles, tile_grid
from napari_dcmix.model.sites import SitePrep
from napari_dcmix.plate.normalise import check_finite

__all__ = [
    "blended_images",
    "forward_pool",
    "forward_split",
    "predict_arrays",
    "predict_plate",
    "predict_plate_all",
]


def _model_on(model: DcmixClassifier, device: torch.device) -> DcmixClassifier:
    current = next(model.parameters()).device
    net = model if current == device else copy.deepcopy(model).to(device)
    return net


def _is_oom(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def require_normalisation(model: DcmixClassifier) -> Normaliser:
    """The model's stored normalisation as a ``Normaliser``; a model without one (fresh or
    adapted, never trained) would otherwise predict on raw pixels."""
    if model.normalisation is None:
        raise ModelError(
            f"model ({model.backbone_name}, channels {list(model.channel_names)}) has no stored "
            "normalisation: train or fine-tune it first"
        )
    return Normaliser(model.normalisation)


# Host dtypes sent to the device as a same-size signed view, widened and masked there.
_UNSIGNED_VIEWS = {
    np.dtype(np.uint16): (np.int16, 0xFFFF),
    np.dtype(np.uint32): (np.int32, 0xFFFFFFFF),
}
_DEVICE_DTYPES = {np.dtype(t) for t in (np.uint8, np.int8, np.int16, np.int32, np.int64,
                                        np.float16, np.float32, np.float64)}  # fmt: skip


# Inputs per CPU forward pass and intra-op thread. A pass over a few inputs keeps each layer's
# activations in the core's cache: on this project's 2-core machine (4 MiB L2 per core) the
# default network at 128 px forwards 222-260 images/s in passes of 8 and 169-181 in passes of
# 32, two forward threads each (six runs of ``bench/predict.py``, which prints both). The batch
# size stays the unit that is read and handed to a forward thread; the GPU keeps its batch.
CPU_CHUNK_PER_THREAD = 8


def cpu_chunk() -> int:
    """Inputs per CPU forward pass on the calling thread: ``CPU_CHUNK_PER_THREAD`` per torch
    intra-op thread it runs with (each thread then works on as much as one does alone)."""
    return CPU_CHUNK_PER_THREAD * max(1, torch.get_num_threads())


class _Runner:
    """Forward passes at the model's scale, with CUDA OOM handling (half batch, then CPU).

    ``runner(tiles)`` takes preprocessed float32 ``(B, T, C, S, S)`` (T inputs per site);
    ``runner(sites, raw=True)`` takes raw sites (an array (B, C, H, W) or a sequence of
    (C, H, W) arrays of one shape and dtype): on CUDA they are binned, resized or tiled and
    normalised on the device, on the CPU on the host. Both return per-site probabilities
    (B, n_classes), the mean over each site's T inputs."""

    def __init__(
        self,
        model: DcmixClassifier,
        device: torch.device,
        max_tiles: int | None = None,
        chunk: int = 32,
    ) -> None:
        self.normaliser = require_normalisation(model)
        self.model = model
        self.device = device
        self.net = _model_on(model, device)
        self.scale = model.scale
        self.max_tiles = check_max_tiles(max_tiles)
        self.prep = SitePrep(self.scale, model.input_size, model.normalisation)
        self.input_size = self.prep.input_size
        self.chunk = max(1, int(chunk))  # inputs per forward pass
        self.max_sites: int | None = None  # sites per device preprocessing (after an OOM)
        self._pinned: torch.Tensor | None = None
        self._device_norm: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def preprocess_on_device(self) -> bool:
        return self.device.type == "cuda"

    def tiles_per_site(self, shape: tuple[int, int], where: str = "the sites") -> int:
        """Inputs per site of ``shape`` (ModelError when a crop does not fit)."""
        self.scale.check_site(tuple(shape), where)
        if self.scale.crop is None:
            return 1
        return len(tile_grid(self.scale.binned_shape(shape), self.scale.crop, self.max_tiles))

    def host_tiles(self, raw: np.ndarray) -> np.ndarray:
        """``(T, C, S, S)`` normalised inputs of one raw site (the reader threads' work)."""
        return self.prep.tiles(raw, self.max_tiles)

    def _pin(self, raw: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """Raw sites copied into a reused pinned host buffer (as a signed view for uint16/32).
        Reuse is safe: each forward ends with a synchronous copy of the probabilities, after
        the previous non-blocking transfer from this buffer has completed."""
        first = np.asarray(raw[0])
        dtype = first.dtype
        host_dtype = _UNSIGNED_VIEWS.get(dtype, (dtype, 0))[0]
        if np.dtype(host_dtype) not in _DEVICE_DTYPES:
            host_dtype = np.float32
        shape = (len(raw), *first.shape)
        tdtype = torch.from_numpy(np.empty(0, host_dtype)).dtype
        buf = self._pinned
        pin = self.device.type == "cuda"  # (the CPU case only serves tests of this path)
        if buf is None or buf.dtype != tdtype or buf.shape[1:] != shape[1:] or len(buf) < shape[0]:
            buf = torch.empty(shape, dtype=tdtype, pin_memory=pin)
            if pin:
                self._pinned = buf
        view = buf[: shape[0]]
        dst = view.numpy()
        if dtype in _UNSIGNED_VIEWS:
            dst = dst.view(dtype)
        if isinstance(raw, np.ndarray):
            np.copyto(dst, raw, casting="unsafe")
        else:
            for i, a in enumerate(raw):
                np.copyto(dst[i], a, casting="unsafe")
        return view

    def _device_preprocess(self, raw: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """Raw sites -> ``(B * T, C, S, S)`` normalised inputs on the runner's device."""
        import torch.nn.functional as F

        dtype = np.asarray(raw[0]).dtype
        t = self._pin(raw).to(self.device, non_blocking=True)
        if dtype in _UNSIGNED_VIEWS:
            t = t.to(torch.int64 if dtype.itemsize == 4 else torch.int32)
            t = t & _UNSIGNED_VIEWS[dtype][1]
        x = t.to(torch.float32)
        if self.scale.bin > 1:  # exact block means; partial blocks at the edges dropped
            x = F.avg_pool2d(x, kernel_size=self.scale.bin, stride=self.scale.bin)
        size = self.input_size
        h, w = x.shape[-2:]
        if self.scale.crop is None and (h, w) != (size, size):
            if h % size == 0 and w % size == 0:
                f = (h // size, w // size)
                x = F.avg_pool2d(x, kernel_size=f, stride=f)  # == area for integer factors
            else:
                x = F.interpolate(x, size=(size, size), mode="area")
        if self._device_norm is None or self._device_norm[0].device != x.device:
            low = torch.from_numpy(self.normaliser.low[None]).to(x.device)
            scale = torch.from_numpy(self.normaliser.scale[None]).to(x.device)
            self._device_norm = (low, scale)
        low, scale = self._device_norm
        x = (x - low) * scale
        if self.scale.crop is None:
            return x
        n = self.scale.crop
        grid = tile_grid((h, w), n, self.max_tiles)
        tiles = torch.stack([x[:, :, y : y + n, xx : xx + n] for y, xx in grid], dim=1)
        return tiles.reshape(-1, x.shape[1], n, n)

    def _probs(self, t: torch.Tensor) -> np.ndarray:
        """Class probabilities of inputs already on the device, ``chunk`` at a time (on the
        CPU at most ``cpu_chunk()``)."""
        out = []
        cuda = self.device.type == "cuda"
        chunk = self.chunk if self.device.type != "cpu" else min(self.chunk, cpu_chunk())
        for i in range(0, len(t), chunk):
            ctx: Any = (
                torch.autocast(device_type="cuda", dtype=torch.float16)
                if cuda
                else contextlib.nullcontext()
            )
            with torch.inference_mode(), ctx:
                logits = self.net(t[i : i + chunk])
            out.append(torch.softmax(logits.float(), dim=1).cpu().numpy().astype(np.float64))
        return np.concatenate(out)

    def _forward(self, batch: Sequence[np.ndarray] | np.ndarray, raw: bool) -> np.ndarray:
        if raw and self.device.type == "cuda":
            t = self._device_preprocess(batch)
            n_sites = len(batch)
        else:
            tiles = (
                np.stack([self.host_tiles(np.asarray(a)) for a in batch])
                if raw
                else np.asarray(batch)
            )
            n_sites = tiles.shape[0]
            flat = torch.from_numpy(tiles.reshape(-1, *tiles.shape[2:]))
            if self.device.type == "cuda":
                t = flat.pin_memory().to(self.device, non_blocking=True)
            else:
                t = flat.to(self.device)
        probs = self._probs(t)
        return probs.reshape(n_sites, -1, probs.shape[-1]).mean(axis=1)

    def __call__(self, batch: Sequence[np.ndarray] | np.ndarray, raw: bool = False) -> np.ndarray:
        while True:
            size = self.max_sites or len(batch)
            try:
                return np.concatenate(
                    [self._forward(batch[i : i + size], raw) for i in range(0, len(batch), size)]
                )
            except Exception as exc:
                if self.device.type != "cuda" or not _is_oom(exc):
                    raise
                self._pinned = None
                torch.cuda.empty_cache()
                if self.chunk > 1 or size > 1:
                    self.chunk = max(1, self.chunk // 2)
                    self.max_sites = max(1, size // 2)
                    continue
                warnings.warn(
                    f"CUDA ran out of memory even with batch size 1 on {self.device}; "
                    "falling back to the CPU",
                    RuntimeWarning,
                    stacklevel=3,
                )
                self.device = torch.device("cpu")
                self.net = _model_on(self.model, self.device)
                self.max_sites = None


# Forward threads of CPU plate prediction: None = ``MAX_FORWARD_THREADS`` (at most one per torch
# intra-op thread); 0 or 1 = every forward pass on the calling thread (the previous behaviour,
# kept for comparisons in bench/predict_ab.py and tests).
FORWARD_THREADS: int | None = None
MAX_FORWARD_THREADS = 2
_THREADS_LOCK = threading.Lock()  # torch.set_num_threads also sets a process-wide default


def forward_split(device: torch.device, threads: int | None = None) -> list[int]:
    """Intra-op threads of each CPU forward thread for ``predict_plate`` (their sum is
    ``torch.get_num_threads()``); ``[]``: forward passes run on the calling thread (CUDA, MPS,
    one torch thread, or ``FORWARD_THREADS`` 0 / 1)."""
    if device.type != "cpu":
        return []
    total = torch.get_num_threads()
    wanted = FORWARD_THREADS if threads is None else threads
    n = min(total, MAX_FORWARD_THREADS if wanted is None else max(0, int(wanted)))
    if n <= 1:
        return []
    return [total // n + (1 if i < total % n else 0) for i in range(n)]


@contextlib.contextmanager
def forward_pool(split: Sequence[int]) -> Generator[ThreadPoolExecutor | None, None, None]:
    """A pool of ``len(split)`` threads, thread i running torch ops with ``split[i]`` intra-op
    threads (None for an empty split). The calling thread's setting and torch's process-wide
    default are restored before the pool is used; the pool's threads keep theirs."""
    if not split:
        yield None
        return
    todo = list(split)
    lock = threading.Lock()
    barrier = threading.Barrier(len(todo))

    def init() -> None:  # once in each pool thread (the barrier keeps the tasks on distinct ones)
        try:
            with lock:
                torch.set_num_threads(todo.pop())
                torch.get_num_threads()  # torch's per-thread setup reads the default now
        except BaseException:
            barrier.abort()
            raise
        barrier.wait()

    with _THREADS_LOCK:
        prev = torch.get_num_threads()
        pool = ThreadPoolExecutor(len(todo), thread_name_prefix="dcmix-forward")
        try:
            for fut in [pool.submit(init) for _ in range(len(todo))]:
                fut.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            torch.set_num_threads(prev)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _eval(model: torch.nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def predict_arrays(
    model: DcmixClassifier,
    x: np.ndarray,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    max_tiles: int | None = None,
) -> np.ndarray:
    """Raw images x (N, C, H, W) -> class probabilities (N, n_classes), float64. Applies the same
    preprocessing as training at the model's scale (bin, resize or tiles, stored
    normalisation); a crop model averages each image's tiles."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != len(model.channel_names):
        raise ModelError(
            f"expected images (N, {len(model.channel_names)}, H, W) for channels "
            f"{model.channel_names}, found shape {x.shape}"
        )
    if batch_size < 1:
        raise ModelError(f"batch size: expected >= 1, found {batch_size}")
    runner = _Runner(model, resolve_device(device), max_tiles, chunk=batch_size)
    if len(x):
        tiles = runner.tiles_per_site(x.shape[-2:], "the images")
    out = []
    with _eval(model), _eval(runner.net):
        per_batch = max(1, batch_size // tiles) if len(x) else 1
        for i in range(0, len(x), per_batch):
            chunk = x[i : i + per_batch]
            for j, img in enumerate(chunk):
                check_finite(img, f"image {i + j}")
            if runner.preprocess_on_device:
                out.append(runner(chunk, raw=True))
                continue
            out.append(runner(np.stack([runner.host_tiles(img) for img in chunk])))
    if not out:
        return np.zeros((0, len(model.class_names)))
    return np.concatenate(out)


def check_channels(model: DcmixClassifier, plate: Any) -> None:
    if list(model.channel_names) != list(plate.channels):
        raise ModelError(
            f"the model's channels {list(model.channel_names)} differ from plate "
            f"{getattr(plate, 'name', '?')!r} channels {list(plate.channels)}; fine-tune it "
            "with a fresh mixing layer for these channels"
        )


def _read_site(plate: Any, well: str, site: int) -> tuple[np.ndarray, list[str]]:
    """Pixels and notes (``Plate.read_with_notes``; duck-typed plates without it: no notes)."""
    reader = getattr(plate, "read_with_notes", None)
    if reader is not None:
        image, notes = reader(well, site)
        return np.asarray(image), list(notes)
    return np.asarray(plate.read(well, site)), []


def _site_error(exc: BaseException, plate: Any, well: str, site: int) -> PlateError:
    """A read error that names the plate, well and site (prefixed unless it already does)."""
    if isinstance(exc, OSError) and not isinstance(exc, DcmixError):
        paths = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
        reason = exc.strerror or str(exc) or type(exc).__name__
        text = f"{' -> '.join(paths)}: {reason}" if paths else reason
    else:
        text = str(exc)
    named = f"plate {plate.name!r}" in text and f"well {well} site {site}" in text
    return PlateError(text if named else f"{site_name(plate, well, site)}: {text}")


class SiteLoader:
    """What a reader thread of ``predict_plate`` does for one site ``(well, site)``: read it
    (``Plate.read_with_notes``), check it, and on the CPU path bin, resize or tile and normalise
    it (``_Runner.host_tiles``). Returns the network inputs ``(T, C, S, S)`` (raw pixels when
    the runner preprocesses on the device) and the site's notes, with ``input_notes``."""

    def __init__(self, plate: Any, runner: _Runner) -> None:
        self.plate = plate
        self.runner = runner
        # fixed for the run: after a CUDA fallback to the CPU, raw sites still come (the runner
        # preprocesses raw batches on the host then)
        self.on_device = runner.preprocess_on_device
        self.channels = list(runner.model.channel_names)
        self.norm_low = runner.normaliser.low[:, 0, 0]
        self.norm_scale = runner.normaliser.scale[:, 0, 0]

    def __call__(self, key: tuple[str, int]) -> tuple[np.ndarray, list[str]]:
        plate, (well, site) = self.plate, key
        name = site_name(plate, well, site)
        try:
            image, notes = _read_site(plate, well, site)
        except (DcmixError, OSError) as exc:
            raise _site_error(exc, plate, well, site) from None
        if image.ndim != 3:
            raise ModelError(f"{name}: expected (C, H, W), found shape {image.shape}")
        check_finite(image, name)
        if self.on_device:  # the raw range through the (monotone) normalisation, on the host
            low = (image.min(axis=(1, 2)).astype(np.float32) - self.norm_low) * self.norm_scale
            high = (image.max(axis=(1, 2)).astype(np.float32) - self.norm_low) * self.norm_scale
            return image, notes + input_notes(low, high, self.channels)
        x = self.runner.host_tiles(image)  # (T, C, S, S): what the network sees
        return x, notes + input_notes(x.min(axis=(0, 2, 3)), x.max(axis=(0, 2, 3)), self.channels)


def predict_plate(
    model: DcmixClassifier,
    plate: Any,
    device: str | torch.device = "auto",
    batch_size: int = 32,
    wells: Sequence[str] | None = None,
    should_stop: Callable[[], bool] | None = None,
    read_threads: int = 2,
    max_tiles: int | None = None,
    skip_bad_sites: bool = False,
) -> Generator[PredictProgress, None, PlatePredictions]:
    """Stream a plate's sites through the model; yields progress after each batch, returns the
    predictions (partial when ``should_stop()`` became true). ``batch_size`` counts network
    inputs (tiles); a batch holds at least one whole site. On the CPU a batch is the unit read
    and handed to a forward thread, which runs it ``cpu_chunk()`` inputs at a time.

    Each site is read with ``Plate.read_with_notes``; its notes (e.g. missing chunks) and the
    input checks (``input_notes``: a constant input, a channel entirely outside the model's
    normalisation range) are kept in ``SitePrediction.notes``. A site that cannot be read
    raises ``PlateError`` naming the plate, well and site; with ``skip_bad_sites`` it is
    recorded in ``PlatePredictions.skipped`` instead and the rest are predicted."""
    check_channels(model, plate)
    if batch_size < 1:
        raise ModelError(f"batch size: expected >= 1, found {batch_size}")
    if wells is None:
        well_list = list(plate.wells)
    else:
        well_list = [normalise_well(w) for w in wells]
        missing = [w for w in well_list if w not in set(plate.wells)]
        if missing:
            raise PlateError(f"plate {plate.name!r} lacks well(s): {', '.join(missing)}")
    keys = [(w, int(s)) for w in well_list for s in plate.sites(w)]
    runner = _Runner(model, resolve_device(device), max_tiles, chunk=batch_size)
    tiles = runner.tiles_per_site(tuple(plate.image_shape), f"the sites of plate {plate.name!r}")
    per_batch = max(1, batch_size // tiles)  # sites per batch
    result = PlatePredictions(
        plate.name, list(model.class_names), str(runner.device), path=plate_path_text(plate)
    )
    total = len(keys)

    load = SiteLoader(plate, runner)
    on_device = load.on_device

    def forward(arrays: list[np.ndarray]) -> np.ndarray:
        if not arrays:
            return np.zeros((0, len(model.class_names)))
        if not on_device:
            return runner(np.stack(arrays))
        if len({(a.shape, a.dtype) for a in arrays}) == 1:
            return runner(arrays, raw=True)
        # mixed site shapes cannot share a device batch: preprocess on the host
        return runner(np.stack([runner.host_tiles(a) for a in arrays]))

    threads = max(1, int(read_threads))
    window = max(2 * per_batch, per_batch + 2 * threads)
    if tiles > 1:  # whole tiled sites are large: keep fewer of them in flight
        window = max(2 * per_batch, per_batch + threads + 1)
    split = forward_split(runner.device)
    pending: deque[tuple[tuple[str, int], Future]] = deque()
    # batches handed to the forward pass: (keys, notes, skipped, sites taken, probabilities),
    # recorded into the result in order when their probabilities are collected
    inflight: deque[tuple[list, list[list[str]], list[SkippedSite], int, Future]] = deque()
    next_key = 0
    taken = 0
    done = 0

    def refill() -> None:
        nonlocal next_key
        while next_key < total and len(pending) < window:
            pending.append((keys[next_key], pool.submit(load, keys[next_key])))
            next_key += 1

    with (
        ThreadPoolExecutor(threads, thread_name_prefix="dcmix-read") as pool,
        _eval(model),
        _eval(runner.net),
        forward_pool(split) as fpool,
    ):
        try:
            while done < total:
                refill()
                if should_stop is not None and should_stop():
                    break
                # hand out batches until every forward thread has one (or the sites run out)
                while taken < total and len(inflight) < max(1, len(split)):
                    n = min(per_batch, len(pending))
                    batch_keys: list[tuple[str, int]] = []
                    arrays: list[np.ndarray] = []
                    batch_notes: list[list[str]] = []
                    skipped: list[SkippedSite] = []
                    for _ in range(n):
                        key, fut = pending.popleft()
                        try:
                            array, notes = fut.result()
                        except PlateError as exc:
                            if not skip_bad_sites:
                                raise
                            reason = str(exc).removeprefix(f"{site_name(plate, *key)}: ")
                            skipped.append(SkippedSite(key[0], key[1], reason))
                            continue
                        batch_keys.append(key)
                        arrays.append(array)
                        batch_notes.append(notes)
                    refill()  # before the forward pass, so reading overlaps compute
                    taken += n
                    if fpool is None:
                        probs_of: Future = Future()
                        probs_of.set_result(forward(arrays))
                    else:
                        probs_of = fpool.submit(forward, arrays)
                    del arrays
                    inflight.append((batch_keys, batch_notes, skipped, n, probs_of))
                batch_keys, batch_notes, skipped, n, probs_of = inflight.popleft()
                probs = probs_of.result()
                result.skipped.extend(skipped)
                for (well, site), p, notes in zip(batch_keys, probs, batch_notes, strict=True):
                    result.sites.append(SitePrediction(well, site, p, notes))
                done += n
                result.device = str(runner.device)
                yield PredictProgress(done, total, str(runner.device), result)
        finally:
            for _, fut in pending:
                fut.cancel()
            for *_, fut in inflight:
                fut.cancel()
    result.device = str(runner.device)
    return result


def predict_plate_all(model: DcmixClassifier, plate: Any, **kwargs: Any) -> PlatePredictions:
    """Run ``predict_plate`` to the end (no progress)."""
    gen = predict_plate(model, plate, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def blended_images(model: DcmixClassifier, image: np.ndarray) -> np.ndarray:
    """What the network sees of one raw site ``(C, H, W)``: its K blended images, float32
    ``(K, h, w)``, at the model's scale (binned; resized for a whole-site model) after the
    stored normalisation, mixed with the learned weights (an ensemble's first member's)."""
    require_normalisation(model)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[0] != len(model.channel_names):
        raise ModelError(
            f"expected a site (C={len(model.channel_names)}, H, W) for channels "
            f"{model.channel_names}, found shape {arr.shape}"
        )
    check_finite(arr, "site")
    x = SitePrep(model.scale, model.input_size, model.normalisation).prepared(arr)
    with torch.no_grad():
        weights = model.mixing.weights().detach().cpu().numpy().astype(np.float32)
    return np.tensordot(weights, x, axes=([1], [0])).astype(np.float32)
