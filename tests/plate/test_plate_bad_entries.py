"""Entries named like images that are not readable files, and OME-Zarr wells that are listed but
absent: reported (a PlateWarning naming each) and skipped, never silent, never a traceback, and
a FIFO is never opened (reading one would block)."""

from __future__ import annotations

import os
import re
import shutil
import warnings

import numpy as np
import pytest

from napari_dcmix.errors import PlateError, PlateWarning
from napari_dcmix.plate import open_plate


def copy(synth, tmp_path):
    dest = tmp_path / "copy"
    shutil.copytree(synth.path, dest)
    return dest


def break_entry(path, kind: str) -> str:
    """Replace ``path`` by a broken link, a link loop, a folder or a FIFO; the expected text."""
    if path.exists() or path.is_symlink():
        path.unlink()
    if kind == "broken-link":
        os.symlink("gone.tif", path)
        return rf"{path.name} is a broken symbolic link \(to gone\.tif, which does not exist\)"
    if kind == "loop":
        os.symlink(path.name, path)
        return rf"{path.name} is a symbolic link loop"
    if kind == "folder":
        path.mkdir()
        return rf"{path.name} is a folder, not an image file"
    os.mkfifo(path)
    return rf"{path.name} is a FIFO \(named pipe\), not an image file"


KINDS = ["broken-link", "loop", "folder", "fifo"]


@pytest.mark.parametrize("kind", KINDS)
def test_tiff_site_entry(tmp_path, synth_plates, kind):
    folder = copy(synth_plates["tiff"], tmp_path)
    text = break_entry(folder / "A03_s2.tif", kind)
    with pytest.warns(PlateWarning, match=rf"{folder}: skipped 1 entry named like an image that "
                                          rf"cannot be read as one: {text}"):  # fmt: skip
        plate = open_plate(folder)
    assert plate.sites("A03") == [1] and plate.sites("A02") == [1, 2]
    assert plate.read("A03", 1).shape == (5, 32, 32)
    with pytest.raises(PlateError, match="well A03 has no site 2"):
        plate.read("A03", 2)


def test_tiff_good_symlink_is_read(tmp_path, synth_plates):
    folder = copy(synth_plates["tiff"], tmp_path)
    (folder / "A03_s2.tif").rename(tmp_path / "elsewhere.tif")
    os.symlink(tmp_path / "elsewhere.tif", folder / "A03_s2.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlateWarning)
        plate = open_plate(folder)
    expected = open_plate(synth_plates["tiff"].path).read("A03", 2)
    assert np.array_equal(plate.read("A03", 2), expected)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layout", ["imagexpress", "rxrx1", "operetta"])
def test_channel_file_entry(tmp_path, synth_plates, layout, kind):
    folder = copy(synth_plates[layout], tmp_path)
    pattern = {"imagexpress": "*_A03_s2_w3*", "rxrx1": "A03_s2_w3.png",
               "operetta": "r01c03f02p01-ch3*"}[layout]  # fmt: skip
    victim = next(folder.rglob(pattern))
    text = break_entry(victim, kind)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", PlateWarning)
        plate = open_plate(folder)
    messages = [str(w.message) for w in seen]
    assert any(f"{victim.parent}: skipped 1 entry" in m and re.search(text, m)
               for m in messages), messages  # fmt: skip
    assert any("A03 site 2 (no channel 3)" in m for m in messages), messages
    assert plate.sites("A03") == [1] and plate.sites("A04") == [1, 2]


def test_ome_zarr_well_listed_but_absent_is_a_missing_well(tmp_path, synth_plates):
    folder = tmp_path / "p.zarr"
    shutil.copytree(synth_plates["ome-zarr"].path, folder)
    shutil.rmtree(folder / "A" / "3")
    with pytest.warns(PlateWarning, match=r"skipped 1 well\(s\) listed in the plate metadata "
                                          r"but absent from the store \(missing wells\): A03 "
                                          r"\(A/3\)"):  # fmt: skip
        plate = open_plate(folder)
    assert plate.wells == ["A01", "A02", "A04"]
    reference = open_plate(synth_plates["ome-zarr"].path)
    assert np.array_equal(plate.read("A04", 2), reference.read("A04", 2))


def test_ome_zarr_image_listed_but_absent_names_it_at_read_time(tmp_path, synth_plates):
    folder = tmp_path / "p.zarr"
    shutil.copytree(synth_plates["ome-zarr"].path, folder)
    shutil.rmtree(folder / "A" / "2" / "1")
    plate = open_plate(folder)
    with pytest.raises(PlateError, match=rf"{folder}/A/2/1: the image listed in its well's "
                                         r"metadata is missing"):  # fmt: skip
        plate.read("A02", 2)
    assert plate.read("A02", 1).shape == (5, 32, 32)


def test_htd_with_more_wave_names_than_files_is_fine(tmp_path, synth_plates):
    folder = copy(synth_plates["imagexpress"], tmp_path)
    htd = next(folder.glob("*.HTD"))
    htd.write_text(htd.read_text().replace('"EndFile"', '"WaveName6", "Brightfield"\r\n"EndFile"'))
    assert open_plate(folder).channels == ["DNA", "ER", "RNA", "AGP", "Mito"]


def test_htd_with_fewer_wave_names_names_the_missing_ones(tmp_path, synth_plates):
    folder = copy(synth_plates["imagexpress"], tmp_path)
    htd = next(folder.glob("*.HTD"))
    htd.write_text(htd.read_text().replace('"WaveName5", "Mito"', ""))
    expect = (
        rf"{htd} names 4 wavelength\(s\) \(WaveName1, WaveName2, WaveName3, WaveName4\) "
        r"but the image files .* have channels w1, w2, w3, w4, w5: no WaveName for w5"
    )
    with pytest.raises(PlateError, match=expect):
        open_plate(folder)
    htd.unlink()
    assert open_plate(folder).channels == ["w1", "w2", "w3", "w4", "w5"]  # no .HTD: w1..w5
