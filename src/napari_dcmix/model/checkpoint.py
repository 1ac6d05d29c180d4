"""One-file checkpoints: weights + metadata in plain containers.

Format version 2 holds an ensemble: the shared configuration (stains, classes, architecture,
pixel scale), normalisation, training settings, the held-out evidence, and one entry per member
(its state dict, blend relevance and training record). Version 1 files (one network, saved
before pixel scales and ensembles existed) load as a one-member ensemble at ``bin 1, crop
full`` and predict exactly as before.

Loading uses ``torch.load(weights_only=True)``: only tensors and plain containers are
unpickled, so a crafted file cannot execute code (it is refused with a ``CheckpointError``).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from napari_dcmix.atomic import atomic_write
from napari_dcmix.errors import CheckpointError
from napari_dcmix.model.classifier import DcmixClassifier, build_model
from napari_dcmix.model.ensemble import DcmixEnsemble
from napari_dcmix.model.scale import PixelScale
from napari_dcmix.plate.normalise import ChannelStats

FORMAT_NAME = "napari-dcmix"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


def _plain(value: Any, where: str) -> Any:
    """Deep-copy into plain containers (dict/list/str/int/float/bool/None)."""
    if value is None or isinstance(value, bool):
        return value
    for kind in (str, int, float):  # subclasses (e.g. torch's TorchVersion) become plain
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return value.item()
    raise CheckpointError(f"cannot save {where}: {type(value).__name__} is not a plain value")


DEFAULT_MODEL_ENV = "NAPARI_DCMIX_DEFAULT_MODEL"


def shipped_model_path() -> Path:
    """The model shipped with the package (``napari_dcmix/data/default_model.pt``)."""
    return Path(__file__).resolve().parent.parent / "data" / "default_model.pt"


def default_model_path() -> Path:
    """The default model: the file named by the environment variable
    ``NAPARI_DCMIX_DEFAULT_MODEL`` when it is set (a lab's own model for everyone, or a small
    model for tests), else the model shipped with the package."""
    chosen = os.environ.get(DEFAULT_MODEL_ENV, "").strip()
    return Path(chosen).expanduser() if chosen else shipped_model_path()


def _state(net: torch.nn.Module) -> OrderedDict:
    return OrderedDict((k, v.detach().cpu().clone()) for k, v in net.state_dict().items())


def save_model(model: DcmixClassifier | DcmixEnsemble, path: str | Path) -> Path:
    """Write ``model`` (a classifier or an ensemble) to ``path`` atomically (``atomic_write``:
    permissions of an existing file are kept)."""
    path = Path(path)
    ensemble = DcmixEnsemble.of(model)
    first = ensemble.first
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": _plain(first.config(), "config"),
        "normalisation": None if first.normalisation is None else first.normalisation.to_dict(),
        "training_info": _plain(ensemble.training_info, "training_info"),
        "evidence": _plain(ensemble.evidence, "evidence"),
        "members": [
            {
                "state_dict": _state(m),
                "blend_relevance": _plain(m.blend_relevance, "blend_relevance"),
                "training_info": _plain(m.training_info, "member training_info"),
            }
            for m in ensemble.members
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb", what="model file") as fh:
        torch.save(payload, fh)
    return path


def _member(
    cfg: dict, state: dict, scale: PixelScale, norm: ChannelStats | None
) -> DcmixClassifier:
    model = build_model(
        cfg["channel_names"],
        cfg["class_names"],
        backbone=cfg["backbone"],
        k=int(cfg["k"]),
        mode=cfg["mode"],
        temperature=float(cfg["temperature"]),
        input_size=int(cfg["input_size"]),
        scale=scale,
    )
    model.load_state_dict(state, strict=True)
    model.normalisation = norm
    return model


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default (zip) format
_PICKLE_MAGIC = b"\x80"  # torch's legacy format: a pickle, protocol 2 or later


def _check_model_file(path: Path) -> None:
    """CheckpointError naming ``path`` when it is missing, not a file, or plainly not a
    PyTorch file (empty, text, another format), before torch tries to unpickle it."""
    where = f"model file {str(path)!r}"
    if path.is_dir():
        raise CheckpointError(f"{where} is a folder; expected a model file (.pt)")
    if not path.exists():
        missing = "" if path.parent.is_dir() else f" (its folder {path.parent} does not exist)"
        raise CheckpointError(f"{where}: not found{missing}")
    if not path.is_file():
        raise CheckpointError(f"{where} is not a regular file (a FIFO, socket or device)")
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    if head.startswith((_ZIP_MAGIC, _PICKLE_MAGIC)):
        return
    if not head:
        found = "an empty file (0 bytes)"
    elif all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        text = head.decode("ascii").strip().splitlines()
        found = f"a text file (it starts with {text[0][:40]!r})" if text else "a text file"
    else:
        found = f"another format (it starts with bytes {head[:8].hex(' ')})"
    raise CheckpointError(
        f"{where} is not a napari-dcmix checkpoint: expected a PyTorch file written by "
        f"napari-dcmix (train or the widget's Save), found {found}"
    )


def load_model(path: str | Path) -> DcmixEnsemble:
    """Load a checkpoint written by ``save_model`` (CPU, eval mode) as an ensemble (one member
    for version 1 files); never executes code."""
    path = Path(path)
    _check_model_file(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError (bad zip), EOFError, ...
        text = str(exc)
        if "weights only load failed" in text.lower() or "unpickler" in text.lower():
            why = (
                "refused: it holds Python objects other than tensors and plain containers, "
                "which could run code when loaded"
            )
        else:
            first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            why = f"unreadable or truncated: {first}"
        raise CheckpointError(
            f"model file {str(path)!r}: not a napari-dcmix checkpoint this version can load ({why})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"model file {str(path)!r}: not a napari-dcmix checkpoint")
    version = payload.get("format_version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"model file {str(path)!r}: format version {version!r}, this version of napari-dcmix "
            f"reads format versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    try:
        cfg = payload["config"]
        norm = payload.get("normalisation")
        stats = None if norm is None else ChannelStats.from_dict(norm)
        scale = PixelScale.from_dict(cfg.get("scale"))  # version 1: bin 1, whole site
        if version == 1:
            entries = [{"state_dict": payload["state_dict"], "blend_relevance": None}]
        else:
            entries = list(payload["members"])
        members = []
        for entry in entries:
            member = _member(cfg, entry["state_dict"], scale, stats)
            relevance = entry.get("blend_relevance")
            member.blend_relevance = None if relevance is None else [float(v) for v in relevance]
            member.training_info = dict(
                entry.get("training_info") or payload.get("training_info") or {}
            )
            members.append(member.eval())
        model = DcmixEnsemble(
            members,
            evidence=payload.get("evidence"),
            training_info=dict(payload.get("training_info") or {}),
        )
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"model file {str(path)!r}: inconsistent checkpoint ({exc})") from exc
    return model.eval()
