"""Pixel sizes stated inside TIFF files: OME-XML and MetaXpress (MetaSeries) descriptions.

Each function returns ``(y, x)`` in micrometres (each a float, or a sentence saying why that
axis has none) or one sentence saying why the file states no pixel size. Nothing here raises
for a malformed value: the pixels stay readable, only their size is unknown.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from napari_dcmix.plate.pixel_size import to_um

#: the OME schema's default unit of PhysicalSizeX / PhysicalSizeY
OME_DEFAULT_UNIT = "µm"


def _first_page(path: Path) -> tuple[str, str, str | None] | str:
    """(ImageDescription, Software, OME-XML or None) of the file's first page, or why not."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            return str(page.description or ""), str(page.software or ""), tif.ome_metadata
    except Exception as exc:  # unreadable: the pixel read path names the file in its error
        return f"cannot be read ({type(exc).__name__})"


def _xml(text: str) -> ET.Element | None:
    try:
        return ET.fromstring(text)
    except ET.ParseError:
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def ome_pixel_size(path: Path) -> tuple[float | str, float | str] | str:
    """``PhysicalSizeY`` / ``PhysicalSizeX`` of the first OME ``Image``'s ``Pixels`` (units
    ``PhysicalSizeYUnit`` / ``PhysicalSizeXUnit``, by default µm as the OME schema says)."""
    first = _first_page(path)
    if isinstance(first, str):
        return first
    ome = first[2]
    if not ome:
        return "no OME-XML"
    root = _xml(ome)
    if root is None:
        return "OME-XML that is not valid XML"
    pixels = next((el for el in root.iter() if _local(el.tag) == "Pixels"), None)
    if pixels is None:
        return "OME-XML without Pixels"
    out: list[float | str] = []
    for axis in ("Y", "X"):
        value = pixels.get(f"PhysicalSize{axis}")
        if value is None:
            out.append(f"no PhysicalSize{axis}")
            continue
        unit = pixels.get(f"PhysicalSize{axis}Unit", OME_DEFAULT_UNIT)
        converted = to_um(value, unit)
        out.append(
            converted if isinstance(converted, float) else f"PhysicalSize{axis}: {converted}"
        )
    return out[0], out[1]


def metaseries_pixel_size(path: Path) -> tuple[float | str, float | str] | str:
    """``spatial-calibration-y`` / ``-x`` in ``spatial-calibration-units`` of the MetaXpress
    (MetaSeries) XML in the file's ImageDescription (``<MetaData>...<PlaneInfo><prop
    id="spatial-calibration-x" type="float" value="0.645"/>...``), unless
    ``spatial-calibration-state`` is off."""
    first = _first_page(path)
    if isinstance(first, str):
        return first
    description = first[0].strip()
    if not (description.startswith("<MetaData>") and description.endswith("</MetaData>")):
        return "no MetaXpress (MetaSeries) metadata in its ImageDescription"
    root = _xml(description)
    if root is None:
        return "MetaXpress metadata that is not valid XML"
    props = {p.get("id"): p.get("value") for p in root.iter("prop") if p.get("id")}
    state = props.get("spatial-calibration-state")
    if state is not None and state.strip().lower() in ("off", "false", "0"):
        return "spatial calibration is off"
    x, y = props.get("spatial-calibration-x"), props.get("spatial-calibration-y")
    if x is None and y is None:
        return "no spatial-calibration-x / -y in its MetaXpress metadata"
    unit = props.get("spatial-calibration-units")
    out: list[float | str] = []
    for axis, value in (("y", y), ("x", x)):
        if value is None:
            out.append(f"no spatial-calibration-{axis}")
            continue
        converted = to_um(value, unit)
        out.append(
            converted
            if isinstance(converted, float)
            else f"spatial-calibration-{axis}: {converted}"
        )
    return out[0], out[1]
