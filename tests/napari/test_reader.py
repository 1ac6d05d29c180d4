"""The npe2 reader and sample data: plates open as mosaics, foreign paths are left alone."""

from __future__ import annotations

import numpy as np

from napari_dcmix._napari.reader import get_reader


def test_reader_ignores_foreign_paths(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "readme.md").write_text("not a plate")
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path / "empty")) is None
    assert get_reader(str(tmp_path / "stray")) is None
    assert get_reader(str(tmp_path / "does-not-exist")) is None
    assert get_reader([str(tmp_path / "stray"), str(tmp_path / "empty")]) is None


def test_reader_opens_plate_mosaic(synth_plate):
    reader = get_reader(str(synth_plate.path))
    assert reader is not None
    layers = reader(str(synth_plate.path))
    images = [layer for layer in layers if layer[2] == "image"]
    shapes = [layer for layer in layers if layer[2] == "shapes"]
    assert [kw["name"] for _, kw, _ in images] == synth_plate.channels
    cmaps = [kw["colormap"] for _, kw, _ in images]
    assert len(set(cmaps)) == len(cmaps)
    for data, kw, _ in images:
        assert kw["multiscale"] and kw["blending"] == "additive"
        lo, hi = kw["contrast_limits"]
        assert hi > lo
        assert data[0].ndim == 2
    ((rects, kw, _),) = shapes
    assert kw["name"] == "wells" and len(rects) == len(synth_plate.wells)
    assert list(kw["features"]["well"]) == synth_plate.wells
    assert set(kw["features"]) >= {"plate", "well", "row", "column"}


def test_reader_in_viewer_and_sample(viewer, synth_plate, tmp_path, monkeypatch):
    viewer.open(str(synth_plate.path), plugin="napari-dcmix")
    names = [layer.name for layer in viewer.layers]
    assert names == [*synth_plate.channels, "wells"]
    mito = viewer.layers["Mito"]
    assert mito.multiscale
    assert np.asarray(mito.data[-1][:8, :8]).shape == (8, 8)

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    viewer.open_sample("napari-dcmix", "synthetic_plate")
    assert sum(layer.name.startswith("wells") for layer in viewer.layers) == 2
