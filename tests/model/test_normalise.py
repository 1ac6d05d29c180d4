from __future__ import annotations

import numpy as np
import pytest

from napari_dcmix.errors import PlateError
from napari_dcmix.plate.normalise import ChannelStats, estimate_channel_stats, normalise


def test_estimate_and_normalise(array_plate) -> None:
    plate, _ = array_plate
    stats = estimate_channel_stats(plate, max_sites=10, seed=0)
    assert stats.channel_names == plate.channels and stats.n_images == 10
    assert all(lo < hi for lo, hi in zip(stats.low, stats.high, strict=True))
    img = plate.read("A02", 1)
    out = normalise(img, stats)
    assert out.dtype == np.float32 and out.shape == img.shape
    assert normalise(img[None], stats).shape == (1, *img.shape)
    assert ChannelStats.from_dict(stats.to_dict()) == stats
    again = estimate_channel_stats(plate, max_sites=10, seed=0)
    assert again == stats


def test_percentiles_are_robust() -> None:
    x = np.random.default_rng(0).uniform(0, 1, size=(4, 2, 50, 50)).astype(np.float32)
    x[0, 0, 0, 0] = 1e6  # one hot pixel does not move the 99.8th percentile
    stats = estimate_channel_stats(x, channel_names=["a", "b"])
    assert stats.high[0] < 1.01 and stats.low[0] > -0.01


def test_constant_channel_named() -> None:
    x = np.random.default_rng(0).uniform(0, 1, size=(3, 3, 10, 10)).astype(np.float32)
    x[:, 1] = 7.0
    with pytest.raises(PlateError, match=r"'ER'.*constant"):
        estimate_channel_stats(x, channel_names=["DNA", "ER", "Mito"])


def test_nan_names_the_image(array_plate) -> None:
    plate, _ = array_plate
    plate.images = plate.images.astype(np.float32)
    plate.images[2, 1, 0, 3, 3] = np.nan
    with pytest.raises(PlateError, match=r"well A03 site 2.*1 NaN"):
        estimate_channel_stats(plate, max_sites=100)
    x = np.ones((2, 1, 4, 4), np.float32)
    x[1, 0, 0, 0] = np.inf
    with pytest.raises(PlateError, match=r"image 1.*infinite"):
        estimate_channel_stats(x)


def test_channel_count_mismatch() -> None:
    stats = ChannelStats(["a", "b"], [0, 0], [1, 1])
    with pytest.raises(PlateError, match="expected 2 channels"):
        normalise(np.zeros((3, 4, 4)), stats)
