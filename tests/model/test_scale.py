"""Pixel scale: binning, tiles that cover every pixel, crops that never stretch a site, old
model files, and the bad inputs of scales."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_dcmix.errors import ModelError
from napari_dcmix.model import PixelScale, build_model, load_model, predict_arrays
from napari_dcmix.model.scale import bin_pixels, tile_grid, tile_starts
from napari_dcmix.model.sites import SitePrep
from napari_dcmix.plate.normalise import ChannelStats

DATA = Path(__file__).parent.parent / "data"


def _stats(c: int) -> ChannelStats:
    return ChannelStats([f"c{i}" for i in range(c)], [10.0] * c, [1010.0] * c)


def test_bin_is_an_exact_block_mean() -> None:
    x = np.arange(2 * 6 * 9, dtype=np.uint16).reshape(2, 6, 9)
    out = bin_pixels(x, 3)
    assert out.shape == (2, 2, 3) and out.dtype == np.float32
    assert out[1, 1, 2] == x[1, 3:6, 6:9].mean()
    # partial blocks at the edges are dropped, never resampled
    assert bin_pixels(np.ones((1, 7, 5), np.uint8), 2).shape == (1, 3, 2)


@pytest.mark.parametrize(("length", "crop"), [(512, 128), (384, 128), (1080, 128), (100, 32)])
def test_tiles_cover_every_pixel_once_when_the_crop_divides(length: int, crop: int) -> None:
    starts = tile_starts(length, crop)
    covered = np.zeros(length, int)
    for s in starts:
        covered[s : s + crop] += 1
    assert covered.min() >= 1 and starts[0] == 0 and starts[-1] + crop == length
    if length % crop == 0:
        assert (covered == 1).all() and starts == list(range(0, length, crop))


def test_site_tiles_are_exact_crops_of_a_1360x1024_site() -> None:
    """A non-square site is cut into crops of its own pixels: never resized or stretched."""
    rng = np.random.default_rng(0)
    site = rng.integers(0, 4000, (2, 1024, 1360)).astype(np.uint16)
    prep = SitePrep(PixelScale(bin=1, crop=128), 128, _stats(2))
    tiles = prep.tiles(site)
    grid = tile_grid((1024, 1360), 128)
    assert tiles.shape == (len(grid), 2, 128, 128) == (8 * 11, 2, 128, 128)
    for (y, x), tile in zip(grid, tiles, strict=True):
        expected = (site[:, y : y + 128, x : x + 128].astype(np.float32) - 10) / 1000
        np.testing.assert_allclose(tile, expected, rtol=1e-6)
    # binned by 2, the same: crops of the binned site
    tiles2 = SitePrep(PixelScale(bin=2, crop=128), 128, _stats(2)).tiles(site)
    assert tiles2.shape[0] == len(tile_grid((512, 680), 128)) == 4 * 6


def test_max_tiles_spreads_a_subgrid_over_the_site() -> None:
    full = tile_grid((1080, 1080), 128)
    capped = tile_grid((1080, 1080), 128, max_tiles=16)
    assert len(full) == 81 and len(capped) == 16
    ys = sorted({y for y, _ in capped})
    assert ys[0] == 0 and ys[-1] == 1080 - 128  # first and last rows kept: the site is spanned
    with pytest.raises(ModelError, match=r"max tiles.*found 0"):
        tile_grid((1080, 1080), 128, max_tiles=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bin": 0}, "bin: expected a positive integer, found 0"),
        ({"bin": 1.5}, "bin: expected a positive integer, found 1.5"),
        ({"crop": 0}, "crop: expected a positive integer of at least 8 pixels, found 0"),
        ({"crop": "big"}, "crop: expected a positive integer or 'full', found 'big'"),
    ],
)
def test_bad_scales_name_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        PixelScale(**kwargs)


def test_a_crop_larger_than_the_binned_site_names_both_sizes() -> None:
    with pytest.raises(
        ModelError, match=r"96 x 96 px after binning by 4 \(384 x 384 px.*128 x 128"
    ):
        PixelScale(bin=4, crop=128).check_site((384, 384))
    model = build_model(["a", "b"], ["x", "y"], scale=PixelScale(bin=1, crop=64))
    model.normalisation = _stats(2)
    model.normalisation.channel_names = ["a", "b"]
    with pytest.raises(ModelError, match=r"32 x 32 px.*64 x 64 px crop"):
        predict_arrays(model, np.zeros((1, 2, 32, 32), np.float32), device="cpu")


def test_crop_model_averages_tile_probabilities() -> None:
    model = build_model(["a", "b"], ["x", "y"], scale=PixelScale(bin=1, crop=16), seed=2)
    with torch.no_grad():
        model.mixing.logits.normal_(generator=torch.Generator().manual_seed(1))
    model.normalisation = ChannelStats(["a", "b"], [0.0, 0.0], [1.0, 1.0])
    site = np.random.default_rng(3).random((2, 32, 48)).astype(np.float32)
    tiles = [site[:, y : y + 16, x : x + 16] for y, x in tile_grid((32, 48), 16)]
    per_tile = predict_arrays(model, np.stack(tiles), device="cpu")
    whole = predict_arrays(model, site[None], device="cpu")
    np.testing.assert_allclose(whole[0], per_tile.mean(axis=0), rtol=1e-6)


def test_model_file_saved_before_scales_predicts_exactly_as_before() -> None:
    """tests/data/v1_model.pt was saved by the code before pixel scales and ensembles
    (format version 1), with the probabilities it predicted then."""
    expected = json.loads((DATA / "v1_expected.json").read_text())
    model = load_model(DATA / "v1_model.pt")
    assert len(model) == 1 and model.scale == PixelScale(bin=1, crop=None)
    assert str(model.scale) == "bin 1, whole site resized"
    probs = predict_arrays(model, np.load(DATA / "v1_sites.npy"), device="cpu")
    np.testing.assert_allclose(probs, np.asarray(expected["probs"]), rtol=0, atol=1e-6)
    # K = 3 and no blend relevance stored: the readout is the plain mean over K, as before
    imp = model.channel_importance()
    assert imp == pytest.approx(expected["importance"], abs=1e-7)


@pytest.mark.parametrize("shape", [(384, 128), (1280, 128), (128, 1280), (2160, 1360)])
def test_max_tiles_is_a_cap(shape) -> None:
    for cap in (1, 2, 3, 5, 16):
        assert len(tile_grid(shape, 128, cap)) <= cap
