"""npe2 reader: a plate folder, ``.zarr`` or ``Index.xml`` dropped on napari (or an OME-Zarr
plate URL, ``http(s)://`` or ``s3://``, opened with ``viewer.open``) opens as a mosaic."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_dcmix.errors import DcmixError

log = logging.getLogger(__name__)


def _candidate(path: Any) -> Path | str | None:
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if not isinstance(path, (str, Path)):
        return None
    if isinstance(path, str) and path.split("://", 1)[0].lower() in ("http", "https", "s3"):
        return path  # an OME-Zarr plate at a URL (open_plate reads it through fsspec)
    p = Path(path)
    if p.is_dir() or p.name.lower() in ("index.idx.xml", "index.xml"):
        return p
    return None


def get_reader(path: Any) -> Callable[[Any], list] | None:
    """The plate reader for ``path``, or None when it is not a plate this plugin can open."""
    candidate = _candidate(path)
    if candidate is None:
        return None
    try:
        from napari_dcmix.plate import open_plate

        plate = open_plate(candidate)
    except DcmixError as exc:
        log.debug("napari-dcmix does not read %s: %s", candidate, exc)
        return None
    except Exception as exc:  # never let a broken folder crash napari's open dialog
        log.warning("napari-dcmix could not inspect %s: %s", candidate, exc)
        return None

    def read_plate(_path: Any) -> list:
        from napari_dcmix._napari.layers import plate_layer_data

        try:
            return plate_layer_data(plate)
        except Exception as exc:
            from napari.utils.notifications import show_error

            show_error(f"napari-dcmix could not open plate {candidate}: {exc}")
            return [(None,)]

    return read_plate
