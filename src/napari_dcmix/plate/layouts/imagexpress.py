"""MetaXpress / ImageXpress classic: ``{plate}_{well}_s{site}_w{ch}[GUID].tif``.

Files sit in ``TimePoint_{t}/`` (optionally ``ZStep_{z}/``) folders; the lowest timepoint and
z step are read. Single-site plates drop ``_s{site}``; ``_thumb`` files are skipped; the
extension's case does not matter. Channel names come from the ``.HTD`` file's ``WaveName``
entries when there is one, else ``w1``, ``w2``, ...
"""

from __future__ import annotations

import re
from pathlib import Path

from napari_dcmix.errors import PlateError
from napari_dcmix.plate._io import ChannelFilesPlate, complete_sites, image_header, sites_by_well
from napari_dcmix.plate.base import Plate
from napari_dcmix.plate.layouts import NotThisLayout
from napari_dcmix.plate.wells import normalise_well

LAYOUT = "imagexpress"
_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
FILE_RE = re.compile(
    rf"^(?P<plate>.+?)_(?P<well>[A-Za-z]{{1,2}}\d{{1,3}})(?:_s(?P<site>\d+))?_w(?P<ch>\d)"
    rf"(?:{_GUID})?\.tiff?$",
    re.IGNORECASE,
)
_NUMBERED = re.compile(r"^(TimePoint|ZStep)_(\d+)$", re.IGNORECASE)


def parse_filename(name: str) -> tuple[str, str, int, int] | None:
    """``(plate, well, site, channel)`` of an ImageXpress file name, else None (thumbnails too)."""
    if "_thumb" in name.lower():
        return None
    match = FILE_RE.match(name)
    if match is None:
        return None
    try:
        well = normalise_well(match.group("well"))
    except PlateError:
        return None
    return match.group("plate"), well, int(match.group("site") or 1), int(match.group("ch"))


def _first_numbered(folder: Path, kind: str) -> Path | None:
    found = []
    for d in folder.iterdir():
        m = _NUMBERED.match(d.name)
        if d.is_dir() and m and m.group(1).lower() == kind.lower():
            found.append((int(m.group(2)), d))
    return min(found)[1] if found else None


def _image_folder(path: Path) -> Path:
    folder = path
    for _ in range(3):  # a plate folder may hold a date / id folder above TimePoint_n
        tp = _first_numbered(folder, "TimePoint")
        if tp is not None:
            folder = tp
            break
        subdirs = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
        if len(subdirs) != 1 or any(parse_filename(f.name) for f in folder.iterdir()):
            break
        folder = subdirs[0]
    z = _first_numbered(folder, "ZStep")
    return z if z is not None else folder


def _wave_names(path: Path, folder: Path) -> dict[int, str]:
    for parent in dict.fromkeys([path, folder, *list(folder.parents)[:3]]):
        for htd in sorted(parent.glob("*.[Hh][Tt][Dd]")):
            try:
                text = htd.read_text(errors="replace")
            except OSError:
                continue
            names = re.findall(r'^\s*"WaveName(\d+)"\s*,\s*"([^"]*)"', text, re.MULTILINE)
            if names:
                return {int(i): n for i, n in names}
    return {}


def open_layout(path: Path) -> Plate:
    """Open an ImageXpress plate; NotThisLayout if no file is named like ``P_B02_s1_w1.tif``."""
    if not path.is_dir():
        raise NotThisLayout("not a folder")
    folder = _image_folder(path)
    found: dict[tuple[str, int], dict[int, Path]] = {}
    plates: set[str] = set()
    for f in sorted(folder.iterdir()):
        key = parse_filename(f.name) if f.is_file() else None
        if key is None:
            continue
        plate_name, well, site, ch = key
        plates.add(plate_name)
        found.setdefault((well, site), {})[ch] = f
    if not found:
        raise NotThisLayout(
            f"no files named like Plate_B02_s1_w1.tif in {folder} (or its TimePoint_1)"
        )
    if len(plates) > 1:
        raise PlateError(
            f"{folder} holds files of {len(plates)} plates ({', '.join(sorted(plates))}); "
            "put each plate in its own folder"
        )
    channel_ids = sorted({c for by_ch in found.values() for c in by_ch})
    files = complete_sites(found, channel_ids, folder)
    if not files:
        raise PlateError(f"{folder}: no site has a file for every channel")
    first = files[min(files)][0]
    shape, dtype = image_header(first)
    waves = _wave_names(path, folder)
    return ChannelFilesPlate(
        name=plates.pop(),
        layout=LAYOUT,
        path=path,
        sites=sites_by_well(files),
        channels=[waves.get(c, f"w{c}") for c in channel_ids],
        image_shape=shape[-2:],
        dtype=dtype,
        shape_source=f"{first} {tuple(shape[-2:])}",
        files=files,
    )
