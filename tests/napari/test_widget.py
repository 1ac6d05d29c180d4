"""The DCMIX widget on a real viewer: predict, overlays, annotate, fine-tune, cancel, export."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from napari_dcmix._napari.colors import class_colors
from napari_dcmix._napari.overlays import SITE_LAYER, WELL_LAYER


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_open_plate_adds_channels_and_wells(widget, synth_plate):
    viewer = widget.viewer
    assert widget.plate.name == synth_plate.name
    names = [layer.name for layer in viewer.layers]
    assert names[:5] == synth_plate.channels and names[-1] == "wells"
    assert set(names[5:7]) == {SITE_LAYER, WELL_LAYER}
    assert len(viewer.layers[WELL_LAYER].data) == len(synth_plate.wells)
    assert widget.export_csv("never.csv") is None  # nothing predicted yet
    assert widget.wells_layer is viewer.layers["wells"]
    assert "12 wells" in widget.plate_section.info.text()
    # the chart shows the loaded model's importance, coloured like the channel layers
    assert widget.chart.names == synth_plate.channels
    mito = widget.chart.colors[synth_plate.channels.index("Mito")]
    assert np.allclose(mito[:3], viewer.layers["Mito"].colormap.colors[-1][:3])


def test_predict_overlays_and_export(widget, wait_for, synth_plate, tmp_path):
    job = widget.run_predict()
    assert widget.predict_section.cancel_button.isEnabled()
    wait_for(job)
    preds = widget.predictions
    assert preds is not None and preds.device == "cpu"
    assert "cpu" in widget.model_section.device_label.text()
    wells = widget.viewer.layers[WELL_LAYER]
    feats = wells.features
    assert list(feats["well"]) == synth_plate.wells
    assert {"prediction", "confidence", "n_sites", "p_control", "p_treated"} <= set(feats)
    colors = class_colors(preds.class_names)
    for i, (cls, conf) in enumerate(zip(feats["prediction"], feats["confidence"], strict=True)):
        assert np.allclose(wells.edge_color[i][:3], colors[cls][:3])
        assert np.isclose(wells.face_color[i][3], 0.10 + 0.45 * conf, atol=1e-3)
    text = list(wells.text.values)
    assert text[0] == f"{feats['prediction'][0]} {feats['confidence'][0]:.2f}"
    sites = widget.viewer.layers[SITE_LAYER]
    assert len(sites.data) == len(synth_plate.wells) * 2
    widget.predict_section.sites_box.setChecked(True)
    assert sites.visible
    # the wells layer stays on top so it remains selectable for annotation
    assert widget.viewer.layers[-1] is widget.wells_layer
    assert "control" in widget.predict_section.legend.text()

    out = widget.export_csv(tmp_path / "pred.csv")
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["well"] for r in rows] == list(feats["well"])
    assert [r["prediction"] for r in rows] == list(feats["prediction"])
    assert np.allclose([float(r["confidence"]) for r in rows], feats["confidence"])


def test_export_asks_before_overwriting(widget, wait_for, answer, tmp_path):
    wait_for(widget.run_predict())
    out = tmp_path / "pred.csv"
    out.write_text("keep me")
    asked = answer(False)
    assert widget.export_csv(tmp_path / "pred") is None  # the suffix is fixed first: pred.csv
    assert out.read_text() == "keep me" and len(asked.questions) == 1
    assert "pred.csv" in asked.questions[0]
    answer(True)
    assert widget.export_csv(tmp_path / "pred") == out
    assert out.read_text().startswith("plate,well,prediction")


def test_plugin_docks_from_the_manifest(viewer, synth_plate):
    _, dcmix = viewer.window.add_plugin_dock_widget("napari-dcmix", "DCMIX")
    _, chart = viewer.window.add_plugin_dock_widget("napari-dcmix", "Channel importance")
    assert dcmix.viewer is viewer and chart.viewer is viewer
    viewer.open(str(synth_plate.path), plugin="napari-dcmix")
    assert dcmix.plate is not None and dcmix.plate.name == synth_plate.name  # adopted
    dcmix.show_importance({"DNA": 0.1, "Mito": 0.9})
    assert chart.ranking() == ["Mito", "DNA"]  # the menu's chart follows the widget
    dcmix.set_annotations({"A01": "control"})
    viewer.add_points([[1, 1]])  # other layers come and go: the plate and annotations stay
    assert dcmix.annotations == {"A01": "control"} and dcmix.plate is not None


def test_annotate_by_selection_and_csv(widget, answer, tmp_path, synth_plate):
    layer = widget.wells_layer
    widget.annotate_section.select_button.setChecked(True)
    assert layer.mode == "select" and widget.viewer.layers.selection.active is layer
    layer.selected_data = {0, 2}
    widget.annotate_section.class_list.setCurrentRow(1)  # "treated"
    widget.assign_selected(widget.class_names[1])
    layer.selected_data = {1}
    widget.annotate_section.assign_selected()  # the current class, as the button does
    assert widget.annotations == {w: "treated" for w in np.array(synth_plate.wells)[[0, 1, 2]]}
    treated = class_colors(widget.class_names)["treated"]
    assert np.allclose(layer.edge_color[0][:3], treated[:3])
    assert np.allclose(layer.edge_color[5][:3], 0.5)
    assert layer.text.values[0] == f"{synth_plate.wells[0]} treated"

    # rename the class: annotations follow
    widget.annotate_section.class_list.item(1).setText("hit")
    assert set(widget.annotations.values()) == {"hit"}

    path = widget.save_annotations(tmp_path / "labels.csv")
    widget.set_annotations({})
    assert widget.import_annotations(path)
    assert widget.annotations == {w: "hit" for w in synth_plate.wells[:3]}
    asked = answer(False)  # importing over annotations asks first; declining keeps them
    assert not widget.import_annotations(synth_plate.labels_csv)
    assert widget.annotations == {w: "hit" for w in synth_plate.wells[:3]}
    assert "3 wells are annotated" in asked.questions[0]
    answer(True)
    assert widget.import_annotations(synth_plate.labels_csv)
    assert widget.annotations == synth_plate.labels


def test_removing_an_annotated_class_asks(widget, answer, synth_plate):
    section = widget.annotate_section
    widget.set_annotations({synth_plate.wells[0]: "treated", synth_plate.wells[1]: "control"})
    section.class_list.setCurrentRow(widget.class_names.index("treated"))
    asked = answer(False)
    section._remove_clicked()
    assert "treated" in widget.class_names and len(widget.annotations) == 2
    assert "1 wells are annotated 'treated'" in asked.questions[0]
    answer(True)
    section._remove_clicked()
    assert "treated" not in widget.class_names
    assert widget.annotations == {synth_plate.wells[1]: "control"}
    section.add_class("unused")  # a class without wells goes without asking
    widget.dialogs.confirm = lambda t, q: pytest.fail(q)
    section.class_list.setCurrentRow(widget.class_names.index("unused"))
    section._remove_clicked()
    assert "unused" not in widget.class_names


def test_switching_plates_keeps_annotations_and_predictions(
    widget, wait_for, synth_plate, other_plate
):
    from napari_dcmix._napari.overlays import find_overlay

    viewer = widget.viewer
    first_plate, first_wells = widget.plate, widget.wells_layer
    wait_for(widget.run_predict())
    first_preds = widget.predictions
    labels = {synth_plate.wells[0]: "control", synth_plate.wells[1]: "treated"}
    widget.set_annotations(labels)

    assert widget.open_plate(other_plate.path)
    assert widget.plate.name == "Other" and widget.annotations == {}
    assert widget.predictions is None
    assert not widget.predict_section.export_button.isEnabled()
    # the first plate's prediction overlays are still in the viewer, with their predictions
    old = find_overlay(viewer, "well-predictions", first_plate)
    assert old is not None and old in viewer.layers
    assert list(old.features["prediction"]) == [w.prediction for w in first_preds.wells()]
    assert find_overlay(viewer, "site-predictions", first_plate) in viewer.layers
    widget.set_annotations({other_plate.wells[0]: "treated"})

    widget.use_wells_layer(first_wells)  # as the plate combo does
    assert widget.plate is first_plate and widget.annotations == labels
    assert widget.predictions is first_preds and widget.well_layer is old
    assert widget.predict_section.export_button.isEnabled()
    assert list(first_wells.features["label"][:2]) == ["control", "treated"]
    wells_other = [la for la in widget.plate_section.wells_layers() if la is not first_wells]
    widget.use_wells_layer(wells_other[0])
    assert widget.annotations == {other_plate.wells[0]: "treated"}


def test_finetune_updates_chart_and_finds_the_phenotype(
    widget, wait_for, answer, synth_plate, phenotype
):
    before_model = widget.model
    before_values = list(widget.chart.values)
    widget.set_annotations(synth_plate.labels)
    job = widget.run_finetune(mode="all", epochs=5, mixing_lr=0.05, seed=0)
    assert not widget.finetune_section.train_button.isEnabled()
    wait_for(job, timeout=120_000)
    assert not job.failed and not job.cancelled
    assert widget.model is not before_model and widget.model_dirty
    info = widget.model.training_info  # the overrides were used, not the form's values
    assert (info["mode"], info["epochs"], info["mixing_lr"]) == ("all", 5, 0.05)
    assert len(widget.history) == 5 * len(widget.model.members)  # every member's epochs
    assert len(widget.finetune_section.losses) >= 5
    assert widget.chart.values != before_values
    assert widget.chart.ranking()[0] == phenotype
    assert widget.finetune_section.train_button.isEnabled()
    assert "Predict" in widget.finetune_section.status.text()
    assert "cpu" in widget.model_section.device_label.text()

    # loading another model would discard the unsaved fine-tuned one: it asks first
    tuned = widget.model
    asked = answer(False)
    widget.model_section.default_button.click()
    assert widget.model is tuned and widget.model_dirty and len(asked.questions) == 1
    assert "not saved" in asked.questions[0]
    answer(True)
    assert widget.load_model(before_model)
    assert widget.model is before_model and not widget.model_dirty


def test_finetune_rejects_unknown_options(widget, synth_plate):
    widget.set_annotations(synth_plate.labels)
    with pytest.raises(TypeError, match="mixing_rl"):
        widget.run_finetune(mixing_rl=0.05)
    assert widget.job is None


def test_cancel_mid_training_keeps_the_model(widget, qtbot, wait_for, synth_plate):
    model = widget.model
    params = _params(model)
    widget.set_annotations(synth_plate.labels)
    job = widget.run_finetune(mode="all", epochs=200)
    qtbot.waitUntil(lambda: len(widget.finetune_section.losses) >= 2, timeout=60_000)
    widget.cancel()
    wait_for(job)
    assert job.cancelled
    assert widget.model is model
    assert all(torch.equal(a, b) for a, b in zip(params, _params(model), strict=True))
    assert "cancelled" in widget.finetune_section.status.text()
    assert widget.finetune_section.train_button.isEnabled()


def test_save_model_asks_before_overwriting(widget, tmp_path):
    from napari_dcmix.model import load_model

    answers: list[str] = []
    widget.dialogs.confirm = lambda title, q: answers.append(q) or False
    path = tmp_path / "model.pt"
    assert widget.save_model(path) == path and answers == []
    stamp = path.stat().st_mtime_ns
    assert widget.save_model(path) is None and len(answers) == 1
    assert path.stat().st_mtime_ns == stamp
    widget.dialogs.confirm = lambda title, q: True
    assert widget.save_model(path) == path
    assert load_model(path).channel_names == widget.model.channel_names
