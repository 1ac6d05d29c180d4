"""Plate options shared by the subcommands that read plates (predict, train, importance...).

One place defines how a command line names plates and how they are opened, so every command
takes the same options (layout, channel mapping, plane and timepoint selection).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


def add_plate_options(parser: argparse.ArgumentParser) -> None:
    """Options that change how plates are opened (shared by every plate-reading command)."""
    parser.add_argument(
        "--channel-map",
        metavar="MAP",
        default=None,
        help="use the plate's stains under the model's names: 'plate stain=model stain' pairs "
        "separated by commas, e.g. 'Hoechst 33342=DNA,MitoTracker=Mito' (stains of the same "
        "name need no pair; plate stains left out are not read)",
    )


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

    plates = [open_plate(p) for p in paths]
    text = getattr(args, "channel_map", None)
    if text is None:
        return plates
    from napari_dcmix.plate.channel_map import map_channels, parse_channel_map

    mapping = parse_channel_map(text)
    order = list(channels) if channels is not None else _model_channels(args)
    return [map_channels(p, mapping, order=order) for p in plates]
