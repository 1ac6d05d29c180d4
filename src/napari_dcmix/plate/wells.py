"""Well names: ``"B2"`` == ``"b02"`` == ``"B02"``; rows A..Z then AA..AF (1536-well plates)."""

from __future__ import annotations

import re

from napari_dcmix.errors import PlateError

_WELL_RE = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,3})\s*$")
MAX_ROWS = 26 + 26 * 26  # A..Z, AA..ZZ; real plates stop at AF (32 rows)


class WellNameError(PlateError):
    """A string is not a well name like ``B02`` / ``b2`` / ``AF48``."""


def row_index(letters: str) -> int:
    """0-based row index of row letters: ``A`` -> 0, ``Z`` -> 25, ``AA`` -> 26, ``AF`` -> 31."""
    letters = letters.strip().upper()
    if not (1 <= len(letters) <= 2) or not letters.isalpha() or not letters.isascii():
        raise WellNameError(f"{letters!r} is not a plate row (expected A..Z or AA..AF)")
    if len(letters) == 1:
        return ord(letters) - ord("A")
    return 26 + (ord(letters[0]) - ord("A")) * 26 + (ord(letters[1]) - ord("A"))


def row_letters(index: int) -> str:
    """Row letters of a 0-based row index: 0 -> ``A``, 26 -> ``AA``."""
    if not 0 <= index < MAX_ROWS:
        raise WellNameError(f"row index {index} is out of range (0..{MAX_ROWS - 1})")
    if index < 26:
        return chr(ord("A") + index)
    first, second = divmod(index - 26, 26)
    return chr(ord("A") + first) + chr(ord("A") + second)


def well_name(row: int, col: int) -> str:
    """Well name from a 0-based row index and a 1-based column: ``(1, 2)`` -> ``"B02"``."""
    if not 1 <= col <= 999:
        raise WellNameError(f"column {col} is out of range (1..999)")
    return f"{row_letters(row)}{col:02d}"


def well_row_col(well: str) -> tuple[int, int]:
    """``(0-based row index, 1-based column)`` of a well name: ``"AB12"`` -> ``(27, 12)``."""
    if not isinstance(well, str):
        raise WellNameError(f"well name must be a string, got {type(well).__name__} {well!r}")
    match = _WELL_RE.match(well)
    if match is None:
        raise WellNameError(
            f"{well!r} is not a well name (expected row letters and a column, like B02 or AF48)"
        )
    col = int(match.group(2))
    if col < 1:
        raise WellNameError(f"{well!r} is not a well name: columns start at 1")
    return row_index(match.group(1)), col


def normalise_well(well: str) -> str:
    """Canonical well name: ``"b2"`` -> ``"B02"``, ``"af48"`` -> ``"AF48"``."""
    return well_name(*well_row_col(well))


def well_sort_key(well: str) -> tuple[int, int]:
    """Row-major sort key for well names."""
    return well_row_col(well)


def sort_wells(wells: list[str] | set[str]) -> list[str]:
    """Wells in row-major order (row, then column)."""
    return sorted(wells, key=well_sort_key)
