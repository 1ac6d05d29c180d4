"""Site preprocessing (the one transform shared by training and prediction) and labelled-site
reading from plates (through the public Plate API only)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from napari_dcmix.errors import LabelsError, ModelError, PlateError
from napari_dcmix.plate.labels import check_labels_fit
from napari_dcmix.plate.normalise import ChannelStats, check_finite, normalise
from napari_dcmix.plate.wells import normalise_well as _normalise_well


def normalise_well(well: str) -> str:
    """ "B2" / "b02" -> "B02" (the plate convention); an unparsable name is returned stripped,
    so that it is reported as a well the plate lacks."""
    try:
        return _normalise_well(str(well))
    except PlateError:
        return str(well).strip()


def _block_sum_dtype(dtype: np.dtype, factor: int) -> np.dtype | None:
    """Accumulator for exact block sums of ``factor`` pixels of an integer dtype, else None."""
    if dtype == np.bool_:
        return None
    if np.issubdtype(dtype, np.unsignedinteger):
        if dtype.itemsize <= 2 and factor * int(np.iinfo(dtype).max) < 2**32:
            return np.dtype(np.uint32)
        return np.dtype(np.uint64) if dtype.itemsize <= 4 else None
    if np.issubdtype(dtype, np.signedinteger):
        return np.dtype(np.int64) if dtype.itemsize <= 4 else None
    return None


def _strided_sum(view: np.ndarray, axis: int, acc: np.dtype) -> np.ndarray:
    """Sum over a short ``axis`` by adding its slices (contiguous, vectorised adds; much faster
    than a reduction over a short inner axis)."""
    n = view.shape[axis]
    take = [slice(None)] * view.ndim
    take[axis] = 0
    out = view[tuple(take)].astype(acc)
    for i in range(1, n):
        take[axis] = i
        out += view[tuple(take)]
    return out


def _sums_exact_in_float32(dtype: np.dtype, factor: int) -> bool:
    """Whether every sum of ``factor`` pixels of integer ``dtype`` is an integer below 2**24
    (so float32 holds it, and each partial sum, exactly)."""
    if dtype == np.bool_ or dtype.kind not in "iu":
        return False
    info = np.iinfo(dtype)
    return factor * max(abs(int(info.min)), int(info.max)) < 2**24


def _block_mean_f32(arr: np.ndarray, size: int, fy: int, fx: int) -> np.ndarray:
    """Exact block mean of integer pixels whose block sums fit float32 exactly: the sums are
    accumulated straight in float32 (exact, so bit-identical to integer sums converted once),
    one (H, W) plane at a time so the partial sums stay in cache; then ``*= 1 / (fy * fx)``."""
    w = arr.shape[-1]
    planes = np.ascontiguousarray(arr).reshape(-1, size, fy, w)
    out = np.empty((planes.shape[0], size, size), dtype=np.float32)
    rows = np.empty((size, w), dtype=np.float32)
    cols = rows.reshape(size, size, fx)
    for plane, dst in zip(planes, out, strict=True):
        if fy > 1:
            np.add(plane[:, 0], plane[:, 1], out=rows, dtype=np.float32)
            for i in range(2, fy):
                np.add(rows, plane[:, i], out=rows)
        else:
            rows[...] = plane[:, 0]
        if fx > 1:
            np.add(cols[..., 0], cols[..., 1], out=dst)
            for i in range(2, fx):
                np.add(dst, cols[..., i], out=dst)
        else:
            dst[...] = cols[..., 0]
    out *= np.float32(1.0 / (fy * fx))
    return out


def resize_area(image: np.ndarray, size: int) -> np.ndarray:
    """(..., H, W) -> float32 (..., size, size) with area interpolation (identity when equal).

    When H and W are integer multiples of ``size`` (the usual case: 512 px sites, 128 px input)
    this is an exact block mean in numpy: integer pixels are summed in uint32/uint64 (float
    pixels in float64), then multiplied once by 1 / (fy * fx) in float32, so the full-size image
    is never converted to float and no torch op (nor its OpenMP thread team) runs; equal to
    ``F.interpolate(mode="area")`` to float32 rounding. Other sizes use ``F.interpolate``.
    Training and prediction both call this function."""
    arr = np.asarray(image)
    if arr.ndim < 2:
        raise ModelError(f"resize: expected (..., H, W), found shape {arr.shape}")
    h, w = arr.shape[-2:]
    if (h, w) == (size, size):
        return np.ascontiguousarray(arr, dtype=np.float32)
    lead = arr.shape[:-2]
    if h % size == 0 and w % size == 0 and arr.dtype != np.bool_:
        fy, fx = h // size, w // size
        if fy * fx > 1 and _sums_exact_in_float32(arr.dtype, fy * fx):
            return _block_mean_f32(arr, size, fy, fx).reshape(*lead, size, size)
        acc = _block_sum_dtype(arr.dtype, fy * fx) or np.dtype(np.float64)
        flat = np.ascontiguousarray(arr).reshape(-1, size, fy, w)
        rows = _strided_sum(flat, 2, acc) if fy > 1 else flat[:, :, 0].astype(acc)
        cols = rows.reshape(-1, size, size, fx)
        sums = _strided_sum(cols, 3, acc) if fx > 1 else cols[..., 0].astype(acc)
        info = np.iinfo(arr.dtype) if acc.kind in "iu" else None
        if info is not None and fy * fx * max(abs(info.min), info.max) < 2**24:
            out = sums.astype(np.float32)  # integer sums below 2**24: exact in float32
            out *= np.float32(1.0 / (fy * fx))
        else:
            out = (sums * (1.0 / (fy * fx))).astype(np.float32)
        return out.reshape(*lead, size, size)
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32).reshape(-1, 1, h, w))
    out = F.interpolate(t, size=(size, size), mode="area").numpy()
    return out.reshape(*lead, size, size)


class Normaliser:
    """Per-channel ``(x - low) * scale`` with low/scale precomputed once (the same float32
    arithmetic as ``plate.normalise.normalise``, which training uses), applied in place to the
    small resized array."""

    def __init__(self, stats: ChannelStats) -> None:
        c = len(stats.channel_names)
        self.stats = stats
        self.low = np.asarray(stats.low, dtype=np.float32).reshape(c, 1, 1)
        scale = 1.0 / (np.asarray(stats.high, np.float64) - np.asarray(stats.low, np.float64))
        self.scale = scale.astype(np.float32).reshape(c, 1, 1)

    def __call__(self, resized: np.ndarray) -> np.ndarray:
        """float32 (C, S, S) or (B, C, S, S), normalised in place and returned."""
        return normalise(resized, self.stats, inplace=True)


def preprocess(
    image: np.ndarray,
    input_size: int,
    stats: ChannelStats | Normaliser | None,
    name: str = "image",
) -> np.ndarray:
    """Check finite -> area resize to input_size -> per-channel normalisation. float32 (C, S, S)."""
    arr = np.asarray(image)
    if arr.ndim != 3:
        raise ModelError(f"{name}: expected (C, H, W), found shape {arr.shape}")
    check_finite(arr, name)
    out = resize_area(arr, input_size)
    if stats is None:
        return out
    if isinstance(stats, ChannelStats):
        stats = Normaliser(stats)
    if out is arr or np.shares_memory(out, arr):
        out = out.copy()
    return stats(out)


def site_name(plate: Any, well: str, site: int) -> str:
    return f"plate {getattr(plate, 'name', '?')!r} well {well} site {site}"


@dataclass
class LabelledSites:
    """Resized (not yet normalised) labelled sites in memory."""

    x: np.ndarray  # (N, C, S, S) float32
    y: np.ndarray  # (N,) int64 class index
    groups: np.ndarray  # (N,) int64: one id per (plate, well), for well-level validation splits
    keys: list[tuple[str, str, int]]  # (plate name, well, site)


def check_labels(
    plates: Sequence[Any], labels: Sequence[dict[str, str]]
) -> tuple[list[dict[str, str]], list[str]]:
    """Normalise well names, check every labelled well exists, >= 2 classes. Returns the per-plate
    labels and the sorted class names."""
    if len(plates) != len(labels):
        raise LabelsError(
            f"expected one labels mapping per plate: {len(plates)} plates, "
            f"{len(labels)} label mappings"
        )
    out = [check_labels_fit(lab, plate) for plate, lab in zip(plates, labels, strict=True)]
    classes = sorted({v for lab in out for v in lab.values()})
    if len(classes) < 2:
        raise LabelsError(
            f"labels: at least 2 classes are needed to train, found {len(classes)} ({classes})"
        )
    return out, classes


def read_labelled_sites(
    plates: Sequence[Any],
    labels: Sequence[dict[str, str]],
    class_names: Sequence[str],
    input_size: int,
    read_threads: int = 2,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[tuple[int, int], None, LabelledSites | None]:
    """Read each labelled site once (threads), resize; yields (done, total); returns the sites,
    or None when ``should_stop()`` became true."""
    index = {c: i for i, c in enumerate(class_names)}
    jobs: list[tuple[Any, str, int, int, int]] = []
    for p_i, (plate, lab) in enumerate(zip(plates, labels, strict=False)):
        for well in plate.wells:
            if well not in lab:
                continue
            if lab[well] not in index:
                raise LabelsError(f"label {lab[well]!r} of well {well} is not one of {class_names}")
            for site in plate.sites(well):
                jobs.append((plate, well, int(site), index[lab[well]], p_i))
    total = len(jobs)
    if total == 0:
        raise ModelError("empty training set: no labelled well has any site to read")

    def load(job: tuple[Any, str, int, int, int]) -> np.ndarray:
        plate, well, site, _, _ = job
        name = site_name(plate, well, site)
        image = plate.read(well, site)
        arr = np.asarray(image)
        check_finite(arr, name)
        return resize_area(arr, input_size)

    x: np.ndarray | None = None
    group_ids: dict[tuple[int, str], int] = {}
    with ThreadPoolExecutor(max(1, int(read_threads))) as pool:
        # map keeps order; at most read_threads*4 reads are in flight at once.
        window = max(1, int(read_threads)) * 4
        futures = [pool.submit(load, j) for j in jobs[:window]]
        for i in range(total):
            if should_stop is not None and should_stop():
                for f in futures:
                    f.cancel()
                return None
            arr = futures[i].result()
            futures[i] = None  # type: ignore[call-overload]
            if i + window < total:
                futures.append(pool.submit(load, jobs[i + window]))
            if x is None:
                x = np.empty((total, *arr.shape), dtype=np.float32)
            elif arr.shape != x.shape[1:]:
                plate, well, site, _, _ = jobs[i]
                raise ModelError(
                    f"{site_name(plate, well, site)}: expected {x.shape[1]} channels, "
                    f"found shape {arr.shape}"
                )
            x[i] = arr
            yield i + 1, total
    assert x is not None
    y = np.array([j[3] for j in jobs], dtype=np.int64)
    groups = np.array(
        [group_ids.setdefault((j[4], j[1]), len(group_ids)) for j in jobs], dtype=np.int64
    )
    keys = [(j[0].name, j[1], j[2]) for j in jobs]
    return LabelledSites(x=x, y=y, groups=groups, keys=keys)
