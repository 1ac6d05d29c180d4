"""Opening reads metadata only; reads are thread-safe; to_dask is lazy, one chunk per site."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from napari_dcmix.plate import _io, open_plate


@pytest.mark.parametrize("layout", ["tiff", "rxrx1", "imagexpress", "operetta"])
def test_open_decodes_no_pixels(monkeypatch, synth_plates, layout):
    calls = set()
    real_read, real_into = _io.read_image, _io._decode_tiff_into
    monkeypatch.setattr(_io, "read_image", lambda path: calls.add(path) or real_read(path))
    monkeypatch.setattr(
        _io, "_decode_tiff_into", lambda path, out: calls.add(path) or real_into(path, out)
    )
    import napari_dcmix.plate.layouts.tiff as tiff_layout

    monkeypatch.setattr(tiff_layout, "read_image", _io.read_image)
    plate = open_plate(synth_plates[layout].path)
    stack = plate.to_dask()
    assert calls == set()
    assert stack[1, 0].compute().shape == (5, 32, 32)
    assert len(calls) == (1 if layout == "tiff" else 5)


@pytest.mark.parametrize("layout", ["tiff", "rxrx1", "imagexpress", "operetta", "ome-zarr"])
def test_reads_from_threads_match_serial(synth_plates, layout):
    plate = open_plate(synth_plates[layout].path)
    keys = plate.site_keys() * 4
    serial = [plate.read(w, s) for w, s in keys]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda k: plate.read(*k), keys))
    assert all(np.array_equal(a, b) for a, b in zip(serial, threaded, strict=True))


def test_site_keys_row_major(synth_plates):
    plate = open_plate(synth_plates["operetta"].path)
    assert plate.site_keys()[:3] == [("A01", 1), ("A01", 2), ("A02", 1)]
    assert "operetta" in repr(plate)


def test_synth_output_folder_opens_its_plate(synth_plates):
    synth = synth_plates["imagexpress"]
    assert open_plate(synth.labels_csv.parent).path == synth.path
