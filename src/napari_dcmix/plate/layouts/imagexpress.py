"""MetaXpress / ImageXpress classic: ``{plate}_{well}_s{site}_w{ch}[GUID].tif``.

Files sit in ``TimePoint_{t}/`` (optionally ``ZStep_{z}/``) folders; the plate's
``timepoints`` and ``planes`` are those folders' numbers (``[1]`` without such folders). The
lowest timepoint and z step are read unless ``open_plate(plane=..., timepoint=...)`` chooses
others, or ``plane="max"`` the maximum projection over the z steps. Single-site plates drop
``_s{site}``; ``_thumb`` files are skipped; the extension's case does not matter. Entries named
like images that cannot be read (broken symbolic links, loops, folders, FIFOs) are skipped with
a warning naming each. Channel names come from the ``.HTD`` file's ``WaveName`` entries when
there is one (an .HTD naming fewer wavelengths than the files have is an error), else ``w1``,
``w2``, ...

Pixel size (``Plate.pixel_size_um``): the .HTD holds none in the versions we know of, but
MetaXpress writes a MetaSeries XML into each TIFF's ImageDescription with
``spatial-calibration-x`` / ``-y`` in ``spatial-calibration-units`` (``um``); read on first
use from every channel's file of up to ``PIXEL_SIZE_SITES`` sites spread over the plate (not
every file: a 384-well plate has thousands). None when a file lacks it, the calibration is
off, or the files disagree.
"""

from __future__ import annotations

import re
from pathlib import Path

from napari_dcmix.errors import PlateError
from napari_dcmix.plate._io import (
    ChannelFilesPlate,
    complete_sites,
    image_header,
    scan_folder,
    sites_by_well,
    warn_unreadable,
)
from napari_dcmix.plate.base import MAX_PROJECTION, Plate, choose_plane, choose_timepoint
from napari_dcmix.plate.layouts import NotThisLayout
from napari_dcmix.plate.pixel_size import PixelSize, Sample, combine, spread
from napari_dcmix.plate.tiff_metadata import metaseries_pixel_size
from napari_dcmix.plate.wells import normalise_well

LAYOUT = "imagexpress"
_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
FILE_RE = re.compile(
    rf"^(?P<plate>.+?)_(?P<well>[A-Za-z]{{1,2}}\d{{1,3}})(?:_s(?P<site>\d+))?_w(?P<ch>\d)"
    rf"(?:{_GUID})?\.tiff?$",
    re.IGNORECASE,
)
_NUMBERED = re.compile(r"^(TimePoint|ZStep)_(\d+)$", re.IGNORECASE)
#: sites whose files (every channel) the pixel size is read from, spread over the plate
PIXEL_SIZE_SITES = 4


class ImageXpressPlate(ChannelFilesPlate):
    """An ImageXpress plate; its pixel size comes from the TIFFs' MetaXpress metadata."""

    def _find_pixel_size(self) -> PixelSize:
        samples: list[Sample] = []
        for key in spread(sorted(self._files), PIXEL_SIZE_SITES):
            for item in self._files[key]:
                path = item[0] if isinstance(item, tuple) else item
                samples.append((path.name, metaseries_pixel_size(path)))
        return combine(
            samples, f"MetaXpress spatial-calibration in {len(samples)} of the plate's TIFFs"
        )


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


def _numbered(folder: Path, kind: str) -> dict[int, Path]:
    """``{n: folder}`` of the ``TimePoint_n`` (or ``ZStep_n``) folders in ``folder``."""
    found: dict[int, Path] = {}
    try:
        entries = list(folder.iterdir())
    except OSError:
        return found
    for d in entries:
        m = _NUMBERED.match(d.name)
        if m and m.group(1).lower() == kind.lower() and d.is_dir():
            found.setdefault(int(m.group(2)), d)
    return found


def _timepoint_folders(path: Path) -> dict[int, Path]:
    """``{timepoint: folder}``; a plate without ``TimePoint_n`` folders is timepoint 1."""
    folder = path
    for _ in range(3):  # a plate folder may hold a date / id folder above TimePoint_n
        timepoints = _numbered(folder, "TimePoint")
        if timepoints:
            return timepoints
        subdirs = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
        if len(subdirs) != 1 or any(parse_filename(f.name) for f in folder.iterdir()):
            break
        folder = subdirs[0]
    return {1: folder}


def _plane_folders(folder: Path) -> dict[int, Path]:
    """``{plane: folder}`` of a timepoint folder; without ``ZStep_n`` folders, plane 1."""
    return _numbered(folder, "ZStep") or {1: folder}


def _wave_names(path: Path, folder: Path) -> tuple[Path | None, dict[int, str]]:
    """The ``.HTD`` file and its ``WaveName{n}`` entries (none: ``(None, {})``)."""
    for parent in dict.fromkeys([path, folder, *list(folder.parents)[:3]]):
        for htd in sorted(parent.glob("*.[Hh][Tt][Dd]")):
            try:
                text = htd.read_bytes().decode("utf-8", errors="replace")
            except OSError:
                continue
            names = re.findall(r'^\s*"WaveName(\d+)"\s*,\s*"([^"]*)"', text, re.MULTILINE)
            if names:
                return htd, {int(i): n for i, n in names}
    return None, {}


def _scan(folder: Path) -> tuple[dict[tuple[str, int], dict[int, Path]], set[str], list[str]]:
    """``(files by (well, site) and channel, plate names, unreadable entries)`` of a folder."""
    entries, problems = scan_folder(folder, parse_filename)
    found: dict[tuple[str, int], dict[int, Path]] = {}
    plates: set[str] = set()
    for f, (plate_name, well, site, ch) in entries:
        plates.add(plate_name)
        found.setdefault((well, site), {})[ch] = f
    return found, plates, problems


def _max_projection(
    scans: dict[int, dict[tuple[str, int], dict[int, Path]]],
) -> tuple[dict[tuple[str, int], dict[int, tuple[Path, ...]]], dict[tuple[str, int], str]]:
    """Per site and channel, the tuple of every plane's file; channels lacking a plane are
    left out, with the planes they lack in ``why``."""
    planes = sorted(scans)
    keys = {key for found in scans.values() for key in found}
    out: dict[tuple[str, int], dict[int, tuple[Path, ...]]] = {}
    why: dict[tuple[str, int], str] = {}
    for key in keys:
        channels = {c for found in scans.values() for c in found.get(key, {})}
        out[key] = {}
        lacking: set[int] = set()
        for c in channels:
            paths = [scans[z].get(key, {}).get(c) for z in planes]
            if all(paths):
                out[key][c] = tuple(paths)
            else:
                lacking.update(z for z, p in zip(planes, paths, strict=True) if p is None)
        if lacking:
            why[key] = f"in plane(s) {', '.join(map(str, sorted(lacking)))}"
    return out, why


def open_layout(path: Path, plane: int | str | None = None, timepoint: int | None = None) -> Plate:
    """Open an ImageXpress plate; NotThisLayout if no file is named like ``P_B02_s1_w1.tif``.

    ``timepoint`` picks a ``TimePoint_n`` folder, ``plane`` a ``ZStep_n`` folder in it (or
    ``"max"``: the maximum over every ``ZStep_n``); the lowest of each by default."""
    if not path.is_dir():
        raise NotThisLayout("not a folder")
    timepoint_folders = _timepoint_folders(path)
    lowest = timepoint_folders[min(timepoint_folders)]
    plane_folders = _plane_folders(lowest)
    folder = plane_folders[min(plane_folders)]
    found, plates, problems = _scan(folder)
    if not found:
        more = f" ({'; '.join(problems[:3])})" if problems else ""
        raise NotThisLayout(
            f"no files named like Plate_B02_s1_w1.tif in {folder} (or its TimePoint_1){more}"
        )
    where = f"ImageXpress plate {path}"
    timepoints = sorted(timepoint_folders)
    chosen_t = choose_timepoint(timepoints, timepoint, where, "TimePoint_n folders")
    if timepoint_folders[chosen_t] is not lowest:
        plane_folders = _plane_folders(timepoint_folders[chosen_t])
    chosen_z = choose_plane(sorted(plane_folders), plane, where, "ZStep_n folders")
    why: dict[tuple[str, int], str] = {}
    if chosen_z == MAX_PROJECTION:
        scans: dict[int, dict[tuple[str, int], dict[int, Path]]] = {}
        for z, z_folder in sorted(plane_folders.items()):
            if z_folder is folder:
                scans[z] = found
                continue
            scans[z], more_plates, more_problems = _scan(z_folder)
            plates |= more_plates
            problems += more_problems
        found, why = _max_projection(scans)  # type: ignore[assignment]
        folder = timepoint_folders[chosen_t]
    elif plane_folders[chosen_z] is not folder:
        folder = plane_folders[chosen_z]
        found, plates, problems = _scan(folder)
    warn_unreadable(folder, problems)
    if not found:
        raise PlateError(f"{folder} holds no image files named like Plate_B02_s1_w1.tif")
    if len(plates) > 1:
        raise PlateError(
            f"{folder} holds files of {len(plates)} plates ({', '.join(sorted(plates))}); "
            "put each plate in its own folder"
        )
    channel_ids = sorted({c for by_ch in found.values() for c in by_ch})
    files = complete_sites(found, channel_ids, folder, why)
    if not files:
        raise PlateError(f"{folder}: no site has a file for every channel")
    first = files[min(files)][0]
    first = first[0] if isinstance(first, tuple) else first
    shape, dtype = image_header(first)
    htd, waves = _wave_names(path, folder)
    unnamed = [c for c in channel_ids if c not in waves]
    if waves and unnamed:
        raise PlateError(
            f"{htd} names {len(waves)} wavelength(s) (WaveName"
            f"{', WaveName'.join(map(str, sorted(waves)))}) but the image files in {folder} "
            f"have channels {', '.join(f'w{c}' for c in channel_ids)}: no WaveName for "
            f"{', '.join(f'w{c}' for c in unnamed)}; add the missing WaveName entries to the "
            ".HTD file"
        )
    return ImageXpressPlate(
        name=plates.pop(),
        layout=LAYOUT,
        path=path,
        sites=sites_by_well(files),
        channels=[waves.get(c, f"w{c}") for c in channel_ids],
        image_shape=shape[-2:],
        dtype=dtype,
        shape_source=f"{first} {tuple(shape[-2:])}",
        files=files,
        planes=sorted(plane_folders),
        timepoints=timepoints,
        plane=chosen_z,
        timepoint=chosen_t,
    )
