"""Plate -> napari layer data: one additive multiscale image per channel and a "wells" layer."""

from __future__ import annotations

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


def text_size(geometry: MosaicGeometry, chars: int = 12) -> float:
    """Text size (data units, scaled with zoom) so ``chars`` characters span about one well."""
    well_width = geometry.site_grid[1] * geometry.site_pitch[1]
    return max(2.0, round(well_width / (0.75 * chars), 1))


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
                "translation": [0.9 * size, 0.2 * size],  # inside the well, top left
                "scaling": True,
            },
            "metadata": {
                PLATE_KEY: plate,
                GEOMETRY_KEY: geometry,
                KEY_KEY: plate_key(plate),
                ROLE_KEY: "wells",
            },
        },
        "shapes",
    )
