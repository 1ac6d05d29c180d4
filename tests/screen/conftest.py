"""Screens: small plates on disk and the in-process reference CSV (once per session), real
Dask processes per test (killed at the end)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from screen_helpers import DaskProcesses

from napari_dcmix.synthetic import write_synthetic_plate


@pytest.fixture(scope="session")
def screen_plates(tmp_path_factory) -> list[Path]:
    """Three plates (TIFF, OME-Zarr v0.5, OME-Zarr v0.4): 16 wells x 2 sites x 5 channels x
    48 px, 96 sites in all; the shipped default model's channels."""
    root = tmp_path_factory.mktemp("screen")
    out = []
    for i, (layout, version) in enumerate([("tiff", "0.5"), ("ome-zarr", "0.5"),
                                           ("ome-zarr", "0.4")]):  # fmt: skip
        plate = write_synthetic_plate(
            root / f"plate{i}", layout=layout, n_wells=16, sites=2, image_size=48, seed=10 + i,
            plate_name=f"Screen{i}", ome_zarr_version=version,
        )  # fmt: skip
        out.append(Path(plate.path))
    return out


@pytest.fixture(scope="session")
def reference_csv(screen_plates, tmp_path_factory) -> Path:
    """The in-process CLI run of ``screen_plates`` (the reference every other run must equal)."""
    from napari_dcmix.cli import main

    out = tmp_path_factory.mktemp("reference") / "reference.csv"
    assert main(["predict", *map(str, screen_plates), "--out", str(out), "--device", "cpu",
                 "--quiet"]) == 0  # fmt: skip
    return out


@pytest.fixture
def dask_processes(tmp_path) -> Iterator[DaskProcesses]:
    procs = DaskProcesses(tmp_path)
    try:
        yield procs
    finally:
        procs.stop()
