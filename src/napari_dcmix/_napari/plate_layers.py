"""The napari layers of the session's plates: channel mosaics, the "wells" layer, the
prediction overlays, the heatmap, what the network sees. A view of the session: it redraws
on the session's events and only writes to the session through its methods (a click on a
well focuses it).

Drawing predictions is staged over event-loop turns so the viewer never stalls for long: the
site overlay, then (after ``STEP_MS``) the well overlay with the canvas repaint held back, then
the repaint; ``drawing`` is True until it is on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qtpy.QtCore import QTimer

from napari_dcmix._napari import overlays
from napari_dcmix._napari.canvas_hold import CanvasHold
from napari_dcmix._napari.layers import (
    GEOMETRY_KEY,
    KEY_KEY,
    PLATE_KEY,
    ROLE_KEY,
    channel_levels,
    mosaic_layer_kwargs,
    plate_layer_data,
)
from napari_dcmix.plate.mosaic import site_rectangles, well_rectangles

STEP_MS = 15  # delay between the steps that draw predictions
NETWORK_ROLE = "network-view"
CROP_ROLE = "crop-size"  # the rectangle showing what one network input covers
GAP = 0.25  # of a site's width, between the plate and the blended images


def camera_of(viewer: Any) -> Any:
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


@dataclass
class PlateLayerSet:
    """The layers of one plate."""

    wells: Any
    geometry: Any
    channels: list = field(default_factory=list)
    well_overlay: Any = None
    site_overlay: Any = None
    heatmap: Any = None


class PlateLayers:
    def __init__(self, widget: Any, viewer: Any, session: Any) -> None:
        self.widget, self.viewer, self.session = widget, viewer, session
        self.sets: dict[str, PlateLayerSet] = {}
        self.canvas_hold = CanvasHold(widget)
        self.show_sites = False
        self.sites_listeners: list[Callable[[bool], None]] = []  # views of ``show_sites``
        self._drawing = 0
        self._when_drawn: list[Callable[[], None]] = []
        self._adding = False  # our own plate layers are being added (not the reader's)
        ev = session.events
        ev.plate_added.connect(self._plate_added)
        ev.plate_removed.connect(self._plate_removed)
        ev.plate_changed.connect(self._plate_changed)
        ev.current_changed.connect(self._current_changed)
        ev.annotations_changed.connect(self._annotations_changed)
        ev.classes_changed.connect(self._annotations_changed)
        ev.predictions_changed.connect(self._predictions_changed)
        ev.heatmap_changed.connect(self._heatmap_changed)
        ev.focus_changed.connect(self._focus_changed)

    # --- lookup -----------------------------------------------------------------------------
    def alive(self, layer: Any) -> bool:
        return layer is not None and self.viewer is not None and layer in self.viewer.layers

    def of(self, key: str | None) -> PlateLayerSet | None:
        return self.sets.get(key) if key else None

    @property
    def current(self) -> PlateLayerSet | None:
        return self.of(self.session.current_key)

    def wells_layers(self) -> list:
        if self.viewer is None:
            return []
        return [
            layer
            for layer in self.viewer.layers
            if layer.metadata.get(ROLE_KEY) == "wells" and PLATE_KEY in layer.metadata
        ]

    def adoptable(self) -> bool:
        """False while this view adds a plate's layers itself."""
        return not self._adding

    def key_of(self, wells_layer: Any) -> str:
        from napari_dcmix.session.session import plate_key

        return wells_layer.metadata.get(KEY_KEY) or plate_key(wells_layer.metadata[PLATE_KEY])

    # --- plates -----------------------------------------------------------------------------
    def adopt(self, wells_layer: Any) -> str:
        """Make the plate behind a "wells" layer (e.g. opened by the reader) a session plate."""
        key = self.key_of(wells_layer)
        if key not in self.sets:
            self._register(key, wells_layer)
        self.session.add_plate(wells_layer.metadata[PLATE_KEY])
        return key

    def _register(self, key: str, wells: Any) -> PlateLayerSet:
        plate = wells.metadata[PLATE_KEY]
        wells.metadata[KEY_KEY] = key
        channels = [
            layer
            for layer in self.viewer.layers
            if layer.metadata.get(ROLE_KEY) == "channel" and layer.metadata.get(PLATE_KEY) is plate
        ]
        found = PlateLayerSet(wells, wells.metadata[GEOMETRY_KEY], channels)
        self.sets[key] = found
        wells.mouse_drag_callbacks.append(self._clicked)
        self._prepare_overlays(key)
        return found

    def _plate_added(self, key: str) -> None:
        if self.viewer is None or key in self.sets:
            return
        state = self.session.plates[key]
        wells = None
        self._adding = True
        try:
            for data, kwargs, kind in plate_layer_data(state.raw):
                layer = getattr(self.viewer, f"add_{kind}")(data, **kwargs)
                if kind == "shapes":
                    wells = layer
            self._register(key, wells)
        finally:
            self._adding = False
        self.viewer.reset_view()

    def _plate_removed(self, key: str) -> None:
        found = self.sets.pop(key, None)
        if found is None or self.viewer is None:
            return
        for layer in list(self.viewer.layers):
            if layer.metadata.get(KEY_KEY) == key or layer in found.channels:
                self.viewer.layers.remove(layer)

    def _plate_changed(self, key: str) -> None:
        """The plate was reopened (another plane or timepoint): new pixels, same layout."""
        found, state = self.of(key), self.session.plates.get(key)
        if found is None or state is None:
            return
        levels, limits = channel_levels(state.raw)
        for layer, data, lim in zip(found.channels, levels, limits, strict=False):
            if self.alive(layer):
                layer.data = data
                layer.contrast_limits = lim
                layer.metadata[PLATE_KEY] = state.raw
        found.wells.metadata[PLATE_KEY] = state.raw

    def _current_changed(self, key: Any) -> None:
        found = self.of(key)
        if found is not None and self.alive(found.wells):
            self.viewer.layers.selection.active = found.wells

    def _annotations_changed(self, key: str) -> None:
        found, state = self.of(key), self.session.plates.get(key)
        if found is not None and state is not None and self.alive(found.wells):
            overlays.style_annotations(found.wells, state.annotations, state.classes)

    # --- prediction overlays ------------------------------------------------------------------
    def _prepare_overlays(self, key: str) -> None:
        """Empty prediction overlays made when a plate opens (or the plate's existing ones), so
        the first prediction only updates them in place."""
        found, plate = self.sets[key], self.sets[key].wells.metadata[PLATE_KEY]
        wells = overlays.find_overlay(self.viewer, "well-predictions", key)
        sites = overlays.find_overlay(self.viewer, "site-predictions", key)
        if wells is None or sites is None:
            wells, sites = (
                overlays.show_overlay(self.viewer, data, above=found.wells)
                for data in overlays.placeholder_overlays(plate, found.geometry, key)
            )
        found.well_overlay, found.site_overlay = wells, sites
        self.viewer.layers.selection.active = found.wells

    @property
    def drawing(self) -> bool:
        return self._drawing > 0

    def when_drawn(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the predictions being drawn are on screen (now if none)."""
        if self.drawing:
            self._when_drawn.append(callback)
        else:
            callback()

    def _predictions_changed(self, key: str) -> None:
        found, state = self.of(key), self.session.plates.get(key)
        if found is None or state is None:
            return
        if state.predictions is None:  # e.g. another plane: the old numbers go
            plate = found.wells.metadata[PLATE_KEY]
            wells, sites = overlays.placeholder_overlays(plate, found.geometry, key)
            found.well_overlay = overlays.show_overlay(self.viewer, wells, above=found.wells)
            found.site_overlay = overlays.show_overlay(self.viewer, sites)
            if self.alive(found.heatmap):
                found.heatmap.visible = False
            return
        self.canvas_hold.canvases()  # looked up now, not in the turn that draws the results
        self._drawing += 1
        try:
            self._draw_sites(key)
        except Exception:
            self._done_drawing()
            raise
        QTimer.singleShot(STEP_MS, lambda: self._draw_wells_step(key))

    def _draw_wells_step(self, key: str) -> None:
        # the canvas repaints the new overlay in a later turn of its own (the update and the
        # repaint each take a good part of the 100 ms a user tolerates; glued, they take more)
        release = self.canvas_hold.hold()
        try:
            state = self.session.plates.get(key)
            if state is not None and state.predictions is not None:
                self._draw_wells(key)
                self._draw_heatmap(key)
        except Exception:
            release()
            self._done_drawing()
            raise
        QTimer.singleShot(STEP_MS, release)
        # done in a later turn, after the canvas has repainted the overlay
        QTimer.singleShot(2 * STEP_MS, self._done_drawing)

    def _done_drawing(self) -> None:
        self._drawing = max(0, self._drawing - 1)
        if self._drawing == 0:
            found = self.current
            if found is not None and self.alive(found.wells):
                # the wells layer stays active: selecting wells for annotation just works
                self.viewer.layers.selection.active = found.wells
            callbacks, self._when_drawn = self._when_drawn, []
            for callback in callbacks:
                callback()

    def _draw_sites(self, key: str) -> None:
        found, state = self.sets[key], self.session.plates[key]
        plate = found.wells.metadata[PLATE_KEY]
        data = overlays.site_overlay_data(state.predictions, plate, found.geometry, key)
        found.site_overlay = overlays.show_overlay(self.viewer, data)
        if found.site_overlay.visible != self.show_sites:
            # only on a change: napari re-lays the whole scene (and repaints) on every set
            found.site_overlay.visible = self.show_sites

    def _draw_wells(self, key: str) -> Any:
        found, state = self.sets[key], self.session.plates[key]
        plate = found.wells.metadata[PLATE_KEY]
        data = overlays.well_overlay_data(state.predictions, plate, found.geometry, key)
        found.well_overlay = overlays.show_overlay(self.viewer, data, above=found.wells)
        return found.well_overlay

    def set_show_sites(self, on: bool) -> None:
        if bool(on) == self.show_sites:
            return
        self.show_sites = bool(on)
        for found in self.sets.values():
            if self.alive(found.site_overlay) and found.site_overlay.visible != on:
                found.site_overlay.visible = on
        for listener in self.sites_listeners:
            listener(self.show_sites)

    # --- heatmap ----------------------------------------------------------------------------
    def _heatmap_changed(self) -> None:
        for key in list(self.sets):
            self._draw_heatmap(key)

    def _draw_heatmap(self, key: str) -> None:
        found, state = self.sets[key], self.session.plates.get(key)
        spec = self.session.heatmap
        if spec is None or state is None or state.predictions is None:
            if self.alive(found.heatmap):
                found.heatmap.visible = False
            return
        plate = found.wells.metadata[PLATE_KEY]
        data = overlays.heatmap_overlay_data(state.predictions, plate, found.geometry, key, spec)
        found.heatmap = overlays.show_overlay(self.viewer, data, above=found.wells)
        found.heatmap.metadata.update(data[1]["metadata"])
        if not found.heatmap.visible:
            found.heatmap.visible = True

    # --- focus: click a well ------------------------------------------------------------------
    def hit(self, key: str, position: Any) -> tuple[str, int | None] | None:
        """The (well, site) under a data position of the plate's mosaic."""
        found = self.sets[key]
        plate = found.wells.metadata[PLATE_KEY]
        y, x = float(position[-2]), float(position[-1])
        for well, site, ((y0, x0), (y1, x1)) in site_rectangles(plate, found.geometry):
            if y0 <= y <= y1 and x0 <= x <= x1:
                return well, int(site)
        for well, ((y0, x0), (y1, x1)) in well_rectangles(plate, found.geometry):
            if y0 <= y <= y1 and x0 <= x <= x1:
                return well, None
        return None

    def _clicked(self, layer: Any, event: Any):
        """A click (no drag) on a plate in pan/zoom mode focuses the well and site under it."""
        if layer.mode != "pan_zoom":
            return
        where = np.asarray(layer.world_to_data(event.position), dtype=float)
        pressed = np.asarray(event.pos, dtype=float)  # canvas pixels
        moved = False
        yield
        while event.type == "mouse_move":
            moved = moved or bool(np.abs(np.asarray(event.pos) - pressed).max() > 3)
            yield
        key = self.key_of(layer)
        if moved or key not in self.sets:
            return
        found = self.hit(key, where)
        if found is not None:
            self.session.focus(found[0], found[1], key)

    def _focus_changed(self, key: str) -> None:
        found, state = self.of(key), self.session.plates.get(key)
        if found is None or state is None or state.focus is None:
            return
        self.zoom_to_well(key, state.focus[0])
        if state.predictions is not None and not self.show_sites:
            self.set_show_sites(True)  # the focused well's sites

    def zoom_to_well(self, key: str, well: str) -> None:
        found = self.sets[key]
        plate = found.wells.metadata[PLATE_KEY]
        rect = dict(well_rectangles(plate, found.geometry))[well]
        self._zoom_to(self._world(found, rect))

    @staticmethod
    def _world(found: PlateLayerSet, points: Any) -> np.ndarray:
        """Mosaic pixel coordinates -> world (the layers' scale: the plate's pixel size)."""
        return np.asarray(points, dtype=float) * np.asarray(found.geometry.scale, dtype=float)

    def _zoom_to(self, rect: np.ndarray) -> None:
        """Centre the camera on a world rectangle and zoom so it fills the canvas."""
        (y0, x0), (y1, x1) = rect.min(axis=0), rect.max(axis=0)
        canvas = getattr(self.viewer, "canvas", None)  # napari 0.9; _canvas_size before
        height, width = getattr(canvas, "size", None) or self.viewer._canvas_size
        camera = camera_of(self.viewer)
        camera.center = ((y0 + y1) / 2, (x0 + x1) / 2)
        camera.zoom = 0.9 * min(height / max(y1 - y0, 1), width / max(x1 - x0, 1))

    # --- what one crop covers -----------------------------------------------------------------
    def show_crop(self, key: str | None, side: int | None, text: str) -> Any:
        """A rectangle of ``side`` camera pixels at the corner of the plate's focused (else
        first) site: what one network input covers. None removes it.

        The layer is updated in place when it stays (a new layer, or removing one, costs the
        viewer a scene rebuild: a visible stall each time the model or a setting changes)."""
        found = self.of(key)
        shown = [
            layer
            for layer in (list(self.viewer.layers) if self.viewer is not None else [])
            if layer.metadata.get(ROLE_KEY) == CROP_ROLE
        ]
        rect = None
        if found is not None and side is not None and self.alive(found.wells):
            plate = found.wells.metadata[PLATE_KEY]
            state = self.session.state(key)
            well, site = state.focus if state.focus else (plate.wells[0], None)
            site = site if site is not None else plate.sites(well)[0]
            y, x = found.geometry.site_origin(well, site)
            h, w = plate.image_shape
            side_y, side_x = min(side, h), min(side, w)
            rect = np.array([[y, x], [y + side_y, x + side_x]], dtype=float)
        keep = shown[0] if len(shown) == 1 and rect is not None else None
        if keep is not None and keep.metadata.get(KEY_KEY) != key:
            keep = None
        for layer in shown:
            if layer is not keep:
                self.viewer.layers.remove(layer)
        if rect is None:
            return None
        if keep is not None:
            old = keep.data[0] if len(keep.data) else None
            if (
                old is None
                or old.shape != (4, 2)
                or not np.allclose([old.min(0), old.max(0)], rect)
            ):
                keep.data = [rect]
                keep.edge_width = max(1.0, side / 32)
            if list(keep.features["text"]) != [text]:
                keep.features = {"text": [text]}
                keep.refresh_text()
            return keep
        layer = self.viewer.add_shapes(
            [rect],
            shape_type="rectangle",
            name="one crop",
            edge_color="yellow",
            face_color="transparent",
            edge_width=max(1.0, side / 32),
            features={"text": [text]},
            text={
                "string": "{text}",
                "anchor": "upper_left",
                "color": "yellow",
                "size": 8,
            },
            metadata={ROLE_KEY: CROP_ROLE, KEY_KEY: key},
            **mosaic_layer_kwargs(found.geometry),
        )
        if self.alive(found.wells):
            self.viewer.layers.selection.active = found.wells
        return layer

    # --- what the network sees ----------------------------------------------------------------
    def show_network_view(self, view: Any) -> list:
        """The K blended images of a site as image layers, beside the plate in the site's row
        (replacing any shown before); the camera moves to them."""
        for layer in list(self.viewer.layers):
            if layer.metadata.get(ROLE_KEY) == NETWORK_ROLE:
                self.viewer.layers.remove(layer)
        found = self.sets[view.plate_key]
        plate = found.wells.metadata[PLATE_KEY]
        rects = {(w, s): r for w, s, r in site_rectangles(plate, found.geometry)}
        (y0, _x0), _ = rects[(view.well, view.site)]
        k, h, w = view.images.shape
        site_h, site_w = view.site_shape if view.site_shape[0] else (h, w)
        left = found.geometry.shape[1] + GAP * site_w
        # a binned (or resized) model sees fewer pixels: they cover the site all the same
        scale = np.asarray(found.geometry.scale, dtype=float) * (site_h / h, site_w / w)
        added = []
        for i in range(k):
            image = view.images[i]
            lo, hi = np.percentile(image, [1, 99.8])
            corner = self._world(found, (y0, left + i * (1 + GAP) * site_w))
            added.append(
                self.viewer.add_image(
                    image,
                    name=f"network sees {i + 1}/{k} ({view.well} s{view.site})",
                    colormap="gray",
                    contrast_limits=(float(lo), float(max(hi, lo + 1e-6))),
                    scale=tuple(scale),
                    translate=tuple(corner),
                    metadata={ROLE_KEY: NETWORK_ROLE, KEY_KEY: view.plate_key},
                )
            )
        span = [[y0, left], [y0 + site_h, left + k * (1 + GAP) * site_w]]
        self._zoom_to(self._world(found, span))
        if self.alive(found.wells):
            self.viewer.layers.selection.active = found.wells
        return added
