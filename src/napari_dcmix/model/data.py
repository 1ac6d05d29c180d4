"""Pixel arithmetic shared by training and prediction (exact area resizing, the normaliser),
site names in messages, and the labels check of the training entry points."""

from __future__ import annotations

from collections.abc import Sequence
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
    """Check finite -> area resize to input_size -> per-channel normalisation. float32 (C, S, S).

    The whole-site transform of ``SitePrep`` (model/sites.py, the one implementation training,
    evaluation and prediction share) at bin 1, for callers holding a single image."""
    from napari_dcmix.model.scale import PixelScale
    from napari_dcmix.model.sites import SitePrep

    arr = np.asarray(image)
    if arr.ndim != 3:
        raise ModelError(f"{name}: expected (C, H, W), found shape {arr.shape}")
    check_finite(arr, name)
    if isinstance(stats, Normaliser):
        stats = stats.stats
    prep = SitePrep(PixelScale(bin=1, crop=None), input_size, stats)
    return prep.prepared(arr) if stats is not None else prep.unnormalised(arr).copy()


def site_name(plate: Any, well: str, site: int) -> str:
    return f"plate {getattr(plate, 'name', '?')!r} well {well} site {site}"


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
