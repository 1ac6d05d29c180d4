"""Read prediction CSVs back (``napari-dcmix predict`` output, a saved session's, or the
widget's export): columns are found by name, extra columns are ignored."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_dcmix.errors import DcmixError
from napari_dcmix.plate.wells import normalise_well, sort_wells


@dataclass
class WellTable:
    """Per-well class probabilities of one plate (from site rows, averaged, or well rows)."""

    plate: str
    class_names: list[str]
    probs: dict[str, np.ndarray] = field(default_factory=dict)  # well -> (n_classes,)
    path: str = ""  # the plate's folder or URL (the CSV's path column): tells apart one name

    def wells(self) -> list[str]:
        return sort_wells(self.probs)


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DcmixError(f"cannot read predictions CSV {path}: {exc.strerror or exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise DcmixError(f"predictions CSV {path} is empty; expected a header line")
    reader.fieldnames = header
    classes = [h[2:] for h in header if h.startswith("p_") and len(h) > 2]
    if "well" not in header or not classes:
        raise DcmixError(
            f"predictions CSV {path}: expected columns 'well' and p_<class> (one per class); "
            f"found {', '.join(header)}"
        )
    return classes, list(reader)


def _probs(row: dict[str, str], classes: list[str], path: Path, line: int) -> np.ndarray:
    """The row's p_ columns; all empty (a well whose every site was skipped) is NaN."""
    if all(not (row.get(f"p_{c}") or "").strip() for c in classes):
        return np.full(len(classes), np.nan)
    try:
        return np.array([float(row[f"p_{c}"]) for c in classes], dtype=float)
    except (TypeError, ValueError):
        values = [row.get(f"p_{c}") for c in classes]
        raise DcmixError(
            f"predictions CSV {path} line {line}: expected numbers in the p_ columns, "
            f"found {values}"
        ) from None


def _plate_of(row: dict[str, str], path: Path) -> tuple[str, str]:
    """(plate name, plate path): the ``plate`` column (else the file name) and the ``path``
    column, which tells apart plates of one name."""
    return (row.get("plate") or "").strip() or path.stem, (row.get("path") or "").strip()


def read_well_tables(path: str | Path) -> list[WellTable]:
    """Per plate (the ``plate`` and ``path`` columns, else the file name), each well's
    probabilities: the ``level=well`` rows when there are any, else the mean of the well's
    site rows. A well without a predicted site (all skipped) has NaN probabilities."""
    path = Path(path)
    classes, rows = _rows(path)
    sites: dict[tuple[str, str], dict[str, list[np.ndarray]]] = {}
    wells: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    order: list[tuple[str, str]] = []
    for line, row in enumerate(rows, start=2):
        plate = _plate_of(row, path)
        if plate not in order:
            order.append(plate)
        try:
            well = normalise_well(row.get("well") or "")
        except DcmixError as exc:
            raise DcmixError(f"predictions CSV {path} line {line}: {exc}") from None
        probs = _probs(row, classes, path, line)
        level = (row.get("level") or "").strip()
        if level == "well" or (not level and not (row.get("site") or "").strip()):
            wells.setdefault(plate, {})[well] = probs
        else:
            sites.setdefault(plate, {}).setdefault(well, []).append(probs)
    tables = []
    for plate in order:
        table = WellTable(plate[0], list(classes), path=plate[1])
        if wells.get(plate):
            table.probs = dict(wells[plate])
        else:
            table.probs = {w: np.mean(p, axis=0) for w, p in sites.get(plate, {}).items()}
        tables.append(table)
    if not tables:
        raise DcmixError(f"predictions CSV {path} has no rows")
    return tables


def read_site_predictions(path: str | Path, device: str = "") -> list:
    """``PlatePredictions`` per plate (``plate`` and ``path`` columns) from the site rows
    (``level=site``) of a predictions CSV, as ``napari-dcmix predict`` and saved sessions
    write them."""
    from napari_dcmix.model.predictions import PlatePredictions, SitePrediction

    path = Path(path)
    classes, rows = _rows(path)
    if "site" not in (rows[0] if rows else {"site": ""}):
        raise DcmixError(f"predictions CSV {path}: expected a 'site' column")
    out: dict[tuple[str, str], PlatePredictions] = {}
    for line, row in enumerate(rows, start=2):
        if (row.get("level") or "site").strip() != "site":
            continue
        plate = _plate_of(row, path)
        try:
            well, site = normalise_well(row.get("well") or ""), int(row.get("site") or "")
        except (DcmixError, ValueError):
            raise DcmixError(
                f"predictions CSV {path} line {line}: expected a well and a site number, found "
                f"{row.get('well')!r}, {row.get('site')!r}"
            ) from None
        preds = out.setdefault(
            plate, PlatePredictions(plate[0], list(classes), device, path=plate[1])
        )
        preds.sites.append(SitePrediction(well, site, _probs(row, classes, path, line)))
    return list(out.values())
