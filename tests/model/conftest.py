"""Fixtures for the model tests: small seeded CPU data, an in-memory Plate stand-in."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(2)

CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]


class ArrayPlate:
    """Duck-typed Plate over an in-memory array (n_wells, sites, C, H, W): public API only."""

    layout = "tiff"
    path = "<in memory>"

    def __init__(self, images: np.ndarray, wells: list[str], channels: list[str], name="Mem"):
        self.name = name
        self.images = images
        self.wells = list(wells)
        self.channels = list(channels)
        self.image_shape = images.shape[-2:]
        self.dtype = images.dtype
        self.reads = 0

    def sites(self, well: str) -> list[int]:
        return list(range(1, self.images.shape[1] + 1))

    def site_keys(self) -> list[tuple[str, int]]:
        return [(w, s) for w in self.wells for s in self.sites(w)]

    def read(self, well: str, site: int) -> np.ndarray:
        self.reads += 1
        return self.images[self.wells.index(well), site - 1].copy()


def make_images(n: int, informative: int = 2, c: int = 4, size: int = 24, seed: int = 0):
    """Class 1 has a bright square in channel ``informative``; the others are pure noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, c, size, size)).astype(np.float32)
    q = size // 4
    x[:, informative, q : 3 * q, q : 3 * q] += 2.5 * y[:, None, None]
    return x, y


@pytest.fixture
def images():
    """make_images(n, informative=2, c=4, size=24, seed=0) -> (x, y)."""
    return make_images


@pytest.fixture
def array_plate() -> tuple[ArrayPlate, dict[str, str]]:
    rng = np.random.default_rng(1)
    wells = [f"A{i:02d}" for i in range(1, 9)]
    images = rng.integers(100, 4000, size=(8, 3, 5, 40, 40)).astype(np.uint16)
    labels = {w: ("treated" if i % 2 else "control") for i, w in enumerate(wells)}
    for i in range(1, 8, 2):
        images[i, :, 4, 10:30, 10:30] += 3000
    return ArrayPlate(images, wells, CHANNELS), labels
