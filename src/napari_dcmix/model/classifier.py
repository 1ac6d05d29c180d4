"""DcmixClassifier = normalisation metadata + pixel scale + channel mixing + backbone + head.

The channel importance a classifier reports is faithful to the network for any K: each blended
image k gets a relevance r_k (how much the class probabilities change when that blend is
replaced by its mean, measured on the training data when training ends; see
``model/readout.py``) and importance_c = sum_k r_k * w_kc / sum (w: the mixing layer's
effective weights). With K = 1 this is the mixing weights themselves (the paper's single
blend); a classifier without measured relevance (never trained, or saved before relevance
existed) weighs every blend equally (the plain mean over K).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from napari_dcmix.errors import ModelError
from napari_dcmix.model.backbones import BACKBONES, build_backbone
from napari_dcmix.model.mixing import MODES, ChannelMixing
from napari_dcmix.model.scale import PixelScale
from napari_dcmix.plate.normalise import ChannelStats


def _check_names(kind: str, names: Sequence[str], minimum: int) -> list[str]:
    out = [str(n) for n in names]
    if len(out) < minimum:
        raise ModelError(f"{kind}: expected at least {minimum}, found {len(out)} ({out})")
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise ModelError(f"{kind}: names must be unique, found duplicates {dupes}")
    return out


class DcmixClassifier(nn.Module):
    """(B, C, H, W) normalised images -> (B, n_classes) logits."""

    def __init__(
        self,
        mixing: ChannelMixing,
        backbone: nn.Module,
        head: nn.Module,
        channel_names: Sequence[str],
        class_names: Sequence[str],
        backbone_name: str,
        input_size: int,
        normalisation: ChannelStats | None = None,
        training_info: dict[str, Any] | None = None,
        scale: PixelScale | None = None,
        blend_relevance: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.mixing = mixing
        self.backbone = backbone
        self.head = head
        self.channel_names = list(channel_names)
        self.class_names = list(class_names)
        self.backbone_name = backbone_name
        self.input_size = int(input_size)
        self.normalisation = normalisation
        self.training_info: dict[str, Any] = dict(training_info or {})
        self.scale = scale if scale is not None else PixelScale()
        if self.scale.crop is not None:
            self.input_size = int(self.scale.crop)
        self.blend_relevance: list[float] | None = (
            None if blend_relevance is None else [float(v) for v in blend_relevance]
        )

    @property
    def k(self) -> int:
        return self.mixing.k

    @property
    def mode(self) -> str:
        return self.mixing.mode

    @property
    def temperature(self) -> float:
        return self.mixing.temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.mixing(x)))

    def importance_vector(self) -> torch.Tensor:
        """(C,) faithful importance: blend relevance x effective mixing weights, sums to 1."""
        with torch.no_grad():
            w = self.mixing.weights().detach().cpu().double()  # (K, C)
            if self.blend_relevance is None or len(self.blend_relevance) != w.shape[0]:
                r = torch.full((w.shape[0],), 1.0 / w.shape[0], dtype=torch.float64)
            else:
                r = torch.tensor(self.blend_relevance, dtype=torch.float64).clamp_min(0)
                r = r / r.sum() if float(r.sum()) > 0 else torch.full_like(r, 1.0 / len(r))
            imp = (r[:, None] * w).sum(dim=0)
            return imp / imp.sum().clamp_min(1e-12)

    def channel_importance(self) -> dict[str, float]:
        """Non-negative weight per channel, summing to 1 (see the module docstring)."""
        return dict(zip(self.channel_names, self.importance_vector().tolist(), strict=False))

    def mixing_weights(self) -> dict[str, float]:
        """The plain mean over K of the effective mixing weights (the readout before blend
        relevance; kept for comparison)."""
        with torch.no_grad():
            imp = self.mixing.importance().detach().cpu().double().tolist()
        return dict(zip(self.channel_names, imp, strict=False))

    def config(self) -> dict[str, Any]:
        """Architecture metadata (plain containers) sufficient to rebuild the model."""
        return {
            "channel_names": list(self.channel_names),
            "class_names": list(self.class_names),
            "backbone": self.backbone_name,
            "k": self.k,
            "mode": self.mode,
            "temperature": self.temperature,
            "input_size": self.input_size,
            "scale": self.scale.to_dict(),
        }

    def adapted(
        self,
        channel_names: Sequence[str],
        class_names: Sequence[str] | None = None,
        seed: int = 0,
    ) -> DcmixClassifier:
        """Copy with a fresh mixing layer for ``channel_names`` (and a fresh head when the class
        names differ); the backbone is kept: the transfer path to plates with other stains."""
        channel_names = _check_names("channel names", channel_names, 1)
        new = copy.deepcopy(self)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            new.mixing = ChannelMixing(len(channel_names), self.k, self.mode, self.temperature)
            if class_names is not None and list(class_names) != self.class_names:
                class_names = _check_names("class names", class_names, 2)
                new.head = nn.Linear(self.backbone.out_features, len(class_names))
                new.class_names = list(class_names)
        new.mixing.to(next(self.parameters()).device)
        new.head.to(next(self.parameters()).device)
        new.channel_names = channel_names
        new.normalisation = None
        new.blend_relevance = None
        new.training_info = {"adapted_from": dict(self.training_info)}
        return new

    def with_classes(self, class_names: Sequence[str], seed: int = 0) -> DcmixClassifier:
        """Copy with a fresh class head (mixing and backbone kept)."""
        class_names = _check_names("class names", class_names, 2)
        new = copy.deepcopy(self)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            new.head = nn.Linear(self.backbone.out_features, len(class_names))
        new.head.to(next(self.parameters()).device)
        new.class_names = class_names
        new.blend_relevance = None  # measured with the old head
        return new


def build_model(
    channel_names: Sequence[str],
    class_names: Sequence[str],
    backbone: str = "small_cnn",
    k: int = 3,
    mode: str = "softmax",
    temperature: float = 1.0,
    input_size: int = 128,
    seed: int = 0,
    pretrained_path: str | Path | None = None,
    download: bool = False,
    scale: PixelScale | dict | None = None,
) -> DcmixClassifier:
    """A freshly initialised DCMIX classifier (deterministic for ``seed``; the global torch RNG
    is left as it was). ImageNet weights only with ``pretrained_path`` or ``download=True``."""
    channel_names = _check_names("channel names", channel_names, 1)
    class_names = _check_names("class names", class_names, 2)
    if backbone not in BACKBONES:
        raise ModelError(f"backbone: expected one of {BACKBONES}, found {backbone!r}")
    if mode not in MODES:
        raise ModelError(f"mixing mode: expected one of {MODES}, found {mode!r}")
    if int(input_size) < 8:
        raise ModelError(f"input size: expected >= 8 pixels, found {input_size}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mixing = ChannelMixing(len(channel_names), k=k, mode=mode, temperature=temperature)
        net = build_backbone(backbone, k, pretrained_path=pretrained_path, download=download)
        head = nn.Linear(net.out_features, len(class_names))
    return DcmixClassifier(
        mixing,
        net,
        head,
        channel_names=channel_names,
        class_names=class_names,
        backbone_name=backbone,
        input_size=input_size,
        training_info={"init_seed": int(seed)},
        scale=PixelScale.from_dict(scale) if isinstance(scale, dict) else scale,
    )
