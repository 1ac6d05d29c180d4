"""Post-hoc agreement: per-stain ablation of a trained model on labelled wells.

Each stain is replaced by its normalised mean and the class probabilities move (total-variation
distance, averaged over the inputs): the larger the move, the more the model uses that stain.
C forward passes per input, computed only when asked (``napari-dcmix importance MODEL
--ablation PLATE --labels CSV``, the widget's button, ``bench/importance.py``), to check the
importance the model reports for free against what the network does.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from napari_dcmix.errors import LabelsError
from napari_dcmix.model.readout import normalised, stain_ablation
from napari_dcmix.model.sites import SitePrep

MAX_SITES = 48  # labelled sites sampled (stratified by class)
MAX_TILES = 4  # tiles per site (spread over it): the inputs stay under 100 MB at crop 128


def ablation_importance(model: Any, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(C,) per-stain ablation of ``model`` on normalised inputs ``(N, C, S, S)``, summing
    to 1."""
    model.eval()
    batches = [
        torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch_size]))
        for i in range(0, len(inputs), batch_size)
    ]
    return normalised(stain_ablation(model, batches))


def labelled_sites(
    plate: Any, labels: dict[str, str], max_sites: int = MAX_SITES, seed: int = 0
) -> list[tuple[str, int]]:
    """The ``(well, site)`` keys of up to ``max_sites`` labelled sites, the same number from
    each class where the plate has them (drawn with ``seed``)."""
    from napari_dcmix.plate.labels import check_labels_fit

    named = check_labels_fit(labels, plate)
    classes = sorted(set(named.values()))
    if len(classes) < 2:
        raise LabelsError(
            f"ablation needs labelled wells of at least 2 classes to compare, found "
            f"{len(classes)} ({', '.join(classes) or 'none'})"
        )
    rng = np.random.default_rng(seed)
    per_class = max(1, max_sites // len(classes))
    keys: list[tuple[str, int]] = []
    for cls in classes:
        sites = [(w, s) for w in plate.wells if named.get(w) == cls for s in plate.sites(w)]
        chosen = rng.permutation(len(sites))[:per_class]
        keys += [sites[i] for i in sorted(chosen)]
    return keys


def compare(learned: dict[str, float], ablation: Sequence[float]) -> tuple[dict, float]:
    """``({stain: ablation}, Spearman between the learned importance and the ablation)``."""
    names = list(learned)
    values = np.asarray(ablation, dtype=float)
    rho = spearman([learned[n] for n in names], values)
    return dict(zip(names, values.tolist(), strict=True)), rho


def _ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        tied = values == v
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (the Pearson correlation of the ranks; nan when either side
    is constant), without importing scipy.stats (half a second, holding the GIL)."""
    ra, rb = _ranks(a) - (len(a) + 1) / 2, _ranks(b) - (len(b) + 1) / 2
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


@dataclass
class AblationProgress:
    done: int  # labelled sites prepared (then one step for the ablation itself)
    total: int


@dataclass
class AblationResult:
    ablation: dict[str, float]  # stain -> share of the probability change, sums to 1
    learned: dict[str, float]  # the model's importance, for comparison
    spearman: float
    n_inputs: int


def ablation_on_plate(
    model: Any,
    plate: Any,
    labels: dict[str, str],
    max_sites: int = MAX_SITES,
    max_tiles: int = MAX_TILES,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[AblationProgress, None, AblationResult | None]:
    """Per-stain ablation of ``model`` on the labelled wells of ``plate`` (the check the CLI's
    ``importance --ablation`` and the widget's button run); yields progress, returns the
    result (None when ``should_stop()`` became true)."""
    keys = labelled_sites(plate, labels, max_sites, seed)
    prep = SitePrep(model.scale, model.input_size, model.normalisation)
    total = len(keys) + 1
    chunks = []
    for i, (well, site) in enumerate(keys, start=1):
        if should_stop is not None and should_stop():
            return None
        chunks.append(prep.tiles(np.asarray(plate.read(well, site)), max_tiles))
        yield AblationProgress(i, total)
    inputs_all = np.concatenate(chunks)
    learned = model.channel_importance()
    values, rho = compare(learned, ablation_importance(model, inputs_all))
    yield AblationProgress(total, total)
    return AblationResult(values, learned, rho, len(inputs_all))
