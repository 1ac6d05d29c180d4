"""The prediction overlay is updated in place with its events held back: the canvas must still
show the new colours and text (one redraw instead of one per property)."""

from __future__ import annotations

import numpy as np

from napari_dcmix._napari.overlays import SITE_LAYER, WELL_LAYER


def _visual(viewer, layer):
    return viewer.window._qt_viewer.canvas.layer_to_visual[layer]


def _assert_canvas_matches(viewer, layer) -> None:
    node = _visual(viewer, layer).node
    assert list(node.text.text) == list(layer.text.values)
    shown = node.shape_faces.mesh_data.get_face_colors()
    assert np.allclose(shown, layer._data_view._mesh.displayed_triangles_colors)


def test_in_place_update_reaches_the_canvas(widget, wait_for):
    overlay = widget.viewer.layers[WELL_LAYER]  # the placeholder made when the plate opened
    wait_for(widget.run_predict())
    assert widget.viewer.layers[WELL_LAYER] is overlay  # updated, not rebuilt
    feats = overlay.features
    assert overlay.text.values[0] == f"{feats['prediction'][0]} {feats['confidence'][0]:.2f}"
    _assert_canvas_matches(widget.viewer, overlay)

    # a second prediction with other numbers (same text template) refreshes text and colours
    preds = widget.predictions
    before = list(overlay.text.values)
    for site in preds.sites:  # swap the classes and halve the certainty
        probs = np.asarray(site.probs, dtype=float)[::-1]
        site.probs = 0.5 * probs + 0.5 / len(probs)
    widget.layers._draw_wells(widget.session.current_key)
    assert widget.viewer.layers[WELL_LAYER] is overlay
    feats = overlay.features
    assert list(overlay.text.values) == [
        f"{p} {c:.2f}" for p, c in zip(feats["prediction"], feats["confidence"], strict=True)
    ]
    _assert_canvas_matches(widget.viewer, overlay)
    assert list(overlay.text.values) != before


def test_canvas_repaint_is_held_back_during_the_update_then_released(widget, wait_for, qtbot):
    hold = widget.layers.canvas_hold
    canvases = hold.canvases()
    assert canvases == [widget.viewer.window._qt_viewer.canvas.native]
    release = hold.hold()
    assert not canvases[0].updatesEnabled()
    release()
    assert canvases[0].updatesEnabled()

    # predict: the overlay update runs with the canvas held back, its repaint follows
    layers, painted, held = widget.layers, [], []
    draw_wells = layers._draw_wells

    def recording_draw_wells(key):
        held.append(not canvases[0].updatesEnabled())
        painted.clear()
        return draw_wells(key)

    layers._draw_wells = recording_draw_wells
    canvas = _visual(widget.viewer, widget.viewer.layers[WELL_LAYER]).node.canvas
    canvas.events.draw.connect(lambda event: painted.append(event))
    wait_for(widget.run_predict())
    assert held == [True]
    assert canvases[0].updatesEnabled()
    qtbot.waitUntil(lambda: len(painted) > 0, timeout=5000)
    _assert_canvas_matches(widget.viewer, widget.viewer.layers[WELL_LAYER])


def test_hidden_site_overlay_is_updated_without_a_visibility_change(widget, wait_for):
    sites = widget.viewer.layers[SITE_LAYER]
    toggled = []
    sites.events.visible.connect(lambda event: toggled.append(sites.visible))
    wait_for(widget.run_predict())
    assert not sites.visible and toggled == []  # no needless re-layout of the scene
    assert "prediction" in sites.features and len(sites.features) == len(sites.data)

    widget.predict_section.sites_box.setChecked(True)
    assert sites.visible and toggled == [True]
    wait_for(widget.run_predict())
    assert sites.visible and toggled == [True]  # a shown site overlay stays shown
