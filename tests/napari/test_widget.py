"""The DCMIX widget as a view of its session, on a real viewer: what the buttons do, what the
layers show, what is asked before something is lost. (The workflow's logic is tested without
Qt in tests/session.)"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from napari_dcmix._napari.colors import class_colors
from napari_dcmix._napari.overlays import SITE_LAYER, WELL_LAYER


def test_open_plate_adds_channels_and_wells(widget, synth_plate):
    viewer = widget.viewer
    assert widget.plate.name == synth_plate.name
    names = [layer.name for layer in viewer.layers]
    assert names[:5] == synth_plate.channels and names[-1] == "wells"
    assert set(names[5:7]) == {SITE_LAYER, WELL_LAYER}
    assert len(viewer.layers[WELL_LAYER].data) == len(synth_plate.wells)
    assert widget.wells_layer is viewer.layers["wells"]
    assert "12 wells" in widget.plate_section.info.text()
    # the chart shows the loaded model's importance, coloured like the channel layers
    assert widget.chart.names == synth_plate.channels
    mito = widget.chart.colors[synth_plate.channels.index("Mito")]
    assert np.allclose(mito[:3], viewer.layers["Mito"].colormap.colors[-1][:3])
    # a model without stored evidence says its bars are weights, not a finding
    assert "No held-out evidence" in widget.chart.caption.text()


def test_predict_overlays_and_export(widget, wait_for, synth_plate, tmp_path):
    job = widget.run_predict()
    assert widget.predict_section.cancel_button.isEnabled()
    assert not widget.session_section.isEnabled()  # no session saved mid-task
    wait_for(job)
    preds = widget.predictions
    assert preds is not None and preds.device == "cpu"
    assert "cpu" in widget.model_section.device_label.text()
    wells = widget.viewer.layers[WELL_LAYER]
    feats = wells.features
    assert list(feats["well"]) == synth_plate.wells
    colors = class_colors(preds.class_names)
    for i, (cls, conf) in enumerate(zip(feats["prediction"], feats["confidence"], strict=True)):
        assert np.allclose(wells.edge_color[i][:3], colors[cls][:3])
        assert np.isclose(wells.face_color[i][3], 0.10 + 0.45 * conf, atol=1e-3)
    assert wells.text.values[0] == f"{feats['prediction'][0]} {feats['confidence'][0]:.2f}"
    sites = widget.viewer.layers[SITE_LAYER]
    assert len(sites.data) == len(synth_plate.wells) * 2
    widget.predict_section.sites_box.setChecked(True)
    assert sites.visible
    assert widget.viewer.layers[-1] is widget.wells_layer  # stays selectable for annotation
    assert "control" in widget.predict_section.legend.text()

    out = widget.export_csv(tmp_path / "pred.csv")
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["prediction"] for r in rows] == list(feats["prediction"])
    assert np.allclose([float(r["confidence"]) for r in rows], feats["confidence"])


def test_export_asks_before_overwriting(widget, wait_for, answer, tmp_path):
    assert widget.export_csv(tmp_path / "never.csv") is None  # nothing predicted yet
    wait_for(widget.run_predict())
    out = tmp_path / "pred.csv"
    out.write_text("keep me")
    asked = answer(False)
    assert widget.export_csv(tmp_path / "pred") is None  # the suffix is fixed first: pred.csv
    assert out.read_text() == "keep me" and "pred.csv" in asked.questions[0]
    answer(True)
    assert widget.export_csv(tmp_path / "pred") == out
    assert out.read_text().startswith("plate,well,prediction")


def test_plugin_docks_from_the_manifest(viewer, synth_plate):
    _, dcmix = viewer.window.add_plugin_dock_widget("napari-dcmix", "DCMIX")
    _, chart = viewer.window.add_plugin_dock_widget("napari-dcmix", "Channel importance")
    assert dcmix.viewer is viewer and chart.viewer is viewer
    viewer.open(str(synth_plate.path), plugin="napari-dcmix")
    assert dcmix.plate is not None and dcmix.plate.name == synth_plate.name  # adopted
    names = [layer.name for layer in viewer.layers]
    assert len(names) == len(set(names)) == 9  # the reader's layers, the overlays, one crop
    assert "one crop" in names and "wells" in names
    dcmix.show_importance({"DNA": 0.1, "Mito": 0.9})
    assert chart.ranking() == ["Mito", "DNA"]  # the menu's chart follows the widget
    dcmix.set_annotations({"A01": "control"})
    viewer.add_points([[1, 1]])  # other layers come and go: the plate and annotations stay
    assert dcmix.annotations == {"A01": "control"} and dcmix.plate is not None
    viewer.layers.remove("wells")  # the plate's own layer gone: the plate leaves the session
    assert dcmix.plate is None and dcmix.session.plates == {}


def test_annotate_by_selection_and_csv(widget, answer, tmp_path, synth_plate):
    layer = widget.wells_layer
    section = widget.annotate_section
    section.select_button.setChecked(True)
    assert layer.mode == "select" and widget.viewer.layers.selection.active is layer
    layer.selected_data = {0, 2}
    section.class_list.setCurrentRow(1)  # "treated"
    section.assign_selected()  # the current class, as the button does
    assert widget.annotations == {w: "treated" for w in np.array(synth_plate.wells)[[0, 2]]}
    treated = class_colors(widget.class_names)["treated"]
    assert np.allclose(layer.edge_color[0][:3], treated[:3])
    assert np.allclose(layer.edge_color[5][:3], 0.5)
    assert layer.text.values[0] == f"{synth_plate.wells[0]} treated"
    assert section.count.text() == "2 treated"

    section.class_list.item(1).setText("hit")  # rename in the list: annotations follow
    assert set(widget.annotations.values()) == {"hit"}
    section.class_list.item(0).setText("hit")  # a duplicate name is refused
    assert widget.class_names == ["control", "hit"]

    path = widget.save_annotations(tmp_path / "labels.csv")
    asked = answer(False)  # importing over annotations asks first; declining keeps them
    assert not widget.import_annotations(synth_plate.labels_csv)
    assert set(widget.annotations.values()) == {"hit"}
    assert "2 wells are annotated" in asked.questions[0]
    answer(True)
    assert widget.import_annotations(synth_plate.labels_csv)
    assert widget.annotations == synth_plate.labels
    assert widget.import_annotations(path) and set(widget.annotations.values()) == {"hit"}


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


def test_switching_plates_keeps_annotations_and_predictions(
    widget, wait_for, synth_plate, other_plate
):
    from napari_dcmix._napari.overlays import find_overlay

    viewer = widget.viewer
    first = widget.session.current_key
    wait_for(widget.run_predict())
    first_preds = widget.predictions
    labels = {synth_plate.wells[0]: "control", synth_plate.wells[1]: "treated"}
    widget.set_annotations(labels)

    assert widget.open_plate(other_plate.path)
    assert widget.plate.name == "Other" and widget.annotations == {}
    assert widget.predictions is None
    assert not widget.predict_section.export_button.isEnabled()
    old = find_overlay(viewer, "well-predictions", first)  # the first plate's overlays stay
    assert list(old.features["prediction"]) == [w.prediction for w in first_preds.wells()]
    widget.set_annotations({other_plate.wells[0]: "treated"})

    combo = widget.plate_section.layer_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [synth_plate.name, "Other"]
    widget.plate_section._plate_chosen(0)  # as choosing it in the combo does
    assert widget.annotations == labels and widget.predictions is first_preds
    assert widget.well_layer is old and widget.predict_section.export_button.isEnabled()
    assert list(widget.wells_layer.features["label"][:2]) == ["control", "treated"]


def test_finetune_updates_chart_and_asks_before_discarding(widget, wait_for, answer, synth_plate):
    before_model = widget.model
    widget.chart.set_importance(["DNA"], [1.0])  # so that a change of the chart shows
    widget.set_annotations(synth_plate.labels)
    job = widget.run_finetune(mode="all", epochs=2, mixing_lr=0.05, seed=0)
    assert not widget.finetune_section.train_button.isEnabled()
    wait_for(job, timeout=120_000)
    assert not job.failed and not job.cancelled
    assert widget.model is not before_model and widget.model_dirty
    info = widget.model.training_info  # the overrides were used, not the form's values
    assert (info["mode"], info["epochs"]) == ("all", 2)
    assert len(widget.history) == 2 * len(widget.model.members)  # every member's epochs
    assert widget.chart.names == synth_plate.channels
    assert np.allclose(widget.chart.values, list(widget.model.channel_importance().values()))
    assert widget.finetune_section.train_button.isEnabled()
    assert "Predict" in widget.finetune_section.status.text()
    assert "fine-tuned (unsaved)" in widget.model_section.info.text()

    tuned = widget.model  # loading another model would discard it: it asks first
    asked = answer(False)
    widget.model_section.default_button.click()
    assert widget.model is tuned and widget.model_dirty and "not saved" in asked.questions[0]
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
    params = [p.detach().clone() for p in model.parameters()]
    widget.set_annotations(synth_plate.labels)
    job = widget.run_finetune(mode="all", epochs=200)
    qtbot.waitUntil(lambda: len(widget.session.losses) >= 2, timeout=60_000)
    widget.cancel()
    wait_for(job)
    assert job.cancelled and widget.model is model
    assert all(torch.equal(a, p) for a, p in zip(params, model.parameters(), strict=True))
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


def test_forms_are_built_from_the_settings_metadata(widget):
    """A field added to the settings dataclass appears in the form: no widget code per field."""
    from napari_dcmix.model.train_settings import PredictConfig, TrainConfig, settings_fields

    shown = [f.name for f in settings_fields(TrainConfig) if f.metadata["widget"]]
    form = widget.finetune_section.form
    assert sorted(form.widgets) == sorted(shown) and "device" not in form.widgets
    advanced = {f.name for f in settings_fields(TrainConfig) if f.metadata["advanced"]}
    assert advanced and {w.name for w in form.basic} == set(shown) - advanced
    groups = {f.metadata["group"] for f in settings_fields(TrainConfig) if f.name in advanced}
    assert set(form.folded) == groups and {"training", "architecture"} <= groups
    epochs = form.widgets["epochs"]
    assert (epochs.label, epochs.min, epochs.max) == ("Epochs", 1, 1000)
    assert epochs.value == 30 and form.widgets["mode"].value == "mixing"  # the session's
    epochs.value = 7  # the form writes to the session ...
    assert widget.session.train_settings.epochs == 7
    widget.session.update_settings("train", seed=5)  # ... and shows the session's changes
    assert form.widgets["seed"].value == 5
    predict = [f.name for f in settings_fields(PredictConfig) if f.metadata["widget"]]
    assert sorted(widget.predict_section.form.widgets) == sorted(set(predict) - {"device"})
    assert list(widget.model_section.device_form.widgets) == ["device"]
    device = widget.model_section.device_form.widgets["device"]
    device.value = "cpu"  # text fields count once typed (editing finished), not at each key
    assert widget.session.device == "auto"
    device.native.editingFinished.emit()
    assert widget.session.device == "cpu"
    assert {"batch_size", "read_threads"} <= set(widget.predict_section.form.widgets)


def test_a_new_setting_appears_in_the_form_without_widget_code(qtbot):
    from dataclasses import dataclass

    from napari_dcmix._napari.settings_form import SettingsForm
    from napari_dcmix.model.train_settings import setting

    @dataclass
    class Settings:
        scale: float = setting(0.65, "Pixel scale", "µm per pixel", minimum=0.01, maximum=10.0,
                               step=0.01)  # fmt: skip
        members: int = setting(5, "Ensemble members", "models trained", minimum=1, maximum=20,
                               advanced=True, group="ensemble")  # fmt: skip
        kind: str = setting("a", "Kind", "which", choices=("a", "b"))
        on: bool = setting(True, "On", "switch")
        hidden: str = setting("x", "Hidden", "not in forms", widget=False)
        crop: int | str | None = setting(None, "Crop", "side or 'full'; empty: the default")

    changes: list = []
    form = SettingsForm(Settings, Settings(), lambda n, v: changes.append((n, v)))
    qtbot.addWidget(form)
    assert list(form.widgets) == ["scale", "kind", "on", "crop", "members"]  # then folded
    assert set(form.folded) == {"ensemble"} and form.widgets["members"].max == 20
    assert form.widgets["kind"].choices == ("a", "b") and form.widgets["scale"].value == 0.65
    form.widgets["members"].value = 9
    form.set_values(Settings(kind="b"))  # showing values does not report them as changes
    assert changes == [("members", 9)] and form.widgets["kind"].value == "b"
    crop = form.widgets["crop"]  # None is "the default": an empty text field
    assert crop.value == "" and crop.native.placeholderText() == "default"
    for text, value in (("64", 64), ("full", "full"), ("", None)):
        crop.value = text
        crop.native.editingFinished.emit()
        assert changes[-1] == ("crop", value)


def test_finetune_form_shows_the_fine_tuning_defaults(widget) -> None:
    """The form opens on FINETUNE_DEFAULTS (what the demo and the README's figures use)."""
    from napari_dcmix.model import FINETUNE_DEFAULTS

    form = widget.finetune_section.form
    for name, value in FINETUNE_DEFAULTS.items():
        assert form.value(name) == value, name
    assert form.value("ensemble") == 5


def test_check_with_ablation(widget, wait_for, synth_plate) -> None:
    """The button measures per-stain ablation on the annotated wells and shows it beside the
    learned importance, with their Spearman; a new model clears it."""
    widget.set_annotations(synth_plate.labels)
    job = widget.run_ablation()
    wait_for(job)
    found = widget.session.ablation
    assert found is not None and set(found.ablation) == set(synth_plate.channels)
    assert sum(found.ablation.values()) == pytest.approx(1.0)
    text = widget.model_section.ablation_label.text()
    assert text.startswith(f"Ablation on {found.n_inputs} inputs") and "Spearman" in text
    widget.load_model(widget.model)  # another model: the check no longer applies
    assert widget.model_section.ablation_label.text() == ""


def test_stains_and_plane_are_locked_while_a_task_reads_them(widget, wait_for):
    """While Predict runs, the Stains and Plate sections are disabled (the session refuses
    such changes too); they come back when it ends."""
    from napari_dcmix.errors import DcmixError

    job = widget.run_predict()
    assert not widget.stain_section.isEnabled() and not widget.plate_section.isEnabled()
    with pytest.raises(DcmixError, match="Predict is running on plate"):
        widget.session.exclude_channels(["DNA"])
    wait_for(job)
    assert widget.stain_section.isEnabled() and widget.plate_section.isEnabled()


def test_a_refused_predict_setting_shows_the_value_that_holds(widget, notifications):
    tiles = widget.predict_section.form.widgets["max_tiles"]
    tiles.value = "many"
    tiles.native.editingFinished.emit()
    assert "max-tiles: expected a positive integer, found 'many'" in notifications[-1]
    assert widget.session.predict_settings.max_tiles is None and tiles.value == ""
    tiles.value = "4"
    tiles.native.editingFinished.emit()
    assert widget.session.predict_settings.max_tiles == 4 and tiles.value == "4"
