"""Prediction results: per-site and per-well probabilities, their CSV rows and files."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_dcmix.errors import ModelError


@dataclass
class PredictProgress:
    done: int
    total: int
    device: str


@dataclass
class SitePrediction:
    well: str
    site: int
    probs: np.ndarray  # (n_classes,) float64


@dataclass
class WellPrediction:
    well: str
    probs: np.ndarray  # mean of the site probabilities
    n_sites: int
    prediction: str
    confidence: float


@dataclass
class PlatePredictions:
    plate_name: str
    class_names: list[str]
    device: str
    sites: list[SitePrediction] = field(default_factory=list)

    def wells(self) -> list[WellPrediction]:
        groups: dict[str, list[np.ndarray]] = {}
        for s in self.sites:
            groups.setdefault(s.well, []).append(s.probs)
        out = []
        for well, probs in groups.items():
            mean = np.mean(np.stack(probs), axis=0)
            best = int(np.argmax(mean))
            out.append(
                WellPrediction(well, mean, len(probs), self.class_names[best], float(mean[best]))
            )
        return out

    def columns(self) -> list[str]:
        return ["plate", "well", "site", "level", "prediction", "confidence"] + [
            f"p_{c}" for c in self.class_names
        ]

    def to_rows(self) -> list[dict[str, Any]]:
        """Site rows (level "site"), then one aggregate row per well (level "well", site "")."""
        rows: list[dict[str, Any]] = []

        def row(well: str, site: Any, level: str, probs: np.ndarray) -> dict[str, Any]:
            best = int(np.argmax(probs))
            r = {
                "plate": self.plate_name,
                "well": well,
                "site": site,
                "level": level,
                "prediction": self.class_names[best],
                "confidence": float(probs[best]),
            }
            r.update({f"p_{c}": float(p) for c, p in zip(self.class_names, probs, strict=False)})
            return r

        rows += [row(s.well, s.site, "site", s.probs) for s in self.sites]
        rows += [row(w.well, "", "well", w.probs) for w in self.wells()]
        return rows

    def write_csv(self, path: str | Path) -> Path:
        return write_predictions_csv([self], path)


def write_predictions_csv(predictions: Sequence[PlatePredictions], path: str | Path) -> Path:
    """One CSV for several plates (they must share class names)."""
    path = Path(path)
    if not predictions:
        raise ModelError("no predictions to write")
    columns = predictions[0].columns()
    for p in predictions[1:]:
        if p.columns() != columns:
            raise ModelError(f"plate {p.plate_name!r}: classes differ, cannot share one CSV")
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for p in predictions:
            for r in p.to_rows():
                writer.writerow(
                    {k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()}
                )
    return path
