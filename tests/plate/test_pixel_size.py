"""Plate.pixel_size_um: read from real files as each instrument writes them; None when the
files do not say, say it in a way we cannot trust (non-square, inconsistent, malformed), or
use a unit that is not a length."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import open_plate
from napari_dcmix.synthetic import load_synthetic_plate, write_synthetic_plate

SIZE = 0.325  # µm per pixel: a 20x objective on a 6.5 µm camera pixel
METRES = f"{SIZE * 1e-6:.16E}"  # as Harmony writes it: 3.2500000000000001E-07


def _write(root: Path, layout: str, pixel_size: float | None = SIZE, **kwargs):
    return write_synthetic_plate(
        root, layout=layout, n_wells=4, sites=2, image_size=16, seed=3,
        pixel_size_um=pixel_size, **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def plates(tmp_path_factory):
    """{layout: SyntheticPlate} written with pixel size ``SIZE`` once; tests that change
    files work on copies (``_copy``)."""
    out = {}
    for layout in ("tiff", "imagexpress", "operetta", "ome-zarr", "rxrx1"):
        out[layout] = _write(tmp_path_factory.mktemp(layout.replace("-", "")), layout)
    root = tmp_path_factory.mktemp("zarr04")
    out["ome-zarr-0.4"] = _write(root, "ome-zarr", ome_zarr_version="0.4")
    return out


def _copy(plates, layout: str, dest: Path):
    """A copy of the module's plate of ``layout`` at ``dest`` (files to change)."""
    shutil.copytree(plates[layout].labels_csv.parent, dest)
    return load_synthetic_plate(dest)


LAYOUT_SOURCES = {
    "tiff": "OME-XML PhysicalSizeX",
    "imagexpress": "MetaXpress spatial-calibration",
    "operetta": "ImageResolutionX",
    "ome-zarr": "OME-NGFF multiscales scale",
    "ome-zarr-0.4": "OME-NGFF multiscales scale",
}


@pytest.mark.parametrize("layout", list(LAYOUT_SOURCES))
def test_each_layout_round_trips_its_pixel_size(plates, layout):
    written = plates[layout]
    assert written.pixel_size_um == SIZE
    plate = open_plate(written.path)
    assert plate.pixel_size_um == pytest.approx(SIZE, rel=1e-9)
    assert LAYOUT_SOURCES[layout] in plate.pixel_size_source
    assert plate.read("A02", 2).shape == (5, 16, 16)


@pytest.mark.parametrize(
    ("layout", "why"),
    [
        ("tiff", "no OME-XML"),
        ("imagexpress", "no MetaXpress (MetaSeries) metadata"),
        ("operetta", "no ImageResolutionX / ImageResolutionY"),
        ("ome-zarr", "a scale of 1 without a unit"),
        ("rxrx1", "the rxrx1 layout does not store a pixel size"),
    ],
)
def test_unknown_pixel_size_is_none_and_says_why(synth_plates, layout, why):
    plate = open_plate(synth_plates[layout].path)  # written without a pixel size
    assert plate.pixel_size_um is None
    assert why in plate.pixel_size_source


def test_rxrx1_stores_no_pixel_size_even_when_one_is_given(plates):
    written = plates["rxrx1"]
    assert written.pixel_size_um is None  # the dataset's PNGs carry none; nothing was written
    assert open_plate(written.path).pixel_size_um is None
    record = json.loads((written.labels_csv.parent / "ground_truth.json").read_text())
    assert record["pixel_size_um"] is None


def test_instrument_metadata_is_what_independent_readers_expect(plates):
    """tifffile parses the MetaSeries XML and the OME-XML we write as MetaXpress and OME-TIFF
    files; the Harmony index holds metres, as Harmony writes them."""
    ix = sorted(plates["imagexpress"].path.rglob("*_w2*.tif"))[0]
    with tifffile.TiffFile(ix) as tif:
        assert tif.is_metaseries and tif.pages.first.software == "MetaSeries"
        info = tif.metaseries_metadata["PlaneInfo"]
        assert info["spatial-calibration-x"] == SIZE and info["spatial-calibration-units"] == "um"
        assert info["_IllumSetting_"] == "ER"
    ome = plates["tiff"].path / "A01_s1.tif"
    with tifffile.TiffFile(ome) as tif:
        assert tif.is_ome and tif.series[0].axes == "CYX"
        assert 'PhysicalSizeX="0.325" PhysicalSizeXUnit="µm"' in tif.ome_metadata
    index = (plates["operetta"].path / "Images" / "Index.idx.xml").read_text()
    assert f'<ImageResolutionX Unit="m">{METRES}</ImageResolutionX>' in index
    assert re.fullmatch(r"3\.25\d{14}E-07", METRES)


# --- OME-Zarr: units, a multiscales-level scale, what is not a measurement -------------------
def _edit_zarr_images(plate_path: Path, change) -> None:
    """Apply ``change(multiscales)`` to every image of a v0.5 plate (its zarr.json)."""
    for meta in plate_path.rglob("zarr.json"):
        data = json.loads(meta.read_text())
        ome = data.get("attributes", {}).get("ome", {})
        if "multiscales" in ome:
            change(ome["multiscales"][0])
            meta.write_text(json.dumps(data))


def _yx_units(unit):
    def change(ms):
        for axis in ms["axes"]:
            if axis["name"] in "yx":
                if unit is None:
                    axis.pop("unit", None)
                else:
                    axis["unit"] = unit

    return change


def _dataset_scale(value):
    def change(ms):
        ms["datasets"][0]["coordinateTransformations"][0]["scale"][-2:] = [value, value]

    return change


def _both(*changes):
    def change(ms):
        for c in changes:
            c(ms)

    return change


def _multiscale_level(ms):
    """Half the dataset scale, and a multiscales-level scale of 2 on y and x."""
    ms["datasets"][0]["coordinateTransformations"][0]["scale"][-2:] = [SIZE / 2, SIZE / 2]
    ms["coordinateTransformations"] = [{"type": "scale", "scale": [1.0, 2.0, 2.0]}]


def _non_square(ms):
    ms["datasets"][0]["coordinateTransformations"][0]["scale"][-2:] = [0.65, SIZE]


@pytest.mark.parametrize(
    ("change", "expected", "why"),
    [
        (_both(_yx_units("nanometer"), _dataset_scale(SIZE * 1000)), SIZE, None),
        (_both(_yx_units("millimeter"), _dataset_scale(SIZE / 1000)), SIZE, None),
        (_yx_units("micron"), SIZE, None),
        (_multiscale_level, SIZE, None),
        (_yx_units(None), None, "a scale of 0.325 without a unit"),
        (_yx_units("furlong"), None, "unknown length unit 'furlong'"),
        (_dataset_scale("0.325"), None, "is not a list of positive numbers"),
        (_dataset_scale(-1.0), None, "is not a list of positive numbers"),
        (_non_square, None, "non-square pixels (y 0.65 µm, x 0.325 µm)"),
    ],
    ids=[
        "nanometer",
        "millimeter",
        "micron",
        "multiscales-level",
        "no-unit",
        "unknown-unit",
        "text-scale",
        "negative-scale",
        "non-square",
    ],
)
def test_ome_zarr_scale_and_units(plates, tmp_path, change, expected, why):
    written = _copy(plates, "ome-zarr", tmp_path / "p")
    _edit_zarr_images(written.path, change)
    plate = open_plate(written.path)
    if expected is None:
        assert plate.pixel_size_um is None
        assert why in plate.pixel_size_source
    else:
        assert plate.pixel_size_um == pytest.approx(expected, rel=1e-9)
    assert plate.read("A01", 1).shape == (5, 16, 16)  # a bad pixel size never blocks reading


def test_ome_zarr_images_that_disagree_give_none(plates, tmp_path):
    written = _copy(plates, "ome-zarr", tmp_path / "p")
    last = written.path / "A" / "4" / "1" / "zarr.json"  # A04 site 2: the last image
    data = json.loads(last.read_text())
    data["attributes"]["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0][
        "scale"
    ][-2:] = [0.65, 0.65]
    last.write_text(json.dumps(data))
    plate = open_plate(written.path)
    assert plate.pixel_size_um is None
    assert "the images disagree: 0.325 µm in A/1/0, 0.65 µm in A/4/1" in plate.pixel_size_source


# --- OME-TIFF -------------------------------------------------------------------------------
def _edit_ome(path: Path, edit) -> None:
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata
    tifffile.tiffcomment(path, edit(xml).encode())


@pytest.mark.parametrize(
    ("edit", "expected", "why"),
    [
        (lambda x: x.replace(' PhysicalSizeXUnit="µm"', "").replace(' PhysicalSizeYUnit="µm"', ""),
         SIZE, None),
        (lambda x: x.replace('"0.325"', '"325"').replace('"µm"', '"nm"'), SIZE, None),
        (lambda x: x.replace('PhysicalSizeY="0.325"', 'PhysicalSizeY="0.65"'), None,
         "non-square pixels"),
        (lambda x: x.replace('PhysicalSizeX="0.325"', 'PhysicalSizeX="n/a"'), None,
         "PhysicalSizeX: 'n/a' is not a positive number"),
        (lambda x: x.replace(' PhysicalSizeY="0.325"', ""), None, "no PhysicalSizeY"),
        (lambda x: x.replace('PhysicalSizeYUnit="µm"', 'PhysicalSizeYUnit="pixel"'), None,
         "the unit is 'pixel' (not calibrated)"),
    ],
    ids=["default-unit", "nanometres", "non-square", "text", "no-y", "pixel-unit"],
)  # fmt: skip
def test_ome_tiff_physical_size(plates, tmp_path, edit, expected, why):
    written = _copy(plates, "tiff", tmp_path / "p")
    for path in sorted(written.path.glob("*.tif")):
        _edit_ome(path, edit)
    plate = open_plate(written.path)
    if expected is None:
        assert plate.pixel_size_um is None
        assert why in plate.pixel_size_source
    else:
        assert plate.pixel_size_um == pytest.approx(expected, rel=1e-9)
    assert plate.read("A04", 2).shape == (5, 16, 16)


# --- ImageXpress (MetaXpress TIFFs) ---------------------------------------------------------
def _edit_description(path: Path, edit) -> None:
    with tifffile.TiffFile(path) as tif:
        text = tif.pages.first.description
    tifffile.tiffcomment(path, edit(text).encode())


def _prop(name: str, value: str):
    return lambda text: re.sub(rf'(id="{name}" type="\w+" value=")[^"]*"', rf'\g<1>{value}"', text)


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (_prop("spatial-calibration-state", "off"), "spatial calibration is off"),
        (_prop("spatial-calibration-x", "0,325"), "'0,325' is not a positive number"),
        (_prop("spatial-calibration-units", "pixels"), "the unit is 'pixels' (not calibrated)"),
        (_prop("spatial-calibration-y", "0.65"), "non-square pixels"),
        (lambda t: t.replace("</MetaData>", ""), "no MetaXpress (MetaSeries) metadata"),
    ],
    ids=["calibration-off", "decimal-comma", "pixel-units", "non-square", "not-metaseries"],
)
def test_metaxpress_calibration_that_cannot_be_trusted_is_none(plates, tmp_path, edit, why):
    written = _copy(plates, "imagexpress", tmp_path / "p")
    files = sorted(written.path.rglob("*_w3*.tif"))
    for path in files:
        _edit_description(path, edit)
    plate = open_plate(written.path)
    assert plate.pixel_size_um is None
    assert why in plate.pixel_size_source and files[0].name in plate.pixel_size_source
    assert plate.read("A01", 1).shape == (5, 16, 16)


def test_metaxpress_units_are_converted_and_files_that_disagree_give_none(plates, tmp_path):
    written = _copy(plates, "imagexpress", tmp_path / "p")
    files = sorted(written.path.rglob("*.tif"))
    for path in files:
        _edit_description(path, _prop("spatial-calibration-units", "nm"))
        _edit_description(path, _prop("spatial-calibration-x", "325"))
        _edit_description(path, _prop("spatial-calibration-y", "325"))
    assert open_plate(written.path).pixel_size_um == pytest.approx(SIZE)
    last = next(f for f in files if "_A04_s2_w5" in f.name)  # the last site, last channel
    _edit_description(last, _prop("spatial-calibration-x", "650"))
    _edit_description(last, _prop("spatial-calibration-y", "650"))
    plate = open_plate(written.path)
    assert plate.pixel_size_um is None
    assert f"0.65 µm in {last.name}" in plate.pixel_size_source


# --- Operetta (Harmony index) ---------------------------------------------------------------
def _edit_index(plate_path: Path, edit) -> None:
    index = plate_path / "Images" / "Index.idx.xml"
    index.write_text(edit(index.read_text()), encoding="utf-8")


def _move_resolution_to_channel_maps(text: str) -> str:
    """Newer Harmony exports: the resolution in Maps/Map/Entry per channel, not per image."""
    text = re.sub(r"<ImageResolution[XY] Unit=\"m\">[^<]*</ImageResolution[XY]>", "", text)
    entries = "".join(
        f'<Entry ChannelID="{c}"><ChannelName>x</ChannelName>'
        f'<ImageResolutionX Unit="m">3.25E-07</ImageResolutionX>'
        f'<ImageResolutionY Unit="m">3.25E-07</ImageResolutionY></Entry>'
        for c in range(1, 6)
    )
    return text.replace("<Images>", f"<Maps><Map>{entries}</Map></Maps>\n<Images>")


@pytest.mark.parametrize(
    ("edit", "expected", "why"),
    [
        (lambda t: t.replace(f'Unit="m">{METRES}', 'Unit="µm">0.325'), SIZE, None),
        (_move_resolution_to_channel_maps, SIZE, None),
        (lambda t: t.replace(METRES, "6.5E-07", 2), None,
         "the images disagree: 0.65 µm in Index.idx.xml image r01c01f01p01-ch1sk1fk1fl1.tiff"),
        (lambda t: t.replace(METRES, "unknown"), None,
         "'unknown' is not a positive number"),
        (lambda t: t.replace('<ImageResolutionX Unit="m">', "<ImageResolutionX>"), None,
         "x: no unit"),
    ],
    ids=["micrometres", "channel-maps", "disagree", "text", "no-unit"],
)  # fmt: skip
def test_harmony_image_resolution(plates, tmp_path, edit, expected, why):
    written = _copy(plates, "operetta", tmp_path / "p")
    _edit_index(written.path, edit)
    plate = open_plate(written.path)
    if expected is None:
        assert plate.pixel_size_um is None
        assert why in plate.pixel_size_source
    else:
        assert plate.pixel_size_um == pytest.approx(expected, rel=1e-9)
    assert plate.read("A01", 1).shape == (5, 16, 16)


# --- the API ---------------------------------------------------------------------------------
def test_pixel_size_can_be_set_for_plates_whose_format_has_none(synth_plates):
    plate = open_plate(synth_plates["rxrx1"].path)
    assert plate.pixel_size_um is None
    plate.pixel_size_um = "0.65"
    assert plate.pixel_size_um == 0.65 and plate.pixel_size_source == "set by the user"
    for bad in (0, -1.0, "n/a", float("nan"), True):
        with pytest.raises(PlateError, match=r"pixel size: expected a positive number"):
            plate.pixel_size_um = bad
    assert plate.pixel_size_um == 0.65
    plate.pixel_size_um = None
    assert plate.pixel_size_um is None


def test_writer_refuses_a_bad_pixel_size(tmp_path):
    with pytest.raises(PlateError, match=r"pixel size: expected a positive number .* found -2"):
        _write(tmp_path / "p", "tiff", -2)
    assert not (tmp_path / "p").exists()


def test_pixel_size_is_read_on_first_use_not_at_open(plates, tmp_path):
    """Opening reads no TIFF metadata for the pixel size (a 384-well plate has thousands of
    files); the first use reads a few, spread over the plate, and keeps the answer."""
    written = _copy(plates, "imagexpress", tmp_path / "p")
    plate = open_plate(written.path)
    for path in written.path.rglob("*.tif"):  # calibration changed after opening
        _edit_description(path, _prop("spatial-calibration-x", "0.65"))
        _edit_description(path, _prop("spatial-calibration-y", "0.65"))
    assert plate.pixel_size_um == pytest.approx(0.65)  # read now, not at open
    assert "in 20 of the plate's TIFFs" in plate.pixel_size_source  # 4 sites x 5 channels
    assert np.array_equal(plate.read("A01", 1), open_plate(written.path).read("A01", 1))
