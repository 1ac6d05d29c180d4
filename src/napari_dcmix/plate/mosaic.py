"""Lazy multiscale plate mosaic: every site tiled inside its well, gutters between wells.

Nothing is read when a mosaic is built: each pyramid level is a dask array whose chunks are
sites (or whole wells at coarse levels), filled on demand. Level 0 reads sites through
``Plate.read``; level ``k > 0`` reads each site through ``Plate.read_thumbnail(well, site, 2**k)``
and never the full-resolution site, so the overview of a 384-well x 9-site plate touches only
the rows it shows (uncompressed TIFFs are memory-mapped; OME-Zarr uses a stored pyramid level
when it has one). Coarse levels are nearest-neighbour subsamples (level-``k`` pixel ``j`` is
level-0 pixel ``j * 2**k``, the position napari gives it), not block means: no float
intermediates, and no pixel of a coarse level needs more than one pixel read. Chunks are
computed in parallel by dask's threaded scheduler. Missing sites and wells are zeros.

Geometry (``well_rectangles``, ``site_rectangles``) is in level-0 pixel coordinates: the data
coordinates of every napari layer drawn on the mosaic. ``MosaicGeometry.pixel_size_um`` (the
plate's, None when unknown) is the scale those layers share so that they show micrometres; a
layer drawn in these coordinates must be given the same scale to stay aligned.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the coarsest level is at most this many pixels along its longer side (or sites get tiny)
OVERVIEW_SIZE = 1024
#: smallest site tile (pixels) worth a pyramid level
MIN_SITE_SIZE = 16
#: below this site size (pixels) a level uses one chunk per well instead of one per site
MIN_SITE_CHUNK = 128
#: bytes of downsampled site tiles kept for re-display (shared by all levels and channels)
CACHE_BYTES = 256 * 1024**2


def _well_row_col(well: str) -> tuple[int, int]:
    from napari_dcmix.plate.wells import well_row_col

    return well_row_col(well)


@dataclass(frozen=True)
class MosaicGeometry:
    """Where every well and site sits in the level-0 mosaic."""

    n_levels: int
    site_shape: tuple[int, int]  # (H, W) of an image
    site_pitch: tuple[int, int]  # padded (H, W) so that every level divides exactly
    site_grid: tuple[int, int]  # (rows, columns) of sites inside a well
    gutter: int
    row0: int  # 0-based plate row of the top grid row
    col0: int  # 1-based plate column of the left grid column
    grid: tuple[int, int]  # (rows, columns) of wells in the mosaic
    site_slots: dict[int, int]  # site number -> slot index inside a well
    well_cells: dict[str, tuple[int, int]]  # well -> (grid row, grid column)
    pixel_size_um: float | None = None  # the plate's (Plate.pixel_size_um); None: unknown

    @property
    def scale(self) -> tuple[float, float]:
        """(y, x) world units (micrometres when known, else pixels) per mosaic pixel."""
        size = self.pixel_size_um or 1.0
        return size, size

    @property
    def cell_pitch(self) -> tuple[int, int]:
        (sh, sw), (gr, gc) = self.site_pitch, self.site_grid
        return gr * sh + self.gutter, gc * sw + self.gutter

    @property
    def shape(self) -> tuple[int, int]:
        (ch, cw), (nr, nc) = self.cell_pitch, self.grid
        return nr * ch - self.gutter, nc * cw - self.gutter

    def well_origin(self, well: str) -> tuple[int, int]:
        r, c = self.well_cells[well]
        ch, cw = self.cell_pitch
        return r * ch, c * cw

    def site_origin(self, well: str, site: int) -> tuple[int, int]:
        y, x = self.well_origin(well)
        sr, sc = divmod(self.site_slots[site], self.site_grid[1])
        return y + sr * self.site_pitch[0], x + sc * self.site_pitch[1]


def mosaic_geometry(plate: Any) -> MosaicGeometry:
    """Lay out ``plate``: wells on their plate grid (rows/columns spanned), sites in a grid."""
    wells = list(plate.wells)
    if not wells:
        raise ValueError("the plate has no wells")
    rc = {w: _well_row_col(w) for w in wells}
    rows = [r for r, _ in rc.values()]
    cols = [c for _, c in rc.values()]
    site_numbers = sorted({s for w in wells for s in plate.sites(w)}) or [1]
    n_sites = len(site_numbers)
    gc = math.ceil(math.sqrt(n_sites))
    gr = math.ceil(n_sites / gc)
    h, w = (int(v) for v in plate.image_shape)
    nr, nc = max(rows) - min(rows) + 1, max(cols) - min(cols) + 1

    approx_h = nr * (gr * h * 1.1)
    approx_w = nc * (gc * w * 1.1)
    n_levels = 1
    while (
        max(approx_h, approx_w) / 2 ** (n_levels - 1) > OVERVIEW_SIZE
        and min(h, w) / 2**n_levels >= MIN_SITE_SIZE
    ):
        n_levels += 1
    f = 2 ** (n_levels - 1)
    pitch = (math.ceil(h / f) * f, math.ceil(w / f) * f)
    gutter = math.ceil(max(2.0, 0.1 * max(h, w)) / f) * f
    return MosaicGeometry(
        n_levels=n_levels,
        site_shape=(h, w),
        site_pitch=pitch,
        site_grid=(gr, gc),
        gutter=gutter,
        row0=min(rows),
        col0=min(cols),
        grid=(nr, nc),
        site_slots={s: i for i, s in enumerate(site_numbers)},
        well_cells={w: (r - min(rows), c - min(cols)) for w, (r, c) in rc.items()},
        pixel_size_um=getattr(plate, "pixel_size_um", None),
    )


def _rect(y0: float, x0: float, h: float, w: float) -> list[list[float]]:
    # pixel i covers [i - 0.5, i + 0.5] in napari data coordinates
    return [[y0 - 0.5, x0 - 0.5], [y0 + h - 0.5, x0 + w - 0.5]]


def well_rectangles(
    plate: Any, geometry: MosaicGeometry | None = None
) -> list[tuple[str, list[list[float]]]]:
    """(well, [[y0, x0], [y1, x1]]) framing each well's sites, half way into the gutter."""
    g = geometry or mosaic_geometry(plate)
    pad = g.gutter / 4
    (sh, sw), (gr, gc) = g.site_pitch, g.site_grid
    out = []
    for well in plate.wells:
        y, x = g.well_origin(well)
        out.append((well, _rect(y - pad, x - pad, gr * sh + 2 * pad, gc * sw + 2 * pad)))
    return out


def site_rectangles(
    plate: Any, geometry: MosaicGeometry | None = None
) -> list[tuple[str, int, list[list[float]]]]:
    """(well, site, [[y0, x0], [y1, x1]]) covering each site's image."""
    g = geometry or mosaic_geometry(plate)
    h, w = g.site_shape
    out = []
    for well in plate.wells:
        for site in plate.sites(well):
            y, x = g.site_origin(well, site)
            out.append((well, site, _rect(y, x, h, w)))
    return out


class _TileCache:
    """Thread-safe LRU of downsampled site tiles, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            tile = self._items.get(key)
            if tile is not None:
                self._items.move_to_end(key)
            return tile

    def put(self, key: tuple, tile: np.ndarray) -> None:
        with self._lock:
            if key in self._items or tile.nbytes > self.max_bytes:
                return
            self._items[key] = tile
            self._bytes += tile.nbytes
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes


class _MosaicLevel:
    """Array-like view of one level (channel ``channel`` or all channels) for ``da.from_array``."""

    def __init__(self, mosaic: PlateMosaic, level: int, channel: int | None) -> None:
        self.mosaic, self.level, self.channel = mosaic, level, channel
        f = 2**level
        y, x = mosaic.geometry.shape
        plane = (y // f, x // f)
        self.dtype = np.dtype(mosaic.dtype)
        self.shape = plane if channel is not None else (mosaic.n_channels, *plane)
        self.ndim = len(self.shape)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        ys, xs = key[-2:]
        block = self.mosaic.read_region(self.level, ys.start, ys.stop, xs.start, xs.stop)
        if self.channel is not None:
            return block[self.channel]
        return block[key[0]]


class PlateMosaic:
    """A plate as a lazy image pyramid; ``levels[k]`` is a (C, Y, X) dask array at scale 1/2**k."""

    def __init__(self, plate: Any, geometry: MosaicGeometry | None = None) -> None:
        self.plate = plate
        self.geometry = geometry or mosaic_geometry(plate)
        self.n_channels = len(plate.channels)
        self.dtype = np.dtype(plate.dtype)
        self._cache = _TileCache(CACHE_BYTES)
        self._present = {w: set(plate.sites(w)) for w in plate.wells}
        self._slot_site = {i: s for s, i in self.geometry.site_slots.items()}
        self._cell_well = {rc: w for w, rc in self.geometry.well_cells.items()}

    @property
    def n_levels(self) -> int:
        return self.geometry.n_levels

    @property
    def levels(self) -> list:
        return [self.level(k) for k in range(self.n_levels)]

    def channel_levels(self, channel: int) -> list:
        """The pyramid of one channel: a list of 2D dask arrays, finest first."""
        return [self.level(k, channel) for k in range(self.n_levels)]

    def level(self, k: int, channel: int | None = None):
        import dask.array as da

        chunks = self._chunks(k)
        if channel is None:
            chunks = ((self.n_channels,), *chunks)
        arr = _MosaicLevel(self, k, channel)
        # a fresh token per array: id(self) is reused after GC and napari's dask cache would
        # serve a closed plate's tiles (as Plate.to_dask)
        name = f"dcmix-mosaic-{uuid.uuid4().hex}-{k}-{'all' if channel is None else channel}"
        return da.from_array(
            arr,
            chunks=chunks,
            name=name,
            asarray=False,
            lock=False,
            fancy=False,
            meta=np.empty((0,) * arr.ndim, dtype=self.dtype),
        )

    def _chunks(self, k: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        g, f = self.geometry, 2**k
        (sh, sw), (gr, gc), gut = g.site_pitch, g.site_grid, g.gutter
        out = []
        for pitch, n_sites, n_wells in ((sh, gr, g.grid[0]), (sw, gc, g.grid[1])):
            p, gk = pitch // f, gut // f
            cell = [p] * n_sites if p >= MIN_SITE_CHUNK else [p * n_sites]
            chunks = [*cell, gk] * n_wells
            out.append(tuple(chunks[:-1]))
        return out[0], out[1]

    def site_tile(self, well: str, site: int, k: int) -> np.ndarray:
        """The site's image at level ``k`` (C, pitch/2**k) padded with zeros, cached.

        Level 0 comes from ``Plate.read``, level ``k > 0`` from ``Plate.read_thumbnail``.
        """
        key = (well, site, k)
        tile = self._cache.get(key)
        if tile is None:
            f = 2**k
            if k == 0:
                image = np.asarray(self.plate.read(well, site))
            else:
                image = np.asarray(self.plate.read_thumbnail(well, site, f))
            ph, pw = (p // f for p in self.geometry.site_pitch)
            c, h, w = image.shape
            if (h, w) == (ph, pw) and image.dtype == self.dtype:
                tile = image
            else:
                tile = np.zeros((c, ph, pw), dtype=self.dtype)
                tile[:, : min(h, ph), : min(w, pw)] = image[:, :ph, :pw]
            self._cache.put(key, tile)
        return tile

    def read_region(self, k: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Pixels [y0:y1, x0:x1] of level ``k`` (C, y1-y0, x1-x0), reading only overlapped sites."""
        g, f = self.geometry, 2**k
        out = np.zeros((self.n_channels, y1 - y0, x1 - x0), dtype=self.dtype)
        if y1 <= y0 or x1 <= x0:
            return out
        ch, cw = (p // f for p in g.cell_pitch)
        sh, sw = (p // f for p in g.site_pitch)
        for r in range(y0 // ch, (y1 - 1) // ch + 1):
            for c in range(x0 // cw, (x1 - 1) // cw + 1):
                well = self._cell_well.get((r, c))
                if well is None:
                    continue
                for slot, site in self._slot_site.items():
                    if site not in self._present[well]:
                        continue
                    sr, sc = divmod(slot, g.site_grid[1])
                    ty, tx = r * ch + sr * sh, c * cw + sc * sw
                    iy0, iy1 = max(y0, ty), min(y1, ty + sh)
                    ix0, ix1 = max(x0, tx), min(x1, tx + sw)
                    if iy0 >= iy1 or ix0 >= ix1:
                        continue
                    tile = self.site_tile(well, site, k)
                    out[:, iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = tile[
                        :, iy0 - ty : iy1 - ty, ix0 - tx : ix1 - tx
                    ]
        return out


def build_mosaic(plate: Any) -> PlateMosaic:
    """The lazy multiscale mosaic of ``plate`` (reads no pixels)."""
    return PlateMosaic(plate)


def sample_contrast_limits(
    plate: Any, n_sites: int = 4, percentiles: tuple[float, float] = (0.5, 99.8)
) -> list[tuple[float, float]]:
    """Per-channel display range from a few sites spread over the plate (not the whole plate)."""
    keys = [(w, s) for w in plate.wells for s in plate.sites(w)]
    if not keys:
        return [(0.0, 1.0)] * len(plate.channels)
    picks = [keys[i] for i in np.linspace(0, len(keys) - 1, min(n_sites, len(keys))).astype(int)]
    stack = np.concatenate([np.asarray(plate.read(w, s)) for w, s in picks], axis=-1)
    limits = []
    for ch in stack:
        lo, hi = (float(v) for v in np.percentile(ch, percentiles))
        if hi <= lo:
            hi = lo + 1.0
        limits.append((lo, hi))
    return limits
