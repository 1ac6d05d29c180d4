"""The predictions CSV (issue: nothing lost, suspicious data said): written atomically, the
output checked before predicting, plate names that are not UTF-8, plates with one name,
notes for missing chunks and constant input, sites_used."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from screen_helpers import cli_command, keys_once, read_rows

from napari_dcmix.cli import main

CHANNELS = "DNA\nER\nRNA\nAGP\nMito\n"


def test_a_file_size_limit_leaves_the_previous_csv_unchanged(screen_plates, tmp_path):
    """``ulimit -f``: the CSV cannot be written whole; the user's previous CSV stays
    byte-identical, no partial file at the target, exit 2 with the file named."""
    out = tmp_path / "p.csv"
    previous = b"plate,well\nold,A01\n" * 10
    out.write_bytes(previous)
    limit = 4096  # the CSV of 96 sites is larger; one batch of partial results is not

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        cli_command("predict", *screen_plates, "--out", out, "--device", "cpu", "--quiet",
                    "--overwrite", "--max-task-sites", "2"),
        capture_output=True, text=True, timeout=120, preexec_fn=small_files,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"cannot write predictions CSV {out}: File too large" in result.stderr
    assert "is unchanged" in result.stderr and "Traceback" not in result.stderr
    assert out.read_bytes() == previous
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["p.csv"]  # no temp file
    # the finished wells were kept: the same command (without the limit) resumes them
    assert main(["predict", *map(str, screen_plates), "--out", str(out), "--device", "cpu",
                 "--quiet", "--overwrite", "--resume"]) == 0  # fmt: skip
    keys_once(out)


def test_the_output_folder_is_checked_before_predicting(screen_plates, tmp_path, capsys):
    missing = tmp_path / "missing" / "p.csv"
    start = time.monotonic()
    assert main(["predict", *map(str, screen_plates), "--out", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"its folder {missing.parent} does not exist" in err
    assert "predicting" not in capsys.readouterr().out and time.monotonic() - start < 5

    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root writes anywhere a mode allows nothing: make the folder immutable
        if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode:
            pytest.skip("running as root on a file system without chattr +i")
    else:
        locked.chmod(0o555)
    try:
        assert main(["predict", str(screen_plates[0]), "--out", str(locked / "p.csv")]) == 2
        captured = capsys.readouterr()
        assert f"folder {locked} is not writable" in captured.err
        assert "predicting" not in captured.out and not (locked / "p.csv").exists()
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(locked)], check=True)
        else:
            locked.chmod(0o755)


def test_plate_names_that_are_not_utf8_and_plates_with_one_name(screen_plates, tmp_path):
    """A folder named in Latin-1 (byte 0xE9) is written as ``\\xe9`` in the CSV (valid UTF-8,
    the bytes recoverable); two plates with one name are told apart by the path column."""
    latin = Path(os.fsdecode(bytes(tmp_path) + b"/plate\xe9"))
    shutil.copytree(screen_plates[0], latin)
    twin_a, twin_b = tmp_path / "a" / "Twin", tmp_path / "b" / "Twin"
    shutil.copytree(screen_plates[0], twin_a)
    shutil.copytree(screen_plates[0], twin_b)
    out = tmp_path / "names.csv"
    out.write_text("a previous file\n")
    result = subprocess.run(
        cli_command("predict", latin, twin_a, twin_b, "--out", out, "--device", "cpu",
                    "--overwrite"),
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    stdout = result.stdout.decode("utf-8")  # what the CLI printed is UTF-8 too
    assert "plate\\xe9: 32/32 sites" in stdout
    assert f"Twin ({twin_a}): 32/32" in stdout and f"Twin ({twin_b}): 32/32" in stdout
    rows = read_rows(out)  # decodes as UTF-8
    latin_rows = [r for r in rows if r["plate"] == "plate\\xe9"]
    assert len(latin_rows) == 48
    assert latin_rows[0]["path"] == str(tmp_path) + "/plate\\xe9"
    recovered = latin_rows[0]["path"].encode("ascii", "backslashreplace").decode("unicode_escape")
    assert os.fsencode(recovered.encode("latin-1").decode("utf-8", "surrogateescape")) == bytes(
        latin
    )
    twins = [r for r in rows if r["plate"] == "Twin"]
    assert {r["path"] for r in twins} == {str(twin_a), str(twin_b)}
    keys_once(out)
    for a, b in zip([r for r in twins if r["path"] == str(twin_a)],
                    [r for r in twins if r["path"] == str(twin_b)], strict=True):  # fmt: skip
        assert {k: v for k, v in a.items() if k != "path"} == {
            k: v for k, v in b.items() if k != "path"
        }


def test_missing_chunks_and_constant_input_are_said(screen_plates, tmp_path, capsys):
    """An OME-Zarr site whose chunk was deleted (read as zeros) and a boolean TIFF plate below
    the model's low percentile: notes in the CSV, a warning line on the CLI."""
    zarr_plate = tmp_path / "holes.zarr"
    shutil.copytree(screen_plates[1], zarr_plate)
    chunks = sorted((zarr_plate / "B" / "2" / "0").rglob("c/0/0/0"))
    assert chunks
    for chunk in chunks:
        chunk.unlink()  # well B02 site 1: no stored chunk at all
    boolean = tmp_path / "boolean"
    boolean.mkdir()
    (boolean / "channels.txt").write_text(CHANNELS)
    rng = np.random.default_rng(0)
    tifffile.imwrite(boolean / "C03_s1.tif", rng.random((5, 40, 40)) > 0.5)
    tifffile.imwrite(boolean / "C03_s2.tif", np.zeros((5, 40, 40), bool))
    out = tmp_path / "notes.csv"
    assert main(["predict", str(zarr_plate), str(boolean), "--out", str(out), "--device", "cpu",
                 "--quiet"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    rows = {(r["plate"], r["well"], r["site"]): r for r in read_rows(out)}
    hole = rows[("Screen1", "B02", "1")]["notes"]
    assert "no stored chunk for channel(s) 'DNA', 'ER', 'RNA', 'AGP', 'Mito'" in hole
    assert "constant input" in hole
    assert rows[("Screen1", "B02", "")]["notes"] == "notes on site(s) 1"
    assert rows[("Screen1", "B02", "")]["sites_used"] == "2"
    assert rows[("Screen1", "B03", "1")]["notes"] == ""  # the other sites: no notes
    noisy, blank = rows[("boolean", "C03", "1")]["notes"], rows[("boolean", "C03", "2")]["notes"]
    below = "every pixel of channel(s) DNA, ER, RNA, AGP, Mito lies below the model's low"
    assert below in noisy and "constant input" not in noisy
    assert below in blank and "constant input" in blank
    assert "warning: plate 'Screen1': well B02 site 1: no stored chunk" in err
    assert "; plate Screen1 well B02 site 1: constant input" in err
    assert "warning: plate boolean well C03 site 2: constant input" in err
    assert sum("warning" in line for line in err.splitlines()) == 3


def test_workers_reopen_mapped_plates_without_loading_a_model(screen_plates, screen_model,
                                                              tmp_path, monkeypatch):  # fmt: skip
    """With --channel-map, what a worker runs to reopen a plate knows the model's stains: it
    loads no model (the command's may be gone from the worker's disk, and the worker's
    default model may be another one) and presents the stains in the model's order."""
    import pickle

    from napari_dcmix.cli import build_parser
    from napari_dcmix.cli._plates import open_plates, plate_openers
    from napari_dcmix.model import build_model, load_model, save_model
    from napari_dcmix.model.checkpoint import DEFAULT_MODEL_ENV

    model_file = str(shutil.copy(screen_model, tmp_path / "m.pt"))
    args = build_parser().parse_args(["predict", str(screen_plates[0]), "--model", model_file,
                                      "--out", str(tmp_path / "p.csv"),
                                      "--channel-map", "DNA=Mito,Mito=DNA"])  # fmt: skip
    channels = list(load_model(model_file).channel_names)
    here = open_plates(args.plate, args, channels=channels)[0]
    openers = plate_openers(args.plate, args, channels)
    os.unlink(model_file)  # not on the worker's disk
    other = build_model(list(reversed(channels)), ["a", "b"], input_size=16, seed=0)
    monkeypatch.setenv(DEFAULT_MODEL_ENV, str(save_model(other, tmp_path / "other.pt")))
    reopened = pickle.loads(pickle.dumps(openers[0]))()
    assert reopened.channels == here.channels == channels
    assert reopened.mapping == {"Mito": "DNA", "ER": "ER", "RNA": "RNA", "AGP": "AGP",
                                "DNA": "Mito"} == here.mapping  # fmt: skip
    assert np.array_equal(reopened.read("A01", 1), here.read("A01", 1))
