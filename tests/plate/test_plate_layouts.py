"""Every layout, written in its exact naming scheme, reads back the synthetic pixels."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile

from napari_dcmix.plate import Plate, open_plate
from napari_dcmix.synthetic import synthesize_plate_arrays, write_synthetic_plate

LAYOUTS = ["tiff", "rxrx1", "imagexpress", "operetta", "ome-zarr"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_round_trip(synth_plates, layout):
    synth = synth_plates[layout]
    plate = open_plate(synth.path)
    assert plate.layout == layout
    assert plate.name == synth.name
    assert plate.channels == synth.channels
    assert plate.wells == ["A01", "A02", "A03", "A04"]
    assert plate.sites("A1") == [1, 2]
    assert plate.image_shape == (32, 32)
    assert plate.dtype == (np.uint8 if layout == "rxrx1" else np.uint16)
    ref = synthesize_plate_arrays(
        4, 2, channels=synth.channels, image_size=32, seed=5, dtype=str(plate.dtype)
    )
    assert np.array_equal(plate.read("A03", 2), ref.images[2, 1])
    assert np.array_equal(plate.to_dask().compute(), ref.images)
    assert open_plate(plate) is plate
    assert open_plate(str(synth.path), layout=layout).layout == layout


def test_rxrx1_from_dataset_root_and_metadata(synth_plates):
    synth = synth_plates["rxrx1"]
    root = synth.path.parents[2]  # out/images/SynthPlate/Plate1 -> out
    plate = open_plate(root / "images")
    assert plate.path == synth.path and plate.name == "SynthPlate_1"
    assert plate.channels == ["Hoechst", "ConA", "Phalloidin", "Syto14", "MitoTracker"]
    assert plate.site_metadata[("A02", 1)]["well"] == "A02"


def test_rxrx1_two_plates_need_choosing(tmp_path, synth_plates):
    src = synth_plates["rxrx1"].path
    shutil.copytree(src, tmp_path / "images/E/Plate1")
    shutil.copytree(src, tmp_path / "images/E/Plate2")
    with pytest.raises(Exception, match="2 RxRx1 plates"):
        open_plate(tmp_path)
    assert open_plate(tmp_path / "images/E/Plate2").name == "E_2"


def test_imagexpress_variants(tmp_path):
    """Single-site plate (no _s), no GUID, mixed-case extensions, B2-style wells, no HTD."""
    folder = tmp_path / "P" / "TimePoint_1"
    folder.mkdir(parents=True)
    img = np.arange(64, dtype=np.uint16).reshape(8, 8)
    for well, ext in [("B2", ".TIF"), ("B03", ".tif"), ("AA01", ".Tiff")]:
        for ch in (1, 2):
            tifffile.imwrite(folder / f"My Plate_{well}_w{ch}{ext}", img + ch)
    tifffile.imwrite(folder / "My Plate_B2_w1_thumb.tif", img[:2, :2])
    (folder / "notes.txt").write_text("stray file")
    plate = open_plate(tmp_path / "P")
    assert plate.layout == "imagexpress" and plate.name == "My Plate"
    assert plate.wells == ["B02", "B03", "AA01"]
    assert plate.channels == ["w1", "w2"]
    assert plate.sites("B02") == [1]
    assert np.array_equal(plate.read("AA01", 1)[1], img + 2)
    assert open_plate(folder).wells == plate.wells  # the TimePoint folder itself


def test_imagexpress_single_site_synthetic(tmp_path):
    synth = write_synthetic_plate(tmp_path, "imagexpress", n_wells=2, sites=1, image_size=16)
    names = sorted(p.name for p in (synth.path / "TimePoint_1").iterdir())
    assert not any("_s1" in n for n in names)
    plate = open_plate(synth.path)
    assert plate.channels == ["DNA", "ER", "RNA", "AGP", "Mito"]  # from the .HTD
    assert plate.site_keys() == [("A01", 1), ("A02", 1)]


def test_operetta_index_xml_name_and_images_folder(tmp_path, synth_plates):
    shutil.copytree(synth_plates["operetta"].path, tmp_path / "P")
    images = tmp_path / "P" / "Images"
    (images / "Index.idx.xml").rename(images / "Index.xml")
    plate = open_plate(tmp_path / "P")
    assert plate.channels == ["DNA", "ER", "RNA", "AGP", "Mito"]
    assert open_plate(images).wells == plate.wells
    assert open_plate(images / "Index.xml").wells == plate.wells


def test_operetta_reads_plane_1_timepoint_1_and_high_rows(tmp_path):
    images = tmp_path / "Images"
    images.mkdir()
    entries = []
    for plane in (1, 2):
        for t in (0, 1):
            url = f"r27c12f01p{plane:02d}-ch1sk{t + 1}fk1fl1.tiff"
            tifffile.imwrite(images / url, np.full((4, 6), 10 * plane + t, np.uint16))
            entries.append(
                f"<Image><URL>{url}</URL><Row>27</Row><Col>12</Col><FieldID>1</FieldID>"
                f"<PlaneID>{plane}</PlaneID><TimepointID>{t}</TimepointID>"
                "<ChannelID>1</ChannelID><ChannelName>Alexa 488</ChannelName></Image>"
            )
    ns = "http://www.perkinelmer.com/PEHH/HarmonyV5"
    (images / "Index.idx.xml").write_text(
        f'<EvaluationInputData xmlns="{ns}"><Images>{"".join(entries)}</Images>'
        "</EvaluationInputData>"
    )
    plate = open_plate(tmp_path)
    assert plate.wells == ["AA12"] and plate.channels == ["Alexa 488"]
    assert plate.read("AA12", 1).tolist() == np.full((1, 4, 6), 10).tolist()


def test_operetta_without_index_uses_file_names(tmp_path, synth_plates):
    shutil.copytree(synth_plates["operetta"].path, tmp_path / "P")
    (tmp_path / "P" / "Images" / "Index.idx.xml").unlink()
    with pytest.warns(UserWarning, match="no Index"):
        plate = open_plate(tmp_path / "P")
    assert plate.channels == ["ch1", "ch2", "ch3", "ch4", "ch5"] and len(plate.wells) == 4


def test_tiff_channel_names_and_single_channel(tmp_path):
    tifffile.imwrite(
        tmp_path / "b2_s1.TIFF", np.zeros((3, 5, 7), np.float32), photometric="minisblack"
    )
    tifffile.imwrite(
        tmp_path / "B02_s2.tif", np.ones((3, 5, 7), np.float32), photometric="minisblack"
    )
    plate = open_plate(tmp_path)
    assert plate.layout == "tiff" and plate.channels == ["ch1", "ch2", "ch3"]
    assert plate.dtype == np.float32 and plate.image_shape == (5, 7)
    assert plate.read("B02", 2).sum() == 3 * 5 * 7
    (tmp_path / "channels.txt").write_text("a\nb\nc\n")
    assert open_plate(tmp_path).channels == ["a", "b", "c"]
    other = tmp_path / "one"
    other.mkdir()
    tifffile.imwrite(other / "C03.tif", np.zeros((5, 7), np.uint8))
    assert open_plate(other).read("C03", 1).shape == (1, 5, 7)


def test_tiff_ome_channel_names(tmp_path):
    data = np.zeros((2, 4, 4), np.uint16)
    meta = {"axes": "CYX", "Channel": {"Name": ["DAPI", "GFP"]}}
    tifffile.imwrite(tmp_path / "A01_s1.ome.tif", data, ome=True, photometric="minisblack",
                     metadata=meta)  # fmt: skip
    # ".ome.tif" is not "{well}_s{site}.tif": rename to the layout's scheme
    (tmp_path / "A01_s1.ome.tif").rename(tmp_path / "A01_s1.tif")
    assert open_plate(tmp_path).channels == ["DAPI", "GFP"]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_written_by_ome_zarr_with_tczyx_and_pyramid(tmp_path, version):
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    fmt = FormatV05() if version == "0.5" else FormatV04()
    root = zarr.open_group(tmp_path / "p.zarr", mode="w", zarr_format=3 if version == "0.5" else 2)
    write_plate_metadata(root, ["B", "AA"], ["3"], ["B/3", "AA/3"], fmt=fmt, name="ZP")
    for path in ("B/3", "AA/3"):
        well = root.require_group(path)
        write_well_metadata(well, ["0"], fmt=fmt)
        data = np.arange(2 * 3 * 2 * 16 * 16, dtype=np.uint16).reshape(2, 3, 2, 16, 16)
        write_image(data, well.require_group("0"), scale_factors=[2], axes="tczyx", fmt=fmt)
    plate = open_plate(tmp_path / "p.zarr")
    assert plate.layout == "ome-zarr" and plate.name == "ZP"
    assert plate.wells == ["B03", "AA03"] and plate.channels == ["ch1", "ch2", "ch3"]
    assert plate.image_shape == (16, 16)
    assert np.array_equal(plate.read("AA03", 1), data[0, :, 0])


def test_plate_subclass_contract():
    class Const(Plate):
        def _read_site(self, well, site):
            return np.full((1, 2, 2), site, np.uint8)

    plate = Const(name="c", layout="tiff", path=".", sites={"B2": [2], "A1": [1, 3]},
                  channels=["x"], image_shape=(2, 2), dtype="uint8")  # fmt: skip
    assert plate.wells == ["A01", "B02"]
    assert plate.site_keys() == [("A01", 1), ("A01", 3), ("B02", 2)]
    stack = plate.to_dask()
    assert stack.shape == (2, 3, 1, 2, 2) and stack.chunksize == (1, 1, 1, 2, 2)
    assert stack[:, :, 0, 0, 0].compute().tolist() == [[1, 0, 3], [0, 2, 0]]


def test_rxrx1_kaggle_split_and_experiment_spelling(tmp_path, synth_plates):
    plate_dir = tmp_path / "train" / "HUVEC-01" / "Plate2"
    shutil.copytree(synth_plates["rxrx1"].path, plate_dir)
    (tmp_path / "metadata.csv").write_text(
        "site_id,well_id,experiment,plate,well,site,well_type\n"
        "HUVEC-1_2_A01_1,HUVEC-1_2_A01,HUVEC-1,2,A01,1,negative_control\n"
        "HUVEC-10_2_A01_1,HUVEC-10_2_A01,HUVEC-10,2,A01,1,treatment\n"
    )
    plate = open_plate(tmp_path)
    assert plate.name == "HUVEC-01_2" and plate.path == plate_dir
    assert list(plate.site_metadata) == [("A01", 1)]
    assert plate.site_metadata[("A01", 1)]["well_type"] == "negative_control"


def test_imagexpress_lowest_timepoint_and_zstep(tmp_path):
    for t in (2, 1):
        for z in (1, 2):
            folder = tmp_path / "P" / "2024-05-01" / f"TimePoint_{t}" / f"ZStep_{z}"
            folder.mkdir(parents=True)
            img = np.full((4, 4), 10 * t + z, np.uint16)
            tifffile.imwrite(folder / "P_C05_s1_w1.tif", img)
    plate = open_plate(tmp_path / "P")
    assert plate.layout == "imagexpress" and plate.wells == ["C05"]
    assert plate.read("C05", 1).max() == 11
