"""Planes and timepoints (ImageXpress ZStep_n / TimePoint_n, Operetta PlaneID / TimepointID,
OME-Zarr z and t axes): the numbers a plate has, choosing one, the maximum projection, and what
a plate lacks."""

from __future__ import annotations

import argparse
import json
import shutil
import warnings

import numpy as np
import pytest

from napari_dcmix.cli import build_parser, main
from napari_dcmix.cli._plates import open_plates
from napari_dcmix.errors import PlateError, PlateWarning
from napari_dcmix.plate import open_plate
from napari_dcmix.synthetic import synthesize_site, write_synthetic_plate
from napari_dcmix.synthetic.plate import site_seed

SEED = 4


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """Plates of 3 planes x 2 timepoints (2 wells x 2 sites, 16 px) in every layout that
    writes them."""
    out = {}
    for layout in LAYOUTS:
        root = tmp_path_factory.mktemp(layout)
        out[layout] = write_synthetic_plate(
            root, layout=layout, n_wells=2, sites=2, image_size=16, seed=SEED, planes=3,
            timepoints=2,
        )  # fmt: skip
    return out


def expected(synth, well: str, site: int, z: int, t: int) -> np.ndarray:
    """The pixels the synthetic writer put in plane ``z`` of timepoint ``t`` (1-based)."""
    effects = synth.ground_truth if synth.labels[well] == "treated" else None
    draw = site_seed(SEED, well, site) + ([] if (z, t) == (1, 1) else [z, t])
    return synthesize_site(draw, synth.channels, effects, 16, "uint16")


# the format's timepoint numbers for the writer's timepoints 1 and 2
TIMEPOINTS = {"imagexpress": [1, 2], "operetta": [0, 1], "ome-zarr": [1, 2]}
LAYOUTS = list(TIMEPOINTS)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_numbers_default_and_every_choice(stacks, layout):
    synth = stacks[layout]
    plate = open_plate(synth.path)
    assert plate.planes == [1, 2, 3] and plate.timepoints == TIMEPOINTS[layout]
    assert plate.plane == 1 and plate.timepoint == TIMEPOINTS[layout][0]  # the lowest
    assert np.array_equal(plate.read("A02", 2), expected(synth, "A02", 2, 1, 1))
    for t_index, timepoint in enumerate(TIMEPOINTS[layout], start=1):
        for z in (1, 2, 3):
            chosen = open_plate(synth.path, plane=z, timepoint=timepoint)
            assert (chosen.plane, chosen.timepoint) == (z, timepoint)
            assert chosen.wells == ["A01", "A02"] and chosen.sites("A01") == [1, 2]
            for well, site in chosen.site_keys():
                assert np.array_equal(chosen.read(well, site), expected(synth, well, site, z,
                                                                        t_index))  # fmt: skip


@pytest.mark.parametrize("layout", LAYOUTS)
def test_maximum_projection(stacks, layout):
    synth = stacks[layout]
    timepoint = TIMEPOINTS[layout][1]
    plate = open_plate(synth.path, plane="max", timepoint=timepoint)
    assert plate.plane == "max" and plate.planes == [1, 2, 3]
    for well, site in plate.site_keys():
        planes = [expected(synth, well, site, z, 2) for z in (1, 2, 3)]
        projection = np.maximum.reduce(planes)
        assert not any(np.array_equal(projection, p) for p in planes)  # a real projection
        assert np.array_equal(plate.read(well, site), projection)
        assert np.array_equal(plate.read_thumbnail(well, site, 3), projection[:, ::3, ::3])
    assert open_plate(synth.path, plane="MAX").plane == "max"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_what_a_plate_lacks_lists_what_it_has(stacks, layout):
    path = stacks[layout].path
    source = {"imagexpress": r"\(ZStep_n folders\)", "operetta": r"\(PlaneID in Index\.idx\.xml\)",
              "ome-zarr": r"\(the z axis of its images, from 1\)"}  # fmt: skip
    with pytest.raises(PlateError, match=rf"has no plane 4: its planes {source[layout]} are "
                                         r"1, 2, 3 \(or 'max'"):  # fmt: skip
        open_plate(path, plane=4)
    shown = ", ".join(map(str, TIMEPOINTS[layout]))
    with pytest.raises(PlateError, match=rf"has no timepoint 7: its timepoints .* are {shown}$"):
        open_plate(path, timepoint=7)
    for bad in ("two", 1.5, True):
        with pytest.raises(PlateError, match="plane: expected a plane number or 'max'"):
            open_plate(path, plane=bad)


def test_max_projection_skips_a_site_missing_a_plane(tmp_path, stacks):
    folder = tmp_path / "ix"
    shutil.copytree(stacks["imagexpress"].path, folder)
    victim = next((folder / "TimePoint_1" / "ZStep_2").glob("SynthPlate_A02_s1_w3*"))
    victim.unlink()
    with pytest.warns(PlateWarning, match=r"A02 site 1 \(no channel 3 in plane\(s\) 2\)"):
        plate = open_plate(folder, plane="max")
    assert plate.sites("A02") == [2] and plate.sites("A01") == [1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlateWarning)
        assert open_plate(folder, plane=1).sites("A02") == [1, 2]  # plane 1 is complete


def test_operetta_without_index_numbers_from_file_names(tmp_path, stacks):
    folder = tmp_path / "op"
    shutil.copytree(stacks["operetta"].path, folder)
    (folder / "Images" / "Index.idx.xml").unlink()
    with pytest.warns(PlateWarning, match="no Index.idx.xml"):
        plate = open_plate(folder, plane=2, timepoint=2)
    assert plate.planes == [1, 2, 3] and plate.timepoints == [1, 2]  # p.. and sk.. as written
    assert np.array_equal(plate.read("A01", 1), expected(stacks["operetta"], "A01", 1, 2, 2))


@pytest.mark.parametrize("layout", ["tiff", "rxrx1", "ome-zarr", "imagexpress", "operetta"])
def test_every_plate_has_planes_and_timepoints(synth_plates, layout):
    plate = open_plate(synth_plates[layout].path)
    assert plate.planes == [1]
    assert plate.timepoints == ([0] if layout == "operetta" else [1])
    assert plate.plane == 1 and plate.timepoint == plate.timepoints[0]
    assert open_plate(synth_plates[layout].path, plane="max").plane == "max"  # = the one plane
    with pytest.raises(PlateError, match=r"has no plane 2: its planes .*are 1 "):
        open_plate(synth_plates[layout].path, plane=2)


def test_imagexpress_without_timepoint_folders(tmp_path, stacks):
    """ZStep_n folders straight in the plate folder: timepoint 1, planes from the folders."""
    folder = tmp_path / "ix"
    shutil.copytree(stacks["imagexpress"].path / "TimePoint_2", folder)
    shutil.copy(next(stacks["imagexpress"].path.glob("*.HTD")), folder)
    plate = open_plate(folder, plane=3)
    assert plate.timepoints == [1] and plate.planes == [1, 2, 3]
    assert np.array_equal(plate.read("A02", 1), expected(stacks["imagexpress"], "A02", 1, 3, 2))


def test_cli_options_and_info(stacks, capsys):
    path = str(stacks["imagexpress"].path)
    args = build_parser().parse_args(["predict", path, "--out", "x.csv", "--plane", "max",
                                      "--timepoint", "2"])  # fmt: skip
    (plate,) = open_plates(args.plate, args)
    assert (plate.plane, plate.timepoint) == ("max", 2)
    args = build_parser().parse_args(["train", path, "--labels", "l.csv", "--out", "m.pt",
                                      "--plane", "3"])  # fmt: skip
    assert open_plates(args.plate, args)[0].plane == 3
    assert open_plates([path], argparse.Namespace())[0].plane == 1  # commands without options
    assert main(["info", path, "--json", "--plane", "2", "--timepoint", "2"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["planes"] == [1, 2, 3] and info["timepoints"] == [1, 2]
    assert info["plane"] == 2 and info["timepoint"] == 2
    assert main(["info", str(stacks["operetta"].path), "--plane", "max"]) == 0
    text = capsys.readouterr().out
    assert "planes:      3: 1 2 3 (reading the maximum projection)" in text
    assert "timepoints:  2: 0 1 (reading 0)" in text


def test_synth_cli_writes_planes_and_timepoints(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["synth", str(out), "--layout", "operetta", "--planes", "2", "--timepoints", "3",
                 "--wells", "2", "--sites", "1", "--image-size", "16"]) == 0  # fmt: skip
    plate = open_plate(out)
    assert plate.planes == [1, 2] and plate.timepoints == [0, 1, 2]
    record = json.loads((out / "ground_truth.json").read_text())
    assert record["planes"] == 2 and record["timepoints"] == 3


def test_ome_zarr_direct_and_zarr_reads_agree(stacks):
    """The direct chunk reader and zarr's own read give the same planes and projections."""
    for plane in (1, 3, "max"):
        direct = open_plate(stacks["ome-zarr"].path, plane=plane, timepoint=2)
        via_zarr = open_plate(stacks["ome-zarr"].path, plane=plane, timepoint=2)
        via_zarr._direct_reads = False
        for key in direct.site_keys():
            assert np.array_equal(direct.read(*key), via_zarr.read(*key))
        assert any(r is not None for r in direct._directs.values())


def test_ome_zarr_chunks_spanning_planes(tmp_path):
    """Chunks holding several t and z: the chosen index is cut from inside the chunk."""
    import zarr
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    data = np.random.default_rng(0).integers(0, 4000, (3, 2, 4, 8, 8)).astype(np.uint16)
    root = zarr.open_group(str(tmp_path / "p.zarr"), mode="w", zarr_format=3)
    image = root.require_group("A").require_group("1").require_group("0")
    write_image(data, image, axes="tczyx", scale_factors=[],
                storage_options={"chunks": (2, 2, 3, 8, 8)})  # fmt: skip
    write_plate_metadata(root, ["A"], ["1"], ["A/1"], field_count=1)
    write_well_metadata(root["A/1"], ["0"])
    for direct_reads in (True, False):
        for t in (1, 2, 3):
            for z in (1, 2, 3, 4):
                plate = open_plate(tmp_path / "p.zarr", plane=z, timepoint=t)
                plate._direct_reads = direct_reads
                assert np.array_equal(plate.read("A01", 1), data[t - 1, :, z - 1])
        plate = open_plate(tmp_path / "p.zarr", plane="max", timepoint=3)
        plate._direct_reads = direct_reads
        assert np.array_equal(plate.read("A01", 1), data[2].max(axis=1))
        assert np.array_equal(plate.read_thumbnail("A01", 1, 2), data[2].max(axis=1)[:, ::2, ::2])
    assert plate.planes == [1, 2, 3, 4] and plate.timepoints == [1, 2, 3]


def test_ome_zarr_image_with_fewer_planes_is_named(tmp_path, stacks):
    import zarr

    folder = tmp_path / "p.zarr"
    shutil.copytree(stacks["ome-zarr"].path, folder)
    small = np.zeros((2, 5, 1, 16, 16), np.uint16)
    arr = zarr.open_array(str(folder / "A" / "2" / "1" / "s0"), mode="r")
    assert arr.shape == (2, 5, 3, 16, 16)
    shutil.rmtree(folder / "A" / "2" / "1" / "s0")
    zarr.create_array(str(folder / "A" / "2" / "1" / "s0"), data=small, chunks=small.shape,
                      dimension_names=list("tczyx"))  # fmt: skip
    plate = open_plate(folder, plane=3)
    assert plate.read("A01", 1).shape == (5, 16, 16)
    with pytest.raises(PlateError, match=r"well A02 site 2 \(.*A/2/1/s0\) has 1 plane\(s\); "
                                         r"plane 3 was asked for"):  # fmt: skip
        plate.read("A02", 2)
