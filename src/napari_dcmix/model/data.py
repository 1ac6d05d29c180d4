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
from napari_dcmix.plate.normalise import ChannelStats, check_finite, normalise
from napari_dcmix.plate.wells import normalise_well as _normalise_well


def normalise_well(well: str) -> str:
    """ "B2" / "b02" -> "B02" (the plate convention); an unparsable name is returned stripped,
    so that it is reported as a well the plate lacks."""
    try:
        return _normalise_well(str(well))
    except PlateError:
        return str(well).strip()


def resize_area(image: np.ndarray, size: int) -> np.ndarray:
    """(C, H, W) -> float32 (C, size, size) with area interpolation (identity when equal)."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.shape[-2:] == (size, size):
        return np.ascontiguousarray(arr)
    t = torch.from_numpy(np.ascontiguousarray(arr))[None]
    return F.interpolate(t, size=(size, size), mode="area")[0].numpy()


def preprocess(
    image: np.ndarray, input_size: int, stats: ChannelStats | None, name: str = "image"
) -> np.ndarray:
    """Check finite -> area resize to input_size -> per-channel normalisation. float32 (C, S, S)."""
    arr = np.asarray(image)
    if arr.ndim != 3:
        raise ModelError(f"{name}: expected (C, H, W), found shape {arr.shape}")
    check_finite(arr, name)
    out = resize_area(arr, input_size)
    return out if stats is None else normalise(out, stats)


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
    out: list[dict[str, str]] = []
    for plate, lab in zip(plates, labels, strict=False):
        norm = {normalise_well(w): str(v) for w, v in lab.items()}
        have = set(plate.wells)
        missing = [w for w in norm if w not in have]
        if missing:
            raise LabelsError(
                f"labels name {len(missing)} well(s) plate {plate.name!r} lacks: "
                f"{', '.join(missing)}"
            )
        out.append(norm)
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
