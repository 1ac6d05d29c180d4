"""Which wells each ensemble member holds out: the held-out evidence's splits.

A split is made by well group (a plate's well), never by site: a well's sites always fall on
the same side. ``member_holdouts`` returns, per member, a boolean mask over well groups:

- ``"wells"`` with M >= 2 members: stratified M-fold cross-validation by well (each class's
  wells shuffled with the seed and dealt round-robin), member m holds out fold m, so every
  well is held out by exactly one member;
- ``"plate"``: member m holds out plate ``m mod P`` (leave-one-plate-out; needs 2+ plates);
- a single member: a stratified share ``val_fraction`` of each class's wells.

No member holds anything out (an empty mask) when a class has fewer than 2 wells: a held-out
well of such a class would leave its member without an example to learn from.
"""

from __future__ import annotations

import math

import numpy as np

from napari_dcmix.errors import ModelError

HOLDOUTS = ("wells", "plate")


def stratified_folds(group_labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold id (0..k-1) per well group, stratified by class; fold sizes differ by at most one
    within each class."""
    rng = np.random.default_rng([int(seed), 29])
    folds = np.empty(len(group_labels), dtype=np.int64)
    offset = 0
    for cls in np.unique(group_labels):
        groups = rng.permutation(np.flatnonzero(group_labels == cls))
        folds[groups] = (np.arange(len(groups)) + offset) % k
        offset += len(groups)  # the next class starts dealing where this one stopped
    return folds


def member_holdouts(
    group_labels: np.ndarray,
    group_source: np.ndarray,
    members: int,
    holdout: str,
    seed: int,
    val_fraction: float = 0.2,
) -> tuple[list[np.ndarray], str]:
    """``(masks, scheme)``: per member, which well groups it holds out, and a sentence naming
    the scheme (stored with the evidence)."""
    if holdout not in HOLDOUTS:
        raise ModelError(f"hold out: expected one of {HOLDOUTS}, found {holdout!r}")
    n_groups = len(group_labels)
    counts = np.bincount(group_labels)
    present = counts[counts > 0]
    none = [np.zeros(n_groups, dtype=bool) for _ in range(members)]
    if holdout == "plate":
        plates = np.unique(group_source)
        if len(plates) < 2:
            raise ModelError(
                f"--holdout plate needs at least 2 plates, found {len(plates)}: hold out wells "
                "instead"
            )
        masks = [group_source == plates[m % len(plates)] for m in range(members)]
        return masks, f"leave-one-plate-out ({len(plates)} plates, {members} members)"
    if present.min() < 2:
        return none, "none: a class has fewer than 2 wells"
    if members == 1:
        rng = np.random.default_rng([int(seed), 31])
        mask = np.zeros(n_groups, dtype=bool)
        for cls in np.unique(group_labels):
            groups = np.flatnonzero(group_labels == cls)
            n_val = math.floor(len(groups) * val_fraction)
            if n_val == 0 and len(groups) * val_fraction >= 0.5:
                n_val = 1
            n_val = min(n_val, len(groups) - 1)
            mask[rng.permutation(groups)[:n_val]] = True
        if not mask.any():
            return none, "none: the validation fraction holds out no well"
        return [mask], f"a stratified {val_fraction:.0%} of the wells (1 member)"
    folds = stratified_folds(group_labels, members, seed)
    return (
        [folds == m for m in range(members)],
        f"{members}-fold cross-validation by well, stratified by class",
    )
