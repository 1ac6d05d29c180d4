"""`napari-dcmix demo --screenshot` renders the demo headless: plate, overlay and chart."""

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
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = [ln for ln in result.stdout.splitlines() if "predicted on" in ln]
    assert summary, result.stdout
    # Predictions overlaid for every well of the sample plate, both classes found,
    # two classes annotated, and the chart drawn with a ranking of the five stains.
    line = summary[0]
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
