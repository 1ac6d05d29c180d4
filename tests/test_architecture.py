"""The core stays importable without Qt/napari, and napari's startup path does not import torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CORE_MODULES = [
    "napari_dcmix",
    "napari_dcmix.errors",
    "napari_dcmix.plate",
    "napari_dcmix.synthetic",
    "napari_dcmix.model",
    "napari_dcmix.session",
    "napari_dcmix.report",
    "napari_dcmix.figures",
    "napari_dcmix.plate.channel_map",
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


def _manifest_entries() -> list[str]:
    """napari.yaml's ``python_name`` entries (``module:attribute``), as npe2 resolves them."""
    import yaml

    manifest = Path(__file__).parents[1] / "src" / "napari_dcmix" / "napari.yaml"
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    commands = data.get("contributions", {}).get("commands", [])
    return sorted(entry["python_name"] for entry in commands if "python_name" in entry)


def _manifest_modules() -> list[str]:
    return sorted({entry.split(":")[0] for entry in _manifest_entries()})


def test_manifest_names_the_plugin_modules():
    assert _manifest_modules() == [
        "napari_dcmix._napari.chart",
        "napari_dcmix._napari.reader",
        "napari_dcmix._napari.sample_data",
        "napari_dcmix._napari.widget",
    ]


def test_plugin_entry_points_do_not_import_torch():
    """Importing every module npe2 loads at startup (reader, sample data, widget, chart) and the
    CLI parser must not import torch: torch is imported when a model is first used."""
    lines = ["import napari_dcmix, napari_dcmix.plate, napari_dcmix.cli"]
    lines += [f"from {m} import {a}" for m, a in (e.split(":") for e in _manifest_entries())]
    lines += ["napari_dcmix.cli.build_parser()"]
    mods = _imported_after("\n".join(lines))
    assert set(_manifest_modules()) <= mods  # the probe really imported them
    assert "torch" not in mods
