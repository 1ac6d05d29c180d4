"""resize_area (the one area resize training and prediction share) and the fused normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_dcmix.model.data import Normaliser, preprocess, resize_area
from napari_dcmix.plate.normalise import ChannelStats, normalise


def _area(image: np.ndarray, size: int) -> np.ndarray:
    t = torch.from_numpy(np.asarray(image, dtype=np.float64))
    return F.interpolate(t[None], size=(size, size), mode="area")[0].numpy()


@pytest.mark.parametrize(
    ("dtype", "shape", "size"),
    [
        (np.uint16, (5, 64, 64), 16),  # factor 4: the fast integer path
        (np.uint16, (3, 48, 96), 16),  # factors 3 x 6 (not powers of two)
        (np.uint8, (2, 30, 45), 15),  # odd factors 2 x 3
        (np.int16, (2, 40, 40), 8),  # signed, factor 5
        (np.uint32, (2, 32, 32), 8),
        (np.float32, (3, 64, 64), 16),  # float input: float64 block sums
        (np.float64, (2, 27, 27), 9),
        (np.uint16, (3, 50, 50), 16),  # not a multiple: F.interpolate area
        (np.float32, (2, 33, 47), 16),
        (np.uint16, (3, 16, 16), 16),  # identity
        (np.uint16, (3, 8, 8), 16),  # upsampling
    ],
)
def test_resize_area_equals_interpolate_area(dtype, shape, size) -> None:
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        image = rng.integers(max(info.min, -30000), min(info.max, 2**20), shape, dtype=dtype)
        image.flat[:3] = [info.max if info.max < 2**20 else 2**20, 0, max(info.min, -30000)]
    else:
        image = rng.normal(1000, 300, shape).astype(dtype)
    got = resize_area(image, size)
    want = _area(image, size)
    assert got.dtype == np.float32 and got.shape == (shape[0], size, size)
    np.testing.assert_allclose(got, want, rtol=2e-7 * 2, atol=0)
    # the same through F.interpolate on float32, as before the fast path (to float32 rounding)
    t = torch.from_numpy(np.asarray(image, dtype=np.float32))[None]
    old = F.interpolate(t, size=(size, size), mode="area")[0].numpy()
    np.testing.assert_allclose(got, old, rtol=1e-6, atol=0)


def test_resize_area_power_of_two_uint16_is_bit_identical_to_torch() -> None:
    image = np.random.default_rng(1).integers(0, 65536, (5, 128, 128), dtype=np.uint16)
    t = torch.from_numpy(image.astype(np.float32))[None]
    want = F.interpolate(t, size=(32, 32), mode="area")[0].numpy()
    np.testing.assert_array_equal(resize_area(image, 32), want)


def test_resize_area_batches_and_leaves_input_alone() -> None:
    rng = np.random.default_rng(2)
    batch = rng.integers(0, 4000, (4, 3, 64, 64), dtype=np.uint16)
    keep = batch.copy()
    out = resize_area(batch, 16)
    assert out.shape == (4, 3, 16, 16)
    np.testing.assert_array_equal(out, np.stack([resize_area(b, 16) for b in batch]))
    np.testing.assert_array_equal(batch, keep)


def test_normaliser_matches_normalise_and_preprocess_copies() -> None:
    stats = ChannelStats(list("abc"), [10.0, 0.5, 100.0], [4000.0, 7.0, 2100.0])
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 5000, (3, 16, 16)).astype(np.float32)
    keep = image.copy()
    want = normalise(image, stats)
    np.testing.assert_array_equal(Normaliser(stats)(image.copy()), want)
    # identity size: the input array must not be normalised in place
    np.testing.assert_array_equal(preprocess(image, 16, stats), want)
    np.testing.assert_array_equal(preprocess(image, 16, Normaliser(stats)), want)
    np.testing.assert_array_equal(image, keep)
    raw = rng.integers(0, 4000, (3, 64, 64), dtype=np.uint16)
    np.testing.assert_array_equal(
        preprocess(raw, 16, stats), normalise(resize_area(raw, 16), stats)
    )
