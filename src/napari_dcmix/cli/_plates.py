"""Plate options shared by the subcommands that read plates (info, predict, train...).

One place defines how a command line names plates and how they are opened, so every command
takes the same options (layout, channel mapping, plane and timepoint selection).
"""

from __future__ import annotations

import argparse
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


def plate_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``open_plate`` the shared plate options ask for."""
    return {
        "plane": getattr(args, "plane", None),
        "timepoint": getattr(args, "timepoint", None),
    }


def open_plates(paths: list[str], args: argparse.Namespace) -> list[Any]:
    """Open each plate path as the shared plate options ask."""
    from napari_dcmix.plate import open_plate

    return [open_plate(p, **plate_kwargs(args)) for p in paths]
