"""Opera / Operetta Phenix (Harmony export): ``Images/rXXcXXfXXpXX-chXskXfk1fl1.tiff``.

The index ``Images/Index.idx.xml`` (newer: ``Index.xml``, namespace HarmonyV5) lists every
image with its row, column, field, plane, timepoint and channel name. Only the lowest plane
and the lowest timepoint (plane 1, timepoint 1 in practice) are read. Without an index the
file names alone are used and channels are named ``ch1``, ``ch2``, ... (with a warning).
"""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

from napari_dcmix.errors import PlateError
from napari_dcmix.plate._io import (
    ChannelFilesPlate,
    PlateWarning,
    complete_sites,
    image_header,
    sites_by_well,
)
from napari_dcmix.plate.base import Plate
from napari_dcmix.plate.layouts import NotThisLayout
from napari_dcmix.plate.wells import well_name

LAYOUT = "operetta"
NS = "http://www.perkinelmer.com/PEHH/HarmonyV5"
INDEX_NAMES = ("Index.idx.xml", "Index.xml")
FILE_RE = re.compile(r"^r(\d+)c(\d+)f(\d+)p(\d+)-ch(\d+)sk(\d+)fk\d+fl\d+\.tiff?$", re.IGNORECASE)


def parse_filename(name: str) -> dict[str, int] | None:
    """``{row, col, field, plane, channel, timepoint}`` (as written, 1-based) or None."""
    match = FILE_RE.match(name)
    if match is None:
        return None
    keys = ("row", "col", "field", "plane", "channel", "timepoint")
    return dict(zip(keys, map(int, match.groups()), strict=True))


def _images_folder(path: Path) -> Path | None:
    for folder in (path / "Images", path / "images", path):
        if folder.is_dir() and (
            any((folder / n).is_file() for n in INDEX_NAMES)
            or any(parse_filename(f.name) for f in folder.iterdir())
        ):
            return folder
    return None


def _entries_from_index(index: Path) -> tuple[str | None, list[dict]]:
    try:
        root = ET.parse(index).getroot()
    except (ET.ParseError, OSError) as exc:
        raise PlateError(f"cannot read the Harmony index {index}: {exc}") from None
    ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    q = (lambda t: f"{{{ns}}}{t}") if ns else (lambda t: t)
    images = root.findall(f".//{q('Images')}/{q('Image')}")
    if not images:
        raise PlateError(f"the Harmony index {index} lists no Images/Image entries")
    plate_el = root.find(f".//{q('Plates')}/{q('Plate')}")
    name = None
    if plate_el is not None:
        name = _text_ns(plate_el, q, "Name") or _text_ns(plate_el, q, "PlateID")
    entries = []
    for img in images:
        try:
            entries.append({
                "url": _text_ns(img, q, "URL"),
                "row": int(_text_ns(img, q, "Row")),
                "col": int(_text_ns(img, q, "Col")),
                "field": int(_text_ns(img, q, "FieldID")),
                "plane": int(_text_ns(img, q, "PlaneID") or 1),
                "timepoint": int(_text_ns(img, q, "TimepointID") or 0),
                "channel": int(_text_ns(img, q, "ChannelID")),
                "channel_name": _text_ns(img, q, "ChannelName"),
            })  # fmt: skip
        except (TypeError, ValueError):
            raise PlateError(
                f"the Harmony index {index} has an Image entry without a valid URL, Row, Col, "
                f"FieldID or ChannelID (id {_text_ns(img, q, 'id')})"
            ) from None
    return name, entries


def _text_ns(el: ET.Element, q, tag: str) -> str | None:
    child = el.find(q(tag))
    return child.text.strip() if child is not None and child.text else None


def _entries_from_files(folder: Path) -> list[dict]:
    entries = []
    for f in sorted(folder.iterdir()):
        key = parse_filename(f.name)
        if key is not None:
            entries.append({**key, "url": f.name, "channel_name": None})
    return entries


def open_layout(path: Path) -> Plate:
    """Open a Harmony export; NotThisLayout without an index or ``r01c01f01p01-ch1...`` files."""
    if not path.is_dir():
        raise NotThisLayout("not a folder")
    folder = _images_folder(path)
    if folder is None:
        raise NotThisLayout("no Images/Index.idx.xml, Index.xml or r01c01f01p01-ch1sk1fk1fl1.tiff")
    index = next((folder / n for n in INDEX_NAMES if (folder / n).is_file()), None)
    if index is not None:
        name, entries = _entries_from_index(index)
    else:
        name, entries = None, _entries_from_files(folder)
        warnings.warn(
            f"{folder}: no Index.idx.xml or Index.xml; channels named from file names",
            PlateWarning,
            stacklevel=2,
        )
    plane = min(e["plane"] for e in entries)
    timepoint = min(e["timepoint"] for e in entries)
    present = {f.name for f in folder.iterdir()}
    found: dict[tuple[str, int], dict[int, Path]] = {}
    channel_names: dict[int, str] = {}
    for e in entries:
        if e["plane"] != plane or e["timepoint"] != timepoint:
            continue
        channel_names.setdefault(e["channel"], e["channel_name"] or f"ch{e['channel']}")
        if e["url"] not in present:
            continue  # reported by complete_sites as a missing channel file
        well = well_name(e["row"] - 1, e["col"])
        found.setdefault((well, e["field"]), {})[e["channel"]] = folder / e["url"]
    listed = {(well_name(e["row"] - 1, e["col"]), e["field"]) for e in entries}
    for key in listed - set(found):
        found[key] = {}
    channel_ids = sorted(channel_names)
    files = complete_sites(found, channel_ids, folder)
    if not files:
        raise PlateError(f"{folder}: no site has a file for every channel")
    first = files[min(files)][0]
    shape, dtype = image_header(first)
    return ChannelFilesPlate(
        name=name or path.name,
        layout=LAYOUT,
        path=path,
        sites=sites_by_well(files),
        channels=[channel_names[c] for c in channel_ids],
        image_shape=shape[-2:],
        dtype=dtype,
        shape_source=f"{first} {tuple(shape[-2:])}",
        files=files,
    )
