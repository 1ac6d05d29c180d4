"""Plate options shared by the subcommands that read plates (info, predict, train...).

One place defines how a command line names plates and how they are opened, so every command
takes the same options (layout, channel mapping, plane and timepoint selection).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Sequence
from typing import Any

from napari_dcmix.cli._args import plane as plane_type
from napari_dcmix.cli._args import timepoint as timepoint_type


def add_plate_options(parser: argparse.ArgumentParser) -> None:
    """Options that change how plates are opened (shared by every plate-reading command)."""
    group = parser.add_argument_group("plate options")
    group.add_argument(
        "--plane",
        type=plane_type,
        default=None,
        metavar="N|max",
        help="z plane to read, numbered as the plate's format writes them (ImageXpress "
        "ZStep_N, Operetta PlaneID), or 'max' for the maximum projection over the planes "
        "(default: the lowest plane; `napari-dcmix info` lists them)",
    )
    group.add_argument(
        "--timepoint",
        type=timepoint_type,
        default=None,
        metavar="N",
        help="timepoint to read, numbered as the format writes them (ImageXpress "
        "TimePoint_N, Operetta TimepointID; default: the lowest)",
    )
    group.add_argument(
        "--channel-map",
        metavar="MAP",
        default=None,
        help="use the plate's stains under the model's names: 'plate stain=model stain' pairs "
        "separated by commas, e.g. 'Hoechst 33342=DNA,MitoTracker=Mito' (stains of the same "
        "name need no pair; plate stains left out are not read)",
    )


def plate_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``open_plate`` the shared plate options ask for."""
    return {
        "plane": getattr(args, "plane", None),
        "timepoint": getattr(args, "timepoint", None),
    }


def _model_channels(args: argparse.Namespace) -> list[str] | None:
    """The stains, in order, of the model the command applies to (``--model`` of predict,
    shipped default without it; ``--init`` of train), so that a mapped plate presents them
    in the model's order."""
    from napari_dcmix.model import default_model_path, load_model

    if getattr(args, "init", None):
        return list(load_model(args.init).channel_names)
    if hasattr(args, "model"):
        path = args.model or default_model_path()
        return list(load_model(path).channel_names)
    return None


def open_plates(
    paths: list[str], args: argparse.Namespace, channels: Sequence[str] | None = None
) -> list[Any]:
    """Open each plate path as the shared plate options ask. With ``--channel-map`` each plate
    is a view presenting the model's stains (``channels``, else those of the command's
    model) in the model's order."""
    from napari_dcmix.plate import open_plate

    plates = [open_plate(p, **plate_kwargs(args)) for p in paths]
    text = getattr(args, "channel_map", None)
    if text is None:
        return plates
    from napari_dcmix.plate.channel_map import map_channels, parse_channel_map

    mapping = parse_channel_map(text)
    order = list(channels) if channels is not None else _model_channels(args)
    return [map_channels(p, mapping, order=order) for p in plates]


def _open_one(path: str, options: argparse.Namespace, channels: list[str] | None) -> Any:
    """A worker reopens a plate exactly as the command did (the same plate options)."""
    return open_plates([path], options, channels=channels)[0]


def plate_openers(
    paths: Sequence[str], args: argparse.Namespace, channels: Sequence[str] | None
) -> list[Callable[[], Any]]:
    """Picklable functions that reopen each plate on a Dask worker as the command opened it.
    ``channels``: the stains of the command's model, in its order (with ``--channel-map`` the
    worker then needs no model file to learn them: it would load the model again per plate,
    and a worker's default model may be another one)."""
    options = argparse.Namespace(**{k: v for k, v in vars(args).items() if not k.startswith("_")})
    names = list(channels) if channels is not None else None
    return [functools.partial(_open_one, str(path), options, names) for path in paths]
