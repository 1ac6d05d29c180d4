"""Plate options shared by the subcommands that read plates (predict, train, importance...).

One place defines how a command line names plates and how they are opened, so every command
takes the same options (layout, channel mapping, plane and timepoint selection).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_plate_options(parser: argparse.ArgumentParser) -> None:
    """Options that change how plates are opened (shared by every plate-reading command)."""


def open_plates(paths: list[str], args: argparse.Namespace) -> list[Any]:
    """Open each plate path as the shared plate options ask."""
    from napari_dcmix.plate import open_plate

    return [open_plate(p) for p in paths]
