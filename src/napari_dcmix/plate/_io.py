"""Image decoding with errors that name the file, and a plate of one file per channel."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from napari_dcmix.errors import PlateError
from napari_dcmix.plate.base import Plate

TIFF_SUFFIXES = (".tif", ".tiff")


class PlateWarning(UserWarning):
    """Something in a plate was skipped (for example a site missing a channel file)."""


def read_image(path: Path) -> np.ndarray:
    """Pixels of one image file (TIFF via tifffile, anything else via Pillow)."""
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            return tifffile.imread(path)
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im)
    except FileNotFoundError:
        raise PlateError(f"image file {path} is missing") from None
    except Exception as exc:  # decoders raise many types for truncated / corrupt files
        raise PlateError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None


def image_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` of an image file, reading its header only."""
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                return tuple(series.shape), np.dtype(series.dtype)
        from PIL import Image

        with Image.open(path) as im:
            mode_dtypes = {
                "L": "uint8",
                "I;16": "uint16",
                "I;16B": "uint16",
                "I": "int32",
                "F": "float32",
                "1": "bool",
            }
            if im.mode in mode_dtypes:
                return (im.height, im.width), np.dtype(mode_dtypes[im.mode])
            arr = np.asarray(im)  # rare modes (RGB...): decode once
            return arr.shape, arr.dtype
    except FileNotFoundError:
        raise PlateError(f"image file {path} is missing") from None
    except Exception as exc:
        raise PlateError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None


def walk_files(root: Path, max_depth: int = 4) -> Iterator[Path]:
    """Files under ``root`` down to ``max_depth`` folder levels, hidden entries skipped."""
    root = Path(root)
    base_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).parts) - base_depth
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if depth >= max_depth:
            dirnames[:] = []
        for f in sorted(filenames):
            if not f.startswith("."):
                yield Path(dirpath) / f


class ChannelFilesPlate(Plate):
    """A plate stored as one 2-D image file per (well, site, channel)."""

    def __init__(self, *, files: Mapping[tuple[str, int], Sequence[Path]], **kwargs) -> None:
        super().__init__(**kwargs)
        self._files = {key: list(paths) for key, paths in files.items()}

    def _read_site(self, well: str, site: int) -> np.ndarray:
        paths = self._files[(well, site)]
        out = np.empty((len(paths), *self.image_shape), dtype=self.dtype)
        for i, path in enumerate(paths):
            if _decode_tiff_into(path, out[i]):
                continue
            img = read_image(path)
            if img.ndim == 3 and img.shape[-1] in (3, 4):  # RGB(A) saved greyscale: take one
                img = img[..., 0]
            if img.shape != self.image_shape:
                raise PlateError(
                    f"image {path} has shape {img.shape}, but {self._shape_source} has "
                    f"{self.image_shape}: all images of a plate must have the same size"
                )
            out[i] = img
        return out


def _decode_tiff_into(path: Path, out: np.ndarray) -> bool:
    """Decode a single-page TIFF straight into ``out``; False if it needs the general path."""
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return False
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if len(tif.pages) != 1 or page.shape != out.shape or page.dtype != out.dtype:
                return False
            page.asarray(out=out)
        return True
    except Exception:  # read_image reports the problem with the file named
        return False


def complete_sites(
    found: Mapping[tuple[str, int], Mapping[int, Path]],
    channel_ids: Sequence[int],
    where: Path,
) -> dict[tuple[str, int], list[Path]]:
    """Keep sites that have a file for every channel; warn once listing the skipped ones."""
    complete: dict[tuple[str, int], list[Path]] = {}
    skipped: list[str] = []
    for (well, site), by_channel in found.items():
        missing = [c for c in channel_ids if c not in by_channel]
        if missing:
            skipped.append(f"{well} site {site} (no channel {', '.join(map(str, missing))})")
        else:
            complete[(well, site)] = [by_channel[c] for c in channel_ids]
    if skipped:
        shown = "; ".join(skipped[:10]) + (
            f"; ... {len(skipped) - 10} more" if len(skipped) > 10 else ""
        )
        warnings.warn(
            f"{where}: skipped {len(skipped)} site(s) missing a channel file: {shown}",
            PlateWarning,
            stacklevel=3,
        )
    return complete


def sites_by_well(keys) -> dict[str, list[int]]:
    """``{well: [sites]}`` from ``(well, site)`` keys."""
    out: dict[str, list[int]] = {}
    for well, site in keys:
        out.setdefault(well, []).append(site)
    return out
