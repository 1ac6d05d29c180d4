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


@pytest.fixture(scope="session", autouse=True)
def screen_model(screen_plates, tmp_path_factory) -> Iterator[Path]:
    """A small whole-site model (16 px input, one member) as the default model of these tests
    (``NAPARI_DCMIX_DEFAULT_MODEL``, inherited by CLI and Dask worker processes): the screens
    test orchestration, and the shipped ensemble's 128-pixel crops do not fit 48-pixel sites."""
    import os

    from napari_dcmix.model import build_model, save_model
    from napari_dcmix.model.checkpoint import DEFAULT_MODEL_ENV
    from napari_dcmix.plate import open_plate
    from napari_dcmix.plate.normalise import estimate_channel_stats

    plate = open_plate(screen_plates[0])
    model = build_model(plate.channels, ["control", "treated"], input_size=16, seed=0)
    model.normalisation = estimate_channel_stats(plate, seed=0)
    path = save_model(model, tmp_path_factory.mktemp("model") / "screen_model.pt")
    before = os.environ.get(DEFAULT_MODEL_ENV)
    os.environ[DEFAULT_MODEL_ENV] = str(path)
    yield path
    if before is None:
        os.environ.pop(DEFAULT_MODEL_ENV, None)
    else:
        os.environ[DEFAULT_MODEL_ENV] = before


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
