"""Command-line options built from a settings dataclass (``TrainConfig``, ``PredictConfig``):
one definition per setting (its ``setting`` metadata) serves the API, the CLI and the widget."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any

from napari_dcmix.model.train_settings import settings_fields


def option_name(f: dataclasses.Field) -> str | None:
    """The field's command-line option (``--max-tiles``), or None when it has none."""
    cli = f.metadata.get("cli", "")
    if cli is None:
        return None
    return cli or "--" + f.name.replace("_", "-")


def _base_type(f: dataclasses.Field, cls: type) -> Any:
    hint = typing.get_type_hints(cls)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return hint


def add_settings_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    skip: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
    types_: dict[str, Any] | None = None,
) -> None:
    """One option per field of ``cls`` that has an option name, except ``skip``. Options
    default to None, so ``settings_from_args`` can tell what the user gave; the help shows
    the dataclass default (or ``defaults[name]``). ``types_`` overrides a field's argparse
    ``type`` (for validating parsers)."""
    skip = set(skip)
    defaults = defaults or {}
    types_ = types_ or {}
    group = parser.add_argument_group(f"{cls.__name__} settings")
    for f in settings_fields(cls):
        name = option_name(f)
        if name is None or f.name in skip:
            continue
        kind = _base_type(f, cls)
        shown = defaults.get(f.name, f.default)
        text = f.metadata["help"] + ("" if shown is None else f" (default: {shown})")
        if kind is bool:
            group.add_argument(name, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=None, help=text)  # fmt: skip
            continue
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": text}
        if f.metadata.get("choices"):
            kwargs["choices"] = list(f.metadata["choices"])
        kwargs["type"] = types_.get(f.name, kind if kind in (int, float) else str)
        group.add_argument(name, **kwargs)


def settings_from_args(
    cls: type, args: argparse.Namespace, defaults: dict[str, Any] | None = None
) -> Any:
    """An instance of ``cls`` from parsed options: what the user gave, else ``defaults``,
    else the dataclass default (validation is the dataclass's own ``__post_init__``)."""
    values = dict(defaults or {})
    for f in settings_fields(cls):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return cls(**values)
