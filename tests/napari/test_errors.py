"""Errors reach the user as napari notifications with specific text; the widget stays usable."""

from __future__ import annotations

import numpy as np
import pytest


def _buttons_usable(widget) -> bool:
    return (
        widget.job is None
        and widget.predict_section.predict_button.isEnabled()
        and widget.finetune_section.train_button.isEnabled()
        and not widget.finetune_section.cancel_button.isEnabled()
    )


def test_unreadable_plate(widget, notifications, tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("no images here")
    assert not widget.open_plate(tmp_path / "junk")
    assert any("Open plate" in m and "junk" in m for m in notifications)
    assert widget.plate is not None  # the plate already open is kept
    assert not widget.open_session(tmp_path / "junk")  # not a session folder either
    assert "session.json is missing" in notifications[-1]
    assert widget.plate is not None


def test_finetune_needs_two_annotated_classes(widget, notifications):
    assert widget.run_finetune() is None
    assert "no wells are annotated" in notifications[-1]
    widget.set_annotations({"A01": "treated", "A02": "treated"})
    assert widget.run_finetune() is None
    assert "annotate wells of at least two classes" in notifications[-1]
    assert "'treated'" in notifications[-1]
    assert _buttons_usable(widget)


def test_model_channel_mismatch(widget, notifications):
    from napari_dcmix.model import build_model

    widget.load_model(build_model(["DNA", "ER"], ["a", "b"], input_size=32))
    assert widget.run_predict() is None
    assert "differ from plate" in notifications[-1] and "Fine-tune" in notifications[-1]
    assert _buttons_usable(widget)
    assert widget.show_network_view() is None
    assert "What the network sees" in notifications[-1] and "differ" in notifications[-1]


def test_bad_model_file(widget, notifications, tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    model = widget.model
    assert not widget.load_model(bad)
    assert "Load model" in notifications[-1] and "model.pt" in notifications[-1]
    assert widget.model is model


@pytest.mark.parametrize("where", ["predict", "finetune"])
def test_exception_in_worker(widget, notifications, wait_for, monkeypatch, synth_plate, where):
    import napari_dcmix.model as core

    def boom(*args, **kwargs):
        yield from ()
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(core, "predict_plate" if where == "predict" else "train", boom)
    model = widget.model
    if where == "predict":
        job = widget.run_predict()
    else:
        widget.set_annotations(synth_plate.labels)
        job = widget.run_finetune(epochs=1)
    wait_for(job)
    assert job.failed
    assert any("RuntimeError: disk on fire" in m for m in notifications)
    assert widget.model is model
    assert _buttons_usable(widget)


def test_actions_without_a_plate(make_napari_viewer, notifications):
    from napari_dcmix._napari.widget import DcmixWidget

    w = DcmixWidget(make_napari_viewer())
    assert w.run_predict() is None
    assert "open a plate first" in notifications[-1]
    assert w.export_csv("x.csv") is None


def test_failed_finetune_restores_the_chart_and_shows_the_device(
    widget, notifications, wait_for, monkeypatch, synth_plate
):
    import napari_dcmix.model as core
    from napari_dcmix.model.train_settings import TrainProgress

    channels = list(synth_plate.channels)
    fake = {c: (0.9 if c == "DNA" else 0.1 / (len(channels) - 1)) for c in channels}

    def half_then_boom(*args, **kwargs):
        yield TrainProgress(
            epoch=1, epochs=2, step=1, steps=1, loss=0.5, train_accuracy=0.5,
            val_accuracy=None, importance=fake, message="epoch 1", device="cpu",
        )  # fmt: skip
        raise RuntimeError("out of memory")

    monkeypatch.setattr(core, "train", half_then_boom)
    widget.model_section.show_device("–")
    model = widget.model
    shown_by_model = list(model.channel_importance().values())
    widget.set_annotations(synth_plate.labels)
    job = widget.run_finetune(epochs=2)
    wait_for(job)
    assert job.failed and widget.model is model
    assert any("RuntimeError: out of memory" in m for m in notifications)
    # the device the worker reported is shown; the discarded model's importance is not
    assert widget.model_section.device_label.text() == "device used: cpu"
    assert np.allclose(widget.chart.values, shown_by_model)
    assert "failed" in widget.finetune_section.status.text()
