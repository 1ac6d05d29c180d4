"""Heatmap, focus by click, what the network sees, stain mapping and an empty stain, the
chart's evidence states: on a real viewer."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt

from napari_dcmix._napari.overlays import HEATMAP_LAYER, SITE_LAYER
from napari_dcmix._napari.plate_layers import camera_of
from napari_dcmix.session.scores import ScoreSpec, score_colors


def test_heatmap_overlay_colour_bar_and_chooser(widget, wait_for):
    section = widget.predict_section
    assert not section.heatmap_box.isEnabled()  # nothing predicted yet
    wait_for(widget.run_predict())
    preds = widget.predictions
    section.heatmap_box.setChecked(True)  # default: p(last class)
    layer = widget.viewer.layers[HEATMAP_LAYER]
    p_treated = np.array([w.probs[1] for w in preds.wells()])
    assert np.allclose(layer.features["score"], np.round(p_treated, 4))
    spec = ScoreSpec().resolved(preds.class_names)
    assert np.allclose(layer.face_color, score_colors(p_treated, spec), atol=1e-6)
    assert section.colorbar.isVisibleTo(section) and section.b_combo.isHidden()

    section.kind_combo.setCurrentIndex(1)  # the margin between two classes
    section._heatmap_chosen()
    assert widget.session.heatmap.kind == "margin" and not section.b_combo.isHidden()
    margin = p_treated - np.array([w.probs[0] for w in preds.wells()])
    assert np.allclose(layer.features["score"], np.round(margin, 4))
    assert widget.viewer.layers[HEATMAP_LAYER] is layer  # updated in place
    assert widget.viewer.layers[-1] is widget.wells_layer  # still selectable
    section.heatmap_box.setChecked(False)
    assert not layer.visible and section.colorbar.isHidden()


def _canvas_point(viewer, yx) -> QPoint:
    """The canvas pixel (logical) where a world position is drawn (2D camera)."""
    camera = camera_of(viewer)
    height, width = viewer.canvas.size
    y = (yx[0] - camera.center[-2]) * camera.zoom + height / 2
    x = (yx[1] - camera.center[-1]) * camera.zoom + width / 2
    return QPoint(round(x), round(y))


def test_clicking_a_well_zooms_to_it_and_shows_its_sites(widget, wait_for, qtbot, synth_plate):
    from napari_dcmix.plate.mosaic import site_rectangles

    wait_for(widget.run_predict())
    viewer = widget.viewer
    plate, geometry = widget.session.current.raw, widget.geometry
    rect = next(r for w, s, r in site_rectangles(plate, geometry) if (w, s) == ("A03", 2))
    centre = np.mean(np.asarray(rect, dtype=float), axis=0) * geometry.scale
    zoom_before = camera_of(viewer).zoom
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=_canvas_point(viewer, centre))
    qtbot.waitUntil(lambda: widget.session.current.focus is not None, timeout=5000)
    assert widget.session.current.focus == ("A03", 2)
    camera = camera_of(viewer)
    assert camera.zoom > 2 * zoom_before  # zoomed in on the well
    assert viewer.layers[SITE_LAYER].visible and widget.predict_section.sites_box.isChecked()
    assert "<b>A03</b> site 2" in widget.plate_section.focus.text()
    assert "s1 " in widget.plate_section.focus.text()  # its sites' predictions are listed


def test_click_and_blends_on_a_plate_with_a_pixel_size(widget, qtbot, other_plate):
    """Layers of a plate whose pixel size is known are in micrometres: a click still finds
    the well under it, and the blended images line up with the plate's pixels."""
    from napari_dcmix.plate import open_plate
    from napari_dcmix.plate.mosaic import well_rectangles

    plate = open_plate(other_plate.path)
    plate.pixel_size_um = 0.5
    widget.session.add_plate(plate)
    viewer, geometry = widget.viewer, widget.geometry
    assert geometry.scale == (0.5, 0.5)
    rect = dict(well_rectangles(plate, geometry))["A04"]
    centre = np.mean(np.asarray(rect, dtype=float), axis=0) * 0.5
    viewer.reset_view()
    qtbot.wait(50)
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=_canvas_point(viewer, centre))
    qtbot.waitUntil(lambda: widget.session.current.focus is not None, timeout=5000)
    assert widget.session.current.focus[0] == "A04"
    assert np.allclose(camera_of(viewer).center[-2:], centre, atol=1.0)  # zoomed to it
    (layer, *_rest) = widget.show_network_view()
    assert tuple(layer.scale) == (0.5, 0.5)
    assert layer.translate[1] > geometry.shape[1] * 0.5  # beside the plate, in micrometres


def test_what_the_network_sees(widget, synth_plate):
    from napari_dcmix.model import blended_images

    widget.session.focus("A02", 2)
    widget.model_section.sees_button.click()
    layers = [layer for layer in widget.viewer.layers if layer.name.startswith("network sees")]
    k = widget.model.k
    assert [layer.name for layer in layers] == [f"network sees {i}/{k} (A02 s2)"
                                                for i in range(1, k + 1)]  # fmt: skip
    expected = blended_images(widget.model, widget.plate.read("A02", 2))
    for i, layer in enumerate(layers):
        assert np.allclose(layer.data, expected[i])
        assert layer.translate[1] > widget.geometry.shape[1]  # beside the plate (scale 1)
    widget.show_network_view("A01", 1)  # another site replaces them
    names = [la.name for la in widget.viewer.layers if la.name.startswith("network sees")]
    assert names == [f"network sees {i}/{k} (A01 s1)" for i in range(1, k + 1)]


def test_stain_mapping_is_offered_and_used(viewer, qtbot, synth_plate, small_model,
                                           notifications, tmp_path):  # fmt: skip
    from napari_dcmix._napari.widget import DcmixWidget
    from napari_dcmix.synthetic import write_synthetic_plate

    rxrx1 = write_synthetic_plate(tmp_path / "r", layout="rxrx1", n_wells=6, sites=1,
                                  image_size=64, seed=3)  # fmt: skip
    w = DcmixWidget(viewer)
    viewer.window.add_dock_widget(w, name="DCMIX", area="right")
    w.show_chart()
    assert w.open_plate(rxrx1.path) and w.load_model(small_model)
    section = w.stain_section
    assert not section.isHidden()
    chosen = {stain: combo.currentText() for stain, combo in section.combos.items()}
    assert chosen == {"DNA": "Hoechst", "ER": "ConA", "RNA": "Syto14", "AGP": "Phalloidin",
                      "Mito": "MitoTracker"}  # fmt: skip
    assert "Suggested from the stain names" in section.note.text()
    assert w.run_predict() is None and "differ" in notifications[-1]
    section.apply_button.click()
    assert w.session.current.channel_map["MitoTracker"] == "Mito"
    assert "the model reads: DNA, ER, RNA, AGP, Mito" in w.plate_section.info.text()
    # the chart's Mito bar takes the colour of the plate layer it reads (MitoTracker)
    mito = w.chart.colors[w.chart.names.index("Mito")]
    assert np.allclose(mito[:3], viewer.layers["MitoTracker"].colormap.colors[-1][:3])
    job = w.run_predict()
    qtbot.waitUntil(lambda: not job.is_running and w.job is None, timeout=60_000)
    assert w.predictions is not None and len(w.predictions.wells()) == 6


@pytest.fixture
def empty_rna_plate(tmp_path, synth_plate):
    import tifffile

    from napari_dcmix.plate import open_plate

    src = open_plate(synth_plate.path)
    out = tmp_path / "empty-rna"
    out.mkdir()
    (out / "channels.txt").write_text("\n".join(src.channels) + "\n")
    for well, site in src.site_keys():
        data = src.read(well, site).copy()
        data[src.channels.index("RNA")] = 0
        tifffile.imwrite(out / f"{well}_s{site}.tif", data)
    return out


def test_an_empty_stain_is_reported_and_excluded_on_request(
    widget, qtbot, empty_rna_plate, synth_plate, notifications
):
    asked: list[str] = []
    widget.dialogs.confirm = lambda title, question: asked.append(question) or True
    assert widget.open_plate(empty_rna_plate)
    widget.set_annotations(synth_plate.labels)
    job = widget.run_finetune(epochs=1)
    qtbot.waitUntil(lambda: widget.job is not job, timeout=60_000)
    assert any("'RNA'" in m and "one value" in m for m in notifications)
    assert len(asked) == 1 and "Exclude RNA" in asked[0]
    # the fine-tune started again without RNA (once the first job was over)
    qtbot.waitUntil(lambda: widget.job is None and widget.model_dirty, timeout=120_000)
    assert widget.model.channel_names == ["DNA", "ER", "AGP", "Mito"]
    assert "Left out: RNA." in widget.stain_section.note.text()


STAINS = ["DNA", "ER", "RNA", "AGP", "Mito"]


def _evidence(**changes):
    evidence = {
        "version": 1, "classes": ["control", "treated"], "channels": STAINS, "chance": 0.5,
        "held_out": {"balanced_accuracy": 0.95, "interval": [0.8, 0.99], "n_wells": 24,
                     "confusion": [[11, 1], [0, 12]], "level": "well"},
        "importance": {"DNA": 0.1, "ER": 0.15, "RNA": 0.1, "AGP": 0.1, "Mito": 0.55},
        "interval": {"DNA": [0.05, 0.15], "ER": [0.1, 0.2], "RNA": [0.05, 0.15],
                     "AGP": [0.05, 0.15], "Mito": [0.45, 0.65]},
        "members": [], "reference": None, "per_class": {}, "per_class_interval": {},
    }  # fmt: skip
    evidence.update(changes)
    return evidence


def test_chart_states_from_the_models_evidence(widget, evidence_model):
    from napari_dcmix.figures import GREY
    from napari_dcmix.model.scale import PixelScale

    chart = widget.chart
    model = evidence_model(STAINS, ["control", "treated"], _evidence())
    model.scale = PixelScale(bin=2, crop=96)
    widget.load_model(model)
    assert chart.caption.text().startswith("Mito drives the prediction")
    assert "0.95 (0.80-0.99, 24 wells)" in chart.held_out.text()
    assert chart.interval[STAINS.index("Mito")] == [0.45, 0.65]
    assert len(chart.figure.axes) == 2  # the bars and the confusion matrix beside them
    assert len(chart._ax.collections) == 1  # the intervals' error bars
    assert "pixel scale: bin 2, crop 96 px" in widget.model_section.info.text()

    chance = {**_evidence()["held_out"], "balanced_accuracy": 0.5, "interval": [0.3, 0.7]}
    widget.load_model(evidence_model(STAINS, ["control", "treated"], _evidence(held_out=chance)))
    assert chart.greyed and "did not learn" in chart.caption.text()
    assert all(np.allclose(b.get_facecolor()[:3], GREY[:3]) for b in chart._bars)

    per_class = {c: {s: 0.2 for s in STAINS} | {"Mito": 0.4} for c in ("treated", "other")}
    ivl = {c: {s: [0.1, 0.3] for s in STAINS} | {"Mito": [0.35, 0.45]} for c in per_class}
    three = evidence_model(STAINS, ["control", "treated", "other"],
                           _evidence(per_class=per_class, per_class_interval=ivl,
                                     reference="control"))  # fmt: skip
    widget.load_model(three)
    ticks = [t.get_text() for t in chart._ax.get_xticklabels()]
    assert ticks == ["treated", "other"] and len(chart._bars) == 10
    assert "treated against control: Mito." in chart.caption.text()


def test_report_button_writes_the_sessions_report(widget, wait_for, answer, notifications,
                                                  tmp_path):  # fmt: skip
    import re

    wait_for(widget.run_predict())
    widget.dialogs.save_file = lambda title, filter_: str(tmp_path / "report.html")
    widget.session_section.report_button.click()
    text = (tmp_path / "report.html").read_text()
    assert len(re.findall("data:image/png;base64", text)) == 2  # importance + plate heatmap
    assert widget.plate.name in text
    assert "No held-out evidence" in notifications[-1]  # what it could not show is said
    asked = answer(False)  # an existing report is not replaced without asking
    widget.session_section.report_button.click()
    assert len(asked.questions) == 1 and "report.html" in asked.questions[0]


def test_predictions_dropped_clear_the_overlays(widget, wait_for):
    from napari_dcmix._napari.overlays import WELL_LAYER

    wait_for(widget.run_predict())
    layer = widget.viewer.layers[WELL_LAYER]
    assert layer.face_color[:, 3].max() > 0.1
    widget.session.set_predictions(None)  # as reading another plane does
    assert widget.viewer.layers[WELL_LAYER] is layer  # emptied in place
    assert np.allclose(layer.face_color[:, 3], 0) and set(layer.text.values) == {" "}
    assert not widget.predict_section.export_button.isEnabled()
