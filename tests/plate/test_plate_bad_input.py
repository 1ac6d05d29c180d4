"""Bad plates fail with errors that name the file / well, or skip with a warning."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import tifffile

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import open_plate
from napari_dcmix.plate._io import PlateWarning


def copy(synth, tmp_path):
    """A private copy of a session plate; returns the path open_plate takes."""
    dest = tmp_path / "copy"
    shutil.copytree(synth.path, dest)
    return dest


def test_empty_folder(tmp_path):
    with pytest.raises(PlateError, match="is empty"):
        open_plate(tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(PlateError, match="does not exist"):
        open_plate(tmp_path / "nope")


def test_folder_matching_no_layout_lists_each_layout(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "image.png").write_bytes(b"")
    with pytest.raises(PlateError) as info:
        open_plate(tmp_path)
    message = str(info.value)
    assert "matches no supported plate layout" in message
    for layout in ("ome-zarr", "operetta", "rxrx1", "imagexpress", "tiff"):
        assert f"- {layout}: " in message


@pytest.mark.parametrize("layout", ["tiff", "rxrx1", "imagexpress", "operetta"])
def test_truncated_image_names_the_file_at_read_time(tmp_path, synth_plates, layout):
    folder = copy(synth_plates[layout], tmp_path)
    plate = open_plate(folder)
    pattern = {"tiff": "A02_s1.tif", "rxrx1": "A02_s1_w1.png", "imagexpress": "*_A02_s1_w1*",
               "operetta": "r01c02f01p01-ch1*"}[layout]  # fmt: skip
    victim = next(folder.rglob(pattern))
    victim.write_bytes(victim.read_bytes()[:100])
    plate.read("A01", 1)  # other sites still read
    with pytest.raises(PlateError, match=f"cannot read image .*{victim.name}"):
        plate.read("A02", 1)


def test_corrupt_first_image_fails_at_open_naming_it(tmp_path, synth_plates):
    folder = copy(synth_plates["tiff"], tmp_path)
    (folder / "A01_s1.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(PlateError, match=r"A01_s1\.tif"):
        open_plate(folder)


@pytest.mark.parametrize("layout", ["rxrx1", "imagexpress", "operetta"])
def test_site_missing_a_channel_file_is_skipped_with_warning(tmp_path, synth_plates, layout):
    folder = copy(synth_plates[layout], tmp_path)
    pattern = {"rxrx1": "A03_s2_w3.png", "imagexpress": "*_A03_s2_w3*", "operetta":
               "r01c03f02p01-ch3*"}[layout]  # fmt: skip
    next(folder.rglob(pattern)).unlink()
    with pytest.warns(PlateWarning, match="A03 site 2 .no channel 3"):
        plate = open_plate(folder)
    assert plate.sites("A03") == [1]
    assert plate.sites("A02") == [1, 2]
    with pytest.raises(PlateError, match="well A03 has no site 2"):
        plate.read("A03", 2)


def test_images_of_different_sizes_name_both(tmp_path, synth_plates):
    folder = copy(synth_plates["tiff"], tmp_path)
    tifffile.imwrite(folder / "A02_s1.tif", np.zeros((5, 20, 20), np.uint16))
    plate = open_plate(folder)
    with pytest.raises(PlateError, match=r"A02_s1.tif has shape \(5, 20, 20\).*A01_s1.tif"):
        plate.read("A02", 1)


def test_channel_images_of_different_sizes_name_both(tmp_path, synth_plates):
    folder = copy(synth_plates["imagexpress"], tmp_path)
    victim = next(folder.rglob("*_A04_s1_w2*"))
    tifffile.imwrite(victim, np.zeros((8, 8), np.uint16))
    plate = open_plate(folder)
    with pytest.raises(PlateError, match=rf"{victim.name} has shape \(8, 8\).*A01_s1_w1"):
        plate.read("A04", 1)


def test_unknown_well_and_site(synth_plates):
    plate = open_plate(synth_plates["tiff"].path)
    with pytest.raises(PlateError, match="no well 'H12'"):
        plate.read("H12", 1)
    with pytest.raises(PlateError, match="well A01 has no site 7"):
        plate.read("A01", 7)
    with pytest.raises(PlateError, match="not a well name"):
        plate.sites("junk")


@pytest.mark.parametrize("name", ["Index.idx.xml", "Index.xml"])
def test_unreadable_index_xml(tmp_path, synth_plates, name):
    folder = copy(synth_plates["operetta"], tmp_path)
    (folder / "Images" / "Index.idx.xml").unlink()
    (folder / "Images" / name).write_text("<EvaluationInputData><Images><Image>")
    with pytest.raises(PlateError, match=f"cannot read the Harmony index .*{name}"):
        open_plate(folder)


def test_index_without_images(tmp_path, synth_plates):
    folder = copy(synth_plates["operetta"], tmp_path)
    (folder / "Images" / "Index.idx.xml").write_text("<EvaluationInputData/>")
    with pytest.raises(PlateError, match="lists no Images/Image"):
        open_plate(folder)


def test_ome_zarr_group_without_plate_metadata(tmp_path):
    import zarr

    zarr.open_group(tmp_path / "g.zarr", mode="w")
    with pytest.raises(PlateError, match=r"g\.zarr is a Zarr group: it has no OME-NGFF 'plate'"):
        open_plate(tmp_path / "g.zarr")


def test_ome_zarr_image_is_not_a_plate(tmp_path):
    import zarr
    from ome_zarr.writer import write_image

    group = zarr.open_group(tmp_path / "img.zarr", mode="w")
    write_image(np.zeros((2, 8, 8), np.uint8), group, axes="cyx", scale_factors=[])
    with pytest.raises(PlateError, match="an OME-Zarr image, not a plate"):
        open_plate(tmp_path / "img.zarr")


def test_ome_zarr_missing_chunks_read_as_fill_value_with_warning(tmp_path, synth_plates):
    folder = tmp_path / "p.zarr"
    shutil.copytree(synth_plates["ome-zarr"].path, folder)
    shutil.rmtree(folder / "A" / "2" / "0" / "s0" / "c")  # every chunk of A02 site 1
    plate = open_plate(folder)
    with pytest.warns(
        PlateWarning, match=r"well A02 site 1: no stored chunk for channel\(s\) 'DNA'"
    ):
        assert plate.read("A02", 1).max() == 0  # zarr fills missing chunks
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlateWarning)
        assert plate.read("A01", 1).max() > 0  # intact sites: no warning


def test_two_imagexpress_plates_in_one_folder(tmp_path):
    for prefix in ("P1", "P2"):
        tifffile.imwrite(tmp_path / f"{prefix}_B02_s1_w1.tif", np.zeros((4, 4), np.uint16))
    with pytest.raises(PlateError, match=r"2 plates \(P1, P2"):
        open_plate(tmp_path)


def test_file_instead_of_folder(tmp_path):
    path = tmp_path / "B02_s1.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint16))
    with pytest.raises(PlateError, match="is a file"):
        open_plate(path)


def _tiff_plate(tmp_path, dtype):
    from napari_dcmix.synthetic import write_synthetic_plate

    return write_synthetic_plate(tmp_path / "p", layout="tiff", n_wells=2, sites=1,
                                 image_size=16, dtype=dtype, seed=1)  # fmt: skip


def test_mixed_dtype_unsafe_cast_names_file_and_dtypes(tmp_path):
    synth = _tiff_plate(tmp_path, "uint8")
    bad = synth.path / "A02_s1.tif"
    tifffile.imwrite(bad, np.full((5, 16, 16), 300, np.uint16))  # would wrap to 44 in uint8
    plate = open_plate(synth.path)
    assert plate.dtype == np.uint8
    for read in (lambda: plate.read("A02", 1), lambda: plate.read_thumbnail("A02", 1, 2)):
        with pytest.raises(PlateError, match=r"A02_s1\.tif has dtype uint16, expected uint8"):
            read()
    assert plate.read("A01", 1).dtype == np.uint8  # the other sites still read


def test_mixed_dtype_safe_upcast_keeps_values(tmp_path):
    synth = _tiff_plate(tmp_path, "uint16")
    small = np.arange(5 * 16 * 16, dtype=np.uint8).reshape(5, 16, 16)
    tifffile.imwrite(synth.path / "A02_s1.tif", small)
    plate = open_plate(synth.path)
    data = plate.read("A02", 1)
    assert data.dtype == np.uint16 and np.array_equal(data, small)
    assert np.array_equal(plate.read_thumbnail("A02", 1, 2), small[:, ::2, ::2])


def test_mixed_dtype_channel_files_name_the_file(tmp_path, synth_plates):
    folder = copy(synth_plates["imagexpress"], tmp_path)
    plate = open_plate(folder)
    assert plate.dtype == np.uint16
    well, site = plate.site_keys()[-1]
    path = plate._files[(well, site)][2]
    tifffile.imwrite(path, np.full(plate.image_shape, 0.5, np.float32))
    with pytest.raises(PlateError, match=rf"{path.name} has dtype float32, expected uint16"):
        plate.read(well, site)


def test_mixed_dtype_between_sites_in_base_read():
    """Layouts returning their own dtype (OME-Zarr: one array per site) are checked in read."""
    from napari_dcmix.plate.base import Plate

    class TwoDtypes(Plate):
        def _read_site(self, well, site):
            return np.full(
                (1, 4, 4), 70000 if well == "A02" else 7, np.uint32 if well == "A02" else np.uint8
            )

    plate = TwoDtypes(name="P", layout="tiff", path=".", sites={"A01": [1], "A02": [1]},
                      channels=["c"], image_shape=(4, 4), dtype="uint16")  # fmt: skip
    assert plate.read("A01", 1).dtype == np.uint16  # uint8 -> uint16 is safe
    with pytest.raises(PlateError, match=r"well A02 site 1 has dtype uint32, expected uint16"):
        plate.read("A02", 1)
