"""The bad-input corpus cases that make sense in napari, on the real widget: the same input
gives a notification with the same specific text, the widget keeps what it had and stays
usable, and no file changes. (The cases and the bank: tests/bad_input/bad_input_cases.py.)"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bad_input"))
from bad_input_cases import CASES, build_bank, snapshot

WIDGET_CASES = [c for c in CASES if c.widget is not None]


@pytest.fixture(scope="session")
def bank(tmp_path_factory):
    return build_bank(tmp_path_factory.mktemp("bank"))


def test_a_representative_subset():
    methods = {c.widget[0] for c in WIDGET_CASES}
    assert {"open_plate", "load_model", "import_annotations"} <= methods
    assert len(WIDGET_CASES) >= 15


def test_notifications(widget, notifications, bank, tmp_path):
    """Every widget case in turn on one widget (a viewer per case would cost 2-3 s each)."""
    failures = []
    for case in WIDGET_CASES:
        ws = tmp_path / case.id
        case.build(ws, bank)
        before = snapshot(ws)
        plate, model, annotations = widget.plate, widget.model, widget.annotations
        notifications.clear()
        method, argument = case.widget
        result = getattr(widget, method)(argument.replace("{ws}", str(ws)))
        expect = case.expect.replace("{ws}", re.escape(str(ws)))
        problems = [
            "the call succeeded" if result else "",
            ""
            if any(re.search(expect, m, re.MULTILINE) for m in notifications)
            else f"no notification matches {expect!r}: {notifications}",
            "an unexpected error" if any("unexpected" in m for m in notifications) else "",
            "" if widget.plate is plate and widget.model is model else "plate or model changed",
            "" if widget.annotations == annotations else "annotations changed",
            "" if snapshot(ws) == before else "files changed",
            ""
            if widget.job is None and widget.predict_section.predict_button.isEnabled()
            else "the widget is not usable",
        ]
        failures += [f"{case.id}: {p}" for p in problems if p]
    assert not failures, "\n".join(failures)


def test_save_annotations_into_a_missing_folder(widget, notifications, tmp_path):
    widget.set_annotations({"A01": "control", "A02": "treated"})
    target = tmp_path / "gone" / "map.csv"
    assert widget.save_annotations(target) is None
    assert any(
        "Save annotations" in m and str(target) in m and "No such file or directory" in m
        for m in notifications
    ), notifications
    assert not (tmp_path / "gone").exists()


def test_save_model_under_a_file(widget, notifications, tmp_path):
    (tmp_path / "afile").write_text("keep")
    assert widget.save_model(tmp_path / "afile" / "model.pt") is None
    assert any("Save model" in m and "afile" in m for m in notifications), notifications
    assert (tmp_path / "afile").read_text() == "keep"
