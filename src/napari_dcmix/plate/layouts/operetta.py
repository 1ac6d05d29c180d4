"""Opera / Operetta Phenix (Harmony export): ``Images/rXXcXXfXXpXX-chXskXfk1fl1.tiff``.

The index ``Images/Index.idx.xml`` (newer: ``Index.xml``, namespace HarmonyV5) lists every
image with its row, column, field, plane, timepoint and channel name. The plate's ``planes``
and ``timepoints`` are the PlaneID and TimepointID numbers of the index; the lowest of each is
read unless ``open_plate(plane=..., timepoint=...)`` chooses others (``plane="max"``: the
maximum projection over the planes). Without an index the file names alone are used (plane
``p``, timepoint ``sk``) and channels are named ``ch1``, ``ch2``, ... (with a warning).

Pixel size (``Plate.pixel_size_um``): each image's ``ImageResolutionX`` / ``ImageResolutionY``
in the index, in the unit of their ``Unit`` attribute (Harmony writes metres, ``Unit="m"``),
or, for images without them, those of the channel's ``Maps/Map/Entry`` (newer exports); every
image the plate reads must agree. None without an index.
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
    scan_folder,
    sites_by_well,
    warn_unreadable,
)
from napari_dcmix.plate.base import MAX_PROJECTION, Plate, choose_plane, choose_timepoint
from napari_dcmix.plate.layouts import NotThisLayout
from napari_dcmix.plate.pixel_size import PixelSize, Sample, combine, to_um
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
    maps = _channel_resolutions(root, q)
    entries = []
    numbers = (("row", "Row", None), ("col", "Col", None), ("field", "FieldID", None),
               ("plane", "PlaneID", 1), ("timepoint", "TimepointID", 0),
               ("channel", "ChannelID", None))  # fmt: skip
    for n, img in enumerate(images, start=1):
        entry: dict = {
            "url": _text_ns(img, q, "URL"),
            "channel_name": _text_ns(img, q, "ChannelName"),
        }
        what = f"the Harmony index {index}: Image entry {n} (id {_text_ns(img, q, 'id')})"
        if not entry["url"]:
            raise PlateError(f"{what} has no URL (the image file's name)")
        for key, tag, default in numbers:
            text = _text_ns(img, q, tag)
            if text is None and default is not None:
                entry[key] = default
                continue
            try:
                entry[key] = int(text)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                found = "nothing" if text is None else repr(text[:40])
                raise PlateError(f"{what} has {tag} {found}; expected an integer") from None
        entry["resolution"] = _resolution(img, q) or maps.get(_text_ns(img, q, "ChannelID"))
        entries.append(entry)
    return name, entries


def _length(el: ET.Element | None) -> float | str:
    """A Harmony length element (``<ImageResolutionX Unit="m">6.5E-07</...>``) in
    micrometres, or why it cannot be read."""
    if el is None:
        return "missing"
    return to_um((el.text or "").strip(), el.get("Unit"))


def _resolution(el: ET.Element, q) -> tuple[float | str, float | str] | None:
    """(y, x) of an element's ImageResolutionY / ImageResolutionX, None if it has neither."""
    y, x = el.find(q("ImageResolutionY")), el.find(q("ImageResolutionX"))
    if y is None and x is None:
        return None
    return _length(y), _length(x)


def _channel_resolutions(root: ET.Element, q) -> dict[str | None, tuple]:
    """ChannelID -> (y, x) from the ``Maps/Map/Entry`` elements of newer Harmony exports."""
    out: dict[str | None, tuple] = {}
    for entry in root.findall(f".//{q('Maps')}/{q('Map')}/{q('Entry')}"):
        found = _resolution(entry, q)
        if found is not None:
            out.setdefault(entry.get("ChannelID"), found)
    return out


def _pixel_size(entries: list[dict], index: Path | None, used: set[str]) -> PixelSize:
    """The pixel size the index states for the images the plate reads (``used`` URLs)."""
    if index is None:
        return PixelSize.unknown("no Harmony index (the file names hold no pixel size)")
    samples: list[Sample] = []
    for e in entries:
        if e["url"] in used:
            value = e.get("resolution") or "no ImageResolutionX / ImageResolutionY"
            samples.append((f"{index.name} image {e['url']}", value))
    return combine(samples, f"Harmony index {index.name}: ImageResolutionX / ImageResolutionY")


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


def _well(e: dict, source: Path) -> str:
    try:
        return well_name(e["row"] - 1, e["col"])
    except PlateError as exc:
        raise PlateError(
            f"{source}: image {e['url']} has Row {e['row']} and Col {e['col']}, which is not a "
            f"well ({exc})"
        ) from None


def open_layout(path: Path, plane: int | str | None = None, timepoint: int | None = None) -> Plate:
    """Open a Harmony export; NotThisLayout without an index or ``r01c01f01p01-ch1...`` files.

    ``plane`` and ``timepoint`` are PlaneID and TimepointID numbers as the index writes them
    (from the file names' ``p`` and ``sk`` without an index); ``plane="max"`` is the maximum
    projection over the planes. The lowest of each by default."""
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
    source = index or folder
    where = f"Operetta plate {path}"
    timepoints = sorted({e["timepoint"] for e in entries})
    chosen_t = choose_timepoint(
        timepoints,
        timepoint,
        where,
        f"TimepointID in {index.name}" if index else "sk in file names",
    )
    entries = [e for e in entries if e["timepoint"] == chosen_t]
    planes = sorted({e["plane"] for e in entries})
    chosen_z = choose_plane(
        planes, plane, where, f"PlaneID in {index.name}" if index else "p in file names"
    )
    if chosen_z != MAX_PROJECTION:
        entries = [e for e in entries if e["plane"] == chosen_z]
    listed_urls = {e["url"] for e in entries}
    usable, problems = scan_folder(folder, lambda n: n if n in listed_urls else None)
    warn_unreadable(folder, problems)
    present = {f.name for f, _ in usable}
    # (well, field) -> channel -> {plane: path}
    by_plane: dict[tuple[str, int], dict[int, dict[int, Path]]] = {}
    channel_names: dict[int, str] = {}
    for e in entries:
        channel_names.setdefault(e["channel"], e["channel_name"] or f"ch{e['channel']}")
        site = by_plane.setdefault((_well(e, source), e["field"]), {})
        if e["url"] in present:  # else reported by complete_sites as a missing channel file
            site.setdefault(e["channel"], {})[e["plane"]] = folder / e["url"]
    found: dict[tuple[str, int], dict[int, Path | tuple[Path, ...]]] = {}
    why: dict[tuple[str, int], str] = {}
    for key, channels in by_plane.items():
        found[key] = {}
        lacking: set[int] = set()
        for c, paths in channels.items():
            if chosen_z != MAX_PROJECTION:
                found[key][c] = paths[chosen_z]
            elif len(paths) == len(planes):
                found[key][c] = tuple(paths[z] for z in planes)
            else:
                lacking.update(set(planes) - set(paths))
        if lacking:
            why[key] = f"in plane(s) {', '.join(map(str, sorted(lacking)))}"
    channel_ids = sorted(channel_names)
    files = complete_sites(found, channel_ids, folder, why)
    if not files:
        raise PlateError(f"{folder}: no site has a file for every channel")
    first = files[min(files)][0]
    first = first[0] if isinstance(first, tuple) else first
    shape, dtype = image_header(first)
    used = {
        p.name
        for item in files.values()
        for c in item
        for p in (c if isinstance(c, tuple) else (c,))
    }
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
        planes=planes,
        timepoints=timepoints,
        plane=chosen_z,
        timepoint=chosen_t,
        pixel_size=_pixel_size(entries, index, used),
    )
