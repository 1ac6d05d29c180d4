"""The float32 block-sum path of ``resize_area`` equals integer block sums scaled once."""

from __future__ import annotations

import numpy as np
import pytest

from napari_dcmix.model.data import resize_area


def _reference(a: np.ndarray, size: int) -> np.ndarray:
    *lead, h, w = a.shape
    fy, fx = h // size, w // size
    sums = a.reshape(*lead, size, fy, size, fx).sum(axis=(-3, -1), dtype=np.int64)
    return sums.astype(np.float32) * np.float32(1.0 / (fy * fx))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize(
    ("shape", "size"),
    [((5, 512, 512), 128), ((2, 64, 96), 32), ((3, 32, 64), 32), ((2, 2, 64, 32), 32)],
)
def test_block_mean_exact(dtype, shape, size):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(0)
    a = rng.integers(info.min, info.max, shape, endpoint=True, dtype=dtype)
    a.reshape(-1)[:3] = [info.min, info.max, info.max]
    out = resize_area(a, size)
    assert out.dtype == np.float32 and out.shape == (*shape[:-2], size, size)
    np.testing.assert_array_equal(out, _reference(a, size))
    np.testing.assert_array_equal(resize_area(np.asfortranarray(a), size), out)
