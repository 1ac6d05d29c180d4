"""A session as one folder, written atomically (``napari_dcmix.atomic.atomic_directory``):

    session.json                 format, version, plates, classes, settings, history, view
    model.pt                     the model, when it is not saved elsewhere (fine-tuned, unsaved)
    plates/<n>-annotations.csv   each plate's annotations (well,label)
    plates/<n>-predictions.csv   each plate's predictions (the ``predict`` CSV columns)

Plates are referenced by path (absolute, and relative to the session folder so a folder moved
together with its plates still opens). A plate that is not found is not an error: it is
returned as a ``MissingPlate`` for the user to locate. A folder written by a newer format
version, or missing one of its files, raises ``SessionError`` naming it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_dcmix.errors import DcmixError

if TYPE_CHECKING:
    from napari_dcmix.session.session import DcmixSession, MissingPlate, PlateState

FORMAT_NAME = "napari-dcmix-session"
FORMAT_VERSION = 1
MANIFEST = "session.json"
MODEL_FILE = "model.pt"


class SessionError(DcmixError):
    """A session folder cannot be opened (the message names the folder and file)."""


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return str(value)


def _relative(path: Path, folder: Path) -> str | None:
    try:
        return os.path.relpath(path.resolve(), folder.resolve())
    except (OSError, ValueError):
        return None


def save_session(session: DcmixSession, folder: str | Path, overwrite: bool = False) -> Path:
    """Write ``session`` to ``folder`` (a new folder; an existing non-empty one only with
    ``overwrite``). Everything is written beside it first and renamed into place."""
    from napari_dcmix import __version__
    from napari_dcmix.atomic import atomic_directory
    from napari_dcmix.model import save_model, write_predictions_csv
    from napari_dcmix.plate.labels import write_labels_csv

    folder = Path(folder)
    if session.busy:
        raise DcmixError(f"{session.task.action} is running; save the session when it is done")
    with atomic_directory(folder, overwrite=overwrite, what="session folder") as tmp:
        (tmp / "plates").mkdir()
        plates = []
        for i, state in enumerate(session.plates.values(), start=1):
            entry: dict[str, Any] = {
                "name": state.name,
                "path": str(state.path.resolve()),
                "relative_path": _relative(state.path, folder.parent / folder.name),
                "layout": state.layout or state.raw.layout,
                "plane": state.plane,
                "timepoint": state.timepoint,
                "channel_map": dict(state.channel_map),
                "excluded": list(state.excluded),
                "classes": list(state.classes),
                "focus": list(state.focus) if state.focus else None,
                "annotations": None,
                "predictions": None,
            }
            if state.annotations:
                name = f"plates/{i}-annotations.csv"
                write_labels_csv(tmp / name, state.annotations)
                entry["annotations"] = name
            if state.predictions is not None:
                name = f"plates/{i}-predictions.csv"
                write_predictions_csv([state.predictions], tmp / name)
                entry["predictions"] = name
                entry["predicted_on"] = state.predictions.device
            plates.append(entry)
        model: dict[str, Any] | None = None
        if session.model is not None:
            saved_elsewhere = (
                not session.model_dirty
                and session.model_path is not None
                and Path(session.model_path).is_file()
            )
            if session.model_is_default and not session.model_dirty:
                model = {"default": True}
            elif saved_elsewhere:
                model = {"path": str(Path(session.model_path).resolve())}
            else:
                save_model(session.model, tmp / MODEL_FILE)
                model = {"file": MODEL_FILE, "dirty": bool(session.model_dirty)}
        keys = list(session.plates)
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "napari_dcmix_version": __version__,
            "plates": plates,
            "current": keys.index(session.current_key) if session.current_key in keys else None,
            "model": model,
            "train_settings": _plain(dataclasses.asdict(session.train_settings)),
            "predict_settings": _plain(dataclasses.asdict(session.predict_settings)),
            "device_used": session.device_used,
            "heatmap": session.heatmap.to_dict() if session.heatmap else None,
            "history": _plain(session.history),
            "runs": _plain(session.runs),
            "view": _plain(session.view),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    """The checked ``session.json`` of ``folder`` (SessionError names what is wrong)."""
    from napari_dcmix import __version__

    if not folder.is_dir():
        raise SessionError(f"session folder {folder} does not exist or is not a folder")
    path = folder / MANIFEST
    if not path.is_file():
        raise SessionError(f"{folder} is not a napari-dcmix session folder: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SessionError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise SessionError(f"{path} is not a napari-dcmix session file")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        writer = manifest.get("napari_dcmix_version", "an unknown version")
        raise SessionError(
            f"session folder {folder} is format version {version!r} (written by napari-dcmix "
            f"{writer}); this napari-dcmix ({__version__}) reads format version "
            f"{FORMAT_VERSION}: update napari-dcmix to open it"
        )
    for entry in manifest.get("plates") or []:
        for what in ("annotations", "predictions"):
            name = entry.get(what)
            if name and not (folder / name).is_file():
                raise SessionError(
                    f"session folder {folder} is incomplete: {name} ({what} of plate "
                    f"{entry.get('name')!r}) is missing"
                )
    model = manifest.get("model") or {}
    if model.get("file") and not (folder / model["file"]).is_file():
        raise SessionError(
            f"session folder {folder} is incomplete: {model['file']} (the session's model) "
            "is missing"
        )
    return manifest


def _settings(cls: type, values: dict[str, Any] | None, defaults: Any) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    known = {k: v for k, v in (values or {}).items() if k in names}
    try:
        return dataclasses.replace(defaults, **known)
    except (DcmixError, TypeError):
        return defaults


def load_session(session: DcmixSession, folder: str | Path) -> list[MissingPlate]:
    """Clear ``session`` and fill it from ``folder``; returns the plates not found."""
    from napari_dcmix.model import load_model
    from napari_dcmix.model.train_settings import PredictConfig, TrainConfig
    from napari_dcmix.session.scores import ScoreSpec
    from napari_dcmix.session.session import FINETUNE_DEFAULTS, MissingPlate

    folder = Path(folder)
    manifest = read_manifest(folder)
    model_entry = manifest.get("model") or {}
    # read what can fail before the session is cleared: a bad folder changes nothing
    model, model_path, dirty, default = None, None, False, False
    notes: list[str] = []
    if model_entry.get("file"):
        model = load_model(folder / model_entry["file"])
        dirty = bool(model_entry.get("dirty", True))
    elif model_entry.get("path"):
        if Path(model_entry["path"]).is_file():
            model, model_path = load_model(model_entry["path"]), Path(model_entry["path"])
        else:
            notes.append(f"the session's model {model_entry['path']} is missing")
    elif model_entry.get("default"):
        from napari_dcmix.model import default_model_path

        model, model_path, default = load_model(default_model_path()), default_model_path(), True

    session.clear()
    if model is not None:
        session._set_model(model, model_path, dirty=dirty, default=default)
    session.train_settings = _settings(
        TrainConfig, manifest.get("train_settings"), TrainConfig(**FINETUNE_DEFAULTS)
    )
    session.predict_settings = _settings(
        PredictConfig, manifest.get("predict_settings"), PredictConfig()
    )
    session.history = list(manifest.get("history") or [])
    session.runs = list(manifest.get("runs") or [])
    session.device_used = manifest.get("device_used")
    session.view = dict(manifest.get("view") or {})
    session.events.settings_changed.emit()
    missing: list[MissingPlate] = []
    restored: dict[int, str] = {}
    for i, entry in enumerate(manifest.get("plates") or []):
        path = _find_plate(entry, folder)
        if path is None:
            missing.append(
                MissingPlate(
                    entry.get("name", "?"), entry.get("path", "?"), "not found", entry, folder
                )
            )
            continue
        try:
            restored[i] = restore_plate(session, entry, folder, path).key
        except DcmixError as exc:
            missing.append(MissingPlate(entry.get("name", "?"), str(path), str(exc), entry, folder))
    current = manifest.get("current")
    if isinstance(current, int) and current in restored:
        session.set_current(restored[current])
    session.heatmap = ScoreSpec.from_dict(manifest.get("heatmap"))
    session.events.heatmap_changed.emit()
    session.missing = missing
    session.load_notes = notes
    session.events.missing_changed.emit()
    return missing


def _find_plate(entry: dict[str, Any], folder: Path) -> Path | None:
    path = Path(entry.get("path") or "")
    if entry.get("path") and path.exists():
        return path
    relative = entry.get("relative_path")
    if relative and (folder / relative).exists():
        return (folder / relative).resolve()
    return None


def restore_plate(
    session: DcmixSession, entry: dict[str, Any], folder: Path, path: Path
) -> PlateState:
    """Open the plate of a session entry from ``path`` and give it the entry's classes,
    stain mapping, annotations and predictions."""
    from napari_dcmix.plate.labels import read_labels_csv
    from napari_dcmix.session.predictions_csv import read_site_predictions

    state = session.open_plate(
        path, entry.get("layout"), plane=entry.get("plane"), timepoint=entry.get("timepoint")
    )
    key = state.key
    if entry.get("channel_map") or entry.get("excluded"):
        state.excluded = list(entry.get("excluded") or [])
        session.set_channel_map(entry.get("channel_map") or {}, key)
    classes = [str(c) for c in entry.get("classes") or []]
    if classes:
        session.set_classes(classes, key)
    if entry.get("annotations"):
        session.set_annotations(read_labels_csv(folder / entry["annotations"]), key)
    if entry.get("predictions"):
        device = str(entry.get("predicted_on") or "")
        found = read_site_predictions(folder / entry["predictions"], device=device)
        if found:
            session.set_predictions(found[0], key)
    if entry.get("focus"):
        well, site = entry["focus"]
        session.focus(well, site, key)
    return state
