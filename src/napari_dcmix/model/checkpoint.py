"""One-file checkpoints: weights + metadata in plain containers.

Loading uses ``torch.load(weights_only=True)``: only tensors and plain containers are
unpickled, so a crafted file cannot execute code (it is refused with a ``CheckpointError``).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from napari_dcmix.atomic import atomic_write
from napari_dcmix.errors import CheckpointError
from napari_dcmix.model.classifier import DcmixClassifier, build_model
from napari_dcmix.plate.normalise import ChannelStats

FORMAT_NAME = "napari-dcmix"
FORMAT_VERSION = 1


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


def default_model_path() -> Path:
    """The model shipped with the package (``napari_dcmix/data/default_model.pt``)."""
    return Path(__file__).resolve().parent.parent / "data" / "default_model.pt"


def save_model(model: DcmixClassifier, path: str | Path) -> Path:
    """Write ``model`` to ``path`` atomically (``atomic_write``: permissions of an existing
    file are kept)."""
    path = Path(path)
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": _plain(model.config(), "config"),
        "normalisation": None if model.normalisation is None else model.normalisation.to_dict(),
        "training_info": _plain(model.training_info, "training_info"),
        "state_dict": OrderedDict(
            (k, v.detach().cpu().clone()) for k, v in model.state_dict().items()
        ),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb", what="model file") as fh:
        torch.save(payload, fh)
    return path


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


def load_model(path: str | Path) -> DcmixClassifier:
    """Load a checkpoint written by ``save_model`` (CPU, eval mode); never executes code."""
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
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"model file {str(path)!r}: format version {version!r}, this version of napari-dcmix "
            f"reads format version {FORMAT_VERSION}"
        )
    try:
        cfg = payload["config"]
        model = build_model(
            cfg["channel_names"],
            cfg["class_names"],
            backbone=cfg["backbone"],
            k=int(cfg["k"]),
            mode=cfg["mode"],
            temperature=float(cfg["temperature"]),
            input_size=int(cfg["input_size"]),
        )
        model.load_state_dict(payload["state_dict"], strict=True)
        norm = payload.get("normalisation")
        model.normalisation = None if norm is None else ChannelStats.from_dict(norm)
        model.training_info = dict(payload.get("training_info") or {})
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"model file {str(path)!r}: inconsistent checkpoint ({exc})") from exc
    return model.eval()
