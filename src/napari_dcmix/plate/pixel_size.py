"""Pixel size: length units, and one number per plate from what its files say.

A plate's pixel size is the side of one pixel in micrometres (``Plate.pixel_size_um``), read
from the metadata each format writes (see each layout). It is a single number only when it
is certain:

- y and x must agree (within ``TOLERANCE``, relative): non-square pixels give None, since a
  single number would misstate one of the two axes;
- every image the value was read from must agree (within ``TOLERANCE``): a plate whose
  images disagree gives None, never one of the values;
- a value that is missing, not a positive finite number, or in a unit that is not a length
  (or not known here) gives None. A malformed value is never an error: the pixels are still
  readable, only their physical size is unknown.

``PixelSize.source`` says where the number came from, or why it is unknown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: relative difference below which two pixel sizes (y and x, or two images) are the same
TOLERANCE = 1e-3

#: micrometres per unit, keyed by lower-case unit names as the formats write them: OME-NGFF
#: (UDUNITS-2 names), the OME schema's UnitsLength symbols, Harmony ("m"), MetaXpress ("um")
UM_PER_UNIT: dict[str, float] = {
    **dict.fromkeys(("m", "meter", "metre", "meters", "metres"), 1e6),
    **dict.fromkeys(("dm", "decimeter", "decimetre"), 1e5),
    **dict.fromkeys(("cm", "centimeter", "centimetre"), 1e4),
    **dict.fromkeys(("mm", "millimeter", "millimetre", "millimeters", "millimetres"), 1e3),
    **dict.fromkeys(
        (
            "um",
            "µm",
            "μm",
            "micrometer",
            "micrometre",
            "micrometers",
            "micrometres",
            "micron",
            "microns",
            "microm",
        ),
        1.0,
    ),
    **dict.fromkeys(("nm", "nanometer", "nanometre", "nanometers", "nanometres"), 1e-3),
    **dict.fromkeys(("pm", "picometer", "picometre"), 1e-6),
    **dict.fromkeys(("å", "angstrom", "ångström", "angstroms"), 1e-4),
    **dict.fromkeys(("in", "inch", "inches"), 25400.0),
    **dict.fromkeys(("thou",), 25.4),
}
#: units that say the value is in pixels, i.e. uncalibrated
PIXEL_UNITS = frozenset({"pixel", "pixels", "px", "pix", "reference frame"})


def as_number(value: object) -> float | None:
    """``value`` as a positive finite float (numbers or their text), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def to_um(value: object, unit: object) -> float | str:
    """``value`` in ``unit`` as micrometres, or a sentence saying why it cannot be."""
    number = as_number(value)
    if number is None:
        return f"{str(value)[:40]!r} is not a positive number"
    if not isinstance(unit, str) or not unit.strip():
        return "no unit"
    key = unit.strip().lower()
    if key in PIXEL_UNITS:
        return f"the unit is {unit!r} (not calibrated)"
    factor = UM_PER_UNIT.get(key)
    if factor is None:
        return f"unknown length unit {unit[:40]!r}"
    return number * factor


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(a, b)


def _um(value: float) -> str:
    return f"{value:.6g} µm"


@dataclass(frozen=True)
class PixelSize:
    """``um``: micrometres per pixel (y and x alike), or None; ``source``: where it was read,
    or why it is unknown."""

    um: float | None
    source: str

    @classmethod
    def unknown(cls, why: str) -> PixelSize:
        return cls(None, why)


#: one image's reading: (what it was read from, (y, x) in micrometres or why there is none)
Sample = tuple[str, "tuple[float | str, float | str] | str"]


def combine(samples: Sequence[Sample], source: str) -> PixelSize:
    """One pixel size from every image's ``(where, (y_um, x_um) or reason)``: the x value
    when all images have square pixels of the same size; else unknown, saying why (the first
    image without a value, non-square pixels, or two images that disagree). ``source`` names
    what was read, for the known case."""
    if not samples:
        return PixelSize.unknown("no image to read it from")
    found: list[tuple[str, float]] = []
    for where, value in samples:
        if isinstance(value, str):
            missing = sum(isinstance(v, str) for _, v in samples)
            more = f" (and {missing - 1} more)" if missing > 1 else ""
            return PixelSize.unknown(f"{where}: {value}{more}")
        y, x = value
        for axis, v in (("y", y), ("x", x)):
            if isinstance(v, str):
                return PixelSize.unknown(f"{where}: {axis}: {v}")
        assert isinstance(y, float) and isinstance(x, float)
        if not _same(y, x):
            return PixelSize.unknown(
                f"{where}: non-square pixels (y {_um(y)}, x {_um(x)}); one number would "
                "misstate one axis"
            )
        found.append((where, x))
    first_where, first = found[0]
    for where, x in found[1:]:
        if not _same(x, first):
            return PixelSize.unknown(
                f"the images disagree: {_um(first)} in {first_where}, {_um(x)} in {where}"
            )
    return PixelSize(first, source)


def spread(items: Sequence, n: int) -> list:
    """Up to ``n`` of ``items`` spread evenly, the first and the last included."""
    items = list(items)
    if len(items) <= n:
        return items
    picks = sorted({round(i * (len(items) - 1) / (n - 1)) for i in range(n)})
    return [items[i] for i in picks]


def join_sources(names: Iterable[str], what: str) -> str:
    """``what`` + where: ``'X in a.tif'`` or ``'X in a.tif and 4 more files'``."""
    names = list(names)
    if not names:
        return what
    more = f" and {len(names) - 1} more file(s)" if len(names) > 1 else ""
    return f"{what} in {names[0]}{more}"
