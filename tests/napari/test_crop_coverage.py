"""The fine-tune section says what one network input covers, and draws it on the plate."""

from __future__ import annotations

import numpy as np


def _crop_layer(viewer):
    found = [la for la in viewer.layers if la.metadata.get("dcmix_role") == "crop-size"]
    assert len(found) == 1
    return found[0]


def test_crop_rectangle_follows_the_scale_settings(widget, viewer, synth_plate) -> None:
    session = widget.session
    section = widget.finetune_section
    # the test model is a whole-site model: no crop to draw, the text says so
    assert "whole site" in section.coverage.text()
    assert not [la for la in viewer.layers if la.metadata.get("dcmix_role") == "crop-size"]

    session.update_settings("train", bin=1, crop=32)
    assert section.coverage.text() == "One crop covers 32 x 32 camera pixels."
    layer = _crop_layer(viewer)
    geometry = widget.layers.current.geometry
    y, x = geometry.site_origin(widget.plate.wells[0], 1)
    rect = np.asarray(layer.data[0])
    assert rect.min(axis=0).tolist() == [y, x] and (
        rect.max(axis=0) - rect.min(axis=0)
    ).tolist() == [32, 32]

    # binned by 2: the same 32-pixel crop covers 64 camera pixels (the whole 64 px site)
    session.update_settings("train", bin=2)
    assert "64 x 64 camera pixels (binned by 2: 32 px)" in section.coverage.text()
    assert _crop_layer(viewer) is layer  # updated in place: no scene rebuild per change
    rect = np.asarray(layer.data[0])
    assert (rect.max(axis=0) - rect.min(axis=0)).tolist() == [64, 64]
    assert list(layer.features["text"]) == [section.coverage.text()]
    n_layers = len(viewer.layers)
    session.events.model_changed.emit()  # nothing changed: the layer stays as it is
    assert _crop_layer(viewer) is layer and len(viewer.layers) == n_layers

    # with the plate's pixel size known, micrometres too
    widget.plate.pixel_size_um = 0.5
    session.update_settings("train", bin=1)
    assert section.coverage.text() == "One crop covers 32 x 32 camera pixels = 16 x 16 um."

    # a crop the sites cannot hold is said (both sizes), not drawn
    session.update_settings("train", crop=128)
    text = section.coverage.text()
    assert text.startswith("Fine-tune cannot use this scale:") and "64 x 64 px" in text
    assert "128 x 128 px crop" in text
    assert not [la for la in viewer.layers if la.metadata.get("dcmix_role") == "crop-size"]
