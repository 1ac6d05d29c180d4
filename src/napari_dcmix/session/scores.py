"""Per-well numbers shown on the plate: the class-coloured table and the continuous heatmap
score (the probability of a chosen class, or the margin between two), with its colour map.

Qt-free: the napari overlays and the HTML report draw the same numbers with the same colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_dcmix.errors import DcmixError

PROBABILITY = "probability"
MARGIN = "margin"
SCORE_KINDS = (PROBABILITY, MARGIN)
COLORMAPS = {PROBABILITY: "viridis", MARGIN: "coolwarm"}


def well_features(predictions: Any, plate_name: str) -> dict[str, list]:
    """One row per predicted well: plate, well, prediction, confidence, n_sites, p_<class>
    (rounded as shown on the plate; ``Export CSV`` writes exactly these)."""
    wells = predictions.wells()
    out: dict[str, list] = {
        "plate": [plate_name] * len(wells),
        "well": [w.well for w in wells],
        "prediction": [w.prediction for w in wells],
        "confidence": [round(float(w.confidence), 4) for w in wells],
        "n_sites": [int(w.n_sites) for w in wells],
    }
    for i, name in enumerate(predictions.class_names):
        out[f"p_{name}"] = [round(float(w.probs[i]), 4) for w in wells]
    return out


@dataclass(frozen=True)
class ScoreSpec:
    """What the heatmap shows: ``p(a)`` (kind "probability") or ``p(a) - p(b)`` ("margin")."""

    kind: str = PROBABILITY
    a: str | None = None
    b: str | None = None

    def resolved(self, class_names: Sequence[str]) -> ScoreSpec:
        """The spec with its classes filled in (a: the last class, b: the first) and checked
        against ``class_names``."""
        names = list(class_names)
        if self.kind not in SCORE_KINDS:
            raise DcmixError(f"heatmap score: expected one of {SCORE_KINDS}, found {self.kind!r}")
        if len(names) < 2:
            raise DcmixError(f"heatmap score: the model has fewer than 2 classes ({names})")
        a = self.a if self.a in names else names[-1]
        b = self.b if self.b in names and self.b != a else next(n for n in names if n != a)
        return ScoreSpec(self.kind, a, b if self.kind == MARGIN else None)

    @property
    def limits(self) -> tuple[float, float]:
        return (0.0, 1.0) if self.kind == PROBABILITY else (-1.0, 1.0)

    @property
    def colormap(self) -> str:
        return COLORMAPS[self.kind]

    def label(self) -> str:
        if self.kind == MARGIN:
            return f"p({self.a}) - p({self.b})"
        return f"p({self.a})"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ScoreSpec | None:
        if not data:
            return None
        return cls(str(data.get("kind", PROBABILITY)), data.get("a"), data.get("b"))


def score_values(class_names: Sequence[str], probs: np.ndarray, spec: ScoreSpec) -> np.ndarray:
    """Scores of rows of probabilities ``probs`` (N, n_classes) for a resolved ``spec``."""
    names = list(class_names)
    probs = np.asarray(probs, dtype=float).reshape(-1, len(names))
    score = probs[:, names.index(spec.a)]
    if spec.kind == MARGIN:
        score = score - probs[:, names.index(spec.b)]
    return score


def well_scores(predictions: Any, spec: ScoreSpec) -> tuple[list[str], np.ndarray]:
    """``(wells, scores)`` of a PlatePredictions for ``spec`` (resolved on its classes)."""
    spec = spec.resolved(predictions.class_names)
    wells = predictions.wells()
    probs = np.stack([w.probs for w in wells]) if wells else np.zeros((0, 2))
    return [w.well for w in wells], score_values(predictions.class_names, probs, spec)


def score_colors(scores: np.ndarray, spec: ScoreSpec, alpha: float = 0.85) -> np.ndarray:
    """RGBA (N, 4) colours of ``scores`` on the spec's colour map over its limits."""
    from matplotlib import colormaps

    lo, hi = spec.limits
    t = np.clip((np.asarray(scores, dtype=float) - lo) / (hi - lo), 0.0, 1.0)
    rgba = np.asarray(colormaps[spec.colormap](t), dtype=float).reshape(-1, 4)
    rgba[:, 3] = alpha
    return rgba
