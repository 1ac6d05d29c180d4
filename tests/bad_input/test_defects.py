"""Defects of issue 15 that are not a failing command: each reproduced and checked here (the
failing commands are rows of the corpus, bad_input_cases.py)."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys

import pytest

from napari_dcmix.cli import main
from napari_dcmix.errors import CheckpointError, LabelsError
from napari_dcmix.plate.labels import read_labels_csv
from napari_dcmix.synthetic import write_synthetic_plate


def tree(root):
    """{relative path: sha256} of every file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_training_one_plate_uses_only_its_rows_of_the_plate_column(tmp_path, capsys):
    """Before: one plate with a labels CSV that has a `plate` column trained on other plates'
    rows too (8 wells where 4 belong to the plate)."""
    from napari_dcmix.model import load_model

    synth = write_synthetic_plate(tmp_path / "p", n_wells=8, sites=1, image_size=16, seed=2,
                                  plate_name="Mine")  # fmt: skip
    rows = ["plate,well,label"]
    rows += [f"Mine,{w},{synth.labels[w]}" for w in synth.wells[:4]]
    rows += [f"Theirs,{w},{synth.labels[w]}" for w in synth.wells[4:]]
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    assert len(set(read_labels_csv(labels, plate="Mine").values())) == 2
    out = tmp_path / "m.pt"
    argv = ["train", str(synth.path), "--labels", str(labels), "--out", str(out), "--epochs", "1",
            "--input-size", "16", "--k", "1", "--val-fraction", "0"]  # fmt: skip
    assert main(argv) == 0
    info = load_model(out).training_info
    assert info["n_wells"] == 4 and info["plates"] == ["Mine"]
    capsys.readouterr()


def test_labels_without_plate_column_apply_to_every_plate(tmp_path):
    labels = tmp_path / "l.csv"
    labels.write_text("well,label\nA01,a\nA02,b\n")
    assert read_labels_csv(labels, plate="Any") == {"A01": "a", "A02": "b"}
    labels.write_text("plate,well,label\nP1,A01,a\n")
    with pytest.raises(LabelsError, match="no labelled wells for plate 'P2': its 'plate' column "
                                          "names 'P1'"):  # fmt: skip
        read_labels_csv(labels, plate="P2")


def test_load_model_says_what_the_path_is(tmp_path):
    from napari_dcmix.model import load_model

    with pytest.raises(CheckpointError, match=r"is a folder; expected a model file \(\.pt\)"):
        load_model(tmp_path)
    text = tmp_path / "model.pt"
    text.write_text("# my notes\nnot a model\n")
    with pytest.raises(CheckpointError, match=r"found a text file \(it starts with '# my notes'"):
        load_model(text)  # before: "pop from empty list"
    os.mkfifo(tmp_path / "fifo.pt")
    with pytest.raises(CheckpointError, match="is not a regular file"):
        load_model(tmp_path / "fifo.pt")  # never opened: reading a FIFO would block


def test_synth_overwrite_that_fails_leaves_the_folder_as_it_was(tmp_path):
    """`synth OUT --overwrite` into a folder with a previous plate and a file of the user's:
    a write failure (file-size limit) changes nothing there."""
    out = tmp_path / "out"
    write_synthetic_plate(out, layout="imagexpress", n_wells=2, sites=1, image_size=16, seed=1)
    (out / "notes.txt").write_text("mine")
    before = tree(out)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (32768, 32768))

    run = subprocess.run([sys.executable, "-m", "napari_dcmix.cli", "synth", str(out),
                          "--overwrite", "--image-size", "256", "--wells", "2"],
                         capture_output=True, text=True, preexec_fn=limit, timeout=120)  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"cannot write synthetic plate folder {out}" in run.stderr
    assert tree(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["SynthPlate", "labels.csv", "ground_truth.json", "notes.txt"]
    )  # no staging folder left


def test_synth_overwrite_replaces_the_previous_plate_and_keeps_other_files(tmp_path):
    out = tmp_path / "out"
    write_synthetic_plate(out, layout="ome-zarr", n_wells=2, sites=1, image_size=16, seed=1)
    (out / "notes.txt").write_text("mine")
    synth = write_synthetic_plate(out, layout="tiff", n_wells=3, sites=1, image_size=16, seed=2)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["SynthPlate", "ground_truth.json", "labels.csv", "notes.txt"]
    assert synth.path == out / "SynthPlate" and len(synth.wells) == 3
    from napari_dcmix.plate import open_plate

    assert open_plate(out).layout == "tiff"


def test_synth_into_an_empty_folder_and_a_missing_parent(tmp_path):
    (tmp_path / "empty").mkdir()
    write_synthetic_plate(tmp_path / "empty", n_wells=1, sites=1, image_size=16)
    write_synthetic_plate(tmp_path / "a" / "b", n_wells=1, sites=1, image_size=16)
    from napari_dcmix.plate import open_plate

    assert open_plate(tmp_path / "empty").wells == ["A01"]
    assert open_plate(tmp_path / "a" / "b").wells == ["A01"]
    assert not [p for p in tmp_path.rglob("*") if ".dcmix-tmp-" in p.name]


def test_cli_prints_plate_warnings_as_one_line(tmp_path, capsys):
    folder = write_synthetic_plate(tmp_path / "t", n_wells=2, sites=1, image_size=16).path
    os.symlink("gone.tif", folder / "B01_s1.tif")
    assert main(["info", str(folder)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"napari-dcmix info: warning: {folder}: skipped 1 entry named like an image that cannot "
        "be read as one: B01_s1.tif is a broken symbolic link (to gone.tif, which does not exist)"
    ]
