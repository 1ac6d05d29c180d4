"""`napari-dcmix demo --screenshot` runs the demo headless, as a user would see it: the default
model predicts the sample plate, Fine-tune (the widget's defaults) learns from the demo's
annotated wells, the plate is predicted again, and the chart ends on a verdict that holds."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image


def test_demo_screenshot(tmp_path):
    shot = tmp_path / "demo.png"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))  # sample plate written afresh
    # the demo shows the shipped model (tests/screen sets a small default model for the session)
    env.pop("NAPARI_DCMIX_DEFAULT_MODEL", None)
    result = subprocess.run(
        [sys.executable, "-m", "napari_dcmix.cli", "demo", "--screenshot", str(shot)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    summary = [ln for ln in lines if "predicted on" in ln]
    assert len(summary) == 2, result.stdout  # before and after the fine-tune
    # The default model's chart: its phenotype was in a different stain on each training
    # plate, so no single stain is named.
    default = next(ln for ln in lines if "the default model's verdict:" in ln)
    assert "No single stain stands out: Mito, ER and DNA overlap" in default
    # The demo ends on the fine-tuned model's verdict: the sample's phenotype lives in Mito
    # and, weaker, in ER; the chart may name Mito, or say that Mito and ER overlap (both carry
    # it): never another stain, and only with held-out wells above chance.
    final = next(ln for ln in lines if "the chart says:" in ln).split("the chart says: ")[1]
    assert "The model separates the classes" in final or "drives the prediction" in final
    assert "held-out balanced accuracy" in final and "8 wells" in final
    if final.startswith("No single stain stands out: "):
        group = final.split(": ")[1].split(" overlap")[0].replace(" and ", ", ").split(", ")
        assert "Mito" in group and set(group) <= {"Mito", "ER"}, final
    else:
        assert final.startswith("Mito drives the prediction"), final
    # Predictions overlaid for every well of the sample plate, both classes found,
    # two classes annotated, and the chart drawn with a ranking of the five stains.
    line = summary[-1]
    assert "plate DCMIX-Sample (48 wells)" in line
    assert "predicted on cpu" in line
    assert "control" in line and "treated" in line
    assert "8 wells annotated" in line
    assert line.count(" > ") == 4

    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    h, w, _ = img.shape
    assert w >= 1200 and h >= 800
    # The plate is rendered in the canvas (centre of the window): not a black canvas.
    centre = img[int(h * 0.35) : int(h * 0.6), int(w * 0.3) : int(w * 0.6)]
    assert centre.mean() > 15 and centre.std() > 15
    # The chart dock (lower right) shows saturated bars in the channel colours (green, magenta).
    chart = img[int(h * 0.65) :, int(w * 0.68) :]
    r, g, b = chart[..., 0], chart[..., 1], chart[..., 2]
    assert ((g > 200) & (r < 80) & (b < 80)).sum() > 200
    assert ((r > 200) & (b > 200) & (g < 80)).sum() > 200


def test_a_failed_step_exits_2_naming_it(tmp_path):
    """The sample's plate map holds one class only: Fine-tune is refused after the first
    prediction; the demo says so and exits 2, writing no screenshot."""
    from napari_dcmix.sample import SAMPLE_VERSION, sample_plate

    cache = tmp_path / "cache"
    sample = sample_plate(cache / "napari-dcmix" / f"sample-plate-v{SAMPLE_VERSION}")
    rows = sample.labels_csv.read_text().splitlines()
    sample.labels_csv.write_text(
        "\n".join([rows[0], *(f"{row.split(',')[0]},treated" for row in rows[1:])]) + "\n"
    )
    shot = tmp_path / "demo.png"
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    env.pop("NAPARI_DCMIX_DEFAULT_MODEL", None)
    result = subprocess.run(
        [sys.executable, "-m", "napari_dcmix.cli", "demo", "--screenshot", str(shot)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 2, (result.stdout, result.stderr[-3000:])
    assert "the demo stopped: the fine-tune step was refused" in result.stderr
    assert "annotate wells of at least two classes" in result.stderr
    assert "Traceback" not in result.stderr and not shot.exists()


def test_the_screenshot_replaces_a_file_whole(make_napari_viewer, tmp_path):
    """The PNG goes through napari_dcmix.atomic: a file at the path is replaced by a new one,
    never written in place (a second name of the old file keeps the old bytes)."""
    from napari_dcmix._napari.demo import save_screenshot

    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.arange(64 * 64, dtype=float).reshape(64, 64))
    shot = tmp_path / "demo.png"
    shot.write_bytes(b"the user's file")
    os.link(shot, tmp_path / "same-file.png")
    assert save_screenshot(viewer, shot) == shot
    assert (tmp_path / "same-file.png").read_bytes() == b"the user's file"
    img = np.asarray(Image.open(shot))
    assert img.ndim == 3 and img.shape[0] > 100 and img.std() > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.png", "same-file.png"]
