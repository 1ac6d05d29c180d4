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
            "--epochs", "2", "--crop", "16", "--k", "1", "--ensemble", "2"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "epoch 2/2 done" in text and "channel importance" in text and out.is_file()
    assert "held out (2-fold cross-validation by well" in text and "confusion" in text
    verdict = load_model(out)
    from napari_dcmix.model.evidence import verdict as verdict_of

    assert verdict_of(verdict.evidence).sentence in text  # the verdict is printed
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["importance", str(out), "--json"]) == 0
    weights = json.loads(capsys.readouterr().out)
    expected = load_model(out).channel_importance()
    assert list(weights) == synth.channels and sum(weights.values()) == pytest.approx(1.0)
    assert weights == pytest.approx(expected, abs=1e-6)
    assert main(["importance", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "mixing, K=1, backbone small_cnn, bin 1, crop 16 px, 2 member(s)" in lines[0]
    start = next(i for i, line in enumerate(lines) if line.startswith("channel importance"))
    table = [line.split() for line in lines[start + 1 : start + 1 + len(expected)]]
    ranking = sorted(expected, key=lambda c: -expected[c])
    assert [row[0] for row in table] == ranking  # strongest channel first
    assert [float(row[1]) for row in table] == pytest.approx(
        [expected[c] for c in ranking], abs=6e-4
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
    # fine-tune with --init: the fine-tuning defaults (frozen backbone, fresh mixing and head)
    tuned = tmp_path / "tuned.pt"
    assert main(["train", str(synth.path), "--labels", str(synth.labels_csv), "--out", str(tuned),
                 "--init", str(out), "--epochs", "1", "--ensemble", "2"]) == 0  # fmt: skip
    info = load_model(tuned).training_info
    assert (info["mode"], info["fresh_mixing"], info["lr"], info["mixing_lr"]) == (
        "mixing",
        True,
        0.01,
        0.1,
    )
    assert info["scale"] == {"bin": 1, "crop": 16}  # the scale of the model it started from


def test_importance_report_and_ablation(synth, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.pt"
    assert main(["train", str(synth.path), "--labels", str(synth.labels_csv), "--out", str(out),
                 "--epochs", "2", "--crop", "16", "--ensemble", "2", "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["importance", str(out), "--report"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"importance", "interval", "top", "verdict", "held_out", "per_class"} <= set(report)
    assert set(report["interval"]) == set(synth.channels)
    assert report["held_out"]["n_wells"] == 6 and len(report["held_out"]["interval"]) == 2
    assert report["scale"] == {"bin": 1, "crop": 16} and report["members"] == 2
    assert main(["importance", str(out), "--ablation", str(synth.path), "--labels",
                 str(synth.labels_csv)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "per-stain ablation on" in text and "Spearman (learned vs ablation):" in text
    rows = [
        line.split() for line in text.splitlines() if line.startswith("  ") and " ablation " in line
    ]
    assert {r[0] for r in rows} == set(synth.channels)
    assert sum(float(r[2]) for r in rows) == pytest.approx(1.0, abs=1e-3)
    one_class = tmp_path / "one.csv"
    one_class.write_text("well,label\nA01,control\nA02,control\n")
    assert main(["importance", str(out), "--ablation", str(synth.path), "--labels",
                 str(one_class)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "ablation needs labelled wells of at least 2 classes" in err and "control" in err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--ensemble", "0", "ensemble size: expected >= 1, found 0"),
     ("--bin", "0", "bin: expected a positive integer, found 0"),
     ("--crop", "64", "32 x 32 px after binning by 1"),
     ("--crop", "huge", "crop: expected a positive integer or 'full', found 'huge'"),
     ("--reference", "DMSO", "reference class 'DMSO' is not one of the labelled classes: "
      "control, treated")],
)  # fmt: skip
def test_train_rejects_bad_scales_and_evidence_settings(synth, tmp_path, capsys, option, value,
                                                        message) -> None:  # fmt: skip
    out = tmp_path / "m.pt"
    assert main(["train", str(synth.path), "--labels", str(synth.labels_csv), "--out", str(out),
                 "--epochs", "1", option, value]) == 2  # fmt: skip
    assert message in capsys.readouterr().err and not out.exists()


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
