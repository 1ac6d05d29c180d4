"""`napari-dcmix info` and `napari-dcmix synth`."""

from __future__ import annotations

import json

import pytest

from napari_dcmix.cli import main


@pytest.mark.parametrize("layout", ["tiff", "ome-zarr"])
def test_synth_then_info(tmp_path, capsys, layout):
    out = tmp_path / "out"
    argv = ["synth", str(out), "--layout", layout, "--wells", "3", "--sites", "2",
            "--phenotype-channel", "ER", "--second-channel", "Mito", "--image-size", "24",
            "--seed", "1"]  # fmt: skip
    assert main(argv) == 0
    assert "phenotype: ER=1, Mito=0.3" in capsys.readouterr().out
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == layout and info["wells"] == ["A01", "A02", "A03"]
    assert info["sites"]["A02"] == [1, 2] and info["image_shape"] == [24, 24]
    assert info["channels"] == ["DNA", "ER", "RNA", "AGP", "Mito"] and info["dtype"] == "uint16"
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"layout:      {layout}" in text and "6 (2 site(s) in 3 well(s))" in text


def test_synth_refuses_non_empty_folder_unless_overwrite(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("keep")
    args = ["synth", str(tmp_path), "--wells", "2", "--sites", "1", "--image-size", "16"]
    assert main(args) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert (tmp_path / "x.txt").exists()
    assert main([*args, "--overwrite", "--layout", "imagexpress"]) == 0
    assert not (tmp_path / "SynthPlate" / "A01_s1.tif").exists()  # previous plate replaced


def test_info_errors_exit_2(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 2
    assert "is empty" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "o"), "--phenotype-channel", "GFP"]) == 2
    assert "phenotype channel 'GFP'" in capsys.readouterr().err
