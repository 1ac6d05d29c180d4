"""`napari-dcmix info`: a plate's pixel size, and what a model file holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_dcmix.cli import main
from napari_dcmix.synthetic import write_synthetic_plate

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(("layout", "size"), [("operetta", 0.65), ("imagexpress", None)])
def test_info_prints_the_pixel_size(tmp_path, capsys, layout, size):
    written = write_synthetic_plate(
        tmp_path / "p", layout=layout, n_wells=2, sites=1, image_size=16, pixel_size_um=size
    )
    assert main(["info", str(written.path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pixel_size_um"] == (pytest.approx(size) if size else None)
    assert main(["info", str(written.path)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("pixel size:"))
    if size:
        assert line.startswith("pixel size:  0.65 µm (Harmony index Index.idx.xml:")
    else:
        assert line.startswith("pixel size:  unknown (SynthPlate_A01_w1") and "MetaSeries" in line


def _model_with_evidence(path: Path) -> Path:
    """A two-member ensemble at bin 2, crop 32, with held-out evidence, saved to ``path``."""
    from napari_dcmix.model import build_model, save_model
    from napari_dcmix.model.ensemble import DcmixEnsemble

    members = [
        build_model(["DNA", "Mito"], ["a", "b", "c"], input_size=32, seed=s,
                    scale={"bin": 2, "crop": 32})
        for s in (0, 1)
    ]  # fmt: skip
    held = {"balanced_accuracy": 0.875, "interval": [0.7, 0.95], "n_wells": 24,
            "confusion": [], "level": "well"}  # fmt: skip
    evidence = {"version": 1, "held_out": held}
    return save_model(DcmixEnsemble(members, evidence=evidence), path)


def test_info_describes_a_model_file(tmp_path, capsys):
    assert main(["info", str(DATA / "v1_model.pt")]) == 0  # written before pixel scales
    text = capsys.readouterr().out
    assert "stains:      5: DNA, ER, RNA, AGP, Mito" in text
    assert "classes:     2: control, treated" in text
    assert "pixel scale: bin 1, whole site resized" in text
    assert "members:     1" in text and "backbone:    small_cnn" in text
    assert "held-out:    none stored" in text

    path = _model_with_evidence(tmp_path / "ens.pt")
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "pixel scale: bin 2, crop 32 px" in text and "members:     2" in text
    assert "held-out:    balanced accuracy 0.875 on 24 held-out well(s)" in text
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["stains"] == ["DNA", "Mito"] and info["classes"] == ["a", "b", "c"]
    assert (info["scale"], info["bin"], info["crop"]) == ("bin 2, crop 32 px", 2, 32)
    assert info["members"] == 2 and info["backbone"] == "small_cnn"
    assert info["held_out_evidence"] is True and info["held_out"]["n_wells"] == 24


def test_info_on_a_pt_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "notes.pt").write_text("not a model\n")
    assert main(["info", str(tmp_path / "notes.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-dcmix info: error: model file ") and "notes.pt" in err
    assert "is not a napari-dcmix checkpoint" in err and "Traceback" not in err
    assert main(["info", str(DATA / "v1_model.pt"), "--plane", "2"]) == 2
    assert "--plane chooses what is read from a plate" in capsys.readouterr().err
