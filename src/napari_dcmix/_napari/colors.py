"""Colours shared by the plate layers, the overlays and the importance chart."""

from __future__ import annotations

# stains we know get their customary colour; others take the next free one
_STAIN_COLORMAPS = {
    "dna": "blue",
    "hoechst": "blue",
    "dapi": "blue",
    "er": "green",
    "cona": "green",
    "rna": "cyan",
    "syto14": "cyan",
    "agp": "red",
    "phalloidin": "red",
    "actin": "red",
    "mito": "magenta",
    "mitotracker": "magenta",
    "wga": "yellow",
    "golgi": "yellow",
}
_CYCLE = ["blue", "green", "magenta", "cyan", "yellow", "red", "bop orange", "bop purple", "gray"]

#: categorical colours for classes (tab10 without grey), RGBA 0-1
CLASS_PALETTE = [
    (0.122, 0.467, 0.706, 1.0),
    (1.000, 0.498, 0.055, 1.0),
    (0.173, 0.627, 0.173, 1.0),
    (0.839, 0.153, 0.157, 1.0),
    (0.580, 0.404, 0.741, 1.0),
    (0.549, 0.337, 0.294, 1.0),
    (0.890, 0.467, 0.761, 1.0),
    (0.737, 0.741, 0.133, 1.0),
    (0.090, 0.745, 0.812, 1.0),
]


def channel_colormaps(names: list[str]) -> list[str]:
    """A distinct napari colormap name per channel, customary colours for known stains."""
    out: list[str] = []
    for name in names:
        cmap = _STAIN_COLORMAPS.get(name.lower().replace(" ", "").replace("-", ""))
        if cmap is None or cmap in out:
            cmap = next((c for c in _CYCLE if c not in out), "gray")
        out.append(cmap)
    return out


def colormap_rgba(name: str) -> tuple[float, float, float, float]:
    """The brightest colour of a napari colormap (what an additive channel looks like)."""
    from napari.utils.colormaps import ensure_colormap

    r, g, b, a = (float(v) for v in ensure_colormap(name).colors[-1])
    return (r, g, b, a)


def class_colors(class_names: list[str]) -> dict[str, tuple[float, float, float, float]]:
    """A fixed colour per class, in class order."""
    return {c: CLASS_PALETTE[i % len(CLASS_PALETTE)] for i, c in enumerate(class_names)}


def layer_colors(viewer, names: list[str]) -> list[tuple]:
    """The colour of each named channel's image layer in ``viewer`` (or the one it would get)."""
    by_name: dict[str, tuple] = {}
    for layer in getattr(viewer, "layers", []):
        if layer.metadata.get("dcmix_role") == "channel":
            by_name.setdefault(layer.name, tuple(layer.colormap.colors[-1]))
    fallback = channel_colormaps(names)
    return [by_name.get(n) or colormap_rgba(f) for n, f in zip(names, fallback, strict=True)]
