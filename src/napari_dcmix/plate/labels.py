"""Plate maps: a CSV of ``well,label`` (optionally ``plate``) read into ``{well: label}``."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

from napari_dcmix.atomic import atomic_write
from napari_dcmix.errors import LabelsError, PlateError
from napari_dcmix.plate.wells import normalise_well, sort_wells


def read_labels_csv(path: str | Path, plate: str | None = None) -> dict[str, str]:
    """``{well: label}`` from a CSV with columns ``well,label`` (and optionally ``plate``).

    Wells may be written ``B2`` or ``B02``. With ``plate``, only rows whose ``plate`` column
    equals it are kept (a file without a ``plate`` column applies to every plate).
    """
    path = Path(path)
    if path.is_dir():
        raise LabelsError(f"labels file {path} is a folder; expected a CSV file (well,label)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LabelsError(f"cannot read labels file {path}: {exc.strerror or exc}") from None
    text = _decode(data, path)
    if not text.strip():
        raise LabelsError(f"labels file {path} is empty; expected a header 'well,label'")
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise LabelsError(
            f"labels file {path} line {line} holds a NUL byte: not a text CSV file "
            "(expected columns well,label[,plate])"
        )
    try:
        return _parse(csv.reader(io.StringIO(text, newline="")), path, plate)
    except csv.Error as exc:
        raise LabelsError(f"labels file {path} is not a valid CSV file: {exc}") from None


def _decode(data: bytes, path: Path) -> str:
    """UTF-8 text (a BOM dropped); LabelsError saying what the bytes look like otherwise."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LabelsError(
            f"labels file {path} is UTF-16 text (Excel's 'Unicode text'); expected UTF-8: save "
            "it as 'CSV UTF-8 (comma delimited)'"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        hint = ""
        try:
            data.decode("cp1252")
            hint = " (it looks like a Windows-1252 / Excel 'CSV (comma delimited)' export)"
        except UnicodeDecodeError:
            pass
        raise LabelsError(
            f"labels file {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} "
            f"cannot be decoded{hint}; save it as 'CSV UTF-8'"
        ) from None


def _parse(reader, path: Path, plate: str | None) -> dict[str, str]:
    header: list[str] = []
    for row in reader:  # the first row that is not blank
        header = [h.strip().lower() for h in row]
        if any(header):
            break
    for column in ("well", "label"):
        if column not in header:
            shown = ", ".join(header)[:200]
            sep = next((s for s in (";", "\t", "|") if s in shown), None)
            hint = f" (its fields look separated by {sep!r}; expected commas)" if sep else ""
            raise LabelsError(
                f"labels file {path} has no '{column}' column (line {reader.line_num} has "
                f"{shown}){hint}; expected columns well,label[,plate]"
            )
    i_well, i_label = header.index("well"), header.index("label")
    i_plate = header.index("plate") if "plate" in header else None
    labels: dict[str, str] = {}
    first_line: dict[str, int] = {}
    seen_plates: set[str] = set()
    for row in reader:
        line_no = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise LabelsError(
                f"labels file {path} line {line_no}: {len(row)} fields, expected {len(header)}"
            )
        if plate is not None and i_plate is not None:
            seen_plates.add(row[i_plate].strip())
            if row[i_plate].strip() != plate:
                continue
        try:
            well = normalise_well(row[i_well])
        except PlateError as exc:
            raise LabelsError(f"labels file {path} line {line_no}: {exc}") from None
        label = row[i_label].strip()
        if not label:
            raise LabelsError(f"labels file {path} line {line_no}: well {well} has an empty label")
        if well in labels and labels[well] != label:
            raise LabelsError(
                f"labels file {path} line {line_no}: well {well} is labelled {label!r} but "
                f"line {first_line[well]} labels it {labels[well]!r}"
            )
        labels.setdefault(well, label)
        first_line.setdefault(well, line_no)
    if not labels and plate is not None and i_plate is not None:
        names = sorted(seen_plates)
        shown = ", ".join(repr(n) for n in names[:10]) + (" ..." if len(names) > 10 else "")
        raise LabelsError(
            f"labels file {path} has no labelled wells for plate {plate!r}: its 'plate' "
            f"column names {shown or 'no plate'}"
        )
    if not labels:
        raise LabelsError(f"labels file {path} has no labelled wells")
    return {w: labels[w] for w in sort_wells(labels)}


def write_labels_csv(path: str | Path, labels: Mapping[str, str], plate: str | None = None) -> Path:
    """Write ``{well: label}`` as CSV (``plate,well,label`` when ``plate`` is given),
    atomically: an existing file is replaced whole or left unchanged (``OutputError``)."""
    path = Path(path)
    try:
        rows = {normalise_well(w): str(lab) for w, lab in labels.items()}
    except PlateError as exc:
        raise LabelsError(f"cannot write labels file {path}: {exc}") from None
    with atomic_write(path, "w", newline="", what="labels file") as fh:
        writer = csv.writer(fh)
        writer.writerow(["plate", "well", "label"] if plate is not None else ["well", "label"])
        for well in sort_wells(rows):
            writer.writerow([plate, well, rows[well]] if plate is not None else [well, rows[well]])
    return path


def check_labels_fit(labels: Mapping[str, str], plate) -> dict[str, str]:
    """``{well: label}`` with well names normalised (``B2`` -> ``B02``) and labels as ``str``.

    Raises LabelsError naming a well name that cannot be parsed, or every labelled well that
    ``plate`` (a Plate) does not have (the first 20, with the count), with the plate's path and
    the wells it does have, so a labels file meant for another plate is easy to recognise.
    """
    try:
        named = {normalise_well(w): str(label) for w, label in labels.items()}
    except PlateError as exc:
        raise LabelsError(f"labels for plate {plate.name!r}: {exc}") from None
    have = set(plate.wells)
    missing = [w for w in sort_wells(named) if w not in have]
    if missing:
        shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
        wells = list(plate.wells)
        span = f"{wells[0]} ... {wells[-1]}" if len(wells) > 2 else ", ".join(wells)
        raise LabelsError(
            f"labels name {len(missing)} well(s) that plate {plate.name!r} ({plate.path}) does "
            f"not have: {shown}; the plate has {len(wells)} well(s): {span or 'none'}"
        )
    return named
