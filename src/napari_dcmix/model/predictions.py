"""Prediction results: per-site and per-well probabilities, their CSV rows and files.

The predictions CSV has one row per site (``level=site``) and one per well (``level=well``):

``plate, well, site, level, prediction, confidence, p_<class>..., sites_used, notes, path``

- ``sites_used`` (well rows): how many sites were averaged into the well (sites that could not
  be read and were skipped are not counted); empty on site rows.
- ``notes``: suspicious but readable data, ``"; "``-separated. Site rows: what the plate
  reader noted (e.g. chunks missing from an OME-Zarr store, read as the fill value) and what
  the model's input checks found (``input_notes``). Well rows: the skipped sites with the
  reason, and which sites have notes.
- ``path``: the plate's folder (absolute) or URL, which tells apart plates with one name.

Text is UTF-8. A plate name or path that is not valid UTF-8 (a folder name in another
encoding) is written with each undecodable byte as ``\\xNN`` (Python's ``backslashreplace``;
``csv_text``), so the CSV is always valid UTF-8 and the original bytes can be recovered.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_dcmix.errors import ModelError


def csv_text(text: str) -> str:
    """``text`` as valid UTF-8: undecodable bytes of a file name (Python keeps them as lone
    surrogates, ``surrogateescape``) become ``\\xNN``; other text is unchanged."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that are not escaped bytes
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def plate_path_text(plate: Any) -> str:
    """The plate's location for the ``path`` column: its URL, or its folder made absolute."""
    path = getattr(plate, "path", "")
    text = str(path)
    if "://" in text or not text or text.startswith("<"):
        return text
    return os.path.abspath(text)


def input_notes(low: np.ndarray, high: np.ndarray, channels: Sequence[str]) -> list[str]:
    """Notes on what the model sees of one site, from each channel's lowest and highest value
    after normalisation (the model's low percentile maps to 0, its high percentile to 1):
    every channel a single value (a constant input: the model sees a blank image), a channel
    whose every pixel lies below the low percentile or above the high one (outside the range
    the model was trained on: e.g. a boolean or 8-bit plate given to a 16-bit model)."""
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    notes = []
    if low.size and np.all(high == low):
        notes.append("constant input: every channel is a single value after normalisation")
    below = [c for c, h in zip(channels, high, strict=False) if h < 0]
    above = [c for c, lo in zip(channels, low, strict=False) if lo > 1]
    if below:
        notes.append(
            f"every pixel of channel(s) {', '.join(below)} lies below the model's low percentile"
        )
    if above:
        notes.append(
            f"every pixel of channel(s) {', '.join(above)} lies above the model's high percentile"
        )
    return notes


@dataclass
class SitePrediction:
    well: str
    site: int
    probs: np.ndarray  # (n_classes,) float64
    notes: list[str] = field(default_factory=list)  # suspicious but readable data


@dataclass
class SkippedSite:
    """A site that could not be read and was left out (``skip_bad_sites``)."""

    well: str
    site: int
    reason: str


@dataclass
class WellPrediction:
    well: str
    probs: np.ndarray  # mean of the site probabilities (NaN when no site was used)
    n_sites: int
    prediction: str
    confidence: float
    notes: list[str] = field(default_factory=list)


@dataclass
class PlatePredictions:
    plate_name: str
    class_names: list[str]
    device: str
    sites: list[SitePrediction] = field(default_factory=list)
    path: str = ""  # the plate's folder or URL (the ``path`` column)
    skipped: list[SkippedSite] = field(default_factory=list)

    def wells(self) -> list[WellPrediction]:
        """One aggregate per well that has sites (predicted or skipped), in site order."""
        groups: dict[str, list[SitePrediction]] = {}
        skipped: dict[str, list[SkippedSite]] = {}
        for s in self.sites:
            groups.setdefault(s.well, [])
            groups[s.well].append(s)
        for k in self.skipped:
            groups.setdefault(k.well, [])
            skipped.setdefault(k.well, []).append(k)
        order = _well_order(self.sites, self.skipped)
        out = []
        for well in order:
            sites = groups[well]
            notes = [f"skipped site {k.site}: {k.reason}" for k in skipped.get(well, [])]
            noted = [str(s.site) for s in sites if s.notes]
            if noted:
                notes.append(f"notes on site(s) {', '.join(noted)}")
            if not sites:
                probs = np.full(len(self.class_names), np.nan)
                out.append(WellPrediction(well, probs, 0, "", float("nan"), notes))
                continue
            mean = np.mean(np.stack([s.probs for s in sites]), axis=0)
            best = int(np.argmax(mean))
            out.append(
                WellPrediction(
                    well, mean, len(sites), self.class_names[best], float(mean[best]), notes
                )
            )
        return out

    def columns(self) -> list[str]:
        return (
            ["plate", "well", "site", "level", "prediction", "confidence"]
            + [f"p_{c}" for c in self.class_names]
            + ["sites_used", "notes", "path"]
        )

    def to_rows(self) -> list[dict[str, Any]]:
        """Site rows (level "site"), then one aggregate row per well (level "well", site "")."""
        rows: list[dict[str, Any]] = []
        plate, path = csv_text(self.plate_name), csv_text(self.path)

        def row(well: str, site: Any, level: str, probs: np.ndarray, used: Any, notes: list):
            found = bool(np.all(np.isfinite(probs))) and len(probs) > 0
            best = int(np.argmax(probs)) if found else -1
            r = {
                "plate": plate,
                "well": well,
                "site": site,
                "level": level,
                "prediction": self.class_names[best] if found else "",
                "confidence": float(probs[best]) if found else "",
            }
            r.update(
                {
                    f"p_{c}": float(p) if found else ""
                    for c, p in zip(self.class_names, probs, strict=False)
                }
            )
            r.update({"sites_used": used, "notes": csv_text("; ".join(notes)), "path": path})
            return r

        rows += [row(s.well, s.site, "site", s.probs, "", s.notes) for s in self.sites]
        rows += [row(w.well, "", "well", w.probs, w.n_sites, w.notes) for w in self.wells()]
        return rows

    def write_csv(self, path: str | Path) -> Path:
        return write_predictions_csv([self], path)


def _well_order(sites: Sequence[SitePrediction], skipped: Sequence[SkippedSite]) -> list[str]:
    """Wells in plate order (row, then column) when the names parse, else first-seen order."""
    seen: dict[str, None] = {}
    for s in [*sites, *skipped]:
        seen.setdefault(s.well, None)
    try:
        from napari_dcmix.plate.wells import sort_wells

        return list(sort_wells(seen))
    except Exception:
        return list(seen)


@dataclass
class PredictProgress:
    done: int
    total: int
    device: str
    # the predictions so far (the object ``predict_plate`` returns, growing batch by batch)
    partial: PlatePredictions | None = None


def write_predictions_csv(predictions: Sequence[PlatePredictions], path: str | Path) -> Path:
    """One CSV for several plates (they must share class names), written atomically: a
    temporary file beside ``path`` renamed over it, so an existing file is replaced whole or
    left byte-identical (a full disk, a file-size limit, an interrupt)."""
    from napari_dcmix.atomic import atomic_write

    path = Path(path)
    if not predictions:
        raise ModelError("no predictions to write")
    columns = predictions[0].columns()
    for p in predictions[1:]:
        if p.columns() != columns:
            raise ModelError(f"plate {p.plate_name!r}: classes differ, cannot share one CSV")
    with atomic_write(path, "w", newline="", what="predictions CSV") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for p in predictions:
            for r in p.to_rows():
                writer.writerow(
                    {k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()}
                )
    return path
