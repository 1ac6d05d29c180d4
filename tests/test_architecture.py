"""The core stays importable without Qt/napari, and napari's startup path does not import torch."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "napari_dcmix",
    "napari_dcmix.errors",
    "napari_dcmix.plate",
    "napari_dcmix.synthetic",
    "napari_dcmix.model",
]


def _imported_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_core_imports_neither_qt_nor_napari():
    mods = _imported_after("\n".join(f"import {m}" for m in CORE_MODULES))
    forbidden = {
        m
        for m in mods
        if m.split(".")[0] in {"napari", "qtpy", "PyQt6", "PyQt5", "PySide6", "magicgui"}
    }
    assert not forbidden, f"core imported GUI modules: {sorted(forbidden)[:10]}"


def test_plugin_entry_points_do_not_import_torch():
    mods = _imported_after(
        "import napari_dcmix, napari_dcmix.plate, napari_dcmix._napari, napari_dcmix.cli"
    )
    assert "torch" not in mods
