"""The HTML report: opened in real headless Chromium, its screenshot shows the figures; a
model without evidence gets a report that says what is missing; CLI errors exit 2."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from napari_dcmix.cli import main

STAINS = ["DNA", "ER", "RNA", "AGP", "Mito"]
EVIDENCE = {
    "version": 1,
    "scheme": "5-fold cross-validation by well",
    "classes": ["control", "treated"],
    "channels": STAINS,
    "chance": 0.5,
    "held_out": {
        "balanced_accuracy": 0.95,
        "interval": [0.81, 0.99],
        "n_wells": 24,
        "confusion": [[11, 1], [0, 12]],
        "level": "well",
    },
    "importance": {"DNA": 0.1, "ER": 0.15, "RNA": 0.1, "AGP": 0.1, "Mito": 0.55},
    "interval": {
        "DNA": [0.05, 0.15],
        "ER": [0.1, 0.2],
        "RNA": [0.05, 0.15],
        "AGP": [0.05, 0.15],
        "Mito": [0.45, 0.65],
    },
    "members": [],
    "reference": None,
    "per_class": {},
    "per_class_interval": {},
}


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Chromium is needed for this test: apt-get install chromium (make setup does)")
    return exe


def screenshot(html_path, out, tmp_path, size=(1200, 2000)) -> np.ndarray:
    """Render ``html_path`` in headless Chromium (no network, a throw-away profile)."""
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--screenshot={out}",
        f"--window-size={size[0]},{size[1]}",
        html_path.resolve().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.is_file(), f"chromium wrote no screenshot (rc {done.returncode}): {done.stderr}"
    return np.asarray(Image.open(out).convert("RGB")).astype(int)


def _near(pixels: np.ndarray, rgb, tol: int = 40) -> int:
    return int((np.abs(pixels - np.array(rgb)).max(axis=-1) <= tol).sum())


@pytest.fixture
def predictions_csv(tmp_path, synth_plate):
    """A predictions CSV as the predict command writes it, with columns added by newer
    versions (path, sites_used, notes) and probabilities spread over 0..1."""
    wells = synth_plate.wells
    lines = [
        "plate,well,site,level,prediction,confidence,p_control,p_treated,path,sites_used,notes"
    ]
    for i, well in enumerate(wells):
        p = i / (len(wells) - 1)
        pred = "treated" if p >= 0.5 else "control"
        conf = max(p, 1 - p)
        lines.append(f"P1,{well},1,site,{pred},{conf},{1 - p},{p},/x/P1,,")
        lines.append(f'P1,{well},,well,{pred},{conf},{1 - p},{p},/x/P1,1,"a, note"')
    path = tmp_path / "predictions.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_report_shows_its_figures_in_chromium(evidence_model, predictions_csv, tmp_path):
    from napari_dcmix.model import save_model

    model = evidence_model(STAINS, ["control", "treated"], EVIDENCE)
    model_file = save_model(model, tmp_path / "model.pt")
    out = tmp_path / "report.html"
    from napari_dcmix.report import write_report

    result = write_report(model, out, predictions=predictions_csv, model_path=model_file)
    assert result.figures == 3  # importance, confusion, one heatmap
    text = out.read_text()
    assert "Mito drives the prediction" in text and "0.95 (0.81-0.99, 24 wells)" in text
    assert "http" not in text.replace("http-equiv", "")  # self-contained: nothing to fetch
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 3 and all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)

    pixels = screenshot(out, tmp_path / "shot.png", tmp_path)
    assert _near(pixels, (255, 0, 255)) > 2000  # the Mito bar, in the Mito layer's magenta
    assert _near(pixels, (0, 0, 255)) > 500  # the DNA bar
    assert _near(pixels, (8, 48, 107)) > 1000  # the confusion matrix's dark cells
    assert _near(pixels, (253, 231, 37)) > 500  # heatmap: wells near p=1 (viridis yellow)
    assert _near(pixels, (68, 1, 84)) > 500  # and near p=0 (viridis purple)

    # negative control: the same page without its images shows none of those colours
    blank = tmp_path / "blank.html"
    blank.write_text(re.sub(r'src="data:image/png;base64,[^"]+"', 'src=""', text))
    empty = screenshot(blank, tmp_path / "blank.png", tmp_path)
    assert _near(empty, (255, 0, 255)) < 50 and _near(empty, (253, 231, 37)) < 50


def test_report_of_a_model_without_evidence_says_what_is_missing(small_model, tmp_path, capsys):
    from napari_dcmix.model import save_model

    model_file = save_model(small_model, tmp_path / "plain.pt")
    out = tmp_path / "r.html"
    assert main(["report", str(model_file), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "not in the report: No held-out evidence" in said
    assert "No predictions were given" in said
    text = out.read_text()
    assert "Not in this report" in text and "bars are its mixing weights" in text
    assert len(re.findall(r"data:image/png;base64", text)) == 1  # the weights chart only
    assert "small_cnn" in text and "init_seed" in text


def test_report_of_predict_output_with_skipped_wells_and_plates_of_one_name(
    small_model, damaged_plate, tmp_path, capsys
):
    """Valid predict output: a well whose every site was skipped (empty p_ columns on its well
    row) and two plates of one name told apart by their path: one heatmap per plate."""
    import shutil

    from napari_dcmix.model import save_model
    from napari_dcmix.session.predictions_csv import read_well_tables

    model_file = save_model(small_model, tmp_path / "m.pt")
    first, second = tmp_path / "run1" / "plate", tmp_path / "run2" / "plate"
    for where in (first, second):
        shutil.copytree(damaged_plate, where)
    csv_path = tmp_path / "p.csv"
    assert main(["predict", str(first), str(second), "--model", str(model_file), "--out",
                 str(csv_path), "--skip-bad-sites", "--device", "cpu", "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    tables = read_well_tables(csv_path)
    assert [(t.plate, t.path) for t in tables] == [("plate", str(first)), ("plate", str(second))]
    assert all(np.isnan(t.probs["A03"]).all() and np.isfinite(t.probs["A01"]).all()
               for t in tables)  # fmt: skip
    out = tmp_path / "r.html"
    assert main(["report", str(model_file), "--predictions", str(csv_path), "--out",
                 str(out)]) == 0  # fmt: skip
    said = capsys.readouterr().out
    assert f"plate plate ({first}): 1 well(s) have no predicted site" in said and "A03" in said
    text = out.read_text()
    assert len(re.findall(r"data:image/png;base64", text)) == 3  # weights, 2 plate heatmaps
    assert f"plate plate ({second}) p(treated)" in text


def test_report_cli_bad_input(small_model, tmp_path, capsys, predictions_csv):
    from napari_dcmix.model import save_model

    model_file = save_model(small_model, tmp_path / "m.pt")
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "nope.pt"), "--out", str(out)]) == 2
    assert "nope.pt" in capsys.readouterr().err
    out.write_text("mine")
    assert main(["report", str(model_file), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "mine"
    bad = tmp_path / "bad.csv"
    bad.write_text("plate,well,site\nP1,A01,1\n")
    assert (
        main(
            [
                "report",
                str(model_file),
                "--predictions",
                str(bad),
                "--out",
                str(tmp_path / "r2.html"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "bad.csv" in err and "p_<class>" in err and "Traceback" not in err
    assert not (tmp_path / "r2.html").exists()
    assert (
        main(
            [
                "report",
                str(model_file),
                "--predictions",
                str(tmp_path / "none.csv"),
                "--out",
                str(tmp_path / "r3.html"),
            ]
        )
        == 2
    )
    assert "none.csv" in capsys.readouterr().err


def test_chart_states_in_the_shared_figure_code():
    """Greyed bars when the model did not learn; one bar group per class; error bars."""
    from matplotlib.figure import Figure

    from napari_dcmix.figures import GREY, draw_importance, stain_colors

    colors = stain_colors(STAINS)
    ax = Figure().add_subplot()
    bars, _ = draw_importance(ax, STAINS, [0.2] * 5, colors, greyed=True)
    assert all(np.allclose(b.get_facecolor()[:3], GREY[:3]) for b in bars)
    ax = Figure().add_subplot()
    per_class = {
        c: {"values": [0.1, 0.2, 0.3, 0.2, 0.2], "interval": [[0, 1]] * 5} for c in ("a", "b")
    }
    bars, _ = draw_importance(ax, STAINS, [0.2] * 5, colors, per_class=per_class)
    assert len(bars) == 10 and [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    assert np.allclose(bars[4].get_facecolor()[:3], (1, 0, 1))  # Mito magenta in each group
    assert len(ax.collections) == 2  # one set of error bars per class
