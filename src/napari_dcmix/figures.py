"""The figures napari-dcmix draws, Qt-free (matplotlib's object API, never pyplot): the
importance chart (bars with intervals, greyed when the model did not learn, one group per
class), the held-out confusion matrix, plate heatmaps and their colour bar. The napari chart
dock and the HTML report draw with these same functions; colours of stains and classes are
defined here once.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# stains we know get their customary colour (a napari colormap name); others the next free one
STAIN_COLORMAPS = {
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
COLORMAP_CYCLE = ["blue", "green", "magenta", "cyan", "yellow", "red", "bop orange",
                  "bop purple", "gray"]  # fmt: skip
# the brightest colour of each of those napari colormaps (what an additive channel looks like)
COLORMAP_RGB = {
    "blue": (0.0, 0.0, 1.0),
    "green": (0.0, 1.0, 0.0),
    "magenta": (1.0, 0.0, 1.0),
    "cyan": (0.0, 1.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "red": (1.0, 0.0, 0.0),
    "bop orange": (1.0, 0.75, 0.0),
    "bop purple": (0.75, 0.0, 1.0),
    "gray": (0.6, 0.6, 0.6),
}
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
GREY = (0.55, 0.55, 0.55, 1.0)
LIGHT = {"bg": "#ffffff", "fg": "#202020", "grid": "#909090"}

Color = Any


def channel_colormaps(names: Sequence[str]) -> list[str]:
    """A distinct napari colormap name per stain, customary colours for known stains."""
    out: list[str] = []
    for name in names:
        cmap = STAIN_COLORMAPS.get(name.lower().replace(" ", "").replace("-", ""))
        if cmap is None or cmap in out:
            cmap = next((c for c in COLORMAP_CYCLE if c not in out), "gray")
        out.append(cmap)
    return out


def stain_colors(names: Sequence[str]) -> list[tuple[float, float, float, float]]:
    """The colour each stain's image layer gets (RGBA), without napari."""
    return [(*COLORMAP_RGB.get(c, (0.6, 0.6, 0.6)), 1.0) for c in channel_colormaps(names)]


def class_colors(class_names: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """A fixed colour per class, in class order."""
    return {c: CLASS_PALETTE[i % len(CLASS_PALETTE)] for i, c in enumerate(class_names)}


def _style(ax: Any, theme: Mapping[str, str]) -> None:
    ax.set_facecolor(theme["bg"])
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(theme["grid"])
    ax.tick_params(colors=theme["fg"], labelsize=8)


def draw_importance(
    ax: Any,
    names: Sequence[str],
    values: Sequence[float],
    colors: Sequence[Color],
    *,
    interval: Sequence[Sequence[float]] | None = None,
    greyed: bool = False,
    per_class: Mapping[str, Mapping[str, Any]] | None = None,
    order: Sequence[int] | None = None,
    theme: Mapping[str, str] = LIGHT,
    title: str = "",
) -> tuple[list, list]:
    """Bars of importance per stain on ``ax`` (values as text, ``interval`` as error bars),
    grey when ``greyed``; with ``per_class`` ({class: {"values", "interval"}}) one group of
    bars per class. ``order`` lists stain indices to draw (sorted charts). Returns the bars
    and value labels (for in-place updates)."""
    _style(ax, theme)
    ax.set_title(title, color=theme["fg"], fontsize=9)
    if not names:
        ax.set_xticks([])
        ax.set_yticks([])
        return [], []
    idx = list(order) if order is not None else list(range(len(names)))
    groups = list(per_class.items()) if per_class else [("", {"values": values,
                                                              "interval": interval})]  # fmt: skip
    width = 0.8
    bars, labels, top = [], [], 0.0
    centres, group_names = [], []
    for g, (group, data) in enumerate(groups):
        vals = [float(data["values"][i]) for i in idx]
        ivl = data.get("interval")
        x0 = g * (len(idx) + 1)
        xs = [x0 + j for j in range(len(idx))]
        faces = [GREY if greyed else colors[i] for i in idx]
        drawn = ax.bar(xs, vals, width=width, color=faces, edgecolor=theme["fg"], linewidth=0.5,
                       alpha=0.45 if greyed else 1.0)  # fmt: skip
        bars += list(drawn)
        highs = vals
        if ivl:
            lo = np.array([float(ivl[i][0]) for i in idx])
            hi = np.array([float(ivl[i][1]) for i in idx])
            v = np.array(vals)
            err = np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])
            ax.errorbar(xs, vals, yerr=err, fmt="none", ecolor=theme["fg"], elinewidth=1.0,
                        capsize=3)  # fmt: skip
            highs = list(np.maximum(hi, v))
        for x, v, h in zip(xs, vals, highs, strict=True):
            labels.append(ax.text(x, h, f"{v:.2f}", ha="center", va="bottom",
                                  color=theme["fg"], fontsize=7))  # fmt: skip
        top = max(top, max(highs))
        centres.append(x0 + (len(idx) - 1) / 2)
        group_names.append(group)
    if per_class:
        ax.set_xticks(centres, group_names)
        ax.legend(bars[: len(idx)], [names[i] for i in idx], fontsize=7, frameon=False,
                  labelcolor=theme["fg"], ncols=min(len(idx), 5), loc="upper left")  # fmt: skip
        top *= 1.25
    else:
        ax.set_xticks(range(len(idx)), [names[i] for i in idx])
    ax.set_ylim(0, max(top * 1.25, 1e-6))
    ax.set_ylabel("importance", color=theme["fg"], fontsize=8)
    return bars, labels


def draw_confusion(
    ax: Any, confusion: Sequence[Sequence[float]], classes: Sequence[str],
    theme: Mapping[str, str] = LIGHT,
) -> None:  # fmt: skip
    """The held-out confusion matrix (rows: true class, columns: predicted), counts as text."""
    m = np.asarray(confusion, dtype=float)
    ax.imshow(m, cmap="Blues", vmin=0, vmax=max(float(m.max()), 1.0))
    for (i, j), v in np.ndenumerate(m):
        light = v > 0.6 * max(float(m.max()), 1.0)
        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=8,
                color="white" if light else "#202020")  # fmt: skip
    ax.set_xticks(range(len(classes)), classes, fontsize=7, rotation=30)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("predicted", color=theme["fg"], fontsize=8)
    ax.set_ylabel("true", color=theme["fg"], fontsize=8)
    ax.tick_params(colors=theme["fg"])
    ax.set_title("held-out wells", color=theme["fg"], fontsize=8)


def plate_grid(wells: Sequence[str]) -> tuple[int, int]:
    """Rows and columns of the smallest standard plate (6..1536 wells) holding ``wells``."""
    from napari_dcmix.plate.wells import well_row_col

    rows = max((well_row_col(w)[0] for w in wells), default=0) + 1
    cols = max((well_row_col(w)[1] for w in wells), default=0)
    for r, c in ((2, 3), (3, 4), (4, 6), (6, 8), (8, 12), (16, 24), (32, 48)):
        if rows <= r and cols <= c:
            return r, c
    return rows, cols


def draw_plate_heatmap(
    ax: Any,
    scores: Mapping[str, float],
    colormap: str,
    limits: tuple[float, float],
    theme: Mapping[str, str] = LIGHT,
    title: str = "",
) -> Any:
    """Wells as a plate grid coloured by score (missing wells blank); returns the image."""
    from napari_dcmix.plate.wells import row_letters, well_row_col

    n_rows, n_cols = plate_grid(list(scores))
    grid = np.full((n_rows, n_cols), np.nan)
    for well, value in scores.items():
        r, c = well_row_col(well)
        grid[r, c - 1] = value
    from matplotlib import colormaps

    cmap = colormaps[colormap].with_extremes(bad="#e8e8e8")  # wells without a score
    image = ax.imshow(grid, cmap=cmap, vmin=limits[0], vmax=limits[1], aspect="equal")
    ax.set_xticks(range(n_cols), [str(c + 1) for c in range(n_cols)], fontsize=6)
    ax.set_yticks(range(n_rows), [row_letters(r) for r in range(n_rows)], fontsize=6)
    ax.tick_params(colors=theme["fg"], length=0)
    ax.set_title(title, color=theme["fg"], fontsize=9)
    for side in ax.spines.values():
        side.set_visible(False)
    return image


def draw_colorbar(
    fig: Any, ax: Any, colormap: str, limits: tuple[float, float], label: str,
    theme: Mapping[str, str] = LIGHT, mappable: Any = None,
) -> Any:  # fmt: skip
    """A horizontal colour bar on ``ax`` (of ``mappable``, else of the colormap)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if mappable is None:
        mappable = ScalarMappable(norm=Normalize(*limits), cmap=colormap)
    bar = fig.colorbar(mappable, cax=ax, orientation="horizontal")
    bar.set_label(label, color=theme["fg"], fontsize=8)
    bar.ax.tick_params(colors=theme["fg"], labelsize=7)
    bar.outline.set_edgecolor(theme["grid"])
    return bar


def png_bytes(fig: Any, dpi: int = 110) -> bytes:
    """A Figure rendered to PNG with the Agg canvas (no GUI, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=fig.get_facecolor())
    return buf.getvalue()
