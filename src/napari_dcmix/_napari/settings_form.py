"""Settings forms built with magicgui from a settings dataclass's ``setting(...)`` metadata
(``TrainConfig``, ``PredictConfig``): one widget per field shown in the widget (label, tooltip,
choices, bounds and step from the metadata), advanced fields folded away per group. A field
added to the dataclass appears in the form without widget code; the CLI builds its options
from the same metadata (``cli/_settings.py``)."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from qtpy.QtWidgets import QVBoxLayout, QWidget

QT_INT_MAX = 2**31 - 1  # a Qt spin box holds 32-bit integers


def _base_type(cls: type, name: str) -> tuple[Any, bool]:
    """``(type, optional)``: the field's type without None, and whether None is allowed
    (several types, e.g. ``int | str``, come back as ``str``: typed as text)."""
    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return hint, False
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = len(args) < len(typing.get_args(hint))
    return (args[0] if len(args) == 1 else str), optional


def parse_text(text: str) -> Any:
    """A text field's value: empty -> None (the default), else an int, a float or the text."""
    text = str(text).strip()
    if not text:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _decimals(*values: float | None) -> int:
    small = [abs(v) for v in values if v]
    if not small:
        return 2
    return int(min(6, max(2, math.ceil(-math.log10(min(small))) + 1)))


def field_widget(cls: type, f: dataclasses.Field, value: Any) -> Any:
    """The magicgui widget of one settings field, holding ``value``."""
    from magicgui import widgets

    meta = f.metadata
    kind, optional = _base_type(cls, f.name)
    common = {"name": f.name, "label": meta["label"], "tooltip": meta["help"]}
    if optional or kind not in (bool, int, float, str):
        # None means "the default": a text field, empty for None (see parse_text)
        w = widgets.LineEdit(value="" if value is None else str(value), **common)
        w.native.setPlaceholderText("default")
        w.parse = parse_text
        return w
    if meta.get("choices"):
        return widgets.ComboBox(value=value, choices=list(meta["choices"]), **common)
    if kind is bool:
        return widgets.CheckBox(
            value=bool(value), text=meta["label"], name=f.name, tooltip=meta["help"]
        )
    bounds: dict[str, Any] = {}
    if kind is int:
        bounds["min"] = int(meta["minimum"]) if meta.get("minimum") is not None else 0
        top = meta.get("maximum")
        bounds["max"] = min(int(top), QT_INT_MAX) if top is not None else QT_INT_MAX
        if meta.get("step"):
            bounds["step"] = int(meta["step"])
        return widgets.SpinBox(value=int(value), **bounds, **common)
    if kind is float:
        lo, hi, step = meta.get("minimum"), meta.get("maximum"), meta.get("step")
        w = widgets.FloatSpinBox(
            min=float(lo) if lo is not None else 0.0,
            max=float(hi) if hi is not None else 1e9,
            **common,
        )
        w.native.setDecimals(_decimals(lo, step, value))
        if step:
            w.step = float(step)
        w.value = float(value)
        return w
    return widgets.LineEdit(value="" if value is None else str(value), **common)


_GROUP_TITLES = {"training": "Advanced", "architecture": "Architecture (new models only)"}


class SettingsForm(QWidget):
    """A form for the fields of ``cls`` shown in the widget (``only`` / ``skip`` by name):
    the basic ones, then one folded section per group of advanced ones. ``on_change(name,
    value)`` is called when the user changes a field; ``set_values(settings)`` shows a
    settings object without calling it."""

    def __init__(
        self,
        cls: type,
        values: Any,
        on_change: Callable[[str, Any], None],
        only: Iterable[str] | None = None,
        skip: Iterable[str] = (),
    ) -> None:
        super().__init__()
        from magicgui.widgets import Container
        from superqt import QCollapsible

        from napari_dcmix.model.train_settings import settings_fields

        only_set, skipped = (set(only) if only is not None else None), set(skip)
        self.fields = [
            f
            for f in settings_fields(cls)
            if f.metadata.get("widget", True)
            and f.name not in skipped
            and (only_set is None or f.name in only_set)
        ]
        self.widgets: dict[str, Any] = {}
        self._on_change = on_change
        self._quiet = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        basic = [f for f in self.fields if not f.metadata.get("advanced")]
        self.basic = Container(widgets=[self._make(cls, f, values) for f in basic])
        self.basic.margins = (0, 0, 0, 0)
        layout.addWidget(self.basic.native)
        self.folded: dict[str, Any] = {}
        groups = list(dict.fromkeys(f.metadata.get("group", "training") for f in self.fields))
        for group in groups:
            members = [
                f
                for f in self.fields
                if f.metadata.get("advanced") and f.metadata.get("group", "training") == group
            ]
            if not members:
                continue
            box = Container(widgets=[self._make(cls, f, values) for f in members])
            box.margins = (0, 0, 0, 0)
            fold = QCollapsible(_GROUP_TITLES.get(group, group.capitalize()))
            fold.addWidget(box.native)
            layout.addWidget(fold)
            self.folded[group] = fold

    def _make(self, cls: type, f: dataclasses.Field, values: Any) -> Any:
        from magicgui.widgets import LineEdit

        w = field_widget(cls, f, getattr(values, f.name))
        if isinstance(w, LineEdit):  # text: once typed (not at each key, half written)
            w.native.editingFinished.connect(lambda n=f.name, w=w: self._changed(n, w.value))
        else:
            w.changed.connect(lambda value, name=f.name: self._changed(name, value))
        self.widgets[f.name] = w
        return w

    def _changed(self, name: str, value: Any) -> None:
        if not self._quiet:
            parse = getattr(self.widgets[name], "parse", None)
            self._on_change(name, parse(value) if parse is not None else value)

    def set_values(self, values: Any) -> None:
        self._quiet = True
        try:
            for name, w in self.widgets.items():
                value = getattr(values, name)
                if isinstance(w.value, str) and not isinstance(value, str):
                    value = "" if value is None else str(value)
                if w.value != value:
                    w.value = value
        finally:
            self._quiet = False

    def value(self, name: str) -> Any:
        w = self.widgets[name]
        parse = getattr(w, "parse", None)
        return parse(w.value) if parse is not None else w.value
