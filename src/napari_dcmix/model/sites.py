"""Labelled sites, read while training runs, at a model's pixel scale.

A ``LabelledSet`` names the labelled sites (plate, well, site, class, well group) of plates or
of in-memory arrays; nothing is read when it is built. ``SitePrep`` turns the raw pixels of a
site into network inputs at a ``PixelScale`` (bin, then either a crop or the whole site resized,
then the stored normalisation). ``BatchLoader`` assembles training batches from an epoch plan
(which site, where its crop lies, how it is flipped / rotated): reader threads read ahead a
bounded window, so memory does not grow with the plate. Sites of layouts that can read a
rectangle cheaply (uncompressed TIFFs, memory-mapped) are read crop by crop; other sites are
read whole, binned and kept in a bounded LRU cache (``cache_mb``).

Background: a random crop of a sparse plate is often empty. Before training, each site's
foreground (pixels above a fifth of the normalised range in any stain) is mapped on a coarse
thumbnail; a crop position is drawn up to ``TRIES`` times until its foreground share reaches
``MIN_FOREGROUND``, else the best of the draws is kept (so a site with no foreground still
yields crops, and dense regions are not over-weighted once a crop has some signal).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_dcmix.errors import LabelsError, ModelError
from napari_dcmix.model.data import resize_area, site_name
from napari_dcmix.model.scale import PixelScale, bin_pixels, tile_grid
from napari_dcmix.plate.normalise import ChannelStats, check_finite, estimate_channel_stats

MIN_FOREGROUND = 0.1  # share of a crop's pixels that should be foreground
FOREGROUND_LEVEL = 0.2  # normalised intensity above which a pixel is foreground
TRIES = 8  # crop positions drawn per sample before the best one is kept
MAP_CELLS = 4  # a crop spans about this many cells of the foreground map per side
MAP_MAX = 64  # at most this many cells per side of a site's foreground map
STATS_SITES = 64  # sites sampled to estimate the normalisation
STATS_PIXELS = 16_384  # pixels sampled per site and channel (64 sites: 1M per channel)


@dataclass(frozen=True)
class SiteKey:
    """One site of a source: ``source`` is the plate index (0 for arrays), ``site`` the
    1-based site number (the image index for arrays)."""

    source: int
    well: str
    site: int


class PlateSource:
    """Sites of one or several plates (through the public Plate API only)."""

    def __init__(self, plates: Sequence[Any]) -> None:
        self.plates = list(plates)

    def name(self, key: SiteKey) -> str:
        return site_name(self.plates[key.source], key.well, key.site)

    def shape(self, key: SiteKey) -> tuple[int, int]:
        return tuple(self.plates[key.source].image_shape)

    def read(self, key: SiteKey) -> np.ndarray:
        image = np.asarray(self.plates[key.source].read(key.well, key.site))
        check_finite(image, self.name(key))
        return image

    def cheap_regions(self, key: SiteKey) -> bool:
        plate = self.plates[key.source]
        return bool(getattr(plate, "cheap_regions", lambda w, s: False)(key.well, key.site))

    def read_region(self, key: SiteKey, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        image = np.asarray(self.plates[key.source].read_region(key.well, key.site, y0, y1, x0, x1))
        check_finite(image, self.name(key))
        return image

    def thumbnail(self, key: SiteKey, factor: int) -> np.ndarray:
        plate = self.plates[key.source]
        if not hasattr(plate, "read_thumbnail"):  # a duck-typed plate with ``read`` only
            return np.asarray(plate.read(key.well, key.site))[:, ::factor, ::factor]
        return np.asarray(plate.read_thumbnail(key.well, key.site, factor))


class ArraySource:
    """In-memory images ``(N, C, H, W)``; ``SiteKey.site`` is the image index."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def name(self, key: SiteKey) -> str:
        return f"image {key.site}"

    def shape(self, key: SiteKey) -> tuple[int, int]:
        return tuple(self.x.shape[-2:])

    def read(self, key: SiteKey) -> np.ndarray:
        return self.x[key.site]

    def cheap_regions(self, key: SiteKey) -> bool:
        return True

    def read_region(self, key: SiteKey, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return self.x[key.site, :, y0:y1, x0:x1]

    def thumbnail(self, key: SiteKey, factor: int) -> np.ndarray:
        return self.x[key.site, :, ::factor, ::factor]


@dataclass
class LabelledSet:
    """Which sites are labelled with what (no pixels). ``groups`` holds one id per well
    (plate, well): a well's sites always fall on the same side of a split."""

    source: Any
    keys: list[SiteKey]
    y: np.ndarray  # (N,) class index
    groups: np.ndarray  # (N,) well group id
    group_names: list[str]  # "plate well" per group id
    group_source: np.ndarray  # (G,) plate index per group id
    channel_names: list[str]
    class_names: list[str]
    group_keys: list[str] = field(default_factory=list)  # "plate path|well" ("" for arrays)

    def __len__(self) -> int:
        return len(self.keys)

    def group_labels(self) -> np.ndarray:
        """(G,) the class index of each well group."""
        out = np.full(len(self.group_names), -1, dtype=np.int64)
        out[self.groups] = self.y
        return out


def plate_set(
    plates: Sequence[Any], labels: Sequence[dict[str, str]], class_names: Sequence[str]
) -> LabelledSet:
    """The labelled sites of plates (one ``{well: label}`` per plate, wells normalised)."""
    index = {c: i for i, c in enumerate(class_names)}
    keys: list[SiteKey] = []
    y: list[int] = []
    groups: list[int] = []
    group_names: list[str] = []
    group_keys: list[str] = []
    group_source: list[int] = []
    for p_i, (plate, lab) in enumerate(zip(plates, labels, strict=True)):
        for well in plate.wells:
            if well not in lab:
                continue
            if lab[well] not in index:
                raise LabelsError(f"label {lab[well]!r} of well {well} is not one of {class_names}")
            gid = len(group_names)
            group_names.append(f"{plate.name} {well}")
            group_keys.append(f"{plate.path}|{well}")
            group_source.append(p_i)
            for site in plate.sites(well):
                keys.append(SiteKey(p_i, well, int(site)))
                y.append(index[lab[well]])
                groups.append(gid)
    if not keys:
        raise ModelError("empty training set: no labelled well has any site to read")
    return LabelledSet(
        PlateSource(plates),
        keys,
        np.asarray(y, dtype=np.int64),
        np.asarray(groups, dtype=np.int64),
        group_names,
        np.asarray(group_source, dtype=np.int64),
        list(plates[0].channels),
        list(class_names),
        group_keys,
    )


def array_set(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    channel_names: Sequence[str],
    class_names: Sequence[str],
) -> LabelledSet:
    """In-memory images with class indices ``y`` and well ids ``groups`` (one per image)."""
    groups = np.asarray(groups)
    if groups.shape != (len(x),):
        raise ModelError(
            f"expected one well id (group) per image: {len(x)} images, groups of shape "
            f"{groups.shape}"
        )
    uniq, gid = np.unique(groups, return_inverse=True)
    y = np.asarray(y, dtype=np.int64)
    # a well with sites of two classes would put one class on both sides of a split
    per_group = np.full(len(uniq), -1, dtype=np.int64)
    for g, label in zip(gid, y, strict=True):
        if per_group[g] not in (-1, label):
            raise LabelsError(
                f"well (group) {str(uniq[g])!r} holds images of two classes "
                f"({class_names[per_group[g]]!r} and {class_names[label]!r})"
            )
        per_group[g] = label
    keys = [SiteKey(0, str(uniq[g]), i) for i, g in enumerate(gid)]
    return LabelledSet(
        ArraySource(x),
        keys,
        y,
        gid.astype(np.int64),
        [str(u) for u in uniq],
        np.zeros(len(uniq), dtype=np.int64),
        list(channel_names),
        list(class_names),
        [""] * len(uniq),
    )


class SitePrep:
    """Raw site pixels -> network inputs at a model's scale (the one transform shared by
    training, evaluation and prediction): bin, then the whole site area-resized to
    ``input_size`` (``crop`` None) or crops of ``crop`` binned pixels, then normalise."""

    def __init__(self, scale: PixelScale, input_size: int, stats: ChannelStats | None) -> None:
        self.scale = scale
        self.input_size = int(scale.crop if scale.crop is not None else input_size)
        self.stats = stats
        if stats is not None:
            c = len(stats.channel_names)
            self.low = np.asarray(stats.low, dtype=np.float32).reshape(c, 1, 1)
            span = np.asarray(stats.high, np.float64) - np.asarray(stats.low, np.float64)
            self.factor = (1.0 / span).astype(np.float32).reshape(c, 1, 1)

    def unnormalised(self, raw: np.ndarray) -> np.ndarray:
        """float32: the binned site (crop mode) or the binned, resized site (whole-site mode)."""
        binned = bin_pixels(raw, self.scale.bin) if self.scale.bin > 1 else raw
        if self.scale.crop is None:
            return resize_area(binned, self.input_size)
        return np.asarray(binned, dtype=np.float32)

    def normalise(self, arr: np.ndarray) -> np.ndarray:
        """float32 ``(..., C, H, W)`` -> normalised (in place when ``arr`` is a float32 copy)."""
        out = arr if arr.dtype == np.float32 and arr.flags.writeable else arr.astype(np.float32)
        out -= self.low
        out *= self.factor
        return out

    def prepared(self, raw: np.ndarray) -> np.ndarray:
        """Binned (and, whole-site, resized), normalised float32 site."""
        out = self.unnormalised(raw)
        if out is raw or np.shares_memory(out, raw):
            out = out.copy()
        return self.normalise(out)

    def tiles(self, raw: np.ndarray, max_tiles: int | None = None) -> np.ndarray:
        """``(T, C, S, S)`` network inputs of a whole site: one resized image (whole-site mode)
        or the crops of ``tile_grid`` (crop mode), normalised."""
        site = self.prepared(raw)
        if self.scale.crop is None:
            return site[None]
        n = self.scale.crop
        grid = tile_grid(site.shape[-2:], n, max_tiles)
        return np.stack([site[:, y : y + n, x : x + n] for y, x in grid])


def estimate_stats(
    data: LabelledSet,
    indices: np.ndarray,
    scale: PixelScale,
    input_size: int,
    seed: int,
    should_stop: Callable[[], bool] | None = None,
) -> ChannelStats | None:
    """Per-channel percentiles at the model's scale from at most ``STATS_SITES`` labelled
    sites (read one at a time; at most ``STATS_PIXELS`` pixels per site and channel kept)."""
    rng = np.random.default_rng([int(seed), 17])
    chosen = np.sort(rng.permutation(indices)[:STATS_SITES])
    prep = SitePrep(scale, input_size, None)
    samples = []
    for i in chosen:
        if should_stop is not None and should_stop():
            return None
        site = prep.unnormalised(data.source.read(data.keys[i]))
        flat = site.reshape(site.shape[0], -1)
        if flat.shape[1] > STATS_PIXELS:
            flat = flat[:, rng.choice(flat.shape[1], size=STATS_PIXELS, replace=False)]
        samples.append(np.ascontiguousarray(flat)[:, None, :])
    return estimate_channel_stats(
        samples, max_sites=len(samples), seed=int(seed), channel_names=data.channel_names
    )


class SiteCache:
    """A bounded LRU of prepared (binned, normalised) sites, thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[SiteKey, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: SiteKey, make: Callable[[], np.ndarray]) -> np.ndarray:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        value = make()
        if value.nbytes > self.max_bytes:
            return value
        with self._lock:
            if key not in self._items:
                self._items[key] = value
                self._bytes += value.nbytes
                while self._bytes > self.max_bytes and self._items:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= old.nbytes
        return value

    @property
    def nbytes(self) -> int:
        return self._bytes


@dataclass
class Foreground:
    """A coarse foreground map of one binned site: ``cells`` (h, w) bool, ``cell`` binned
    pixels per map cell."""

    cells: np.ndarray
    cell: float

    def share(self, y: int, x: int, n: int) -> float:
        """Share of foreground cells under a crop of ``n`` binned pixels at ``(y, x)``."""
        y0, x0 = int(y / self.cell), int(x / self.cell)
        y1 = max(y0 + 1, int(np.ceil((y + n) / self.cell)))
        x1 = max(x0 + 1, int(np.ceil((x + n) / self.cell)))
        window = self.cells[y0:y1, x0:x1]
        return float(window.mean()) if window.size else 0.0


def foreground_map(
    source: Any, key: SiteKey, scale: PixelScale, stats: ChannelStats
) -> Foreground | None:
    """The site's foreground on a thumbnail ``crop * bin / MAP_CELLS`` times smaller."""
    if scale.crop is None:
        return None
    h, w = source.shape(key)
    # about MAP_CELLS cells per crop side, and at most MAP_MAX cells per site side (a few kB)
    factor = max(1, (scale.crop * scale.bin) // MAP_CELLS, -(-max(h, w) // MAP_MAX))
    thumb = np.asarray(source.thumbnail(key, factor), dtype=np.float32)
    low = np.asarray(stats.low, np.float32).reshape(-1, 1, 1)
    span = (np.asarray(stats.high, np.float32) - np.asarray(stats.low, np.float32)).reshape(
        -1, 1, 1
    )
    cells = ((thumb - low) / span).max(axis=0) > FOREGROUND_LEVEL
    return Foreground(cells, factor / scale.bin)


@dataclass
class Sample:
    """One training input: the site, the crop's top-left corner (binned pixels), and the
    augmentation (quarter turns, horizontal flip)."""

    index: int
    y: int = 0
    x: int = 0
    turns: int = 0
    flip: bool = False


@dataclass
class EpochPlan:
    samples: list[Sample] = field(default_factory=list)


def plan_epoch(
    data: LabelledSet,
    indices: np.ndarray,
    scale: PixelScale,
    foreground: dict[int, Foreground | None],
    rng: np.random.Generator,
    crops_per_site: int = 1,
    augment: bool = True,
    shuffle: bool = True,
) -> list[Sample]:
    """The samples of one epoch: ``crops_per_site`` crops of each site in ``indices`` (at new
    positions, drawn where the site has signal), shuffled, with random flips and turns."""
    order = np.repeat(np.asarray(indices), crops_per_site)
    if shuffle:
        order = rng.permutation(order)
    out = []
    for i in order.tolist():
        y = x = 0
        if scale.crop is not None:
            h, w = scale.binned_shape(data.source.shape(data.keys[i]))
            y, x = _crop_position(h, w, scale.crop, foreground.get(i), rng)
        turns = int(rng.integers(0, 4)) if augment else 0
        flip = bool(rng.integers(0, 2)) if augment else False
        out.append(Sample(i, y, x, turns, flip))
    return out


def _crop_position(
    h: int, w: int, n: int, fg: Foreground | None, rng: np.random.Generator
) -> tuple[int, int]:
    best, best_share = (0, 0), -1.0
    for _ in range(TRIES if fg is not None else 1):
        y, x = int(rng.integers(0, h - n + 1)), int(rng.integers(0, w - n + 1))
        if fg is None:
            return y, x
        share = fg.share(y, x, n)
        if share >= MIN_FOREGROUND:
            return y, x
        if share > best_share:
            best, best_share = (y, x), share
    return best


class BatchLoader:
    """Training inputs read ahead by reader threads; ``batches(plan)`` yields
    ``(x float32 (B, C, S, S), sample indices)`` in plan order, deterministic for a plan."""

    def __init__(
        self,
        data: LabelledSet,
        prep: SitePrep,
        cache: SiteCache,
        read_threads: int = 2,
    ) -> None:
        self.data = data
        self.prep = prep
        self.cache = cache
        self.threads = max(1, int(read_threads))

    def _whole(self, i: int) -> np.ndarray:
        key = self.data.keys[i]
        return self.cache.get(key, lambda: self.prep.prepared(self.data.source.read(key)))

    def item(self, s: Sample) -> np.ndarray:
        """The network input of one sample (a new array)."""
        scale, src, key = self.prep.scale, self.data.source, self.data.keys[s.index]
        if scale.crop is None:
            arr = self._whole(s.index).copy()
        else:
            n, b = scale.crop, scale.bin
            if src.cheap_regions(key):
                raw = src.read_region(key, s.y * b, (s.y + n) * b, s.x * b, (s.x + n) * b)
                arr = self.prep.prepared(raw)
            else:
                arr = self._whole(s.index)[:, s.y : s.y + n, s.x : s.x + n].copy()
        if s.turns:
            arr = np.rot90(arr, s.turns, axes=(1, 2))
        if s.flip:
            arr = arr[:, :, ::-1]
        return np.ascontiguousarray(arr, dtype=np.float32)

    def batches(
        self,
        samples: list[Sample],
        batch_size: int,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        window = max(2 * batch_size + 1, batch_size + 4 * self.threads)
        # a last batch of one input would fail BatchNorm in training: it joins the one before
        starts = list(range(0, len(samples), batch_size))
        if len(starts) > 1 and len(samples) - starts[-1] == 1:
            starts.pop()
        with ThreadPoolExecutor(self.threads, thread_name_prefix="dcmix-train-read") as pool:
            pending: list[Future] = []
            nxt = 0
            try:
                for b, start in enumerate(starts):
                    end = starts[b + 1] if b + 1 < len(starts) else len(samples)
                    while nxt < len(samples) and len(pending) < window:
                        pending.append(pool.submit(self.item, samples[nxt]))
                        nxt += 1
                    if should_stop is not None and should_stop():
                        return
                    n = end - start
                    arrays = [f.result() for f in pending[:n]]
                    del pending[:n]
                    while nxt < len(samples) and len(pending) < window:
                        pending.append(pool.submit(self.item, samples[nxt]))
                        nxt += 1
                    idx = np.asarray([s.index for s in samples[start : start + n]])
                    yield np.stack(arrays), idx
            finally:
                for f in pending:
                    f.cancel()
