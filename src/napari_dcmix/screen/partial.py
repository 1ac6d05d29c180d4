"""Partial results of a screen, kept beside the target CSV so an interrupted run can resume.

``OUT.partial/`` (a folder next to ``OUT``, never ``OUT`` itself; made when the first batch of
wells is finished) holds ``run.json`` (the model file's SHA-256, the CSV's columns, the plates
with the options they were read with, and the prediction settings that change results) and
one JSON file per finished batch of wells (``wells-*.json``: each site's probabilities at full
precision, its notes, the skipped sites).
Every file is written atomically (``napari_dcmix.atomic``), so a run killed at any moment
leaves only whole files. ``--resume`` reloads them after checking the model, the columns, the
plates (the same ones: the finished wells of a plate left out would be lost), each plate's
options (layout, plane, timepoint, which plate stain feeds each model stain) and the settings
(``RESULT_SETTINGS``), and predicts only the wells that are not in them; the final CSV is then
the same as an uninterrupted run's. One change is allowed: turning ``skip_bad_sites`` on after
a run without it stopped at an unreadable site (the wells it finished had no skipped site, so
they are what a skipping run gives); the record then says it is on. The folder is removed once
the CSV is written.
"""

from __future__ import annotations

import json
import shutil
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_dcmix.atomic import TMP_MARK, OutputError, atomic_write_text
from napari_dcmix.errors import PlateWarning
from napari_dcmix.model.predictions import SitePrediction, SkippedSite, csv_text

FORMAT = "napari-dcmix partial predictions"
VERSION = 1
# the PredictConfig fields that change what is predicted (the others: where and how fast)
RESULT_SETTINGS = ("max_tiles", "skip_bad_sites")
PLATE_OPTIONS = ("layout", "plane", "timepoint", "channel_map")


class ResumeError(OutputError):
    """Partial results that cannot be continued by this run (another model, other columns)."""


@dataclass
class PlateRecord:
    """What the partial results hold for one plate (by its key: absolute path or URL)."""

    sites: list[SitePrediction] = field(default_factory=list)
    skipped: list[SkippedSite] = field(default_factory=list)
    wells: set[str] = field(default_factory=set)
    device: str = ""  # the device the last batch was predicted on


def partial_folder(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".partial")


class PartialStore:
    """The ``OUT.partial`` folder of one run."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.folder = partial_folder(out)
        self.saved = 0  # batches saved by this run
        self._manifest: dict[str, Any] = {}
        self._started = False

    def exists(self) -> bool:
        return self.folder.exists()

    def n_records(self) -> int:
        return len(list(self.folder.glob("wells-*.json"))) if self.folder.is_dir() else 0

    def open(
        self,
        sha256: str,
        columns: Sequence[str],
        *,
        resume: bool,
        overwrite: bool,
        plates: dict[str, dict[str, Any]] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> dict[str, PlateRecord]:
        """Start (or, with ``resume``, continue) the partial results; returns what earlier runs
        finished, per plate key. Without ``resume`` an existing folder is refused unless
        ``overwrite`` (then it is discarded). ``plates``: plate key -> its options (name and
        ``PLATE_OPTIONS``); ``settings``: the ``RESULT_SETTINGS`` values; a resume whose plates,
        options or settings differ from the interrupted run's raises ResumeError naming them."""
        plates = _plain(plates or {})
        settings = _plain(settings or {})
        if self.folder.exists() and not self.folder.is_dir():
            raise ResumeError(
                f"{self.folder} is a file; napari-dcmix keeps partial results of {self.out.name} "
                "in a folder of that name: move the file away"
            )
        done: dict[str, PlateRecord] = {}
        if self.folder.is_dir() and resume:
            done = self._load(sha256, list(columns), plates, settings)
        elif self.folder.is_dir() and not overwrite and self.n_records():
            raise ResumeError(
                f"{self.folder} holds partial results of an earlier run of this prediction "
                f"that did not finish ({self.n_records()} batches of wells); pass --resume to "
                "continue it, or --overwrite to start again (discarding them)"
            )
        elif self.folder.is_dir():
            self.remove()
        # written with the first finished batch: a run that ends before one leaves nothing
        self._manifest = {"format": FORMAT, "version": VERSION, "model_sha256": sha256,
                          "columns": list(columns), "plates": plates,
                          "settings": settings}  # fmt: skip
        # rewritten (with this run's settings: skip_bad_sites may be on now) before this run
        # adds its first batch; a resume refused by the caller's checks leaves it as it was
        self._started = False
        return done

    def _start(self) -> None:
        if self._started:
            return
        self.folder.mkdir(exist_ok=True)
        atomic_write_text(self.folder / "run.json", json.dumps(self._manifest, indent=1),
                          what="partial results record")  # fmt: skip
        self._started = True

    def _load(
        self,
        sha256: str,
        columns: list[str],
        plates: dict[str, dict[str, Any]],
        settings: dict[str, Any],
    ) -> dict[str, PlateRecord]:
        run = self.folder / "run.json"
        try:
            manifest = json.loads(run.read_text(encoding="utf-8"))
            if manifest.get("format") != FORMAT:
                raise ValueError("not a napari-dcmix record")
        except (OSError, ValueError, AttributeError) as exc:
            raise ResumeError(
                f"cannot resume from {self.folder}: {run.name} is missing or unreadable ({exc}); "
                "pass --overwrite to start again"
            ) from None
        if manifest.get("model_sha256") != sha256:
            found = str(manifest.get("model_sha256"))[:12]
            raise ResumeError(
                f"cannot resume from {self.folder}: it was written by another model (SHA-256 "
                f"{found}..., this run's model {sha256[:12]}...); its results cannot be mixed "
                "with this model's. Pass --overwrite to start again, or the model it was "
                "started with"
            )
        if manifest.get("columns") != columns:
            raise ResumeError(
                f"cannot resume from {self.folder}: it holds columns "
                f"{', '.join(map(str, manifest.get('columns') or []))}, this run writes "
                f"{', '.join(columns)}; pass --overwrite to start again"
            )
        self._check_run(manifest, plates, settings)
        done: dict[str, PlateRecord] = {}
        for file in sorted(self.folder.glob("wells-*.json")):
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
                key = str(data["plate"])
                sites = [
                    SitePrediction(str(w), int(s), np.asarray(p, dtype=np.float64), list(n))
                    for w, s, p, n in data["sites"]
                ]
                skipped = [SkippedSite(str(w), int(s), str(r)) for w, s, r in data["skipped"]]
                wells = {str(w) for w in data["wells"]}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                warnings.warn(
                    f"{file}: unreadable partial result ({exc}); its wells are predicted again",
                    PlateWarning,
                    stacklevel=3,
                )
                continue
            record = done.setdefault(key, PlateRecord())
            fresh = wells - record.wells  # a well is taken from the first file that has it
            record.sites += [s for s in sites if s.well in fresh]
            record.skipped += [s for s in skipped if s.well in fresh]
            record.wells |= fresh
            record.device = str(data.get("device") or record.device)
        for tmp in self.folder.glob(f".*{TMP_MARK}*"):  # left by a killed run
            tmp.unlink(missing_ok=True)
        return done

    def _check_run(
        self, manifest: dict[str, Any], plates: dict[str, Any], settings: dict[str, Any]
    ) -> None:
        """The same plates, read with the same options, and the same result settings."""
        where = f"cannot resume from {self.folder}"
        again = "pass --overwrite to start again"
        then_plates, then_settings = manifest.get("plates"), manifest.get("settings")
        if not isinstance(then_plates, dict) or not isinstance(then_settings, dict):
            raise ResumeError(
                f"{where}: its run.json does not record the plates, their options and the "
                f"prediction settings it was made with (an earlier napari-dcmix wrote it); {again}"
            )

        def named(keys: list[str], record: dict[str, Any]) -> str:
            return ", ".join(f"{record[k].get('name', '?')!r} ({csv_text(k)})" for k in keys)

        left_out = [k for k in then_plates if k not in plates]
        added = [k for k in plates if k not in then_plates]
        if left_out or added:
            parts = []
            if left_out:
                parts.append(f"leaves out {named(left_out, then_plates)}")
            if added:
                parts.append(f"adds {named(added, plates)}")
            raise ResumeError(
                f"{where}: the interrupted run predicted {len(then_plates)} plate(s); this run "
                f"{' and '.join(parts)}. Resume with the same plates (the finished wells of a "
                f"plate left out would be lost), or {again}"
            )
        for key, options in plates.items():
            then = then_plates[key]
            for option in PLATE_OPTIONS:
                if then.get(option) != options.get(option):
                    raise ResumeError(
                        f"{where}: plate {options.get('name', '?')!r} ({csv_text(key)}) was read "
                        f"with {option} {then.get(option)!r}, this run reads it with "
                        f"{options.get(option)!r}; its results cannot be mixed. Resume with the "
                        f"same plate options, or {again}"
                    )
        for name, value in settings.items():
            before = then_settings.get(name)
            if name == "skip_bad_sites" and value and not before:
                continue  # the wells finished without it skipped nothing
            if before != value:
                option = "--" + name.replace("_", "-")
                raise ResumeError(
                    f"{where}: the interrupted run predicted with {option} {before!r}, this run "
                    f"with {value!r}; its results cannot be mixed. Resume with {option} "
                    f"{before!r}, or {again}"
                )

    def save(
        self,
        plate_key: str,
        wells: Sequence[str],
        sites: Sequence[SitePrediction],
        skipped: Sequence[SkippedSite],
        device: str = "",
    ) -> Path:
        """Record a finished batch of wells (atomically)."""
        self._start()
        data: dict[str, Any] = {
            "plate": plate_key,
            "device": device,
            "wells": list(wells),
            "sites": [[s.well, s.site, [float(p) for p in s.probs], list(s.notes)] for s in sites],
            "skipped": [[s.well, s.site, s.reason] for s in skipped],
        }
        first = csv_text(str(wells[0])) if wells else "none"
        path = self.folder / f"wells-{first}-{uuid.uuid4().hex[:12]}.json"
        atomic_write_text(path, json.dumps(data), what="partial results")
        self.saved += 1
        return path

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _plain(value: Any) -> Any:
    """As JSON gives it back (tuples as lists...), so a record compares with this run's."""
    return json.loads(json.dumps(value))
