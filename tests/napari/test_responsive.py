"""The viewer stays responsive while predict and fine-tune run; one screenshot pixel check."""

from __future__ import annotations

import numpy as np

from napari_dcmix._napari.latency import TickGaps

MAX_GAP_MS = 250


def test_main_thread_keeps_ticking(widget, wait_for, synth_plate):
    gaps = TickGaps(10).start()
    wait_for(widget.run_predict())
    predict_gap = gaps.stop().max_gap_ms
    assert widget.predictions is not None

    widget.set_annotations(synth_plate.labels)
    # draw the annotation text now (its first draw rasterises new glyphs, ~10 ms each, once
    # per session): the gap measured next is fine-tune's own
    widget.viewer.screenshot(canvas_only=True, flash=False)
    gaps.start()
    wait_for(widget.run_finetune(mode="all", epochs=3), timeout=120_000)
    finetune_gap = gaps.stop().max_gap_ms
    assert widget.model_dirty
    print(f"max main-thread gap: predict {predict_gap:.0f} ms, fine-tune {finetune_gap:.0f} ms")
    assert predict_gap < MAX_GAP_MS
    assert finetune_gap < MAX_GAP_MS


def _qimage_rgb(image) -> np.ndarray:
    image = image.convertToFormat(image.Format.Format_RGB888)
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def test_screenshot_shows_plate_overlay_and_chart(widget, wait_for, qtbot):
    wait_for(widget.run_predict())
    widget.viewer.reset_view()
    qtbot.wait(100)
    canvas = widget.viewer.screenshot(canvas_only=True, flash=False)[..., :3]
    assert canvas.shape[0] > 200 and canvas.shape[1] > 200
    # the plate strip is drawn (a black canvas fails): lit pixels, varied, several hues
    lit = canvas.max(axis=-1) > 40
    assert lit.mean() > 0.01
    assert canvas[lit].std() > 10
    assert len(np.unique(canvas[lit] // 32, axis=0)) > 8

    chart = widget.chart
    chart.canvas.draw()
    qtbot.wait(50)
    pixels = _qimage_rgb(chart.canvas.grab().toImage())
    # the Mito bar is drawn in the Mito layer's colour (magenta)
    magenta = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] > 200)
    blue = (pixels[..., 0] < 60) & (pixels[..., 1] < 60) & (pixels[..., 2] > 200)
    assert magenta.sum() > 50 and blue.sum() > 50
    full = widget.viewer.screenshot(canvas_only=False, flash=False)
    assert full.shape[1] > canvas.shape[1]  # docks are in the window screenshot


def test_chart_epoch_updates_draw_what_a_full_redraw_draws(viewer, qtbot):
    """The chart redraws only its bars between epochs (blitting): the canvas must show the
    same picture as a whole redraw of the new values, and differ from the old one."""
    from napari_dcmix._napari.chart import ImportanceChart

    chart = ImportanceChart(viewer)
    viewer.window.add_dock_widget(chart, name="chart", area="right")
    names, colors = ["DNA", "ER", "Mito"], ["blue", "green", "magenta"]
    chart.set_importance(names, [0.3, 0.3, 0.4], colors, title="epoch 1")
    chart.canvas.draw()
    qtbot.wait(20)
    old = _qimage_rgb(chart.canvas.grab().toImage()).astype(int)
    blits: list = []
    blit = chart.canvas.blit
    chart.canvas.blit = lambda bbox=None: blits.append(bbox) or blit(bbox)
    chart.set_importance(names, [0.2, 0.26, 0.46], colors, title="epoch 2")
    assert len(blits) == 1  # the cheap path was taken
    qtbot.wait(20)
    fast = _qimage_rgb(chart.canvas.grab().toImage()).astype(int)
    chart.canvas.draw()  # the whole figure drawn again, as it is now
    qtbot.wait(20)
    full = _qimage_rgb(chart.canvas.grab().toImage()).astype(int)
    assert np.abs(fast - old).max(axis=-1).astype(bool).sum() > 200  # the bars moved
    assert np.abs(fast - full).max(axis=-1).astype(bool).sum() < 20  # as a full redraw draws
