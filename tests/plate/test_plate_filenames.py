"""File-name parsing of every layout (hypothesis): B2 vs B02, rows beyond Z, extension case."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from napari_dcmix.plate.layouts import imagexpress, operetta, rxrx1, tiff
from napari_dcmix.plate.wells import row_letters, well_name

rows = st.integers(min_value=0, max_value=31)  # A..AF (1536-well plates)
cols = st.integers(min_value=1, max_value=48)
sites = st.integers(min_value=1, max_value=99)
channels = st.integers(min_value=1, max_value=6)


@st.composite
def spelled_well(draw):
    row, col = draw(rows), draw(cols)
    text = f"{row_letters(row)}{col:02d}" if draw(st.booleans()) else f"{row_letters(row)}{col}"
    return (text.lower() if draw(st.booleans()) else text), well_name(row, col)


def any_case(ext: str):
    return st.lists(st.booleans(), min_size=len(ext), max_size=len(ext)).map(
        lambda ups: "".join(c.upper() if u else c for c, u in zip(ext, ups, strict=True))
    )


@given(spelled_well(), sites, st.sampled_from([".tif", ".tiff"]).flatmap(any_case))
def test_tiff_names(well, site, ext):
    text, name = well
    assert tiff.parse_filename(f"{text}_s{site}{ext}") == (name, site)
    assert tiff.parse_filename(f"{text}{ext}") == (name, 1)
    assert tiff.parse_filename(f"{text}_s{site}{ext}.bak") is None


@given(spelled_well(), sites, channels, any_case(".png"))
def test_rxrx1_names(well, site, ch, ext):
    text, name = well
    assert rxrx1.parse_filename(f"{text}_s{site}_w{ch}{ext}") == (name, site, ch)
    assert rxrx1.parse_filename(f"{text}_s{site}{ext}") is None  # RxRx1-WILDS RGB, not this


@given(
    spelled_well(), sites, channels, st.booleans(), st.booleans(),
    st.sampled_from([".tif", ".tiff"]).flatmap(any_case),
    st.text(alphabet="abcXYZ019-_ ", min_size=1, max_size=12),
    st.uuids(),
)  # fmt: skip
def test_imagexpress_names(well, site, ch, with_site, with_guid, ext, plate, guid):
    text, name = well
    site_part = f"_s{site}" if with_site else ""
    guid_part = str(guid).upper() if with_guid else ""
    parsed = imagexpress.parse_filename(f"{plate}_{text}{site_part}_w{ch}{guid_part}{ext}")
    assert parsed == (plate, name, site if with_site else 1, ch)
    thumb = f"{plate}_{text}{site_part}_w{ch}_thumb{guid_part}{ext}"
    assert imagexpress.parse_filename(thumb) is None


@given(rows, cols, sites, channels, st.integers(1, 5), any_case(".tiff"))
def test_operetta_names(row, col, field, ch, plane, ext):
    name = f"r{row + 1:02d}c{col:02d}f{field:02d}p{plane:02d}-ch{ch}sk1fk1fl1{ext}"
    assert operetta.parse_filename(name) == {
        "row": row + 1, "col": col, "field": field, "plane": plane, "channel": ch,
        "timepoint": 1,
    }  # fmt: skip
