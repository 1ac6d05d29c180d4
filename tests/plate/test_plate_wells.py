"""Well names: parsing, formatting, ordering (with hypothesis properties)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from napari_dcmix.errors import PlateError
from napari_dcmix.plate.wells import (
    normalise_well,
    row_index,
    row_letters,
    sort_wells,
    well_name,
    well_row_col,
)


@pytest.mark.parametrize(
    ("raw", "name", "row_col"),
    [("B2", "B02", (1, 2)), ("b02", "B02", (1, 2)), (" h12 ", "H12", (7, 12)),
     ("AB12", "AB12", (27, 12)), ("AF48", "AF48", (31, 48)), ("Z1", "Z01", (25, 1)),
     ("aa001", "AA01", (26, 1))],
)  # fmt: skip
def test_examples(raw, name, row_col):
    assert normalise_well(raw) == name
    assert well_row_col(raw) == row_col
    assert well_name(*row_col) == name


@pytest.mark.parametrize("junk", ["", "B", "12", "B0", "B-2", "ABC1", "B2x", "É2", "B1000"])
def test_junk_is_a_plate_error_naming_it(junk):
    with pytest.raises(PlateError, match=r"well name|row|column"):
        normalise_well(junk)


def test_non_string_is_rejected():
    with pytest.raises(PlateError):
        well_row_col(12)  # type: ignore[arg-type]


def test_rows_beyond_z_sort_after_z():
    assert sort_wells(["AA01", "B02", "Z24", "A10", "A2", "AF48"]) == [
        "A2", "A10", "B02", "Z24", "AA01", "AF48"
    ]  # fmt: skip


rows = st.integers(min_value=0, max_value=31)
cols = st.integers(min_value=1, max_value=48)


@given(rows, cols, st.booleans(), st.booleans())
def test_any_spelling_round_trips(row, col, pad, lower):
    letters = row_letters(row)
    raw = f"{letters}{col:02d}" if pad else f"{letters}{col}"
    raw = raw.lower() if lower else raw
    assert well_row_col(raw) == (row, col)
    assert normalise_well(raw) == well_name(row, col)
    assert normalise_well(normalise_well(raw)) == normalise_well(raw)


@given(st.integers(min_value=0, max_value=26 + 26 * 26 - 1))
def test_row_letters_inverse(index):
    assert row_index(row_letters(index)) == index


@given(st.lists(st.tuples(rows, cols), min_size=1, max_size=30, unique=True))
def test_sort_is_row_major(keys):
    names = [well_name(r, c) for r, c in keys]
    assert [well_row_col(w) for w in sort_wells(names)] == sorted(keys)
