"""DCMIX channel mixing layer: C normalised channels -> K blended images.

Modes (see the README, "The method"):

- ``"softmax"``: alpha = softmax(w / tau) over channels; y_k = sum_c alpha[k, c] x_c.
  Effective weights = alpha; importance_c = mean_k alpha[k, c].
- ``"over"``: Porter-Duff "over" compositing in channel order, per output k:
  a = sigmoid(w / tau); O_0 = 0; O_c = a_c x_c + (1 - a_c) O_{c-1}; y_k = O_C.
  Effective weight beta_c = a_c * prod_{j>c} (1 - a_j); importance = mean_k beta, renormalised
  to sum to 1 (sum_c beta_c = 1 - prod_c (1 - a_c) <= 1).

Because both modes are linear in x, the forward pass is one weighted sum with the effective
weights, (K, C) parameters and K*C multiply-adds per pixel.
"""

from __future__ import annotations

import torch
from torch import nn

from napari_dcmix.errors import ModelError

MODES = ("softmax", "over")


class ChannelMixing(nn.Module):
    """Learnable non-negative mixing of ``n_channels`` inputs into ``k`` outputs."""

    def __init__(
        self, n_channels: int, k: int = 3, mode: str = "softmax", temperature: float = 1.0
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ModelError(f"mixing mode: expected one of {MODES}, found {mode!r}")
        if n_channels < 1 or k < 1:
            raise ModelError(
                f"mixing: expected n_channels >= 1 and k >= 1, found {n_channels}, {k}"
            )
        if not temperature > 0:
            raise ModelError(f"mixing temperature: expected > 0, found {temperature}")
        self.n_channels = int(n_channels)
        self.k = int(k)
        self.mode = mode
        self.temperature = float(temperature)
        self.logits = nn.Parameter(torch.zeros(self.k, self.n_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            if self.mode == "softmax":
                # Uniform start: every channel weighs 1/C.
                self.logits.zero_()
            else:
                # a_c = 1/c (1-based) gives beta_c = 1/C for every channel: a uniform start.
                # a_1 = 1 would be an infinite logit: cap it at 0.95.
                c = torch.arange(1, self.n_channels + 1, dtype=torch.float32)
                a = (1.0 / c).clamp(max=0.95)
                logit = torch.log(a) - torch.log1p(-a)
                self.logits.copy_((logit * self.temperature).expand(self.k, -1))

    def randomise(self, std: float, seed: int) -> None:
        """A random start: the uniform start plus Gaussian noise of ``std`` on every logit
        (seeded, the global RNG untouched). Ensemble members start from different weights, so
        weights the data does not determine stay apart and their spread shows it."""
        self.reset_parameters()
        if std <= 0:
            return
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(self.logits.shape, generator=gen) * float(std) * self.temperature
        with torch.no_grad():
            self.logits.add_(noise.to(self.logits.device, self.logits.dtype))

    def raw_weights(self) -> torch.Tensor:
        """softmax: alpha (K, C); over: the per-channel opacities a = sigmoid(w / tau) (K, C)."""
        z = self.logits / self.temperature
        return torch.softmax(z, dim=1) if self.mode == "softmax" else torch.sigmoid(z)

    def weights(self) -> torch.Tensor:
        """Effective (K, C) weights: y_k = sum_c weights[k, c] * x_c."""
        raw = self.raw_weights()
        if self.mode == "softmax":
            return raw
        # beta_c = a_c * prod_{j > c} (1 - a_j): reverse cumulative product, shifted by one.
        keep = 1.0 - raw
        rev = torch.flip(keep, dims=[1])
        cum = torch.cumprod(rev, dim=1)
        after = torch.cat([torch.ones_like(cum[:, :1]), cum[:, :-1]], dim=1)
        return raw * torch.flip(after, dims=[1])

    def importance(self) -> torch.Tensor:
        """(C,) non-negative, sums to 1: mean over outputs of the effective weights."""
        w = self.weights().mean(dim=0)
        return w / w.sum().clamp_min(1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.n_channels:
            raise ModelError(
                f"mixing: expected input (B, {self.n_channels}, H, W), found {tuple(x.shape)}"
            )
        w = self.weights().to(dtype=x.dtype)
        b, c, h, width = x.shape
        # Per-pixel weighted sum over channels as one batched matmul: (K, C) @ (B, C, HW).
        # On CPU this is several times faster than the equivalent 1x1 convolution.
        return torch.matmul(w, x.reshape(b, c, h * width)).view(b, self.k, h, width)

    def extra_repr(self) -> str:
        return (
            f"n_channels={self.n_channels}, k={self.k}, mode={self.mode!r}, "
            f"temperature={self.temperature}"
        )
