"""A session as one folder, written atomically (``napari_dcmix.atomic.atomic_directory``):

    session.json                 format, version, plates, classes, settings, history, view
    model.pt                     the model, when it is not saved elsewhere (fine-tuned, unsaved)
    plates/<n>-annotations.csv   each plate's annotations (well,label)
    plates/<n>-predictions.csv   each plate's predictions (the ``predict`` CSV columns)
    plates/<n>-predictions.json  what the CSV does not hold exactly: skipped sites (with the
                                 reason), each site's notes, the plate's path or URL

Plates are referenced by path (absolute, and relative to the session folder so a folder moved
together with its plates still opens) or by URL (remote OME-Zarr plates, kept as written). A
plate that is not found, or no longer opens, is not an error: it is returned as a
``MissingPlate`` (with the reason) for the user to locate. What of an opened plate cannot be
restored (a stale stain mapping, annotations of wells it lacks), and saved settings this version
refuses, are left out and said in ``session.load_notes``. A model referenced by path is checked
against the SHA-256 it had when saved. A folder written by a newer format version, or missing
one of its files, raises ``SessionError`` naming it.

Saving replaces an existing folder only when it is empty or already holds a session (a
readable ``session.json``), and never when a plate or the model it references lies inside it.
"""

from __future__ import annotations

import dataclasses
import hashlib
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


def is_url(path: Any) -> bool:
    """A remote plate (``http(s)://``, ``s3://``...): kept as written, never made a Path."""
    return "://" in str(path)


def _location(state: PlateState) -> str:
    """Where a plate is: its URL as written, or its folder made absolute."""
    text = str(state.raw.path)
    return text if is_url(text) else str(Path(text).resolve())


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _holds_session(folder: Path) -> bool:
    """``folder`` holds a readable ``session.json`` of a napari-dcmix session."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT_NAME


def _inside(path: str | Path, folder: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError, ValueError):
        return False


def check_session_target(session: DcmixSession, folder: str | Path, overwrite: bool) -> Path:
    """Refuse (SessionError naming the folder and what it holds) a save that would delete
    what is not a session: an existing non-empty folder is replaced only when it already holds
    a readable ``session.json``, and never when a plate or the model the session references
    lies inside it. Returns ``folder`` as a Path."""
    folder = Path(folder)
    if not folder.is_dir():
        return folder
    entries = sorted(p.name for p in folder.iterdir())
    if not entries:
        return folder
    inside = [
        f"plate {state.name!r} ({_location(state)})"
        for state in session.plates.values()
        if not is_url(state.raw.path) and _inside(state.raw.path, folder)
    ]
    model_path = session.model_path if session.model is not None else None
    if model_path is not None and _inside(model_path, folder):
        inside.append(f"the model {model_path}")
    if inside:
        raise SessionError(
            f"cannot save the session to {folder}: {' and '.join(inside)} lie(s) inside that "
            "folder, and saving replaces the folder's contents; nothing was written. Choose "
            "another folder"
        )
    if overwrite and not _holds_session(folder):
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5
                                          else "")  # fmt: skip
        raise SessionError(
            f"cannot save the session to {folder}: it is not a napari-dcmix session folder (no "
            f"readable {MANIFEST}) and holds {len(entries)} item(s) ({shown}), which saving "
            "would delete; nothing was written. Choose a new or empty folder"
        )
    return folder


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
    check_session_target(session, folder, overwrite)
    with atomic_directory(folder, overwrite=overwrite, what="session folder") as tmp:
        (tmp / "plates").mkdir()
        plates = []
        for i, state in enumerate(session.plates.values(), start=1):
            remote = is_url(state.raw.path)
            entry: dict[str, Any] = {
                "name": state.name,
                "path": _location(state),
                "relative_path": None
                if remote
                else _relative(state.path, folder.parent / folder.name),
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
                extra = f"plates/{i}-predictions.json"
                (tmp / extra).write_text(json.dumps(_predictions_extra(state.predictions)),
                                         encoding="utf-8")  # fmt: skip
                entry["predictions_extra"] = extra
            plates.append(entry)
        # plates of the opened session that were not found (and not located) are kept as the
        # session saved them, their files copied and renumbered: saving never drops them
        carried = []
        for i, missing in enumerate(session.missing, start=len(plates) + 1):
            entry = dict(missing.entry)
            for field_name, suffix in (("annotations", "annotations.csv"),
                                       ("predictions", "predictions.csv"),
                                       ("predictions_extra", "predictions.json")):  # fmt: skip
                source = entry.get(field_name)
                if not source:
                    continue
                name = f"plates/{i}-{suffix}"
                try:
                    (tmp / name).write_bytes((missing.folder / source).read_bytes())
                except OSError as exc:
                    raise SessionError(
                        f"cannot save the session to {folder}: the {field_name} of plate "
                        f"{missing.name!r} (not found at {missing.path}) could not be copied "
                        f"from {missing.folder / source}: {exc}; nothing was written"
                    ) from exc
                entry[field_name] = name
            if entry.get("relative_path") is not None and not is_url(missing.path):
                entry["relative_path"] = _relative(Path(missing.path), folder.parent / folder.name)
            plates.append(entry)
            carried.append((missing, entry))
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
                model = {
                    "path": str(Path(session.model_path).resolve()),
                    "sha256": file_sha256(session.model_path),
                }
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
    for missing, entry in carried:  # they now live in the new folder, under their new names
        missing.entry, missing.folder = entry, folder
    return folder


def _predictions_extra(predictions: Any) -> dict[str, Any]:
    """What the predictions CSV does not keep exactly (``ensure_ascii``: undecodable bytes of
    a path survive as escapes)."""
    return {
        "path": str(getattr(predictions, "path", "") or ""),
        "skipped": [[k.well, int(k.site), str(k.reason)] for k in predictions.skipped],
        "notes": [[s.well, int(s.site), list(s.notes)] for s in predictions.sites if s.notes],
    }


def _apply_predictions_extra(predictions: Any, path: Path) -> None:
    from napari_dcmix.model.predictions import SkippedSite

    try:
        extra = json.loads(path.read_text(encoding="utf-8"))
        skipped = [SkippedSite(str(w), int(s), str(r)) for w, s, r in extra.get("skipped", [])]
        notes = {(str(w), int(s)): [str(n) for n in ns] for w, s, ns in extra.get("notes", [])}
        where = str(extra.get("path") or "")
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise SessionError(f"cannot read {path}: {exc}") from None
    predictions.skipped = skipped
    for site in predictions.sites:
        site.notes = list(notes.get((site.well, site.site), []))
    if where:
        predictions.path = where


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
        for what in ("annotations", "predictions", "predictions_extra"):
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


def _settings(
    cls: type, values: dict[str, Any] | None, defaults: Any, what: str, notes: list[str]
) -> Any:
    """The saved settings over ``defaults``, field by field: a value this version refuses
    keeps that field's default (and a note says so); the other fields are restored."""
    names = {f.name for f in dataclasses.fields(cls)}
    known = {k: v for k, v in (values or {}).items() if k in names}
    try:
        return dataclasses.replace(defaults, **known)
    except (DcmixError, TypeError, ValueError):
        pass
    kept: dict[str, Any] = {}
    for name, value in known.items():
        try:
            dataclasses.replace(defaults, **kept, **{name: value})
        except (DcmixError, TypeError, ValueError) as exc:
            notes.append(
                f"the saved {what} setting {name} = {value!r} was not restored ({exc}); it is "
                f"{getattr(defaults, name)!r} (the default)"
            )
            continue
        kept[name] = value
    return dataclasses.replace(defaults, **kept)


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
            saved_sha = model_entry.get("sha256")
            now_sha = file_sha256(model_path) if saved_sha else None
            if saved_sha and now_sha != saved_sha:
                notes.append(
                    f"the session's model {model_path} has changed since the session was saved "
                    f"(SHA-256 {str(saved_sha)[:12]}... then, {now_sha[:12]}... "
                    "now): the file as it is now was loaded"
                )
        else:
            notes.append(f"the session's model {model_entry['path']} is missing")
    elif model_entry.get("default"):
        from napari_dcmix.model import default_model_path

        model, model_path, default = load_model(default_model_path()), default_model_path(), True

    session.clear()
    if model is not None:
        session._set_model(model, model_path, dirty=dirty, default=default)
    session.train_settings = _settings(
        TrainConfig, manifest.get("train_settings"), TrainConfig(**FINETUNE_DEFAULTS),
        "fine-tune", notes,
    )  # fmt: skip
    session.predict_settings = _settings(
        PredictConfig, manifest.get("predict_settings"), PredictConfig(), "predict", notes
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
            restored[i] = restore_plate(session, entry, folder, path, notes).key
        except (DcmixError, OSError) as exc:  # it does not open (any more): asked for
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


def _find_plate(entry: dict[str, Any], folder: Path) -> Path | str | None:
    if is_url(entry.get("path") or ""):
        return str(entry["path"])  # a URL: opening it says whether it is there
    path = Path(entry.get("path") or "")
    if entry.get("path") and path.exists():
        return path
    relative = entry.get("relative_path")
    if relative and (folder / relative).exists():
        return (folder / relative).resolve()
    return None


def restore_plate(
    session: DcmixSession,
    entry: dict[str, Any],
    folder: Path,
    path: Path | str,
    notes: list[str] | None = None,
) -> PlateState:
    """Open the plate of a session entry from ``path`` (a failure to open it raises) and give
    it the entry's stain mapping, classes, annotations, predictions and focus: each that
    cannot be restored is left out and said in ``notes`` (default ``session.load_notes``)."""
    from napari_dcmix.plate.labels import read_labels_csv
    from napari_dcmix.plate.wells import normalise_well
    from napari_dcmix.session.predictions_csv import read_site_predictions

    notes = session.load_notes if notes is None else notes
    state = session.open_plate(
        path, entry.get("layout"), plane=entry.get("plane"), timepoint=entry.get("timepoint")
    )
    key, name = state.key, state.name

    def attempt(what: str, step: Any) -> None:
        try:
            step()
        except (DcmixError, OSError) as exc:
            notes.append(f"plate {name!r}: {what} could not be restored: {exc}")

    if entry.get("excluded"):
        attempt("the excluded stains", lambda: session.exclude_channels(entry["excluded"], key))
    if entry.get("channel_map"):
        attempt("the stain mapping", lambda: session.set_channel_map(entry["channel_map"], key))
    classes = [str(c) for c in entry.get("classes") or []]
    if classes:
        attempt("the classes", lambda: session.set_classes(classes, key))
    if entry.get("annotations"):
        attempt("the annotations", lambda: _restore_annotations(
            session, key, read_labels_csv(folder / entry["annotations"]), notes))  # fmt: skip
    if entry.get("predictions"):

        def predictions() -> None:
            device = str(entry.get("predicted_on") or "")
            found = read_site_predictions(folder / entry["predictions"], device=device)
            if not found:
                return
            preds = found[0]
            if entry.get("predictions_extra"):
                _apply_predictions_extra(preds, folder / entry["predictions_extra"])
            plate = state.raw
            for s in [*preds.sites, *preds.skipped]:
                if s.well not in plate.wells or s.site not in plate.sites(s.well):
                    raise DcmixError(
                        f"they name well {s.well} site {s.site}, which the plate does not have "
                        "(predict again)"
                    )
            session.set_predictions(preds, key)

        attempt("the predictions", predictions)
    if entry.get("focus"):

        def focus() -> None:
            well, site = entry["focus"]
            session.focus(normalise_well(str(well)), site, key)

        attempt("the well in focus", focus)
    return state


def _restore_annotations(
    session: DcmixSession, key: str, labels: dict[str, str], notes: list[str]
) -> None:
    """The annotations of the wells the plate has (a note names the others)."""
    from napari_dcmix.errors import LabelsError

    state = session.state(key)
    try:
        session.set_annotations(labels, key)
        return
    except LabelsError as exc:
        have = set(state.raw.wells)
        kept = {w: c for w, c in labels.items() if w in have}
        notes.append(
            f"plate {state.name!r}: {len(labels) - len(kept)} annotation(s) could not be "
            f"restored ({exc}); the other {len(kept)} were"
        )
    session.set_annotations(kept, key)
