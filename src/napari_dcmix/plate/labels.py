"""Plate maps: a CSV of ``well,label`` (optionally ``plate``) read into ``{well: label}``."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

from napari_dcmix.errors import LabelsError, PlateError
from napari_dcmix.plate.wells import normalise_well, sort_wells


def read_labels_csv(path: str | Path, plate: str | None = None) -> dict[str, str]:
    """``{well: label}`` from a CSV with columns ``well,label`` (and optionally ``plate``).

    Wells may be written ``B2`` or ``B02``. With ``plate``, only rows whose ``plate`` column
    equals it are kept (a file without a ``plate`` column applies to every plate).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LabelsError(f"cannot read labels file {path}: {exc.strerror or exc}") from None
    if not text.strip():
        raise LabelsError(f"labels file {path} is empty; expected a header 'well,label'")
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader)]
    for column in ("well", "label"):
        if column not in header:
            raise LabelsError(
                f"labels file {path} has no '{column}' column (line 1 has {', '.join(header)}); "
                "expected columns well,label[,plate]"
            )
    i_well, i_label = header.index("well"), header.index("label")
    i_plate = header.index("plate") if "plate" in header else None
    labels: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise LabelsError(
                f"labels file {path} line {line_no}: {len(row)} fields, expected {len(header)}"
            )
        if plate is not None and i_plate is not None and row[i_plate].strip() != plate:
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
    if not labels:
        which = f" for plate {plate!r}" if plate is not None else ""
        raise LabelsError(f"labels file {path} has no labelled wells{which}")
    return {w: labels[w] for w in sort_wells(labels)}


def write_labels_csv(path: str | Path, labels: Mapping[str, str], plate: str | None = None) -> Path:
    """Write ``{well: label}`` as CSV (``plate,well,label`` when ``plate`` is given)."""
    path = Path(path)
    try:
        rows = {normalise_well(w): str(lab) for w, lab in labels.items()}
    except PlateError as exc:
        raise LabelsError(f"cannot write labels file {path}: {exc}") from None
    with path.open("w", newline="", encoding="utf-8") as fh:
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
