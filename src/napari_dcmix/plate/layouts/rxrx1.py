"""RxRx1 (Recursion): ``images/{experiment}/Plate{n}/{well}_s{site}_w{ch}.png``, 8-bit PNG.

``open_layout`` accepts the Plate folder itself or any folder above it that holds exactly
one plate. Channels w1..w6 are Hoechst, ConA, Phalloidin, Syto14, MitoTracker, WGA.
``metadata.csv`` (looked for up to four folders up) is kept as ``plate.site_metadata``.
The plate is named ``{experiment}_{n}``, as RxRx1 writes it in ``well_id``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from napari_dcmix.errors import PlateError
from napari_dcmix.plate._io import (
    ChannelFilesPlate,
    complete_sites,
    image_header,
    scan_folder,
    sites_by_well,
    walk_files,
    warn_unreadable,
)
from napari_dcmix.plate.base import Plate, choose_plane, choose_timepoint
from napari_dcmix.plate.layouts import NotThisLayout
from napari_dcmix.plate.wells import normalise_well

LAYOUT = "rxrx1"
CHANNELS = ("Hoechst", "ConA", "Phalloidin", "Syto14", "MitoTracker", "WGA")
FILE_RE = re.compile(r"^([A-Za-z]{1,2}\d{1,3})_s(\d+)_w(\d+)\.png$", re.IGNORECASE)
_EXP_ZEROS = re.compile(r"(?<=-)0+(\d)")
PLATE_DIR_RE = re.compile(r"^Plate(\d+)$", re.IGNORECASE)


def parse_filename(name: str) -> tuple[str, int, int] | None:
    """``(well, site, channel)`` of an RxRx1 file name, else None."""
    match = FILE_RE.match(name)
    if match is None:
        return None
    try:
        return normalise_well(match.group(1)), int(match.group(2)), int(match.group(3))
    except PlateError:
        return None


def _has_images(folder: Path) -> bool:
    return any(parse_filename(p.name) for p in folder.iterdir() if p.is_file())


def _find_plate_folder(path: Path) -> Path:
    if _has_images(path):
        return path
    candidates = sorted({f.parent for f in walk_files(path, max_depth=4) if parse_filename(f.name)})
    if not candidates:
        raise NotThisLayout("no files named like B02_s1_w1.png (down to 4 folders deep)")
    if len(candidates) > 1:
        shown = ", ".join(str(c.relative_to(path)) for c in candidates[:8])
        raise PlateError(
            f"{path} holds {len(candidates)} RxRx1 plates ({shown}"
            f"{', ...' if len(candidates) > 8 else ''}); open one Plate folder"
        )
    return candidates[0]


def _same_experiment(a: str, b: str) -> bool:
    """``HUVEC-1`` and ``HUVEC-01`` name the same experiment."""
    return _EXP_ZEROS.sub(r"\1", a.strip().upper()) == _EXP_ZEROS.sub(r"\1", b.strip().upper())


def _metadata(folder: Path, experiment: str, plate_no: str) -> dict[tuple[str, int], dict]:
    for parent in [folder, *list(folder.parents)[:4]]:
        meta = parent / "metadata.csv"
        if meta.is_file():
            break
    else:
        return {}
    out: dict[tuple[str, int], dict] = {}
    reader = None
    try:
        with meta.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                if not _same_experiment(row.get("experiment", experiment), experiment):
                    continue
                if str(row.get("plate", plate_no)) != plate_no:
                    continue
                out[(normalise_well(row["well"]), int(row["site"]))] = row
    except UnicodeDecodeError as exc:
        raise PlateError(
            f"cannot read RxRx1 metadata {meta}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}"
            f" cannot be decoded); save it as UTF-8"
        ) from None
    except KeyError as exc:
        raise PlateError(
            f"cannot read RxRx1 metadata {meta}: no {exc} column; expected columns "
            "experiment, plate, well, site"
        ) from None
    except (ValueError, PlateError, csv.Error) as exc:
        line = f" line {reader.line_num}" if reader is not None else ""
        raise PlateError(f"cannot read RxRx1 metadata {meta}{line}: {exc}") from None
    except OSError as exc:
        raise PlateError(f"cannot read RxRx1 metadata {meta}: {exc.strerror or exc}") from None
    return out


class RxRx1Plate(ChannelFilesPlate):
    """An RxRx1 plate folder; ``site_metadata`` holds the metadata.csv rows of its sites."""

    site_metadata: dict[tuple[str, int], dict]


def open_layout(path: Path, plane: int | str | None = None, timepoint: int | None = None) -> Plate:
    """Open an RxRx1 plate; NotThisLayout if there are no ``B02_s1_w1.png`` files. RxRx1 has
    one plane and one timepoint (``[1]``; ``plane`` may be 1 or ``"max"``)."""
    if not path.is_dir():
        raise NotThisLayout("not a folder")
    folder = _find_plate_folder(path)
    where = f"RxRx1 plate {folder}"
    choose_plane([1], plane, where), choose_timepoint([1], timepoint, where)
    entries, problems = scan_folder(folder, parse_filename)
    warn_unreadable(folder, problems)
    found: dict[tuple[str, int], dict[int, Path]] = {}
    for f, key in entries:
        found.setdefault(key[:2], {})[key[2]] = f
    channel_ids = sorted({c for by_ch in found.values() for c in by_ch})
    bad = [c for c in channel_ids if not 1 <= c <= len(CHANNELS)]
    if bad:
        raise PlateError(f"{folder}: RxRx1 channels are w1..w6, found w{bad[0]}")
    files = complete_sites(found, channel_ids, folder)
    if not files:
        raise PlateError(f"{folder}: no site has a file for every channel")
    first = files[min(files)][0]
    shape, dtype = image_header(first)
    match = PLATE_DIR_RE.match(folder.name)
    plate_no = match.group(1) if match else "1"
    experiment = folder.parent.name if match else folder.name
    plate = RxRx1Plate(
        name=f"{experiment}_{plate_no}",
        layout=LAYOUT,
        path=folder,
        sites=sites_by_well(files),
        channels=[CHANNELS[c - 1] for c in channel_ids],
        image_shape=shape[:2],
        dtype=np.uint8 if dtype == np.dtype(bool) else dtype,
        shape_source=f"{first} {tuple(shape[:2])}",
        files=files,
        plane=plane,
        timepoint=timepoint,
    )
    plate.site_metadata = _metadata(folder, experiment, plate_no)
    return plate
