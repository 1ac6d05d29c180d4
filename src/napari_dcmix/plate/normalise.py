"""Robust per-channel intensity normalisation (numpy only, no torch).

``ChannelStats`` holds, per named channel, a low and a high intensity (by default the 1st and
99.8th percentiles of sampled pixels). ``normalise`` maps ``low -> 0`` and ``high -> 1`` linearly
(no clipping). The stats are stored in a model checkpoint so that prediction applies exactly the
transform used in training.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_dcmix.errors import PlateError

DEFAULT_LOW_PERCENTILE = 1.0
DEFAULT_HIGH_PERCENTILE = 99.8
# Pixels sampled per image and channel when estimating percentiles (bounds memory and time).
_PIXELS_PER_IMAGE = 65_536


@dataclass
class ChannelStats:
    """Per-channel low/high intensities; ``normalise`` maps them to 0 and 1."""

    channel_names: list[str]
    low: list[float]
    high: list[float]
    low_percentile: float = DEFAULT_LOW_PERCENTILE
    high_percentile: float = DEFAULT_HIGH_PERCENTILE
    n_images: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.channel_names = [str(c) for c in self.channel_names]
        self.low = [float(v) for v in self.low]
        self.high = [float(v) for v in self.high]
        n = len(self.channel_names)
        if len(self.low) != n or len(self.high) != n:
            raise PlateError(
                f"channel stats: {n} channel names but {len(self.low)} low and "
                f"{len(self.high)} high values"
            )
        for name, lo, hi in zip(self.channel_names, self.low, self.high, strict=False):
            if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
                raise PlateError(
                    f"channel {name!r} cannot be normalised: expected low < high, "
                    f"found low={lo!r}, high={hi!r} (is the channel constant?)"
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain containers only (safe for ``torch.load(weights_only=True)`` and JSON)."""
        return {
            "channel_names": list(self.channel_names),
            "low": list(self.low),
            "high": list(self.high),
            "low_percentile": float(self.low_percentile),
            "high_percentile": float(self.high_percentile),
            "n_images": int(self.n_images),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChannelStats:
        try:
            return cls(
                channel_names=list(data["channel_names"]),
                low=list(data["low"]),
                high=list(data["high"]),
                low_percentile=float(data.get("low_percentile", DEFAULT_LOW_PERCENTILE)),
                high_percentile=float(data.get("high_percentile", DEFAULT_HIGH_PERCENTILE)),
                n_images=int(data.get("n_images", 0)),
                extra=dict(data.get("extra", {})),
            )
        except (KeyError, TypeError) as exc:
            raise PlateError(f"channel stats: missing or malformed field {exc}") from exc


def check_finite(image: np.ndarray, name: str) -> None:
    """Raise ``PlateError`` naming the image when it holds NaN or infinite pixels."""
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        n_nan = int(np.isnan(image).sum())
        n_inf = int(np.isinf(image).sum())
        raise PlateError(
            f"{name}: expected finite pixel values, found {n_nan} NaN and {n_inf} infinite pixels"
        )


def _is_plate(obj: Any) -> bool:
    return hasattr(obj, "read") and hasattr(obj, "site_keys") and hasattr(obj, "channels")


def _iter_images(
    source: Any, sites: Sequence[tuple[str, int]] | None, max_sites: int, seed: int
) -> tuple[list[str] | None, Iterable[tuple[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    if _is_plate(source):
        keys = list(sites) if sites is not None else list(source.site_keys())
        if len(keys) > max_sites:
            idx = np.sort(rng.choice(len(keys), size=max_sites, replace=False))
            keys = [keys[i] for i in idx]
        plate_name = getattr(source, "name", "plate")

        def gen() -> Iterable[tuple[str, np.ndarray]]:
            for well, site in keys:
                yield f"plate {plate_name!r} well {well} site {site}", source.read(well, site)

        return list(source.channels), gen()
    if isinstance(source, np.ndarray):
        arr = source[None] if source.ndim == 3 else source
        if arr.ndim != 4:
            raise PlateError(
                f"expected images (N, C, H, W) or (C, H, W), found shape {source.shape}"
            )
        images = list(arr)
    else:
        images = [np.asarray(a) for a in source]
    order = np.arange(len(images))
    if len(images) > max_sites:
        order = np.sort(rng.choice(len(images), size=max_sites, replace=False))
    return None, ((f"image {i}", images[i]) for i in order)


def estimate_channel_stats(
    plate_or_images: Any,
    sites: Sequence[tuple[str, int]] | None = None,
    max_sites: int = 64,
    seed: int = 0,
    channel_names: Sequence[str] | None = None,
    low_percentile: float = DEFAULT_LOW_PERCENTILE,
    high_percentile: float = DEFAULT_HIGH_PERCENTILE,
) -> ChannelStats:
    """Estimate robust per-channel percentiles from a Plate or from images.

    ``plate_or_images``: a Plate (reads ``sites``, default all, at most ``max_sites`` sampled
    with ``seed``), an array (N, C, H, W) / (C, H, W) or a sequence of (C, H, W) arrays.
    At most 65,536 random pixels per image and channel are used.
    """
    names_from_plate, images = _iter_images(plate_or_images, sites, max_sites, seed)
    rng = np.random.default_rng(seed + 1)
    samples: list[np.ndarray] = []
    mins: np.ndarray | None = None
    maxs: np.ndarray | None = None
    n_images = 0
    n_channels: int | None = None
    for name, image in images:
        image = np.asarray(image)
        if image.ndim != 3:
            raise PlateError(f"{name}: expected (C, H, W), found shape {image.shape}")
        if n_channels is None:
            n_channels = image.shape[0]
        elif image.shape[0] != n_channels:
            raise PlateError(f"{name}: expected {n_channels} channels, found {image.shape[0]}")
        check_finite(image, name)
        flat = image.reshape(image.shape[0], -1)
        if flat.shape[1] > _PIXELS_PER_IMAGE:
            idx = rng.choice(flat.shape[1], size=_PIXELS_PER_IMAGE, replace=False)
            flat = flat[:, idx]
        flat = flat.astype(np.float64)
        samples.append(flat)
        img_min, img_max = (
            image.reshape(image.shape[0], -1).min(1),
            image.reshape(image.shape[0], -1).max(1),
        )
        mins = img_min if mins is None else np.minimum(mins, img_min)
        maxs = img_max if maxs is None else np.maximum(maxs, img_max)
        n_images += 1
    if n_images == 0 or n_channels is None:
        raise PlateError("cannot estimate channel statistics: no images to sample")
    names = list(channel_names or names_from_plate or [f"channel {i}" for i in range(n_channels)])
    if len(names) != n_channels:
        raise PlateError(f"expected {len(names)} channels ({names}), found {n_channels}")
    pooled = np.concatenate(samples, axis=1)
    low = np.percentile(pooled, low_percentile, axis=1)
    high = np.percentile(pooled, high_percentile, axis=1)
    assert mins is not None and maxs is not None
    constant = [n for n, lo, hi in zip(names, mins, maxs, strict=False) if hi <= lo]
    if constant:
        values = {n: float(mins[names.index(n)]) for n in constant}
        raise PlateError(
            f"channel(s) {', '.join(repr(c) for c in constant)} are constant over the "
            f"{n_images} sampled images (value {values}); a constant channel carries no "
            "information and cannot be normalised: remove it or check the acquisition"
        )
    # Sparse channels (mostly background) can have equal percentiles: fall back to min/max.
    for i in range(n_channels):
        if high[i] <= low[i]:
            low[i], high[i] = float(mins[i]), float(maxs[i])
    return ChannelStats(
        channel_names=names,
        low=[float(v) for v in low],
        high=[float(v) for v in high],
        low_percentile=low_percentile,
        high_percentile=high_percentile,
        n_images=n_images,
    )


def normalise(array: np.ndarray, stats: ChannelStats, *, inplace: bool = False) -> np.ndarray:
    """(x - low) / (high - low) per channel; (C, H, W) or (B, C, H, W) -> float32.

    The one implementation of the transform, used by training and prediction alike.
    ``inplace=True`` overwrites a writeable float32 ``array`` and returns it (no second copy
    of a training set); any other array is converted to a new float32 array as usual. Both
    paths run the same float32 operations, so the results are bit-identical.
    """
    arr = np.asarray(array)
    if arr.ndim not in (3, 4):
        raise PlateError(f"normalise: expected (C, H, W) or (B, C, H, W), found shape {arr.shape}")
    c = arr.shape[-3]
    if c != len(stats.channel_names):
        raise PlateError(
            f"normalise: expected {len(stats.channel_names)} channels {stats.channel_names}, "
            f"found {c}"
        )
    low = np.asarray(stats.low, dtype=np.float32).reshape(c, 1, 1)
    scale = 1.0 / (np.asarray(stats.high, np.float64) - np.asarray(stats.low, np.float64))
    scale = scale.astype(np.float32).reshape(c, 1, 1)
    own = inplace and arr.dtype == np.float32 and arr.flags.writeable
    out = arr if own else arr.astype(np.float32, copy=True)
    out -= low
    out *= scale
    return out
