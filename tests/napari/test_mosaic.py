"""The plate mosaic (Qt-free): layout geometry, lazy reads, pyramid levels, missing sites."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from napari_dcmix.plate.base import Plate
from napari_dcmix.plate.mosaic import (
    build_mosaic,
    sample_contrast_limits,
    site_rectangles,
    well_rectangles,
)


class MemoryPlate(Plate):
    """A plate whose site pixels are a constant: 1000*row + 10*col + site (+100 per channel)."""

    def __init__(self, sites: dict[str, list[int]], shape=(40, 60), n_channels=2) -> None:
        super().__init__(
            name="mem",
            layout="tiff",
            path=".",
            sites=sites,
            channels=[f"ch{i}" for i in range(n_channels)],
            image_shape=shape,
            dtype="uint16",
        )
        self.reads: list[tuple[str, int]] = []

    def value(self, well: str, site: int) -> int:
        from napari_dcmix.plate.wells import well_row_col

        r, c = well_row_col(well)
        return 1000 * r + 10 * c + site

    def _read_site(self, well: str, site: int) -> np.ndarray:
        self.reads.append((well, site))
        v = self.value(well, site)
        out = np.empty((len(self.channels), *self.image_shape), dtype="uint16")
        for i in range(len(self.channels)):
            out[i] = v + 100 * i
        return out


@pytest.fixture
def plate() -> MemoryPlate:
    # B02 has 3 sites (2x2 grid), C04 has 1, B03 missing entirely
    return MemoryPlate({"B02": [1, 2, 3], "B04": [1, 2], "C04": [2]})


def test_building_reads_nothing_and_levels_halve(plate):
    mosaic = build_mosaic(plate)
    assert plate.reads == []
    levels = mosaic.levels
    assert levels[0].shape[0] == 2
    for a, b in itertools.pairwise(levels):
        assert b.shape[1] * 2 == a.shape[1] and b.shape[2] * 2 == a.shape[2]
    assert plate.reads == []


def test_sites_land_in_their_rectangles(plate):
    mosaic = build_mosaic(plate)
    full = mosaic.level(0).compute()
    for well, site, ((y0, x0), (y1, x1)) in site_rectangles(plate):
        tile = full[:, int(y0 + 0.5) : int(y1 + 0.5), int(x0 + 0.5) : int(x1 + 0.5)]
        assert tile.shape[1:] == plate.image_shape
        v = plate.value(well, site)
        assert (tile[0] == v).all() and (tile[1] == v + 100).all()
    # missing well B03 and missing sites are zeros: nothing else is non-zero
    covered = sum(40 * 60 for _ in site_rectangles(plate))
    assert (full[0] > 0).sum() == covered


def test_well_rectangles_contain_their_sites(plate):
    wells = dict(well_rectangles(plate))
    assert list(wells) == ["B02", "B04", "C04"]
    for well, _, ((y0, x0), (y1, x1)) in site_rectangles(plate):
        (wy0, wx0), (wy1, wx1) = wells[well]
        assert wy0 < y0 and wx0 < x0 and wy1 > y1 and wx1 > x1
    # B02 is left of B04 (column 3 in between is empty), C04 below B04
    assert wells["B02"][1][1] < wells["B04"][0][1]
    assert wells["B04"][1][0] < wells["C04"][0][0]


def test_channel_pyramid_and_single_chunk_reads(plate):
    mosaic = build_mosaic(plate)
    geom = mosaic.geometry
    y, x = geom.site_origin("B04", 2)
    lvl = mosaic.channel_levels(1)[0]
    assert lvl.ndim == 2
    assert int(lvl[y + 5, x + 5].compute()) == plate.value("B04", 2) + 100
    assert {w for w, _ in plate.reads} == {"B04"}  # small sites: one chunk per well


def test_large_sites_are_one_chunk_each():
    p = MemoryPlate({"A01": [1, 2], "A02": [1]}, shape=(200, 200), n_channels=1)
    mosaic = build_mosaic(p)
    y, x = mosaic.geometry.site_origin("A01", 2)
    assert int(mosaic.level(0)[0, y, x].compute()) == p.value("A01", 2)
    assert p.reads == [("A01", 2)]


def test_coarse_level_holds_each_site_value():
    big = MemoryPlate(
        {f"{r}{c:02d}": [1, 2, 3, 4] for r in "ABCDEFGH" for c in range(1, 13)},
        shape=(64, 64),
        n_channels=1,
    )
    mosaic = build_mosaic(big)
    assert mosaic.n_levels >= 2
    k = mosaic.n_levels - 1
    coarse = mosaic.level(k)
    assert max(coarse.shape[1:]) <= 1100
    y, x = mosaic.geometry.site_origin("H12", 4)
    f = 2**k
    assert int(coarse[0, y // f + 1, x // f + 1].compute()) == big.value("H12", 4)


class GradientPlate(Plate):
    """Pixels vary inside each site (odd-sized), so subsampling positions are visible."""

    def __init__(self, sites: dict[str, list[int]], shape=(75, 61), n_channels=2) -> None:
        super().__init__(name="grad", layout="tiff", path=".", sites=sites,
                         channels=[f"ch{i}" for i in range(n_channels)], image_shape=shape,
                         dtype="uint16")  # fmt: skip
        self.reads: list[tuple[str, int]] = []
        self.thumbnails: list[tuple[str, int, int]] = []

    def read(self, well, site):
        self.reads.append((well, site))
        return super().read(well, site)

    def read_thumbnail(self, well, site, factor):
        self.thumbnails.append((well, site, factor))
        return super().read_thumbnail(well, site, factor)

    def _read_site(self, well, site):
        from napari_dcmix.plate.wells import well_row_col

        c, (h, w) = len(self.channels), self.image_shape
        r, col = well_row_col(well)
        yy, xx = np.mgrid[0:h, 0:w]
        base = (7 * yy + 3 * xx + 50 * r + 5 * col + 11 * site) % 4000 + 1
        return np.stack([base + 4000 * i for i in range(c)]).astype("uint16")

    def _read_thumbnail(self, well, site, factor):
        # what a layout override does: never the full-resolution read() path
        return np.ascontiguousarray(self._read_site(well, site)[:, ::factor, ::factor])


def test_coarse_levels_are_subsamples_of_level_0_and_never_read_full_sites(monkeypatch):
    import napari_dcmix.plate.mosaic as mosaic_module

    monkeypatch.setattr(mosaic_module, "OVERVIEW_SIZE", 64)
    monkeypatch.setattr(mosaic_module, "MIN_SITE_SIZE", 4)
    plate = GradientPlate({"A01": [1, 2, 3], "A03": [2], "B02": [1, 2, 3]})
    mosaic = build_mosaic(plate)
    assert mosaic.n_levels >= 4
    coarse = [mosaic.level(k).compute() for k in range(1, mosaic.n_levels)]
    assert plate.reads == []
    factors = {f for _, _, f in plate.thumbnails}
    assert factors == {2**k for k in range(1, mosaic.n_levels)}
    assert len(plate.thumbnails) == 7 * (mosaic.n_levels - 1)  # each site once per level
    full = mosaic.level(0).compute()
    assert len(plate.reads) == 7
    for k, level in enumerate(coarse, start=1):
        np.testing.assert_array_equal(level, full[:, :: 2**k, :: 2**k])
    # cached: showing a coarse level again reads nothing
    n = len(plate.thumbnails)
    mosaic.channel_levels(1)[-1].compute()
    assert len(plate.thumbnails) == n


def test_default_read_thumbnail_feeds_the_mosaic(monkeypatch):
    import napari_dcmix.plate.mosaic as mosaic_module

    monkeypatch.setattr(mosaic_module, "OVERVIEW_SIZE", 64)
    monkeypatch.setattr(mosaic_module, "MIN_SITE_SIZE", 4)
    plate = GradientPlate({"B02": [1, 2], "C04": [1]}, shape=(33, 40))
    monkeypatch.setattr(plate, "_read_thumbnail", lambda *a: Plate._read_thumbnail(plate, *a))
    mosaic = build_mosaic(plate)
    full = mosaic.level(0).compute()
    for k in range(1, mosaic.n_levels):
        np.testing.assert_array_equal(mosaic.level(k).compute(), full[:, :: 2**k, :: 2**k])


@pytest.mark.parametrize("layout", ["tiff", "imagexpress", "operetta", "ome-zarr", "rxrx1"])
def test_file_plate_mosaic_levels(tmp_path, monkeypatch, layout):
    import napari_dcmix.plate.mosaic as mosaic_module
    from napari_dcmix.plate import open_plate
    from napari_dcmix.synthetic import write_synthetic_plate

    monkeypatch.setattr(mosaic_module, "OVERVIEW_SIZE", 64)
    monkeypatch.setattr(mosaic_module, "MIN_SITE_SIZE", 4)
    synth = write_synthetic_plate(tmp_path, layout=layout, n_wells=3, sites=2, image_size=36)
    opened = open_plate(synth.path)

    class Counting(type(opened)):  # the real layout class, counting full-resolution reads
        def read(self, well, site):
            self.reads.append((well, site))
            return super().read(well, site)

    plate = Counting.__new__(Counting)
    plate.__dict__.update(opened.__dict__, reads=[])
    mosaic = build_mosaic(plate)
    assert mosaic.n_levels >= 3
    coarse = [mosaic.level(k).compute() for k in range(1, mosaic.n_levels)]
    # file layouts that can read less never take the full read path for coarse levels
    assert plate.reads == [] or layout == "rxrx1"
    full = mosaic.level(0).compute()
    for k, level in enumerate(coarse, start=1):
        assert level.shape == (5, full.shape[1] // 2**k, full.shape[2] // 2**k)
        np.testing.assert_array_equal(level, full[:, :: 2**k, :: 2**k])


def test_level_names_are_never_reused(plate):
    # napari caches dask chunks by task name: a new mosaic (whose id may be a closed one's)
    # must never share names with an old one, or the old plate's tiles would show
    names = {build_mosaic(plate).level(0).name for _ in range(5)}
    assert len(names) == 5


def test_geometry_is_fast_for_a_1536_plate():
    import time

    from napari_dcmix.plate.wells import well_name

    sites = {well_name(r, c): list(range(1, 10)) for r in range(32) for c in range(1, 49)}
    p = MemoryPlate(sites, shape=(1080, 1080), n_channels=5)
    t = time.perf_counter()
    mosaic = build_mosaic(p)
    _ = mosaic.levels, well_rectangles(p, mosaic.geometry)
    assert time.perf_counter() - t < 3.0
    assert p.reads == []


def test_contrast_limits_sample_few_sites(plate):
    limits = sample_contrast_limits(plate, n_sites=2)
    assert len(limits) == 2 and len(plate.reads) == 2
    assert all(hi > lo for lo, hi in limits)
