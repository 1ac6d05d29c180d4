"""Plate -> napari layer data: one additive multiscale image per channel and a "wells" layer.

Every layer drawn on a plate mosaic has its data in the mosaic's pixel coordinates
(``MosaicGeometry``) and takes ``mosaic_layer_kwargs(geometry)``: ``scale`` = the plate's
pixel size (and ``units`` micrometres) when it is known, so napari's scale bar shows
micrometres and the layers stay aligned. Text sizes (``text_size``) are in world units, since
napari sizes scaled text in world units, not in a layer's data units.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from napari_dcmix.figures import channel_colormaps
from napari_dcmix.plate.mosaic import (
    MosaicGeometry,
    build_mosaic,
    sample_contrast_limits,
    well_rectangles,
)

#: key under which every plate layer's ``metadata`` holds the plate and its mosaic geometry
PLATE_KEY = "dcmix_plate"
GEOMETRY_KEY = "dcmix_geometry"
ROLE_KEY = "dcmix_role"  # "channel" | "wells" | "well-predictions" | "site-predictions" | ...
KEY_KEY = "dcmix_plate_key"  # the session's key of the plate (its resolved folder)


def plate_layer_data(plate: Any) -> list[tuple[Any, dict, str]]:
    """Layer data tuples for a plate mosaic (reads a few sites for contrast limits only)."""
    from napari_dcmix.session.session import plate_key

    mosaic = build_mosaic(plate)
    geometry = mosaic.geometry
    meta = {PLATE_KEY: plate, GEOMETRY_KEY: geometry, KEY_KEY: plate_key(plate)}
    limits = sample_contrast_limits(plate)
    physical = mosaic_layer_kwargs(geometry)
    layers: list[tuple[Any, dict, str]] = []
    for c, (name, cmap) in enumerate(
        zip(plate.channels, channel_colormaps(plate.channels), strict=True)
    ):
        layers.append(
            (
                mosaic.channel_levels(c),
                {
                    "name": name,
                    "colormap": cmap,
                    "blending": "additive",
                    "contrast_limits": limits[c],
                    "multiscale": True,
                    "metadata": {**meta, ROLE_KEY: "channel", "channel": name},
                    **physical,
                },
                "image",
            )
        )
    layers.append(wells_layer_data(plate, geometry))
    return layers


def channel_levels(plate: Any) -> tuple[list, list]:
    """Each channel's multiscale levels and contrast limits (for replacing a layer's data when
    the plate is reopened at another plane or timepoint)."""
    mosaic = build_mosaic(plate)
    limits = sample_contrast_limits(plate)
    return [mosaic.channel_levels(c) for c in range(len(plate.channels))], list(limits)


@functools.cache
def _layers_take_units() -> bool:
    """Whether this napari's layers accept ``units`` (napari 0.6 and later)."""
    import inspect

    from napari.layers import Image

    return "units" in inspect.signature(Image.__init__).parameters


def mosaic_layer_kwargs(geometry: MosaicGeometry) -> dict[str, Any]:
    """``scale`` (and ``units``) for a layer drawn in the mosaic's pixel coordinates: the
    plate's pixel size in micrometres when it is known, else nothing (scale 1, pixels)."""
    if geometry.pixel_size_um is None:
        return {}
    out: dict[str, Any] = {"scale": geometry.scale}
    if _layers_take_units():
        out["units"] = ("micrometer", "micrometer")
    return out


def text_size(geometry: MosaicGeometry, chars: int = 12) -> float:
    """Text size so ``chars`` characters span about one well. In world units (napari scales
    text with zoom in world units): the same on screen, relative to the wells, whatever the
    plate's pixel size."""
    well_width = geometry.site_grid[1] * geometry.site_pitch[1]
    return geometry.scale[1] * max(2.0, round(well_width / (0.75 * chars), 1))


def wells_layer_data(plate: Any, geometry: MosaicGeometry) -> tuple[Any, dict, str]:
    """One rectangle per well, its name as text, features plate/well/row/column."""
    from napari_dcmix.plate.wells import row_letters, well_row_col
    from napari_dcmix.session.session import plate_key

    rects = well_rectangles(plate, geometry)
    wells = [w for w, _ in rects]
    rows_cols = [well_row_col(w) for w in wells]
    features = {
        "plate": [plate.name] * len(wells),
        "well": wells,
        "row": [row_letters(r) for r, _ in rows_cols],
        "column": [c for _, c in rows_cols],
        "label": [""] * len(wells),
    }
    size = text_size(geometry)
    offset = size / geometry.scale[1]  # text translation is in data units (mosaic pixels)
    return (
        [np.asarray(r, dtype=float) for _, r in rects],
        {
            "name": "wells",
            "shape_type": "rectangle",
            "features": features,
            "face_color": "transparent",
            "edge_color": "#808080",
            "edge_width": max(1.0, geometry.gutter / 8),
            "text": {
                "string": "{well}",
                "anchor": "upper_left",
                "size": size,
                "color": "white",
                "translation": [0.9 * offset, 0.2 * offset],  # inside the well, top left
                "scaling": True,
            },
            "metadata": {
                PLATE_KEY: plate,
                GEOMETRY_KEY: geometry,
                KEY_KEY: plate_key(plate),
                ROLE_KEY: "wells",
            },
            **mosaic_layer_kwargs(geometry),
        },
        "shapes",
    )
