"""Reading importance off a trained network: blend relevance and per-stain ablation.

- ``blend_relevance``: how much the network uses each of its K blended images, measured by
  occlusion on (a sample of) its training inputs: blend k is replaced by its mean and the class
  probabilities move by some total-variation distance; r_k is the mean distance. Combined with
  the mixing weights (``DcmixClassifier.importance_vector``) it gives a readout faithful to the
  network for K > 1 (a blend the backbone ignores no longer counts 1/K). One forward pass per
  blend over a few hundred inputs, once, when training ends.
- ``stain_ablation``: the post-hoc check: each stain replaced by its normalised mean, and the
  same distance. C forward passes per input; what the learned importance is compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch


def _distance(p0: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
    """Total-variation distance between rows of class probabilities, summed over the batch."""
    return 0.5 * (p0 - p1).abs().sum(dim=1).sum()


def blend_relevance(net: torch.nn.Module, batches: Iterable[torch.Tensor]) -> np.ndarray:
    """(K,) mean total-variation distance of the class probabilities when blend k is replaced
    by its mean over the inputs (``net``: a DcmixClassifier; inputs normalised, on its device).
    """
    xs = list(batches)
    net.eval()
    with torch.no_grad():
        mixed = [net.mixing(x) for x in xs]
        total = sum(int(y.shape[0]) for y in mixed)
        k = mixed[0].shape[1]
        sums = torch.stack([y.sum(dim=(0, 2, 3)) for y in mixed]).sum(0)
        pixels = sum(int(y.shape[0] * y.shape[2] * y.shape[3]) for y in mixed)
        mean = (sums / pixels).view(1, k, 1, 1)
        out = torch.zeros(k, dtype=torch.float64)
        for y in mixed:
            p0 = torch.softmax(net.head(net.backbone(y)).float(), dim=1)
            for j in range(k):
                occluded = y.clone()
                occluded[:, j] = mean[:, j]
                p1 = torch.softmax(net.head(net.backbone(occluded)).float(), dim=1)
                out[j] += float(_distance(p0, p1))
    return (out / max(1, total)).numpy()


def stain_ablation(
    forward: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[torch.Tensor]
) -> np.ndarray:
    """(C,) mean total-variation distance of the class probabilities when stain c is replaced
    by its normalised mean over the inputs. ``forward`` maps normalised inputs to logits."""
    xs = list(batches)
    with torch.no_grad():
        c = xs[0].shape[1]
        pixels = sum(int(x.shape[0] * x.shape[2] * x.shape[3]) for x in xs)
        mean = (torch.stack([x.sum(dim=(0, 2, 3)) for x in xs]).sum(0) / pixels).view(1, c, 1, 1)
        total = sum(int(x.shape[0]) for x in xs)
        out = torch.zeros(c, dtype=torch.float64)
        for x in xs:
            p0 = torch.softmax(forward(x).float(), dim=1)
            for j in range(c):
                ablated = x.clone()
                ablated[:, j] = mean[:, j]
                out[j] += float(_distance(p0, torch.softmax(forward(ablated).float(), dim=1)))
    return (out / max(1, total)).numpy()


def normalised(values: np.ndarray) -> np.ndarray:
    """``values / sum`` (uniform when they sum to zero)."""
    values = np.asarray(values, dtype=float)
    total = values.sum()
    return values / total if total > 0 else np.full_like(values, 1.0 / len(values))
