"""Colours of the plate layers, the overlays and the importance chart (the definitions live in
``napari_dcmix.figures``, shared with the report; here what needs napari)."""

from __future__ import annotations

from napari_dcmix.figures import CLASS_PALETTE, channel_colormaps, class_colors

__all__ = ["CLASS_PALETTE", "channel_colormaps", "class_colors", "colormap_rgba", "layer_colors"]


def colormap_rgba(name: str) -> tuple[float, float, float, float]:
    """The brightest colour of a napari colormap (what an additive channel looks like)."""
    from napari.utils.colormaps import ensure_colormap

    r, g, b, a = (float(v) for v in ensure_colormap(name).colors[-1])
    return (r, g, b, a)


def layer_colors(viewer, names: list[str]) -> list[tuple]:
    """The colour of each named channel's image layer in ``viewer`` (or the one it would get)."""
    by_name: dict[str, tuple] = {}
    for layer in getattr(viewer, "layers", []):
        if layer.metadata.get("dcmix_role") == "channel":
            by_name.setdefault(layer.name, tuple(layer.colormap.colors[-1]))
    fallback = channel_colormaps(names)
    return [by_name.get(n) or colormap_rgba(f) for n, f in zip(names, fallback, strict=True)]
