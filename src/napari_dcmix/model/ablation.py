"""Post-hoc agreement: per-stain ablation of a trained model on labelled wells.

Each stain is replaced by its normalised mean and the class probabilities move (total-variation
distance, averaged over the inputs): the larger the move, the more the model uses that stain.
C forward passes per input, computed only when asked (``napari-dcmix importance MODEL
--ablation PLATE --labels CSV``, the widget's button, ``bench/importance.py``), to check the
importance the model reports for free against what the network does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from napari_dcmix.errors import LabelsError
from napari_dcmix.model.readout import normalised, stain_ablation
from napari_dcmix.model.sites import SitePrep

MAX_SITES = 96  # labelled sites sampled (stratified by class)
MAX_TILES = 16  # tiles per site


def ablation_importance(model: Any, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(C,) per-stain ablation of ``model`` on normalised inputs ``(N, C, S, S)``, summing
    to 1."""
    model.eval()
    batches = [
        torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch_size]))
        for i in range(0, len(inputs), batch_size)
    ]
    return normalised(stain_ablation(model, batches))


def labelled_inputs(
    model: Any,
    plate: Any,
    labels: dict[str, str],
    max_sites: int = MAX_SITES,
    max_tiles: int = MAX_TILES,
    seed: int = 0,
) -> np.ndarray:
    """Normalised inputs (tiles at the model's scale) of up to ``max_sites`` labelled sites,
    the same number from each class where the plate has them."""
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
    prep = SitePrep(model.scale, model.input_size, model.normalisation)
    return np.concatenate([prep.tiles(np.asarray(plate.read(w, s)), max_tiles) for w, s in keys])


def compare(learned: dict[str, float], ablation: Sequence[float]) -> tuple[dict, float]:
    """``({stain: ablation}, Spearman between the learned importance and the ablation)``."""
    from scipy.stats import spearmanr

    names = list(learned)
    values = np.asarray(ablation, dtype=float)
    rho = float(spearmanr([learned[n] for n in names], values).statistic)
    return dict(zip(names, values.tolist(), strict=True)), rho
