"""The plugin installs, registers with napari, and renders in a real viewer under Xvfb."""

from __future__ import annotations

import subprocess
import sys

import numpy as np


def test_manifest_is_registered_and_valid():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-dcmix")
    widget_names = {w.display_name for w in manifest.contributions.widgets}
    assert "DCMIX" in widget_names
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-dcmix"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dock_widget_in_real_viewer_renders(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer(show=True)
    rng = np.random.default_rng(0)
    viewer.add_image(rng.integers(50, 255, size=(128, 128), dtype=np.uint8), name="noise")
    dock, widget = viewer.window.add_plugin_dock_widget("napari-dcmix", "DCMIX")
    qtbot.wait(50)
    viewer.reset_view()

    shot = viewer.screenshot(str(tmp_path / "shot.png"), canvas_only=False, flash=False)
    assert (tmp_path / "shot.png").exists()
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    # The canvas rendered the image: a black canvas (no GL context) has mean ~0 and no spread.
    assert canvas[..., :3].mean() > 20
    assert canvas[..., :3].std() > 10
    # The dock is shown and is part of the window screenshot (wider than the canvas).
    assert dock.isVisible()
    assert widget.isVisible()
    assert shot.shape[1] > canvas.shape[1]


def test_cli_help_lists_subcommands():
    result = subprocess.run(
        [sys.executable, "-m", "napari_dcmix.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for name in ("demo", "info", "synth", "train", "predict", "importance"):
        assert name in result.stdout
