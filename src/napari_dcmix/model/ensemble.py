"""DcmixEnsemble: the trained model a user works with, one or more independently seeded
members (DcmixClassifier) that share stains, classes, pixel scale and normalisation.

Prediction averages the members' class probabilities (``forward`` returns the log of that
mean, so a softmax of it gives the mean back). The importance shown is the mean of the members'
faithful readouts, and the stored ``evidence`` (``model/evidence.py``) gives each stain's
interval over the members and the held-out accuracy that says whether there is anything to
explain. A file written before ensembles existed loads as a one-member ensemble.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_dcmix.errors import ModelError
from napari_dcmix.model.classifier import DcmixClassifier
from napari_dcmix.model.scale import PixelScale
from napari_dcmix.plate.normalise import ChannelStats


class DcmixEnsemble(nn.Module):
    """(B, C, H, W) normalised images -> (B, n_classes) log mean probability of the members."""

    def __init__(
        self,
        members: Sequence[DcmixClassifier],
        evidence: dict[str, Any] | None = None,
        training_info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ModelError("an ensemble needs at least one member")
        first = members[0]
        for m in members[1:]:
            same = (
                m.channel_names == first.channel_names
                and m.class_names == first.class_names
                and m.scale == first.scale
                and m.input_size == first.input_size
            )
            if not same:
                raise ModelError(
                    "ensemble members must share stains, classes, pixel scale and input size"
                )
        self.members = nn.ModuleList(members)
        self.evidence: dict[str, Any] | None = dict(evidence) if evidence else None
        self.training_info: dict[str, Any] = dict(
            training_info if training_info is not None else first.training_info
        )

    @classmethod
    def of(cls, model: Any) -> DcmixEnsemble:
        """``model`` as an ensemble (a classifier becomes a one-member ensemble)."""
        if isinstance(model, DcmixEnsemble):
            return model
        return cls([model], evidence=getattr(model, "evidence", None))

    # --- what every member shares ---------------------------------------------------------
    @property
    def first(self) -> DcmixClassifier:
        return self.members[0]

    @property
    def channel_names(self) -> list[str]:
        return list(self.first.channel_names)

    @property
    def class_names(self) -> list[str]:
        return list(self.first.class_names)

    @property
    def backbone_name(self) -> str:
        return self.first.backbone_name

    @property
    def input_size(self) -> int:
        return self.first.input_size

    @property
    def scale(self) -> PixelScale:
        return self.first.scale

    @property
    def k(self) -> int:
        return self.first.k

    @property
    def mode(self) -> str:
        return self.first.mode

    @property
    def temperature(self) -> float:
        return self.first.temperature

    @property
    def mixing(self) -> nn.Module:
        """The first member's mixing layer (what "What the network sees" shows)."""
        return self.first.mixing

    @property
    def normalisation(self) -> ChannelStats | None:
        return self.first.normalisation

    @normalisation.setter
    def normalisation(self, stats: ChannelStats | None) -> None:
        for m in self.members:
            m.normalisation = stats

    def __len__(self) -> int:
        return len(self.members)

    # --- prediction and importance -----------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.members) == 1:
            return self.first(x)
        probs = torch.stack([torch.softmax(m(x).float(), dim=1) for m in self.members])
        return probs.mean(dim=0).clamp_min(1e-30).log()

    def member_importance(self) -> np.ndarray:
        """(M, C): each member's faithful readout."""
        return np.stack([m.importance_vector().numpy() for m in self.members])

    def channel_importance(self) -> dict[str, float]:
        """Mean over members of the faithful readout (the evidence's importance)."""
        if self.evidence and self.evidence.get("importance"):
            return {c: float(self.evidence["importance"][c]) for c in self.channel_names}
        mean = self.member_importance().mean(axis=0)
        return dict(zip(self.channel_names, mean.tolist(), strict=True))

    def mixing_weights(self) -> dict[str, float]:
        """Mean over members of the plain mean-over-K mixing weights (the old readout)."""
        values = np.stack([list(m.mixing_weights().values()) for m in self.members]).mean(0)
        return dict(zip(self.channel_names, values.tolist(), strict=True))

    def config(self) -> dict[str, Any]:
        return {**self.first.config(), "members": len(self.members)}

    # --- starting points for fine-tuning ----------------------------------------------------
    def adapted(
        self, channel_names: Sequence[str], class_names: Sequence[str] | None = None, seed: int = 0
    ) -> DcmixEnsemble:
        """Each member with a fresh mixing layer (and head when the classes differ)."""
        members = self.members
        return DcmixEnsemble(
            [m.adapted(channel_names, class_names, seed=seed + i) for i, m in enumerate(members)]
        )

    def with_classes(self, class_names: Sequence[str], seed: int = 0) -> DcmixEnsemble:
        return DcmixEnsemble(
            [m.with_classes(class_names, seed=seed + i) for i, m in enumerate(self.members)]
        )


def as_members(model: Any) -> list[DcmixClassifier]:
    """The classifiers of ``model`` (a classifier, an ensemble or None -> [])."""
    if model is None:
        return []
    if isinstance(model, DcmixEnsemble):
        return list(model.members)
    return [model]
