"""Device selection: "auto" picks CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

from napari_dcmix.errors import ModelError


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """ "auto" | "cpu" | "cuda" | "cuda:N" | "mps" -> torch.device; an explicitly requested device
    that is not available raises ModelError."""
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ModelError(
            f"device: expected auto, cpu, cuda, cuda:N or mps, found {device!r}"
        ) from exc
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device {device!r} requested but CUDA is not available here")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ModelError(f"device {device!r} requested but only {n} CUDA device(s) exist")
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise ModelError(f"device {device!r} requested but Apple MPS is not available here")
        return dev
    raise ModelError(f"device: expected auto, cpu, cuda, cuda:N or mps, found {device!r}")
