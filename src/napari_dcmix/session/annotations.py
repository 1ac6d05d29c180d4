"""The session's class, annotation, prediction and heatmap actions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from napari_dcmix.errors import DcmixError, LabelsError
from napari_dcmix.session.scores import ScoreSpec
from napari_dcmix.session.state import DEFAULT_CLASSES, _refuse_existing


class AnnotationActions:
    """Mixed into DcmixSession (uses its plates and events)."""

    # --- classes and annotations -----------------------------------------------------------------
    def classes(self, key: str | None = None) -> list[str]:
        state = self.current if key is None else self.plates.get(key)
        return list(state.classes) if state is not None else list(DEFAULT_CLASSES)

    @property
    def annotations(self) -> dict[str, str]:
        state = self.current
        return dict(state.annotations) if state is not None else {}

    def set_classes(self, names: list[str], key: str | None = None) -> None:
        names = [str(n).strip() for n in names]
        if any(not n for n in names) or len(set(names)) != len(names):
            raise LabelsError(f"class names must be unique and non-empty, found {names}")
        state = self.state(key)
        state.classes = names
        self.events.classes_changed.emit(state.key)

    def add_class(self, name: str | None = None, key: str | None = None) -> str:
        state = self.state(key)
        if name is None:
            i = len(state.classes) + 1
            while f"class {i}" in state.classes:
                i += 1
            name = f"class {i}"
        if name not in state.classes:
            self.set_classes([*state.classes, name], state.key)
        return name

    def rename_class(self, old: str, new: str, key: str | None = None) -> None:
        state = self.state(key)
        new = new.strip()
        if old not in state.classes:
            raise LabelsError(f"there is no class {old!r} (classes: {', '.join(state.classes)})")
        if new == old:
            return
        if not new or new in state.classes:
            raise LabelsError(f"class names must be unique and non-empty: kept {old!r}")
        state.classes = [new if c == old else c for c in state.classes]
        state.annotations = {w: (new if c == old else c) for w, c in state.annotations.items()}
        self.events.classes_changed.emit(state.key)
        self.events.annotations_changed.emit(state.key)

    def remove_class(self, name: str, key: str | None = None) -> int:
        """Remove a class and the annotations of its wells; returns how many wells lost it."""
        state = self.state(key)
        dropped = sum(c == name for c in state.annotations.values())
        state.classes = [c for c in state.classes if c != name]
        state.annotations = {w: c for w, c in state.annotations.items() if c != name}
        self.events.classes_changed.emit(state.key)
        self.events.annotations_changed.emit(state.key)
        return dropped

    def set_annotations(self, labels: Mapping[str, str], key: str | None = None) -> None:
        """Replace the plate's annotations (well -> class); new classes join its class list.
        Wells the plate does not have raise LabelsError naming them."""
        from napari_dcmix.plate.labels import check_labels_fit

        state = self.state(key)
        labels = check_labels_fit(dict(labels), state.raw)
        new_classes = [c for c in dict.fromkeys(labels.values()) if c not in state.classes]
        state.annotations = labels
        if new_classes:
            state.classes = [*state.classes, *new_classes]
            self.events.classes_changed.emit(state.key)
        self.events.annotations_changed.emit(state.key)

    def annotate(
        self, wells: Iterable[str], class_name: str | None, key: str | None = None
    ) -> None:
        """Give ``wells`` the class ``class_name`` (None clears them)."""
        state = self.state(key)
        new = dict(state.annotations)
        for well in wells:
            if class_name is None:
                new.pop(well, None)
            else:
                new[well] = str(class_name)
        self.set_annotations(new, state.key)

    def read_plate_map(self, path: str | Path, key: str | None = None) -> dict[str, str]:
        """The plate map CSV's labels for the plate (checked against its wells)."""
        from napari_dcmix.plate.labels import check_labels_fit, read_labels_csv

        state = self.state(key)
        return check_labels_fit(read_labels_csv(path, plate=state.name), state.raw)

    def import_annotations(self, path: str | Path, key: str | None = None) -> dict[str, str]:
        labels = self.read_plate_map(path, key)
        self.set_annotations(labels, key)
        return labels

    def save_annotations(
        self, path: str | Path, overwrite: bool = False, key: str | None = None
    ) -> Path:
        from napari_dcmix.plate.labels import write_labels_csv

        state = self.state(key)
        if not state.annotations:
            raise LabelsError("no wells are annotated")
        path = Path(path)
        _refuse_existing(path, overwrite)
        return write_labels_csv(path, state.annotations)  # atomic

    # --- predictions and the heatmap -------------------------------------------------------------
    @property
    def predictions(self) -> Any:
        state = self.current
        return state.predictions if state is not None else None

    def set_predictions(self, predictions: Any, key: str | None = None) -> None:
        state = self.state(key)
        state.predictions = predictions
        self.events.predictions_changed.emit(state.key)

    def export_predictions(
        self, path: str | Path, overwrite: bool = False, key: str | None = None
    ) -> Path:
        """Write the per-well numbers shown on the plate (``well_features``) to CSV."""
        import csv

        from napari_dcmix.atomic import atomic_write
        from napari_dcmix.session.scores import well_features

        state = self.state(key)
        if state.predictions is None:
            raise DcmixError("nothing to export yet; run Predict first")
        path = Path(path)
        if path.suffix.lower() != ".csv":
            path = path.with_suffix(".csv")
        _refuse_existing(path, overwrite)
        features = well_features(state.predictions, state.name)
        columns = list(features)
        rows = zip(*(features[c] for c in columns), strict=True)

        with atomic_write(path, "w", newline="", what="predictions CSV") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows(rows)
        return path

    def set_heatmap(self, spec: ScoreSpec | None) -> None:
        """Show a per-well score (None: no heatmap); its classes are checked when drawn."""
        self.heatmap = spec
        self.events.heatmap_changed.emit()
