"""Channel-importance chart dock: matplotlib (no pyplot) in napari's theme, drawn by the figure
code the HTML report uses (``napari_dcmix.figures``): bars with their intervals, greyed when
the model did not learn, one group per class when the model has per-class importance, the
held-out confusion matrix beside them and the verdict sentence as the caption."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QCheckBox, QLabel, QVBoxLayout, QWidget

from napari_dcmix.figures import draw_confusion, draw_importance

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
        self.interval: list[list[float]] | None = None
        self.greyed = False
        self.per_class: dict[str, dict[str, Any]] = {}
        self.confusion: list[list[float]] | None = None
        self.classes: list[str] = []
        self.title = "Channel importance"
        self.figure = Figure(figsize=(4, 2.6))
        self._ax = None
        self._bars: list | None = None
        self._labels: list = []
        self._drawn: tuple | None = None
        self._animated: list = []
        self._background = None
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.mpl_connect("draw_event", self._drawn_event)
        self.canvas.setMinimumHeight(180)
        self.sort_box = QCheckBox("Sort by importance")
        self.sort_box.toggled.connect(self.redraw)
        self.held_out = QLabel("")
        self.held_out.setWordWrap(True)
        self.caption = QLabel("Load a model or fine-tune to see which stains it uses.")
        self.caption.setWordWrap(True)
        # fixed heights: a new caption (each fine-tune epoch, each model) never re-lays the
        # dock out, which would resize and re-render the chart (and can resize napari's canvas)
        line = self.caption.fontMetrics().lineSpacing()
        self.caption.setFixedHeight(5 * line + 4)
        self.held_out.setFixedHeight(2 * line + 2)
        for label in (self.caption, self.held_out):
            label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout = QVBoxLayout(self)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.sort_box)
        layout.addWidget(self.held_out)
        layout.addWidget(self.caption)
        # word-wrapped labels do not pass their height on to the dock: room for the chart, the
        # toggle and the labels, so the dock never squeezes them over each other
        self.setMinimumHeight(self.canvas.minimumHeight() + 7 * line + 40)
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
        *,
        interval: Sequence[Sequence[float]] | None = None,
        greyed: bool = False,
        per_class: dict[str, dict[str, Any]] | None = None,
        caption: str | None = None,
        held_out: str = "",
        confusion: Sequence[Sequence[float]] | None = None,
        classes: Sequence[str] = (),
    ) -> None:
        """Show ``values`` (one per stain ``names``), bars coloured like the channel layers;
        ``interval`` ([low, high] per stain) as error bars, ``greyed`` bars when the model did
        not learn, ``per_class`` as one bar group per class, ``confusion`` beside them."""
        if len(names) != len(values):
            raise ValueError("one importance value per channel name is needed")
        self.names = list(names)
        self.values = [float(v) for v in values]
        self.colors = list(colors) if colors is not None else ["#4c9be8"] * len(names)
        self.interval = [list(v) for v in interval] if interval else None
        self.greyed = bool(greyed)
        self.per_class = dict(per_class or {})
        self.confusion = [list(r) for r in confusion] if confusion is not None else None
        self.classes = list(classes)
        if title is not None:
            self.title = title
        if caption is not None:
            self.caption.setText(caption)
            self.caption.setToolTip(caption)
        elif self.names:
            top = self.names[int(np.argmax(self.values))]
            self.caption.setText(f"The bars are mixing weights; the highest is {top}.")
        self.held_out.setText(held_out)
        self.redraw()

    def set_view(self, view: dict[str, Any], colors: Sequence[Color]) -> None:
        """Show what ``napari_dcmix.session.importance.importance_view`` says of a model."""
        self.set_importance(
            view["names"],
            view["values"],
            colors,
            title="Channel importance" + (" (did not learn)" if view["greyed"] else ""),
            interval=view["interval"],
            greyed=view["greyed"],
            per_class=view["per_class"],
            caption=view["caption"],
            held_out=view["held_out_text"],
            confusion=view["confusion"],
            classes=view["classes"],
        )

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
        """Draw the chart. When only the values of plain bars changed (the epochs of a
        fine-tune) and they fit the axis, only the bars, their values and the title are drawn
        again over the saved background (blitting: a few ms instead of a whole figure)."""
        theme = self._theme()
        order = self.ranking() if self.sort_box.isChecked() else list(self.names)
        idx = [self.names.index(n) for n in order]
        plain = not (self.interval or self.per_class or self.greyed or self.confusion)
        key = (tuple(order), tuple(str(self.colors[i]) for i in idx), tuple(theme.values()))
        if plain and key == self._drawn and self._bars is not None:
            vals = [self.values[i] for i in idx]
            for bar, v, text in zip(self._bars, vals, self._labels, strict=True):
                bar.set_height(v)
                text.set_text(f"{v:.2f}")
                text.set_y(v)
            self._ax.title.set_text(self.title)
            top = self._ax.get_ylim()[1]
            if self._background is not None and max(vals) * 1.15 <= top <= 4 * max(vals):
                self.canvas.restore_region(self._background)
                self._draw_animated()
                self.canvas.blit(self.figure.bbox)
                return
            self._ax.set_ylim(0, max(max(vals) * 1.5, 1e-6))
            self.canvas.draw_idle()
            return
        self._drawn = key if plain else None
        self._background = None
        self.figure.clear()
        self.figure.set_facecolor(theme["bg"])
        # fixed margins: constrained layout costs more than the whole bar chart
        wide = 0.82 if self.confusion is None else 0.52
        ax = self._ax = self.figure.add_axes((0.14, 0.16, wide, 0.72))
        self._bars, self._labels = draw_importance(
            ax, self.names, self.values, self.colors, interval=self.interval,
            greyed=self.greyed, per_class=self.per_class or None, order=idx, theme=theme,
            title=self.title,
        )  # fmt: skip
        # what changes from epoch to epoch is drawn over a saved background (see _drawn_event),
        # with head room on the axis so that the next epochs' bars fit it
        self._animated = [*self._bars, *self._labels, ax.title] if plain else []
        if plain and self.values:
            ax.set_ylim(0, max(max(self.values) * 1.5, 1e-6))
        for artist in self._animated:
            artist.set_animated(True)
        if self.confusion is not None:
            draw_confusion(self.figure.add_axes((0.76, 0.22, 0.2, 0.6)), self.confusion,
                           self.classes, theme)  # fmt: skip
        self.canvas.draw_idle()

    def _draw_animated(self) -> None:
        for artist in self._animated:
            self.figure.draw_artist(artist)

    def _drawn_event(self, _event) -> None:
        """After every full draw: save the background and draw the changing artists on it."""
        if self._animated:
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
            self._draw_animated()
