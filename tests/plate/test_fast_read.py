"""Uncompressed TIFFs are read with one ``readinto`` (layout parsed once per header): pixels
identical to tifffile, and every other file still goes through the decoder with its errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import _io, open_plate


def _pixels(seed: int, shape=(3, 16, 24), dtype=np.uint16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 60000, shape).astype(dtype)


@pytest.fixture
def folder(tmp_path):
    images = {}
    for i, well in enumerate(["A01", "A02", "B01"]):
        images[well] = _pixels(i)
        tifffile.imwrite(tmp_path / f"{well}_s1.tif", images[well], photometric="minisblack")
    return tmp_path, images


def _count_parses(monkeypatch) -> list:
    calls = []
    real = _io.raw_tiff_layout
    monkeypatch.setattr(_io, "raw_tiff_layout", lambda p: calls.append(p) or real(p))
    monkeypatch.setattr(_io, "_RAW_TIFFS", _io.TiffMapper(max_cached=8))
    return calls


def test_reads_match_tifffile_and_parse_one_header(monkeypatch, folder):
    path, images = folder
    calls = _count_parses(monkeypatch)
    plate = open_plate(path)
    for well, expected in images.items():
        got = plate.read(well, 1)
        assert got.dtype == expected.dtype and got.flags.writeable
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(got, tifffile.imread(path / f"{well}_s1.tif"))
    assert len(calls) == 1  # same non-pixel bytes: the first file's layout serves them all
    got = plate.read("A01", 1)
    got[:] = 0  # the caller owns the array
    np.testing.assert_array_equal(plate.read("A01", 1), images["A01"])


def test_other_header_is_parsed_and_rewrites_are_seen(monkeypatch, folder):
    path, _ = folder
    calls = _count_parses(monkeypatch)
    plate = open_plate(path)
    plate.read("A01", 1)
    other = _pixels(7)
    tifffile.imwrite(path / "A02_s1.tif", other, photometric="minisblack", description="x")
    np.testing.assert_array_equal(plate.read("A02", 1), other)
    compressed = _pixels(8)
    tifffile.imwrite(path / "B01_s1.tif", compressed, photometric="minisblack", compression="zlib")
    np.testing.assert_array_equal(plate.read("B01", 1), compressed)
    assert len(calls) >= 2
    # rewritten in place with the same header, new pixels: read fresh
    newer = _pixels(9)
    tifffile.imwrite(path / "A01_s1.tif", newer, photometric="minisblack")
    st = os.stat(path / "A01_s1.tif")
    os.utime(path / "A01_s1.tif", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    np.testing.assert_array_equal(plate.read("A01", 1), newer)


@pytest.mark.parametrize(
    ("shape", "dtype", "kwargs"),
    [
        ((16, 24), np.uint16, {}),
        ((2, 16, 24), np.uint8, {}),
        ((2, 16, 24), np.uint16, {"byteorder": ">"}),
        ((2, 16, 24), np.uint16, {"compression": "zlib"}),
        ((2, 16, 24), np.uint16, {"tile": (16, 16)}),
    ],
)
def test_formats_read_like_tifffile(tmp_path, shape, dtype, kwargs):
    for i, well in enumerate(["A01", "A02"]):
        tifffile.imwrite(
            tmp_path / f"{well}_s1.tif",
            _pixels(i, shape, dtype),
            photometric="minisblack",
            **kwargs,
        )
    plate = open_plate(tmp_path)
    for well in ("A01", "A02", "A01"):
        expected = tifffile.imread(tmp_path / f"{well}_s1.tif")
        got = plate.read(well, 1)
        np.testing.assert_array_equal(got.reshape(expected.shape), expected)
        assert got.shape[-2:] == (16, 24)


def test_truncated_and_corrupt_files_are_named(folder):
    path, _ = folder
    plate = open_plate(path)
    plate.read("A01", 1)  # layout known
    victim = path / "A02_s1.tif"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(PlateError, match=r"A02_s1\.tif"):
        plate.read("A02", 1)
    victim = path / "B01_s1.tif"
    victim.write_bytes(b"not a tiff at all" * 10)
    with pytest.raises(PlateError, match=r"B01_s1\.tif"):
        plate.read("B01", 1)
