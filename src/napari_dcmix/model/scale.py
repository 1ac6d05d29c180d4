"""The pixel scale a model looks at: binning, crops for training, tiles for prediction.

numpy only. A model's ``PixelScale`` has ``bin`` (an integer binning factor applied to each site
before the network: 1 = the camera's own pixels) and ``crop`` (the side, in binned pixels, of
the square the network sees, or None = "full": the whole binned site area-resized to the
model's input size, the behaviour of models saved before pixel scales existed).

- Training samples random ``crop`` x ``crop`` squares of each binned site (new positions every
  epoch); prediction tiles each binned site with crops on a grid that covers it
  (``tile_grid``) and averages the tiles' probabilities into the site.
- Binning is an exact block mean (``bin_pixels``); a site whose sides are not multiples of the
  factor drops the last partial row / column of blocks (never stretched).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_dcmix.errors import ModelError

FULL = "full"


def _whole_number(value: Any, what: str, expected: str) -> int:
    """``value`` as an int when it is a whole number (or its string), else ModelError."""
    bad = ModelError(f"{what}: expected {expected}, found {value!r}")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise bad from None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise bad


def parse_crop(value: Any) -> int | None:
    """``"full"`` / None -> None; an integer of at least 8 (or its string) -> int; else
    ModelError naming the value."""
    if value is None or (isinstance(value, str) and value.strip().lower() == FULL):
        return None
    number = _whole_number(value, "crop", "a positive integer or 'full'")
    if number < 8:
        raise ModelError(f"crop: expected a positive integer of at least 8 pixels, found {value!r}")
    return number


def parse_bin(value: Any) -> int:
    """A positive integer binning factor, else ModelError naming the value."""
    number = _whole_number(value, "bin", "a positive integer")
    if number < 1:
        raise ModelError(f"bin: expected a positive integer, found {value!r}")
    return number


@dataclass(frozen=True)
class PixelScale:
    """``bin`` (1 = native pixels) and ``crop`` (binned pixels per side, None = whole site)."""

    bin: int = 1
    crop: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bin", parse_bin(self.bin))
        object.__setattr__(self, "crop", parse_crop(self.crop))

    @property
    def full(self) -> bool:
        return self.crop is None

    def __str__(self) -> str:
        if self.crop is None:
            return f"bin {self.bin}, whole site resized"
        return f"bin {self.bin}, crop {self.crop} px"

    def to_dict(self) -> dict[str, Any]:
        return {"bin": self.bin, "crop": FULL if self.crop is None else self.crop}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PixelScale:
        data = data or {}
        return cls(bin=data.get("bin", 1), crop=data.get("crop", FULL))

    def binned_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """(H, W) of a site after binning (partial blocks at the edges dropped)."""
        return int(shape[0]) // self.bin, int(shape[1]) // self.bin

    def check_site(self, shape: tuple[int, int], where: str = "the plate's sites") -> None:
        """ModelError when a site of ``shape`` cannot hold one crop after binning."""
        h, w = self.binned_shape(shape)
        if h < 1 or w < 1:
            raise ModelError(
                f"{where} ({shape[0]} x {shape[1]} px) are smaller than one bin of "
                f"{self.bin} x {self.bin} px"
            )
        if self.crop is not None and (h < self.crop or w < self.crop):
            raise ModelError(
                f"{where} are {h} x {w} px after binning by {self.bin} ({shape[0]} x "
                f"{shape[1]} px before), smaller than one {self.crop} x {self.crop} px crop: "
                "use a smaller crop or bin"
            )

    def footprint(self) -> int | None:
        """Side of one crop in native (unbinned) pixels, None for whole sites."""
        return None if self.crop is None else self.crop * self.bin


def bin_pixels(image: np.ndarray, factor: int) -> np.ndarray:
    """(..., H, W) -> float32 (..., H // f, W // f): exact block means of f x f pixels (the
    last partial blocks dropped). ``factor == 1`` converts to float32 (a copy only when the
    input is not float32 already)."""
    arr = np.asarray(image)
    if factor == 1:
        return np.asarray(arr, dtype=np.float32)
    h, w = arr.shape[-2] // factor, arr.shape[-1] // factor
    if h < 1 or w < 1:
        raise ModelError(f"cannot bin a {arr.shape[-2]} x {arr.shape[-1]} image by {factor}")
    cut = arr[..., : h * factor, : w * factor]
    blocks = cut.reshape(*arr.shape[:-2], h, factor, w, factor)
    # float32 sums of integer pixels are exact while every block sum stays below 2**24
    small_ints = arr.dtype.kind in "iub" and arr.dtype.itemsize <= 2
    exact32 = small_ints and factor * factor * 65536 <= 2**24
    acc = np.float32 if exact32 else np.float64
    out = blocks.sum(axis=(-3, -1), dtype=acc)
    out *= 1.0 / (factor * factor)
    return out.astype(np.float32, copy=False)


def tile_starts(length: int, crop: int) -> list[int]:
    """Start offsets of ``ceil(length / crop)`` crops covering ``0..length``: evenly spread,
    the first at 0 and the last ending at ``length``; exactly ``k * crop`` when ``crop``
    divides ``length`` (every pixel covered once)."""
    if length < crop:
        raise ModelError(f"a side of {length} px cannot hold a crop of {crop} px")
    n = math.ceil(length / crop)
    if n == 1:
        return [0]
    return [round(i * (length - crop) / (n - 1)) for i in range(n)]


def tile_grid(shape: tuple[int, int], crop: int, max_tiles: int | None = None) -> list[tuple]:
    """``(y, x)`` top-left corners of the crops tiling a binned site of ``shape``, row-major.

    ``max_tiles`` caps the count: a sub-grid of rows and columns spread evenly over the full
    grid (so the tiles still span the whole site)."""
    ys, xs = tile_starts(shape[0], crop), tile_starts(shape[1], crop)
    if max_tiles is not None:
        if int(max_tiles) < 1:
            raise ModelError(f"max tiles: expected a positive integer, found {max_tiles!r}")
        if len(ys) * len(xs) > max_tiles:
            ny = min(len(ys), max_tiles, max(1, round(math.sqrt(max_tiles * len(ys) / len(xs)))))
            nx = min(len(xs), max(1, max_tiles // ny))
            ys = [ys[i] for i in _spread(len(ys), ny)]
            xs = [xs[i] for i in _spread(len(xs), nx)]
    return [(y, x) for y in ys for x in xs]


def _spread(n: int, k: int) -> list[int]:
    """``k`` indices out of ``range(n)`` spread evenly, first and last included."""
    if k >= n:
        return list(range(n))
    if k == 1:
        return [n // 2]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def check_max_tiles(value: Any) -> int | None:
    """None (all tiles) or a positive integer, else ModelError naming the value."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ModelError(f"max tiles: expected a positive integer, found {value!r}")
    return int(value)


DEFAULT_CROP = 128


def effective_scale(
    bin_: int | None,
    crop: int | str | None,
    model_scale: PixelScale | None,
    shapes: list[tuple[int, int]] | tuple = (),
) -> PixelScale:
    """The scale a training run uses: the given ``bin_`` / ``crop`` (``"full"`` for whole
    sites), else the model's, else bin 1 and a 128-pixel crop (the whole binned site when a
    site of ``shapes`` is smaller; whole sites when one is under 8 binned pixels)."""
    b = parse_bin(bin_) if bin_ is not None else (model_scale.bin if model_scale else 1)
    if crop is not None:
        return PixelScale(bin=b, crop=parse_crop(crop))
    if model_scale is not None:
        return PixelScale(bin=b, crop=model_scale.crop)
    binned = [min(PixelScale(bin=b).binned_shape(s)) for s in shapes]
    smallest = min(binned) if binned else DEFAULT_CROP
    return PixelScale(bin=b, crop=min(DEFAULT_CROP, smallest) if smallest >= 8 else None)


def coverage_text(scale: PixelScale, input_size: int, pixel_size_um: float | None) -> str:
    """What one network input covers, in camera pixels and (when known) micrometres."""
    if scale.crop is None:
        return (
            f"The network sees each whole site, binned by {scale.bin} and resized to "
            f"{input_size} x {input_size} px."
        )
    side = scale.crop * scale.bin
    um = f" = {side * pixel_size_um:.0f} x {side * pixel_size_um:.0f} um" if pixel_size_um else ""
    binned = f" (binned by {scale.bin}: {scale.crop} px)" if scale.bin > 1 else ""
    return f"One crop covers {side} x {side} camera pixels{um}{binned}."
