"""The Plate: one plate of wells x sites x channels, read one site at a time."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from napari_dcmix.errors import PlateError, PlateWarning
from napari_dcmix.plate.pixel_size import PixelSize, as_number
from napari_dcmix.plate.wells import WellNameError, normalise_well, sort_wells

LAYOUTS = ("rxrx1", "imagexpress", "operetta", "ome-zarr", "tiff")
MAX_PROJECTION = "max"


def _listing(numbers: Sequence[int]) -> str:
    return ", ".join(str(n) for n in numbers)


def _from(source: str) -> str:
    return f" ({source})" if source else ""


def choose_plane(
    planes: Sequence[int], plane: int | str | None, where: str, source: str = ""
) -> int | str:
    """The plane to read: ``plane`` when the plate has it, ``"max"`` (maximum projection over
    ``planes``), or the lowest plane when ``plane`` is None; else PlateError naming ``where``
    (the plate) and listing the planes it has (``source``: where the numbers come from)."""
    planes = sorted(planes)
    if plane is None:
        return planes[0]
    if isinstance(plane, str) and plane.strip().lower() == MAX_PROJECTION:
        return MAX_PROJECTION
    if isinstance(plane, bool) or not isinstance(plane, (int, np.integer)):
        raise PlateError(
            f"plane: expected a plane number or 'max', found {plane!r} (for {where}, whose "
            f"planes are {_listing(planes)})"
        )
    if int(plane) not in planes:
        raise PlateError(
            f"{where} has no plane {plane}: its planes{_from(source)} are {_listing(planes)} "
            f"(or 'max' for the maximum projection)"
        )
    return int(plane)


def choose_timepoint(
    timepoints: Sequence[int], timepoint: int | None, where: str, source: str = ""
) -> int:
    """The timepoint to read: ``timepoint`` when the plate has it, the lowest when None;
    else PlateError naming ``where`` and listing the timepoints it has."""
    timepoints = sorted(timepoints)
    if timepoint is None:
        return timepoints[0]
    if isinstance(timepoint, bool) or not isinstance(timepoint, (int, np.integer)):
        raise PlateError(
            f"timepoint: expected a timepoint number, found {timepoint!r} (for {where}, whose "
            f"timepoints are {_listing(timepoints)})"
        )
    if int(timepoint) not in timepoints:
        raise PlateError(
            f"{where} has no timepoint {timepoint}: its timepoints{_from(source)} are "
            f"{_listing(timepoints)}"
        )
    return int(timepoint)


class Plate:
    """A plate on disk, opened from its metadata only.

    Subclasses (one per layout) implement ``_read_site(well, site)`` returning ``(C, H, W)``.
    ``read`` checks names, shape and dtype around it and is safe to call from several threads.
    They may override ``_read_thumbnail(well, site, factor)`` to read a subsampled site
    without decoding it all (see ``read_thumbnail``).

    Data type: the plate's ``dtype`` is learnt from its first image. A site (or file) of
    another dtype is converted only when the conversion is safe (``np.can_cast(found,
    plate dtype, "safe")``: every value kept, e.g. a uint8 file in a uint16 plate); anything
    else (uint16 in a uint8 plate would wrap, float in an integer plate would truncate) raises
    ``PlateError`` naming the site or file, the expected and the found dtype.

    Planes and timepoints: ``planes`` and ``timepoints`` list the numbers the plate has, as
    its format writes them (ImageXpress ``ZStep_n`` / ``TimePoint_n`` folders, Operetta
    ``PlaneID`` / ``TimepointID``; ``[1]`` where the format has no such axis); ``plane`` (a
    number or ``"max"``, the maximum projection over the planes) and ``timepoint`` are the
    ones this Plate reads (chosen in ``open_plate``; the lowest by default).

    Pixel size: ``pixel_size_um`` is the side of one pixel in micrometres as the plate's
    metadata states it, or None when it does not (or not for certain: non-square pixels,
    images that disagree, a malformed value; ``pixel_size_source`` says why). Layouts whose
    value costs file reads find it on first use (``_find_pixel_size``), not at open.
    """

    def __init__(
        self,
        *,
        name: str,
        layout: str,
        path: Path,
        sites: Mapping[str, Sequence[int]],
        channels: Sequence[str],
        image_shape: tuple[int, int],
        dtype: np.dtype | str,
        shape_source: str = "",
        planes: Sequence[int] = (1,),
        timepoints: Sequence[int] = (1,),
        plane: int | str | None = None,
        timepoint: int | None = None,
        pixel_size: PixelSize | None = None,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}")
        self.name = name
        self.layout = layout
        self.path = Path(path)
        by_well: dict[str, set[int]] = {}
        for well, numbers in sites.items():
            if len(numbers):
                by_well.setdefault(normalise_well(well), set()).update(int(x) for x in numbers)
        self.wells: list[str] = sort_wells(by_well)
        self._sites: dict[str, list[int]] = {w: sorted(by_well[w]) for w in self.wells}
        self.channels: list[str] = list(channels)
        self.image_shape: tuple[int, int] = (int(image_shape[0]), int(image_shape[1]))
        self.dtype: np.dtype = np.dtype(dtype)
        # the file (or array) the plate's image shape was learnt from, named in shape errors
        self._shape_source = shape_source
        self.planes: list[int] = sorted({int(p) for p in planes}) or [1]
        self.timepoints: list[int] = sorted({int(t) for t in timepoints}) or [1]
        where = f"plate {name!r} ({path})"
        self.plane: int | str = choose_plane(self.planes, plane, where)
        self.timepoint: int = choose_timepoint(self.timepoints, timepoint, where)
        # None: not looked up yet (``_find_pixel_size`` runs on first use)
        self._pixel_size: PixelSize | None = pixel_size

    # --- metadata ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"Plate(name={self.name!r}, layout={self.layout!r}, wells={len(self.wells)}, "
            f"sites={self.max_sites}, channels={self.channels}, "
            f"image_shape={self.image_shape}, dtype={self.dtype}{self._selection_repr()})"
        )

    def _selection_repr(self) -> str:
        parts = []
        if len(self.planes) > 1 or self.plane != self.planes[0]:
            parts.append(f"plane={self.plane!r} of {self.planes}")
        if len(self.timepoints) > 1:
            parts.append(f"timepoint={self.timepoint} of {self.timepoints}")
        return "".join(f", {p}" for p in parts)

    @property
    def pixel_size_um(self) -> float | None:
        """Micrometres per pixel (y and x alike) as the plate's metadata states it, or None
        when it is unknown. Settable (a positive number, or None) for plates whose format does
        not store it."""
        return self._pixel_size_info().um

    @pixel_size_um.setter
    def pixel_size_um(self, value: float | None) -> None:
        if value is None:
            self._pixel_size = PixelSize.unknown("cleared by the user")
            return
        number = as_number(value)
        if number is None:
            raise PlateError(
                f"pixel size: expected a positive number of micrometres, found {value!r}"
            )
        self._pixel_size = PixelSize(number, "set by the user")

    @property
    def pixel_size_source(self) -> str:
        """Where ``pixel_size_um`` was read from, or why it is None."""
        return self._pixel_size_info().source

    def _pixel_size_info(self) -> PixelSize:
        found = self._pixel_size
        if found is None:
            try:
                found = self._find_pixel_size()
            except Exception as exc:  # metadata is optional: a failure is "unknown", not fatal
                found = PixelSize.unknown(f"cannot be read ({type(exc).__name__}: {exc})")
            self._pixel_size = found
        return found

    def _find_pixel_size(self) -> PixelSize:
        """Layouts that store a pixel size read it here (once, on first use)."""
        return PixelSize.unknown(f"the {self.layout} layout does not store a pixel size")

    @property
    def max_sites(self) -> int:
        """Largest site number of any well (the site axis length of ``to_dask``)."""
        return max((s[-1] for s in self._sites.values()), default=0)

    def _well(self, well: str) -> str:
        try:
            name = normalise_well(well)
        except WellNameError as exc:
            raise PlateError(f"plate {self.name!r}: {exc}") from None
        if name not in self._sites:
            raise PlateError(f"plate {self.name!r} ({self.path}) has no well {well!r}")
        return name

    def sites(self, well: str) -> list[int]:
        """1-based site numbers present in ``well``."""
        return list(self._sites[self._well(well)])

    def site_keys(self) -> list[tuple[str, int]]:
        """Every ``(well, site)`` of the plate, row-major."""
        return [(w, s) for w in self.wells for s in self._sites[w]]

    # --- pixels -----------------------------------------------------------------------------
    def _site(self, well: str, site: int) -> str:
        """The normalised well name; PlateError if the well or the site is missing."""
        name = self._well(well)
        if int(site) not in self._sites[name]:
            raise PlateError(
                f"plate {self.name!r}: well {name} has no site {site} (sites {self._sites[name]})"
            )
        return name

    def read(self, well: str, site: int) -> np.ndarray:
        """Pixels of one site, ``(C, H, W)`` in the plate's dtype and channel order.

        Data that is suspicious but readable (see ``read_with_notes``) is reported as a
        ``PlateWarning`` per note."""
        data, notes = self.read_with_notes(well, site)
        for note in notes:
            warnings.warn(note, PlateWarning, stacklevel=2)
        return data

    def read_with_notes(self, well: str, site: int) -> tuple[np.ndarray, list[str]]:
        """``(pixels, notes)``: the site as ``read`` returns it, and one sentence per thing
        that is suspicious but readable (e.g. chunks missing from the store, read as the fill
        value), for callers that put them in their output (prediction CSVs, notifications)."""
        name = self._site(well, site)
        data, notes = self._read_site_notes(name, int(site))
        like = f" like {self._shape_source or 'the first image'}"
        expected = (len(self.channels), *self.image_shape)
        return self._checked(data, expected, f"well {name} site {site}", like), list(notes)

    def _checked(self, data: np.ndarray, expected: tuple, what: str, like: str = "") -> np.ndarray:
        """``data`` in the plate's dtype, after checking its shape and that the dtype converts
        safely; errors name ``what`` (the well and site) and the expected shape."""
        if data.shape != expected:
            raise PlateError(
                f"plate {self.name!r}: {what} has shape {data.shape}, expected {expected}{like}"
            )
        self._check_dtype(data.dtype, what)
        return data.astype(self.dtype, copy=False)

    def _check_dtype(self, found: np.dtype, what: str) -> None:
        """PlateError unless pixels of dtype ``found`` convert to the plate's dtype safely."""
        found = np.dtype(found)
        if found != self.dtype and not np.can_cast(found, self.dtype, casting="safe"):
            like = self._shape_source or "the first image"
            raise PlateError(
                f"plate {self.name!r}: {what} has dtype {found}, expected {self.dtype} like "
                f"{like}: converting would change pixel values (mixed data types in one plate)"
            )

    def read_region(self, well: str, site: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Pixels of the rectangle ``[y0:y1, x0:x1]`` of one site, ``(C, y1 - y0, x1 - x0)``
        in the plate's dtype. Layouts that can (uncompressed TIFFs, memory-mapped) read only
        the rectangle's rows; the default reads the whole site. Thread-safe like ``read``."""
        name = self._site(well, site)
        h, w = self.image_shape
        if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
            raise PlateError(
                f"plate {self.name!r}: region y {y0}:{y1}, x {x0}:{x1} lies outside the "
                f"{h} x {w} px sites"
            )
        data = self._read_region(name, int(site), int(y0), int(y1), int(x0), int(x1))
        what = f"well {name} site {site} region y {y0}:{y1} x {x0}:{x1}"
        return self._checked(data, (len(self.channels), y1 - y0, x1 - x0), what)

    def cheap_regions(self, well: str, site: int) -> bool:
        """True when ``read_region`` of this site touches only the rectangle's pixels (so
        reading many small regions costs less than reading the site once)."""
        return False

    def _read_region(self, well: str, site: int, y0: int, y1: int, x0: int, x1: int):
        """Default: the whole site, cut (a copy, so the full image can be freed)."""
        return np.ascontiguousarray(self._read_site(well, site)[:, y0:y1, x0:x1])

    def thumbnail_shape(self, factor: int) -> tuple[int, int, int]:
        """``(C, ceil(H / factor), ceil(W / factor))``: the shape ``read_thumbnail`` returns."""
        h, w = self.image_shape
        return len(self.channels), -(-h // factor), -(-w // factor)

    def read_thumbnail(self, well: str, site: int, factor: int) -> np.ndarray:
        """One site downscaled ``factor`` times: ``(C, ceil(H/factor), ceil(W/factor))``.

        Nearest-neighbour subsampling: pixel ``[c, j, i]`` is ``read(well, site)[c, j*f, i*f]``
        (exactly ``read(well, site)[:, ::factor, ::factor]``), so level pixel ``j`` sits at
        level-0 pixel ``j*f``, as napari places multiscale levels. No averaging, no float
        intermediates. The default reads the whole site and subsamples it; layouts override
        ``_read_thumbnail`` to read less: uncompressed TIFFs are memory-mapped and only the
        kept rows are touched; OME-Zarr reads a stored pyramid level of that scale when the
        image has one (the writer's downsampling, edge-padded to this shape), else a strided
        zarr selection. ``factor == 1`` is ``read``. Thread-safe like ``read``.
        """
        factor = int(factor)
        if factor < 1:
            raise ValueError(f"thumbnail factor must be a positive integer, not {factor}")
        if factor == 1:
            return self.read(well, site)
        name = self._site(well, site)
        data = self._read_thumbnail(name, int(site), factor)
        what = f"well {name} site {site} thumbnail (1/{factor})"
        return self._checked(data, self.thumbnail_shape(factor), what)

    def _read_thumbnail(self, well: str, site: int, factor: int) -> np.ndarray:
        """Default: the whole site, subsampled (a copy, so the full image can be freed)."""
        return np.ascontiguousarray(self.read(well, site)[:, ::factor, ::factor])

    def _read_site(self, well: str, site: int) -> np.ndarray:
        raise NotImplementedError

    def _read_site_notes(self, well: str, site: int) -> tuple[np.ndarray, list[str]]:
        """Layouts that can tell suspicious data override this; the default has no notes."""
        return self._read_site(well, site), []

    def to_dask(self):
        """Lazy ``(n_wells, max_sites, C, H, W)`` dask array; missing sites are zeros.

        One chunk per site; nothing is read until the chunk is computed.
        """
        import dask.array as da

        n_sites = self.max_sites
        c = len(self.channels)
        h, w = self.image_shape
        wells = list(self.wells)

        def block(block_info=None) -> np.ndarray:
            wi, si = block_info[None]["chunk-location"][:2]
            well, site = wells[wi], si + 1
            out = np.zeros((1, 1, c, h, w), dtype=self.dtype)
            if site in self._sites[well]:
                out[0, 0] = self.read(well, site)
            return out

        chunks = ((1,) * len(wells), (1,) * n_sites, (c,), (h,), (w,))
        return da.map_blocks(
            block,
            dtype=self.dtype,
            chunks=chunks,
            meta=np.empty((0,) * 5, self.dtype),
            name=f"plate-{self.layout}-{uuid.uuid4().hex}",
        )
