"""Plate layers at the plate's physical scale: channel images, wells, prediction overlays,
annotations and text all take the pixel size, so napari's scale bar shows micrometres and
everything drawn on the plate stays where it was drawn relative to the images."""

from __future__ import annotations

import numpy as np
import pytest

from napari_dcmix._napari.layers import GEOMETRY_KEY, plate_layer_data
from napari_dcmix.plate import open_plate
from napari_dcmix.synthetic import write_synthetic_plate

PIXEL = 0.37  # µm per pixel, not a power of two: a misplaced layer cannot land on a grid line
CANVAS = (640, 480)  # (width, height) of both viewers' canvases


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """The same pixels written twice as OME-Zarr: with a pixel size, and without one."""
    out = {}
    for size in (PIXEL, None):
        root = tmp_path_factory.mktemp(f"twin{size is None}")
        out[size] = write_synthetic_plate(
            root, layout="ome-zarr", wells=["A01", "A02", "A03", "B01", "B02", "B03"], sites=2,
            image_size=64, seed=0, pixel_size_um=size,
        )  # fmt: skip
    return out


def test_layer_data_take_the_pixel_size(twins):
    plate = open_plate(twins[PIXEL].path)
    layers = plate_layer_data(plate)
    plain = plate_layer_data(open_plate(twins[None].path))
    assert [k for _, _, k in layers] == ["image"] * 5 + ["shapes"]
    for (_, kwargs, _), (_, plain_kwargs, _) in zip(layers, plain, strict=True):
        assert kwargs["scale"] == (PIXEL, PIXEL)
        assert kwargs["units"] == ("micrometer", "micrometer")
        assert kwargs["metadata"][GEOMETRY_KEY].pixel_size_um == PIXEL
        assert "scale" not in plain_kwargs and "units" not in plain_kwargs
    wells, plain_wells = layers[-1][1]["text"], plain[-1][1]["text"]
    # text is sized in world units (micrometres here), its offset in data units (pixels)
    assert wells["size"] == pytest.approx(PIXEL * plain_wells["size"])
    assert wells["translation"] == pytest.approx(plain_wells["translation"])


def _show(make_napari_viewer, qtbot, path, model):
    """A viewer with the plate open in the DCMIX widget, predicted, two wells annotated, the
    per-site overlay shown, the view fitted."""
    from napari_dcmix._napari.widget import DcmixWidget

    viewer = make_napari_viewer(show=True)
    widget = DcmixWidget(viewer)
    assert widget.open_plate(path)
    assert widget.load_model(model)
    widget.warm_thread.join(60)
    job = widget.run_predict()
    qtbot.waitUntil(lambda: not job.is_running and widget.job is None, timeout=60_000)
    widget.set_annotations({"A01": "treated", "A03": "control"})
    widget.site_layer.visible = True
    viewer.window._qt_viewer.canvas.native.setFixedSize(*CANVAS)  # both viewers alike
    qtbot.wait(50)
    viewer.reset_view()
    qtbot.wait(50)
    return viewer, widget


def _differing(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of canvas pixels whose colour differs clearly (> 48 of 255 in a channel)."""
    assert a.shape == b.shape
    return float((np.abs(a[..., :3].astype(int) - b[..., :3]) > 48).any(axis=-1).mean())


def test_everything_drawn_on_the_plate_stays_aligned(make_napari_viewer, qtbot, twins, small_model):
    """The plate shown at 0.37 µm per pixel looks exactly like the same pixels shown in
    pixels once each view is fitted: images, well rectangles, prediction overlays, annotation
    outlines and every text scale together. Putting one overlay or one text size back in
    pixel units shows up plainly (the comparison can fail)."""
    scaled, widget = _show(make_napari_viewer, qtbot, twins[PIXEL].path, small_model)
    plain, plain_widget = _show(make_napari_viewer, qtbot, twins[None].path, small_model)
    on_plate = [layer for layer in scaled.layers if GEOMETRY_KEY in layer.metadata]
    assert len(on_plate) == 8  # 5 stains, wells, predictions (wells), predictions (sites)
    for layer in on_plate:
        assert tuple(layer.scale) == (PIXEL, PIXEL), layer.name
        assert [str(u) for u in layer.units] == ["micrometer", "micrometer"], layer.name
    assert [str(u) for u in scaled.dims.units] == ["micrometer", "micrometer"]
    assert all(tuple(layer.scale) == (1.0, 1.0) for layer in plain.layers)
    assert widget.predictions.wells() and widget.well_layer.text.values[0]
    # the same wells, the same predictions in both viewers
    assert list(widget.well_layer.text.values) == list(plain_widget.well_layer.text.values)
    # a well's corner sits on the same image pixel in both (world = data x pixel size)
    corner = widget.wells_layer.data[0][0]
    assert np.allclose(widget.wells_layer.data_to_world(corner), corner * PIXEL)
    assert np.allclose(on_plate[0].world_to_data(corner * PIXEL), corner)

    shot = scaled.screenshot(canvas_only=True, flash=False)
    reference = plain.screenshot(canvas_only=True, flash=False)
    same = _differing(shot, reference)
    assert same < 0.002, same

    # controls: one overlay left in pixel units, or text sized in data units, is visible
    overlay = widget.well_layer
    overlay.scale = (1.0, 1.0)
    moved = _differing(scaled.screenshot(canvas_only=True, flash=False), reference)
    overlay.scale = (PIXEL, PIXEL)
    text = widget.wells_layer.text
    text.size = text.size / PIXEL
    big_text = _differing(scaled.screenshot(canvas_only=True, flash=False), reference)
    text.size = text.size * PIXEL
    assert moved > 0.02 and big_text > 0.01, (moved, big_text)
    assert _differing(scaled.screenshot(canvas_only=True, flash=False), reference) < 0.002
