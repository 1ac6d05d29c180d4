"""Prediction overlays and annotation styling on the plate mosaic (napari Shapes layers)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import numpy as np

from napari_dcmix._napari.colors import class_colors
from napari_dcmix._napari.layers import (
    GEOMETRY_KEY,
    KEY_KEY,
    PLATE_KEY,
    ROLE_KEY,
    mosaic_layer_kwargs,
    text_size,
)
from napari_dcmix.plate.mosaic import MosaicGeometry, site_rectangles, well_rectangles
from napari_dcmix.session.scores import ScoreSpec, score_colors, well_features, well_scores

WELL_LAYER = "predictions (wells)"
SITE_LAYER = "predictions (sites)"
HEATMAP_LAYER = "heatmap (wells)"
UNLABELLED_EDGE = (0.5, 0.5, 0.5, 1.0)
TEXT_KEY = "dcmix_text"  # the text settings last applied to an overlay updated in place


def _fill(color: tuple, confidence: float) -> tuple:
    # confidence drives opacity: an unsure call is a faint tint, a sure one a clear one
    return (*color[:3], 0.10 + 0.45 * float(np.clip(confidence, 0.0, 1.0)))


def _meta(plate: Any, geometry: MosaicGeometry, key: str, role: str) -> dict:
    return {PLATE_KEY: plate, GEOMETRY_KEY: geometry, KEY_KEY: key, ROLE_KEY: role}


def well_overlay_data(
    predictions: Any, plate: Any, geometry: MosaicGeometry, key: str
) -> tuple[list, dict, str]:
    """Well rectangles coloured by predicted class, opacity by confidence, text "class 0.93"."""
    rects = dict(well_rectangles(plate, geometry))
    features = well_features(predictions, plate.name)
    colors = class_colors(list(predictions.class_names))
    classes, confs = features["prediction"], features["confidence"]
    return (
        [np.asarray(rects[w]) for w in features["well"]],
        {
            "name": WELL_LAYER,
            "shape_type": "rectangle",
            "features": features,
            "face_color": [_fill(colors[c], p) for c, p in zip(classes, confs, strict=True)],
            "edge_color": [colors[c] for c in classes],
            "edge_width": max(1.0, geometry.gutter / 4),
            "text": {
                "string": "{prediction} {confidence:.2f}",
                "anchor": "center",
                "size": text_size(geometry, chars=16),
                "scaling": True,
                "color": "white",
            },
            "metadata": {**_meta(plate, geometry, key, "well-predictions"), "class_colors": colors},
        },
        "shapes",
    )


def placeholder_overlays(
    plate: Any, geometry: MosaicGeometry, key: str
) -> list[tuple[list, dict, str]]:
    """Empty (invisible) prediction overlays, made when a plate opens: the first prediction
    then only updates them in place instead of building new layers in the middle of the job."""
    rects = well_rectangles(plate, geometry)
    sites = site_rectangles(plate, geometry)
    clear = "transparent"
    wells = {
        "name": WELL_LAYER,
        "shape_type": "rectangle",
        "features": {"well": [w for w, _ in rects], "prediction": [" "] * len(rects)},
        "face_color": clear,
        "edge_color": clear,
        "edge_width": max(1.0, geometry.gutter / 4),
        "text": {"string": "{prediction}", "size": text_size(geometry, chars=16), "scaling": True},
        "metadata": _meta(plate, geometry, key, "well-predictions"),
    }
    site = {
        "name": SITE_LAYER,
        "shape_type": "rectangle",
        "features": {"well": [w for w, _, _ in sites], "site": [s for _, s, _ in sites]},
        "face_color": clear,
        "edge_width": 0,
        "visible": False,
        "metadata": _meta(plate, geometry, key, "site-predictions"),
    }
    return [
        ([np.asarray(r) for _, r in rects], wells, "shapes"),
        ([np.asarray(r) for _, _, r in sites], site, "shapes"),
    ]


def site_overlay_data(
    predictions: Any, plate: Any, geometry: MosaicGeometry, key: str
) -> tuple[list, dict, str]:
    """Site rectangles coloured by each site's predicted class, opacity by its confidence."""
    rects = {(w, s): r for w, s, r in site_rectangles(plate, geometry)}
    names = list(predictions.class_names)
    colors = class_colors(names)
    rows: dict[str, list] = {k: [] for k in ("plate", "well", "site", "prediction", "confidence")}
    data, faces = [], []
    for pred in predictions.sites:
        well, site = pred.well, pred.site
        probs = np.asarray(pred.probs, dtype=float)
        k = int(np.argmax(probs))
        rows["plate"].append(plate.name)
        rows["well"].append(well)
        rows["site"].append(int(site))
        rows["prediction"].append(names[k])
        rows["confidence"].append(round(float(probs[k]), 4))
        data.append(np.asarray(rects[(well, int(site))]))
        faces.append(_fill(colors[names[k]], float(probs[k])))
    return (
        data,
        {
            "name": SITE_LAYER,
            "shape_type": "rectangle",
            "features": rows,
            "face_color": faces or "transparent",
            "edge_width": 0,
            "visible": False,
            "metadata": _meta(plate, geometry, key, "site-predictions"),
        },
        "shapes",
    )


def find_overlay(viewer: Any, role: str, key: str) -> Any:
    """The overlay layer of ``role`` ("well-predictions" | "site-predictions" |
    "well-heatmap") of the plate ``key``."""
    return next(
        (
            layer
            for layer in viewer.layers
            if layer.metadata.get(ROLE_KEY) == role and layer.metadata.get(KEY_KEY) == key
        ),
        None,
    )


def _update_in_place(layer: Any, kwargs: dict) -> None:
    """Set features, colours and text with the per-property events held back, then redraw
    once: each setter would otherwise rebuild the visual's mesh or text (and the thumbnail)."""
    with ExitStack() as hold:
        hold.enter_context(layer.block_thumbnail_update())
        hold.enter_context(layer.events.face_color.blocker())
        hold.enter_context(layer.events.edge_color.blocker())
        hold.enter_context(layer.text.events.blocker_all())
        new_text = "text" in kwargs and layer.metadata.get(TEXT_KEY) != kwargs["text"]
        if new_text:
            layer.text = {"string": {"constant": ""}}  # the old one may name gone columns
        layer.features = kwargs["features"]
        layer.face_color = kwargs["face_color"]
        if "edge_color" in kwargs:
            layer.edge_color = kwargs["edge_color"]
        if new_text:
            # same template: the features assignment above already refreshed the strings
            layer.text = kwargs["text"]
            layer.metadata[TEXT_KEY] = dict(kwargs["text"])
    # one redraw: set_data makes the visual take the new mesh colours and text in one go
    layer.refresh()


def show_overlay(viewer: Any, data: tuple[list, dict, str], above: Any = None) -> Any:
    """Add the overlay, or update this plate's layer of the same role in place (much cheaper).

    Only the overlay of the same plate is replaced: other plates' predictions stay."""
    shapes, kwargs, _ = data
    meta = kwargs["metadata"]
    old = find_overlay(viewer, meta[ROLE_KEY], meta[KEY_KEY])
    if old is not None and len(old.data) == len(shapes) and len(shapes) > 0:
        old.metadata.update(meta)
        _update_in_place(old, kwargs)
        return old
    if old is not None:
        viewer.layers.remove(old)
    # drawn in the mosaic's pixel coordinates: the plate layers' scale keeps it aligned
    layer = viewer.add_shapes(shapes, **{**mosaic_layer_kwargs(meta[GEOMETRY_KEY]), **kwargs})
    if above is not None and above in viewer.layers:
        # keep the wells layer on top so it stays selectable for annotation
        viewer.layers.move(viewer.layers.index(above), len(viewer.layers))
    return layer


def heatmap_overlay_data(
    predictions: Any, plate: Any, geometry: MosaicGeometry, key: str, spec: ScoreSpec
) -> tuple[list, dict, str]:
    """Well rectangles coloured by a continuous score (``spec``) on its colour map."""
    spec = spec.resolved(predictions.class_names)
    rects = dict(well_rectangles(plate, geometry))
    wells, scores = well_scores(predictions, spec)
    return (
        [np.asarray(rects[w]) for w in wells],
        {
            "name": HEATMAP_LAYER,
            "shape_type": "rectangle",
            "features": {"well": wells, "score": [round(float(v), 4) for v in scores]},
            "face_color": score_colors(scores, spec),
            "edge_color": "transparent",
            "edge_width": 0,
            "text": {
                "string": "{score:.2f}",
                "anchor": "center",
                "size": text_size(geometry, chars=10),
                "scaling": True,
                "color": "white",
            },
            "metadata": {**_meta(plate, geometry, key, "well-heatmap"), "score": spec.to_dict()},
        },
        "shapes",
    )


def legend_html(class_names: list[str]) -> str:
    """A colour -> class legend for a QLabel."""
    colors = class_colors(list(class_names))
    items = []
    for name, (r, g, b, _a) in colors.items():
        hex_ = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
        items.append(f'<span style="color:{hex_}">&#9632;</span> {name}')
    return " &nbsp; ".join(items)


def style_annotations(wells_layer: Any, annotations: dict[str, str], classes: list[str]) -> None:
    """Show annotations on the wells layer: outline in the class colour, "B02 treated" text."""
    colors = class_colors(list(classes))
    wells = list(wells_layer.features["well"])
    labels = [annotations.get(w, "") for w in wells]
    wells_layer.features["label"] = labels
    wells_layer.edge_color = [
        colors.get(lab, UNLABELLED_EDGE) if lab else UNLABELLED_EDGE for lab in labels
    ]
    wells_layer.text = {
        "string": "{well} {label}",
        "anchor": "upper_left",
        "size": wells_layer.text.size,
        "scaling": True,
        "color": "white",
        "translation": wells_layer.text.translation,
    }
    wells_layer.refresh()
