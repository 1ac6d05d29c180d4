"""Batched prediction on arrays and streamed prediction over whole plates.

``predict_plate`` streams: a thread pool reads and decodes sites in a bounded window ahead of
the forward pass, so memory stays bounded whatever the plate size, and reading overlaps compute.

- CPU: the reader threads also resize and normalise each site (``preprocess``, the transform
  training uses: an exact numpy block mean for integer factors, so no torch op and no extra
  OpenMP thread team runs in the readers) and the main thread only stacks and runs the model.
- CUDA: the reader threads only read the raw site arrays (uint16 etc., no float conversion on
  the host); each batch is copied into a reused pinned buffer, transferred non-blocking, and
  resized (``avg_pool2d`` for integer factors, which equals area interpolation, else
  ``F.interpolate(mode="area")``) and normalised on the device before the autocast forward.

A CUDA out-of-memory error retries with half the batch, and at batch size 1 falls back to the
CPU with a warning (raw batches are then preprocessed on the host). The device actually used is
reported. A model without stored normalisation (fresh or adapted, never trained) is refused.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from napari_dcmix.errors import DcmixError, ModelError, PlateError
from napari_dcmix.model.classifier import DcmixClassifier
from napari_dcmix.model.data import (
    Normaliser,
    normalise_well,
    preprocess,
    resize_area,
    site_name,
)
from napari_dcmix.model.device import resolve_device
from napari_dcmix.model.predictions import (
    PlatePredictions,
    PredictProgress,
    SitePrediction,
    SkippedSite,
    input_notes,
    plate_path_text,
)
from napari_dcmix.plate.normalise import check_finite

__all__ = ["blended_images", "predict_arrays", "predict_plate", "predict_plate_all"]


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


class _Runner:
    """Forward passes with CUDA OOM handling (half batch, then CPU fallback).

    ``runner(batch)`` takes preprocessed float32 (B, C, S, S); ``runner(batch, raw=True)``
    takes raw sites (an array (B, C, H, W) or a sequence of (C, H, W) arrays of one shape and
    dtype): on CUDA they are resized and normalised on the device, on the CPU on the host."""

    def __init__(self, model: DcmixClassifier, device: torch.device) -> None:
        self.normaliser = require_normalisation(model)
        self.model = model
        self.device = device
        self.net = _model_on(model, device)
        self.max_batch: int | None = None
        self.input_size = int(model.input_size)
        self._pinned: torch.Tensor | None = None
        self._device_norm: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def preprocess_on_device(self) -> bool:
        return self.device.type == "cuda"

    def _host_preprocess(self, raw: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([preprocess(a, self.input_size, self.normaliser) for a in raw])

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
        import torch.nn.functional as F

        dtype = np.asarray(raw[0]).dtype
        t = self._pin(raw).to(self.device, non_blocking=True)
        if dtype in _UNSIGNED_VIEWS:
            t = t.to(torch.int64 if dtype.itemsize == 4 else torch.int32)
            t = t & _UNSIGNED_VIEWS[dtype][1]
        x = t.to(torch.float32)
        size = self.input_size
        h, w = x.shape[-2:]
        if (h, w) != (size, size):
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
        return (x - low) * scale

    def _forward(self, batch: Sequence[np.ndarray] | np.ndarray, raw: bool = False) -> np.ndarray:
        if self.device.type == "cuda":
            if raw:
                t = self._device_preprocess(batch)
            else:
                t = torch.from_numpy(np.asarray(batch))
                t = t.pin_memory().to(self.device, non_blocking=True)
            ctx: Any = torch.autocast(device_type="cuda", dtype=torch.float16)
        else:
            x = self._host_preprocess(batch) if raw else np.asarray(batch)
            t = torch.from_numpy(x).to(self.device)
            ctx = contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            logits = self.net(t)
        return torch.softmax(logits.float(), dim=1).cpu().numpy().astype(np.float64)

    def __call__(self, batch: Sequence[np.ndarray] | np.ndarray, raw: bool = False) -> np.ndarray:
        size = self.max_batch or len(batch)
        while True:
            try:
                return np.concatenate(
                    [self._forward(batch[i : i + size], raw) for i in range(0, len(batch), size)]
                )
            except Exception as exc:
                if self.device.type != "cuda" or not _is_oom(exc):
                    raise
                self._pinned = None
                torch.cuda.empty_cache()
                if size > 1:
                    size = max(1, size // 2)
                    self.max_batch = size
                    continue
                warnings.warn(
                    f"CUDA ran out of memory even with batch size 1 on {self.device}; "
                    "falling back to the CPU",
                    RuntimeWarning,
                    stacklevel=3,
                )
                self.device = torch.device("cpu")
                self.net = _model_on(self.model, self.device)
                self.max_batch = None
                size = len(batch)


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
) -> np.ndarray:
    """Raw images x (N, C, H, W) -> class probabilities (N, n_classes), float64. Applies the same
    preprocessing as training (area resize to the input size, stored normalisation)."""
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
    runner = _Runner(model, resolve_device(device))
    size = model.input_size
    out = []
    with _eval(model), _eval(runner.net):
        for i in range(0, len(x), batch_size):
            chunk = x[i : i + batch_size]
            for j, img in enumerate(chunk):
                check_finite(img, f"image {i + j}")
            if runner.preprocess_on_device:
                out.append(runner(chunk, raw=True))
                continue
            batch = np.stack([resize_area(img, size) for img in chunk])
            out.append(runner(runner.normaliser(batch)))
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


def predict_plate(
    model: DcmixClassifier,
    plate: Any,
    device: str | torch.device = "auto",
    batch_size: int = 32,
    wells: Sequence[str] | None = None,
    should_stop: Callable[[], bool] | None = None,
    read_threads: int = 2,
    skip_bad_sites: bool = False,
) -> Generator[PredictProgress, None, PlatePredictions]:
    """Stream a plate's sites through the model; yields progress after each batch, returns the
    predictions (partial when ``should_stop()`` became true).

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
    runner = _Runner(model, resolve_device(device))
    result = PlatePredictions(
        plate.name, list(model.class_names), str(runner.device), path=plate_path_text(plate)
    )
    total = len(keys)

    on_device = runner.preprocess_on_device
    normaliser = runner.normaliser
    size = model.input_size
    channels = list(model.channel_names)

    def load(key: tuple[str, int]) -> tuple[np.ndarray, list[str]]:
        """Read one site; on the CPU path also resize + normalise it (numpy only)."""
        well, site = key
        name = site_name(plate, well, site)
        try:
            image, notes = _read_site(plate, well, site)
        except (DcmixError, OSError) as exc:
            raise _site_error(exc, plate, well, site) from None
        if not on_device:
            x = preprocess(image, size, normaliser, name)
            return x, notes + input_notes(x.min(axis=(1, 2)), x.max(axis=(1, 2)), channels)
        if image.ndim != 3:
            raise ModelError(f"{name}: expected (C, H, W), found shape {image.shape}")
        check_finite(image, name)
        # the raw range mapped through the (monotone) normalisation: the same checks on the host
        low = image.min(axis=(1, 2)).astype(np.float32) - normaliser.low[:, 0, 0]
        high = image.max(axis=(1, 2)).astype(np.float32) - normaliser.low[:, 0, 0]
        scale = normaliser.scale[:, 0, 0]
        return image, notes + input_notes(low * scale, high * scale, channels)

    threads = max(1, int(read_threads))
    window = max(2 * batch_size, batch_size + 2 * threads)
    pending: deque[tuple[tuple[str, int], Future]] = deque()
    next_key = 0
    done = 0
    with (
        ThreadPoolExecutor(threads, thread_name_prefix="dcmix-read") as pool,
        _eval(model),
        _eval(runner.net),
    ):
        try:
            while done < total:
                while next_key < total and len(pending) < window:
                    pending.append((keys[next_key], pool.submit(load, keys[next_key])))
                    next_key += 1
                if should_stop is not None and should_stop():
                    break
                n = min(batch_size, len(pending))
                batch_keys: list[tuple[str, int]] = []
                arrays: list[np.ndarray] = []
                batch_notes: list[list[str]] = []
                for _ in range(n):
                    key, fut = pending.popleft()
                    try:
                        array, notes = fut.result()
                    except PlateError as exc:
                        if not skip_bad_sites:
                            raise
                        reason = str(exc).removeprefix(f"{site_name(plate, *key)}: ")
                        result.skipped.append(SkippedSite(key[0], key[1], reason))
                        continue
                    batch_keys.append(key)
                    arrays.append(array)
                    batch_notes.append(notes)
                # Refill before the forward pass so reading overlaps compute.
                while next_key < total and len(pending) < window:
                    pending.append((keys[next_key], pool.submit(load, keys[next_key])))
                    next_key += 1
                if not arrays:
                    probs = np.zeros((0, len(model.class_names)))
                elif not on_device:
                    probs = runner(np.stack(arrays))
                elif len({(a.shape, a.dtype) for a in arrays}) == 1:
                    probs = runner(arrays, raw=True)
                else:  # mixed site shapes cannot share a device batch: preprocess on the host
                    probs = runner(np.stack([preprocess(a, size, normaliser) for a in arrays]))
                del arrays
                for (well, site), p, notes in zip(batch_keys, probs, batch_notes, strict=True):
                    result.sites.append(SitePrediction(well, site, p, notes))
                done += n
                result.device = str(runner.device)
                yield PredictProgress(done, total, str(runner.device), result)
        finally:
            for _, fut in pending:
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
    ``(K, H, W)``, after the model's stored normalisation, at the site's own pixels (no
    resize), mixed with the model's learned weights."""
    normaliser = require_normalisation(model)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[0] != len(model.channel_names):
        raise ModelError(
            f"expected a site (C={len(model.channel_names)}, H, W) for channels "
            f"{model.channel_names}, found shape {arr.shape}"
        )
    check_finite(arr, "site")
    x = normaliser(np.array(arr, dtype=np.float32))
    with torch.no_grad():
        weights = model.mixing.weights().detach().cpu().numpy().astype(np.float32)
    return np.tensordot(weights, x, axes=([1], [0])).astype(np.float32)
