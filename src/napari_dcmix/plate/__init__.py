"""Qt-free plate access: open any supported layout as a :class:`Plate`.

Bad input: an unreadable / truncated image raises PlateError naming the file when that site is
read (the first image's header is read at open, so a corrupt first image fails at open); a
site missing one channel file is skipped with a PlateWarning at open that lists well, site
and channel; images of another size than the plate's raise PlateError naming both files and
shapes at read time; a folder that matches no layout raises PlateError listing each layout
tried and why it did not match.
"""

from __future__ import annotations

from napari_dcmix.plate._io import PlateWarning
from napari_dcmix.plate.base import LAYOUTS, Plate
from napari_dcmix.plate.layouts import open_plate

__all__ = ["LAYOUTS", "Plate", "PlateWarning", "open_plate"]
