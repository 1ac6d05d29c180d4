"""plate/ and synthetic/ import neither Qt, napari nor torch."""

from __future__ import annotations

import subprocess
import sys


def test_no_gui_or_torch_imports():
    code = (
        "import sys, napari_dcmix.plate, napari_dcmix.synthetic, napari_dcmix.plate.labels\n"
        "import napari_dcmix.plate.layouts.omezarr, napari_dcmix.plate.layouts.operetta\n"
        "import napari_dcmix.plate.layouts.rxrx1, napari_dcmix.plate.layouts.imagexpress\n"
        "import napari_dcmix.synthetic.writers\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'torch', 'magicgui')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
