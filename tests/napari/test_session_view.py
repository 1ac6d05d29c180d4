"""A saved session reopens in a new viewer with the same plate view, overlays, chart and
annotations; a plate that moved is asked for."""

from __future__ import annotations

import shutil

import numpy as np

from napari_dcmix._napari.overlays import HEATMAP_LAYER, SITE_LAYER, WELL_LAYER
from napari_dcmix._napari.plate_layers import camera_of
from napari_dcmix.session import ScoreSpec


def _dock(viewer, qtbot):
    from napari_dcmix._napari.widget import DcmixWidget

    w = DcmixWidget(viewer)
    w.dialogs.confirm = lambda title, question: True
    viewer.window.add_dock_widget(w, name="DCMIX", area="right")
    w.show_chart()
    qtbot.wait(50)
    return w


def snapshot(w) -> dict:
    """What the user sees: layers, overlays, heatmap, chart, annotations, camera."""
    viewer = w.viewer
    layers = {layer.name: layer for layer in viewer.layers}
    out = {
        "layers": [(layer.name, type(layer).__name__) for layer in viewer.layers],
        "contrast": {n: tuple(np.round(layers[n].contrast_limits, 3)) for n in w.plate.channels},
        "colormaps": {n: layers[n].colormap.name for n in w.plate.channels},
        "labels": list(w.wells_layer.features["label"]),
        "wells_edges": np.round(w.wells_layer.edge_color, 3).tolist(),
        "well_overlay": layers[WELL_LAYER]
        .features[["well", "prediction", "confidence"]]
        .to_numpy()
        .tolist(),
        "well_faces": np.round(layers[WELL_LAYER].face_color, 3).tolist(),
        "site_visible": layers[SITE_LAYER].visible,
        "heatmap": layers[HEATMAP_LAYER].features["score"].tolist(),
        "heatmap_faces": np.round(layers[HEATMAP_LAYER].face_color, 3).tolist(),
        "chart": (
            w.chart.names,
            np.round(w.chart.values, 6).tolist(),
            w.chart.caption.text(),
            w.chart.sort_box.isChecked(),
        ),
        "annotations": w.annotations,
        "classes": w.class_names,
        "camera": (
            np.round(camera_of(viewer).center, 2).tolist(),
            round(camera_of(viewer).zoom, 4),
        ),
        "focus": w.plate_section.focus.text(),
        "heatmap_choice": (
            w.predict_section.heatmap_box.isChecked(),
            w.predict_section.kind_combo.currentData(),
        ),
    }
    return out


def test_save_close_and_reopen_in_a_new_viewer(make_napari_viewer, qtbot, synth_plate,
                                               small_model, tmp_path):  # fmt: skip
    first = make_napari_viewer(show=True)
    w = _dock(first, qtbot)
    assert w.open_plate(synth_plate.path) and w.load_model(small_model)
    w.set_annotations(synth_plate.labels)
    w.session.add_class("unsure")
    job = w.run_predict()
    qtbot.waitUntil(lambda: not job.is_running and w.job is None, timeout=60_000)
    w.session.set_heatmap(ScoreSpec("margin", "treated", "control"))
    w.session.focus(synth_plate.wells[4], 2)  # zooms to the well, shows its sites
    w.chart.sort_box.setChecked(True)
    qtbot.wait(50)
    before = snapshot(w)
    assert before["site_visible"] and "s2" in before["focus"]
    folder = w.save_session(tmp_path / "session")
    assert (folder / "session.json").is_file()
    first.close()

    second = make_napari_viewer(show=True)
    w2 = _dock(second, qtbot)
    assert w2.open_session(folder)
    qtbot.waitUntil(lambda: not w2.layers.drawing, timeout=10_000)
    after = snapshot(w2)
    for key in before:
        assert after[key] == before[key], key


def test_a_moved_plate_is_asked_for(make_napari_viewer, qtbot, synth_plate, small_model,
                                    tmp_path, notifications):  # fmt: skip
    plate = tmp_path / "plate"
    shutil.copytree(synth_plate.path, plate)
    viewer = make_napari_viewer(show=True)
    w = _dock(viewer, qtbot)
    assert w.open_plate(plate) and w.load_model(small_model)
    w.set_annotations({synth_plate.wells[0]: "treated"})
    folder = w.save_session(tmp_path / "s")
    moved = tmp_path / "elsewhere" / "plate"
    shutil.move(plate, moved)

    asked: list[str] = []
    w.dialogs.open_dir = lambda title: asked.append(title) or str(moved)
    assert w.open_session(folder)
    assert len(asked) == 1 and str(plate) in asked[0]
    assert w.plate is not None and w.annotations == {synth_plate.wells[0]: "treated"}
    assert [layer.name for layer in viewer.layers].count("wells") == 1

    # declining to locate it leaves it out with a warning; the session opens without it
    shutil.rmtree(moved)
    w.dialogs.open_dir = lambda title: None
    assert w.open_session(folder)
    assert w.plate is None and "left out" in notifications[-1]


def test_saving_asks_and_never_deletes_what_is_not_a_session(widget, answer, notifications,
                                                             synth_plate, tmp_path):  # fmt: skip
    """A folder that is not a session is refused without a question (its contents stay); a
    session folder is replaced after a question that says its contents will be."""
    junk = tmp_path / "results"
    junk.mkdir()
    (junk / "figure.png").write_bytes(b"mine")
    assert widget.save_session(junk) is None  # the widget fixture fails on any question
    assert (
        "not a napari-dcmix session folder" in notifications[-1]
        and "figure.png" in (notifications[-1])
    )
    assert [p.name for p in junk.iterdir()] == ["figure.png"]
    folder = widget.save_session(tmp_path / "s")
    stamp = (folder / "session.json").stat().st_mtime_ns
    asked = answer(False)
    assert widget.save_session(folder) is None
    assert "Its contents will be replaced" in asked.questions[-1]
    assert (folder / "session.json").stat().st_mtime_ns == stamp
    answer(True)
    assert widget.save_session(folder) == folder


def test_a_plate_that_no_longer_opens_is_asked_for_with_the_reason(make_napari_viewer, qtbot,
                                                                   synth_plate, small_model,
                                                                   tmp_path):  # fmt: skip
    plate = tmp_path / "plate"
    shutil.copytree(synth_plate.path, plate)
    w = _dock(make_napari_viewer(show=True), qtbot)
    assert w.open_plate(plate) and w.load_model(small_model)
    folder = w.save_session(tmp_path / "s")
    shutil.rmtree(plate)
    plate.mkdir()
    (plate / "readme.txt").write_text("the images went elsewhere")
    asked: list[str] = []
    w.dialogs.open_dir = lambda title: asked.append(title) or None
    assert w.open_session(folder)
    (title,) = asked
    assert f"at {plate} does not open" in title and "matches no supported plate layout" in title
