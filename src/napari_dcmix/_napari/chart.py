"""Channel-importance bar chart: matplotlib (no pyplot) in a dock, drawn in napari's theme."""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QCheckBox, QLabel, QVBoxLayout, QWidget

#: every open chart, so a DCMIX widget can update the charts of its viewer
_CHARTS: weakref.WeakSet[ImportanceChart] = weakref.WeakSet()

Color = tuple[float, float, float] | tuple[float, float, float, float] | str


def _unwrap(viewer):
    # napari hands plugins a proxy of the viewer: compare the objects behind the proxies
    return getattr(viewer, "__wrapped__", viewer)


def charts_of(viewer) -> list[ImportanceChart]:
    """The open importance charts docked in ``viewer``."""
    target = _unwrap(viewer)
    return [c for c in list(_CHARTS) if c.viewer is not None and _unwrap(c.viewer) is target]


class ImportanceChart(QWidget):
    """One bar per stain with its value; channel order or sorted (toggle)."""

    def __init__(self, napari_viewer=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        napari_viewer = _unwrap(napari_viewer)
        self.viewer = napari_viewer
        self.names: list[str] = []
        self.values: list[float] = []
        self.colors: list[Color] = []
        self.title = "Channel importance"
        self.figure = Figure(figsize=(4, 2.6))
        self._ax = None
        self._bars: list | None = None
        self._labels: list = []
        self._drawn: tuple | None = None
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(180)
        self.sort_box = QCheckBox("Sort by importance")
        self.sort_box.toggled.connect(self.redraw)
        self.caption = QLabel("Load a model or fine-tune to see which stains it uses.")
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.canvas)
        layout.addWidget(self.sort_box)
        layout.addWidget(self.caption)
        if napari_viewer is not None:
            napari_viewer.events.theme.connect(self.redraw)
        _CHARTS.add(self)
        self.redraw()

    # --- public -----------------------------------------------------------------------------
    def set_importance(
        self,
        names: Sequence[str],
        values: Sequence[float],
        colors: Sequence[Color] | None = None,
        title: str | None = None,
    ) -> None:
        """Show ``values`` (one per stain ``names``), bars coloured like the channel layers."""
        if len(names) != len(values):
            raise ValueError("one importance value per channel name is needed")
        self.names = list(names)
        self.values = [float(v) for v in values]
        self.colors = list(colors) if colors is not None else ["#4c9be8"] * len(names)
        if title is not None:
            self.title = title
        if self.names:
            top = self.names[int(np.argmax(self.values))]
            self.caption.setText(f"The model relies most on {top}.")
        self.redraw()

    def ranking(self) -> list[str]:
        """Stain names, most important first."""
        order = np.argsort(-np.asarray(self.values), kind="stable")
        return [self.names[i] for i in order]

    # --- drawing ----------------------------------------------------------------------------
    def _theme(self) -> dict[str, str]:
        name = getattr(self.viewer, "theme", "dark") if self.viewer is not None else "dark"
        try:
            from napari.utils.theme import get_theme

            theme = get_theme(name)
            return {
                "bg": theme.background.as_hex(),
                "fg": theme.text.as_hex(),
                "grid": theme.secondary.as_hex(),
            }
        except Exception:
            return {"bg": "#262930", "fg": "#f0f1f2", "grid": "#565f6c"}

    def redraw(self, *_args) -> None:
        """Draw the bars; when only the values changed, update the bars in place (cheap)."""
        colors = self._theme()
        order = self.ranking() if self.sort_box.isChecked() else list(self.names)
        idx = [self.names.index(n) for n in order]
        vals = [self.values[i] for i in idx]
        key = (tuple(order), tuple(str(self.colors[i]) for i in idx), tuple(colors.values()))
        if key == self._drawn and self._bars is not None:
            for bar, v, text in zip(self._bars, vals, self._labels, strict=True):
                bar.set_height(v)
                text.set_text(f"{v:.2f}")
                text.set_y(v)
            self._ax.set_ylim(0, max(max(vals) * 1.25, 1e-6))
            self._ax.set_title(self.title, color=colors["fg"], fontsize=9)
            self.canvas.draw_idle()
            return
        self._drawn = key
        self.figure.clear()
        self.figure.set_facecolor(colors["bg"])
        # fixed margins: constrained layout costs more than the whole bar chart
        ax = self._ax = self.figure.add_axes((0.14, 0.16, 0.82, 0.72))
        ax.set_facecolor(colors["bg"])
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_color(colors["grid"])
        ax.tick_params(colors=colors["fg"], labelsize=8)
        ax.set_title(self.title, color=colors["fg"], fontsize=9)
        self._bars, self._labels = None, []
        if self.names:
            bars = ax.bar(
                range(len(order)),
                vals,
                color=[self.colors[i] for i in idx],
                edgecolor=colors["fg"],
                linewidth=0.5,
            )
            self._bars = list(bars)
            self._labels = [
                ax.text(i, v, f"{v:.2f}", ha="center", va="bottom", color=colors["fg"], fontsize=8)
                for i, v in enumerate(vals)
            ]
            ax.set_xticks(range(len(order)), order)
            ax.set_ylim(0, max(max(vals) * 1.25, 1e-6))
            ax.set_ylabel("importance", color=colors["fg"], fontsize=8)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        self.canvas.draw_idle()
