"""Plate.read_thumbnail: a nearest subsample of read(), read without decoding whole sites."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tifffile

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import open_plate
from napari_dcmix.synthetic import write_synthetic_plate

LAYOUTS = ["tiff", "rxrx1", "imagexpress", "operetta", "ome-zarr"]
#: layouts whose thumbnails are read without the full-resolution read path
PARTIAL = ["tiff", "imagexpress", "operetta", "ome-zarr"]
FACTORS = [1, 2, 3, 4, 7, 16, 64]


def _forbid_full_reads(monkeypatch, plate):
    def refuse(*args):
        raise AssertionError(f"full-resolution read of {args}")

    monkeypatch.setattr(plate, "_read_site", refuse)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_thumbnail_is_the_strided_read(synth_plates, layout):
    plate = open_plate(synth_plates[layout].path)
    for well, site in plate.site_keys():
        full = plate.read(well, site)
        for f in FACTORS:
            thumb = plate.read_thumbnail(well, site, f)
            assert thumb.shape == plate.thumbnail_shape(f) == full[:, ::f, ::f].shape
            assert thumb.dtype == plate.dtype
            np.testing.assert_array_equal(thumb, full[:, ::f, ::f])


@pytest.mark.parametrize("layout", ["tiff", "imagexpress", "operetta", "ome-zarr"])
def test_odd_sizes_round_up(tmp_path, layout):
    synth = write_synthetic_plate(tmp_path, layout=layout, n_wells=1, sites=1, image_size=37)
    plate = open_plate(synth.path)
    full = plate.read("A01", 1)
    for f in (2, 5, 8, 36, 37, 40):
        thumb = plate.read_thumbnail("A01", 1, f)
        assert thumb.shape == (5, -(-37 // f), -(-37 // f))
        np.testing.assert_array_equal(thumb, full[:, ::f, ::f])


@pytest.mark.parametrize("layout", PARTIAL)
def test_thumbnails_skip_the_full_read(monkeypatch, synth_plates, layout):
    plate = open_plate(synth_plates[layout].path)
    expected = {k: plate.read(*k)[:, ::4, ::4] for k in plate.site_keys()}
    _forbid_full_reads(monkeypatch, plate)
    for key, want in expected.items():
        np.testing.assert_array_equal(plate.read_thumbnail(*key, 4), want)


def test_thumbnails_from_threads_match_serial(synth_plates):
    plate = open_plate(synth_plates["tiff"].path)
    keys = plate.site_keys() * 8
    serial = [plate.read_thumbnail(w, s, 3) for w, s in keys]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda k: plate.read_thumbnail(*k, 3), keys))
    assert all(np.array_equal(a, b) for a, b in zip(serial, threaded, strict=True))


def test_bad_arguments(synth_plates):
    plate = open_plate(synth_plates["tiff"].path)
    with pytest.raises(ValueError, match="positive integer"):
        plate.read_thumbnail("A01", 1, 0)
    with pytest.raises(PlateError, match="no well"):
        plate.read_thumbnail("H12", 1, 2)
    with pytest.raises(PlateError, match="no site 9"):
        plate.read_thumbnail("A01", 9, 2)


def test_compressed_big_endian_and_rewritten_tiffs(tmp_path, synth_plates):
    folder = tmp_path / "p"
    shutil.copytree(synth_plates["tiff"].path, folder)
    data = tifffile.imread(folder / "A01_s1.tif")
    tifffile.imwrite(folder / "A01_s1.tif", data, photometric="minisblack", compression="zlib")
    tifffile.imwrite(folder / "A01_s2.tif", data, photometric="minisblack", byteorder=">")
    plate = open_plate(folder)
    for site in (1, 2):
        thumb = plate.read_thumbnail("A01", site, 3)
        assert thumb.dtype == np.dtype("uint16") and thumb.dtype.isnative
        np.testing.assert_array_equal(thumb, data[:, ::3, ::3])
    # a file rewritten after its header was cached is parsed again
    other = (data[::-1] // 2).astype(np.uint16)
    tifffile.imwrite(folder / "A01_s2.tif", other, photometric="minisblack", description="x" * 999)
    np.testing.assert_array_equal(plate.read_thumbnail("A01", 2, 3), other[:, ::3, ::3])


@pytest.mark.parametrize("layout", ["tiff", "imagexpress", "operetta"])
def test_truncated_tiff_thumbnail_names_the_file(tmp_path, synth_plates, layout):
    folder = tmp_path / "copy"
    shutil.copytree(synth_plates[layout].path, folder)
    plate = open_plate(folder)
    pattern = {"tiff": "A02_s1.tif", "imagexpress": "*_A02_s1_w1*",
               "operetta": "r01c02f01p01-ch1*"}[layout]  # fmt: skip
    victim = next(folder.rglob(pattern))
    plate.read_thumbnail("A02", 1, 2)  # header cached while the file was whole
    victim.write_bytes(victim.read_bytes()[:300])
    with pytest.raises(PlateError, match=f"cannot read image .*{victim.name}"):
        plate.read_thumbnail("A02", 1, 2)
    assert plate.read_thumbnail("A01", 1, 2).shape == (5, 16, 16)


def _pyramid_plate(tmp_path, version: str, axes: str, shape: tuple[int, ...]):
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    fmt = FormatV05() if version == "0.5" else FormatV04()
    root = zarr.open_group(tmp_path / "p.zarr", mode="w", zarr_format=3 if version == "0.5" else 2)
    write_plate_metadata(root, ["B"], ["3"], ["B/3"], fmt=fmt, name="ZP")
    well = root.require_group("B/3")
    write_well_metadata(well, ["0"], fmt=fmt)
    data = (np.arange(np.prod(shape)) % 65521).astype(np.uint16).reshape(shape)
    write_image(data, well.require_group("0"), scale_factors=[2, 4], axes=axes, fmt=fmt)
    return open_plate(tmp_path / "p.zarr"), root["B/3/0"]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize(("axes", "shape"), [("cyx", (3, 37, 45)), ("tczyx", (1, 2, 2, 40, 48))])
def test_ome_zarr_reads_the_matching_pyramid_level(tmp_path, monkeypatch, version, axes, shape):
    plate, image = _pyramid_plate(tmp_path, version, axes, shape)
    paths = [d["path"] for d in dict(image.attrs).get("ome", dict(image.attrs))["multiscales"][0][
        "datasets"]]  # fmt: skip
    full = plate.read("B03", 1)
    _forbid_full_reads(monkeypatch, plate)
    for f, path in ((2, paths[1]), (4, paths[2])):
        stored = np.asarray(image[path])
        stored = stored[0, :, 0] if axes == "tczyx" else stored
        thumb = plate.read_thumbnail("B03", 1, f)
        assert thumb.shape == plate.thumbnail_shape(f)
        _, th, tw = thumb.shape
        _, h, w = stored.shape
        assert (h, w) != (th, tw) or axes == "tczyx"  # ome_zarr writes floor sizes
        pad = ((0, 0), (0, th - h), (0, tw - w))
        np.testing.assert_array_equal(thumb, np.pad(stored, pad, mode="edge"))
    # no stored level at 1/8 or 1/3: strided level 0
    for f in (3, 8):
        np.testing.assert_array_equal(plate.read_thumbnail("B03", 1, f), full[:, ::f, ::f])
