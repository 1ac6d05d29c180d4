"""Layout registry: ``open_plate`` tries each layout in turn and says why none matched."""

from __future__ import annotations

import importlib
from pathlib import Path

from napari_dcmix.errors import PlateError
from napari_dcmix.plate.base import Plate


class NotThisLayout(Exception):
    """Raised by a layout's ``open`` when the path is not in that layout (message: why)."""


# (layout name, module); the most specific layouts first, the generic TIFF folder last
LAYOUT_MODULES: list[tuple[str, str]] = [
    ("ome-zarr", "omezarr"),
    ("operetta", "operetta"),
    ("rxrx1", "rxrx1"),
    ("imagexpress", "imagexpress"),
    ("tiff", "tiff"),
]


def open_plate(
    path: str | Path | Plate,
    layout: str | None = None,
    *,
    plane: int | str | None = None,
    timepoint: int | None = None,
) -> Plate:
    """Open a plate folder (or zarr) in whichever supported layout it is written, or an
    OME-Zarr plate at an ``http(s)://`` or ``s3://`` URL (given as a ``str``).

    Reads metadata (and at most one image header) only. ``layout`` forces one layout.
    ``plane`` (a number as the format writes it, or ``"max"`` for the maximum projection over
    the planes) and ``timepoint`` choose what is read; by default the lowest of each. A plane
    or timepoint the plate lacks raises PlateError listing those it has (``Plate.planes``,
    ``Plate.timepoints``). An existing :class:`Plate` is returned unchanged.
    """
    if isinstance(path, Plate):
        return path
    if isinstance(path, str) and "://" in path:
        return _open_url(path, layout, plane=plane, timepoint=timepoint)
    path = Path(path).expanduser()
    if not path.exists():
        raise PlateError(f"plate path {path} does not exist")
    if path.is_file() and path.name.lower() in ("index.idx.xml", "index.xml"):
        path = path.parent.parent if path.parent.name.lower() == "images" else path.parent
    elif path.is_file():
        raise PlateError(f"{path} is a file; expected a plate folder or .zarr")
    if not any(p for p in path.iterdir() if not p.name.startswith(".")):
        raise PlateError(f"plate folder {path} is empty")
    inner = _synthetic_plate_path(path)
    if inner is not None:
        return open_plate(inner, layout, plane=plane, timepoint=timepoint)
    names = [n for n, _ in LAYOUT_MODULES]
    if layout is not None and layout not in names:
        raise PlateError(f"unknown layout {layout!r}; expected one of {', '.join(names)}")
    reasons: list[str] = []
    for name, module_name in LAYOUT_MODULES:
        if layout is not None and name != layout:
            continue
        module = importlib.import_module(f"napari_dcmix.plate.layouts.{module_name}")
        try:
            return module.open_layout(path, plane=plane, timepoint=timepoint)
        except NotThisLayout as exc:
            reasons.append(f"  - {name}: {exc}")
    raise PlateError(f"{path} matches no supported plate layout. Tried:\n" + "\n".join(reasons))


def _open_url(url: str, layout: str | None, **selection) -> Plate:
    """An OME-Zarr plate at an ``http(s)://`` or ``s3://`` URL (the other layouts are folders
    of image files, read from local disks only)."""
    if layout not in (None, "ome-zarr"):
        raise PlateError(
            f"{url}: only OME-Zarr plates open from URLs, not layout {layout!r}; copy the "
            "plate to a local folder"
        )
    from napari_dcmix.plate.layouts import omezarr

    return omezarr.open_layout(url, **selection)


def _synthetic_plate_path(path: Path) -> Path | None:
    """The plate inside a ``napari-dcmix synth`` output folder (named by its record)."""
    import json

    try:
        inner = path / json.loads((path / "ground_truth.json").read_text())["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return inner if inner != path and inner.exists() else None


__all__ = ["LAYOUT_MODULES", "NotThisLayout", "open_plate"]
