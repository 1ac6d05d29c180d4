from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from napari_dcmix.cli import main
from napari_dcmix.model import load_model
from napari_dcmix.synthetic import write_synthetic_plate


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_synthetic_plate(tmp_path_factory.mktemp("plate"), layout="tiff", n_wells=6,
                                 sites=2, image_size=32, seed=0)  # fmt: skip


def test_train_importance_predict(synth, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.pt"
    args = ["train", str(synth.path), "--labels", str(synth.labels_csv), "--out", str(out),
            "--epochs", "2", "--input-size", "16", "--k", "1", "--val-fraction", "0"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "epoch 2/2 done" in text and "channel importance" in text and out.is_file()
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["importance", str(out), "--json"]) == 0
    weights = json.loads(capsys.readouterr().out)
    expected = load_model(out).channel_importance()
    assert list(weights) == synth.channels and sum(weights.values()) == pytest.approx(1.0)
    assert weights == pytest.approx(expected, abs=1e-6)
    assert main(["importance", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "mixing, K=1, backbone small_cnn" in lines[0]
    table = [line.split() for line in lines[1:]]
    ranking = sorted(expected, key=lambda c: -expected[c])
    assert [row[0] for row in table] == ranking  # strongest channel first
    assert [float(row[1]) for row in table] == pytest.approx(
        [expected[c] for c in ranking], abs=1e-4
    )
    csv_path = tmp_path / "p.csv"
    assert main(["predict", str(synth.path), "--model", str(out), "--out", str(csv_path),
                 "--device", "cpu", "--batch-size", "5", "--quiet"]) == 0  # fmt: skip
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:6] == ["plate", "well", "site", "level", "prediction", "confidence"]
    assert {"p_control", "p_treated"} <= set(rows[0])
    assert sum(r["level"] == "site" for r in rows) == 12
    assert sum(r["level"] == "well" for r in rows) == 6
    # an existing --out is kept unless --overwrite
    before = csv_path.read_bytes()
    predict = ["predict", str(synth.path), "--model", str(out), "--out", str(csv_path),
               "--device", "cpu", "--quiet"]  # fmt: skip
    assert main(predict) == 2
    err = capsys.readouterr().err
    assert f"napari-dcmix predict: error: {csv_path} exists" in err and "--overwrite" in err
    assert csv_path.read_bytes() == before
    assert main([*predict, "--overwrite"]) == 0
    # fine-tune with --init (mode mixing by default)
    tuned = tmp_path / "tuned.pt"
    assert main(["train", str(synth.path), "--labels", str(synth.labels_csv), "--out", str(tuned),
                 "--init", str(out), "--epochs", "1"]) == 0  # fmt: skip


def test_errors_are_messages(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    assert main(["importance", str(bad)]) == 2
    assert "bad.pt" in capsys.readouterr().err


def test_os_errors_are_messages(synth, tmp_path: Path, capsys) -> None:
    """An OSError (here: --out in a missing folder) is one line naming the path, exit 2."""
    out = tmp_path / "missing" / "p.csv"
    assert main(["predict", str(synth.path), "--out", str(out), "--device", "cpu",
                 "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith(f"napari-dcmix predict: error: cannot write predictions CSV {out}: "
                          f"its folder {out.parent} does not exist")  # fmt: skip
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--lr", "0", "learning rate: expected > 0, found 0.0"),
     ("--mixing-lr", "-1", "mixing learning rate: expected > 0, found -1.0"),
     ("--batch-size", "0", "batch size: expected >= 1, found 0")],
)  # fmt: skip
def test_train_rejects_bad_settings(synth, tmp_path, capsys, option, value, message) -> None:
    out = tmp_path / "m.pt"
    assert main(["train", str(synth.path), "--labels", str(synth.labels_csv), "--out", str(out),
                 option, value]) == 2  # fmt: skip
    assert message in capsys.readouterr().err and not out.exists()


def test_outputs_that_are_folders_are_refused(synth, tmp_path, capsys) -> None:
    assert main(["predict", str(synth.path), "--out", str(tmp_path), "--quiet"]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["train", str(synth.path), "--labels", str(synth.labels_csv),
                 "--out", str(tmp_path)]) == 2  # fmt: skip
    assert "is a folder" in capsys.readouterr().err
