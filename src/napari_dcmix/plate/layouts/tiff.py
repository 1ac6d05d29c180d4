"""Generic layout: a folder of multi-channel TIFFs named by well and site (``B02_s1.tif``).

Each file holds one site as ``(C, H, W)`` (or ``(H, W)`` for one channel). A single-site
plate may drop the site: ``B02.tif``. Channel names come from ``channels.txt`` (one per line),
else from the OME-XML ``Channel Name`` of the first file, else ``ch1..chN``.

Pixel size (``Plate.pixel_size_um``): the OME-XML ``Pixels`` ``PhysicalSizeX`` /
``PhysicalSizeY`` of OME-TIFF files (units ``PhysicalSizeXUnit`` / ``PhysicalSizeYUnit``,
micrometres by default as the OME schema says), read on first use from up to
``PIXEL_SIZE_FILES`` files spread over the plate; None for TIFFs without OME-XML.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import _io
from napari_dcmix.plate._io import (
    TiffMapper,
    image_header,
    read_image,
    read_text_file,
    scan_folder,
    sites_by_well,
    warn_unreadable,
)
from napari_dcmix.plate.base import Plate, choose_plane, choose_timepoint
from napari_dcmix.plate.layouts import NotThisLayout
from napari_dcmix.plate.pixel_size import PixelSize, combine, spread
from napari_dcmix.plate.tiff_metadata import ome_pixel_size
from napari_dcmix.plate.wells import normalise_well

LAYOUT = "tiff"
FILE_RE = re.compile(r"^([A-Za-z]{1,2}\d{1,3})(?:_s(\d+))?\.tiff?$", re.IGNORECASE)
CHANNELS_FILE = "channels.txt"
#: files the pixel size is read from, spread over the plate
PIXEL_SIZE_FILES = 4


def site_filename(well: str, site: int) -> str:
    """File name of one site in this layout."""
    return f"{well}_s{site}.tif"


def parse_filename(name: str) -> tuple[str, int] | None:
    """``(well, site)`` of a file name in this layout, else None."""
    match = FILE_RE.match(name)
    if match is None:
        return None
    try:
        well = normalise_well(match.group(1))
    except PlateError:
        return None
    return well, int(match.group(2) or 1)


class TiffFolderPlate(Plate):
    """A folder with one multi-channel TIFF per site."""

    def __init__(self, *, files: dict[tuple[str, int], Path], **kwargs) -> None:
        super().__init__(**kwargs)
        self._files = files
        self._tiffs = TiffMapper()

    def _read_site(self, well: str, site: int) -> np.ndarray:
        path = self._files[(well, site)]
        expected = (len(self.channels), *self.image_shape)
        if not (expected[2] in (3, 4) and expected[0] > 4):  # (no RGB(A) axis to move)
            out = np.empty(expected, dtype=self.dtype)
            if _io._decode_tiff_into(path, out):  # uncompressed: one readinto, no decoder
                return out
        data = _as_chw(read_image(path))
        if data.shape != expected:
            raise PlateError(
                f"image {path} has shape {data.shape}, but {self._shape_source} has "
                f"{expected}: all sites of a plate must have the same channels and size"
            )
        self._check_dtype(data.dtype, f"image {path}")
        return data

    def _find_pixel_size(self) -> PixelSize:
        paths = [self._files[k] for k in spread(sorted(self._files), PIXEL_SIZE_FILES)]
        samples = [(p.name, ome_pixel_size(p)) for p in paths]
        return combine(samples, f"OME-XML PhysicalSizeX / PhysicalSizeY in {len(paths)} files")

    def _view(self, well: str, site: int) -> np.ndarray | None:
        """The site's pixels memory-mapped (uncompressed TIFF), ``(C, H, W)``, else None."""
        view = self._tiffs.view(self._files[(well, site)])
        if view is not None:
            view = _as_chw(view)
        if view is None or view.shape != (len(self.channels), *self.image_shape):
            return None  # compressed or bad: the full read path decodes and reports it
        self._check_dtype(view.dtype, f"image {self._files[(well, site)]}")
        return view

    def _read_thumbnail(self, well: str, site: int, factor: int) -> np.ndarray:
        """Uncompressed TIFFs: memory-mapped, only every ``factor``-th row touched."""
        view = self._view(well, site)
        if view is None:
            return super()._read_thumbnail(well, site, factor)
        return np.array(view[:, ::factor, ::factor], dtype=self.dtype)

    def cheap_regions(self, well: str, site: int) -> bool:
        return self._view(self._site(well, site), int(site)) is not None

    def _read_region(self, well: str, site: int, y0: int, y1: int, x0: int, x1: int):
        """Uncompressed TIFFs: memory-mapped, only the region's rows touched."""
        view = self._view(well, site)
        if view is None:
            return super()._read_region(well, site, y0, y1, x0, x1)
        return np.array(view[:, y0:y1, x0:x1], dtype=self.dtype)


def _as_chw(data: np.ndarray) -> np.ndarray:
    if data.ndim == 2:
        return data[None]
    if data.ndim == 3 and data.shape[-1] in (3, 4) and data.shape[0] > 4:  # RGB(A) samples
        return np.moveaxis(data, -1, 0)
    return data


def _channel_names(folder: Path, first: Path, n: int) -> list[str]:
    listing = folder / CHANNELS_FILE
    if listing.is_file():
        text = read_text_file(listing, "channel list")
        names = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if len(names) != n:
            raise PlateError(f"{listing} names {len(names)} channels but {first} has {n}")
        return names
    try:
        import tifffile

        with tifffile.TiffFile(first) as tif:
            xml = tif.ome_metadata or ""
        names = re.findall(r"<Channel\b[^>]*\bName=\"([^\"]*)\"", xml)
        if len(names) == n and all(names):
            return names
    except Exception:  # OME metadata is optional; the defaults below are fine
        pass
    return [f"ch{i + 1}" for i in range(n)]


def open_layout(path: Path, plane: int | str | None = None, timepoint: int | None = None) -> Plate:
    """Open a TIFF-per-site folder; NotThisLayout if no file is named like ``B02_s1.tif``.

    Entries named like a site that cannot be read (a broken symbolic link, a symbolic link
    loop, a folder, a FIFO) are skipped with a PlateWarning naming each. The layout has one
    plane and one timepoint (``[1]``)."""
    if not path.is_dir():
        raise NotThisLayout("not a folder")
    entries, problems = scan_folder(path, parse_filename)
    files: dict[tuple[str, int], Path] = {}
    for entry, key in entries:
        if key in files:
            raise PlateError(
                f"{path}: both {files[key].name} and {entry.name} are well {key[0]} site {key[1]}"
            )
        files[key] = entry
    if not files:
        more = f" ({'; '.join(problems[:3])})" if problems else ""
        raise NotThisLayout(f"no readable files named like B02_s1.tif in the folder{more}")
    where = f"TIFF plate folder {path}"
    choose_plane([1], plane, where), choose_timepoint([1], timepoint, where)
    warn_unreadable(path, problems)
    first = files[min(files)]
    shape, dtype = image_header(first)
    if len(shape) == 3 and shape[-1] in (3, 4) and shape[0] > 4:
        shape = (shape[2], shape[0], shape[1])
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3:
        raise PlateError(f"{first} has shape {shape}; expected (C, H, W) or (H, W)")
    return TiffFolderPlate(
        name=path.name,
        layout=LAYOUT,
        path=path,
        sites=sites_by_well(files),
        channels=_channel_names(path, first, shape[0]),
        image_shape=shape[1:],
        dtype=dtype,
        shape_source=f"{first} ({shape})",
        files=files,
        plane=plane,
        timepoint=timepoint,
    )
