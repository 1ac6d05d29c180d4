from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from napari_dcmix.cli import main
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
    assert list(weights) == synth.channels and sum(weights.values()) == pytest.approx(1.0)
    assert main(["importance", str(out)]) == 0
    assert "Mito" in capsys.readouterr().out
    csv_path = tmp_path / "p.csv"
    assert main(["predict", str(synth.path), "--model", str(out), "--out", str(csv_path),
                 "--device", "cpu", "--batch-size", "5", "--quiet"]) == 0  # fmt: skip
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:6] == ["plate", "well", "site", "level", "prediction", "confidence"]
    assert {"p_control", "p_treated"} <= set(rows[0])
    assert sum(r["level"] == "site" for r in rows) == 12
    assert sum(r["level"] == "well" for r in rows) == 6
    # fine-tune with --init (mode mixing by default)
    tuned = tmp_path / "tuned.pt"
    assert main(["train", str(synth.path), "--labels", str(synth.labels_csv), "--out", str(tuned),
                 "--init", str(out), "--epochs", "1"]) == 0  # fmt: skip


def test_errors_are_messages(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    assert main(["importance", str(bad)]) == 2
    assert "bad.pt" in capsys.readouterr().err
