"""Cell-like multi-channel fields (nuclei, cytoplasm, organelle textures) with a phenotype.

The phenotype ("granular") moves about half of a channel's signal into bright puncta inside its
cellular compartment and raises its total intensity by 10 % x strength. Texture is the main
cue: per-site gains vary by about 25 %, so mean intensity alone separates the classes weakly.
Channels without an effect are drawn from the same distribution in both classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage as ndi

DEFAULT_CHANNELS = ("DNA", "ER", "RNA", "AGP", "Mito")

# what a channel shows, by stain name (Cell Painting and RxRx1 names)
KINDS = {
    "dna": "nuclei",
    "hoechst": "nuclei",
    "dapi": "nuclei",
    "er": "er",
    "cona": "er",
    "rna": "rna",
    "syto14": "rna",
    "agp": "agp",
    "phalloidin": "agp",
    "actin": "agp",
    "wga": "membrane",
    "mito": "mito",
    "mitotracker": "mito",
}
_CYCLE = ("nuclei", "er", "rna", "agp", "mito")

# (background, scale, max) of each output dtype
_RANGE = {
    "uint8": (8.0, 150.0, 255),
    "uint16": (200.0, 3000.0, 65535),
    "float32": (0.02, 1.0, None),
}


def channel_kind(name: str, index: int = 0) -> str:
    """What a channel shows (nuclei, er, rna, agp, membrane, mito) from its stain name."""
    return KINDS.get(name.strip().lower(), _CYCLE[index % len(_CYCLE)])


def _blur(img: np.ndarray, sigma: float | tuple[float, float]) -> np.ndarray:
    return ndi.gaussian_filter(img, sigma, mode="wrap", truncate=3.0)


def _norm(img: np.ndarray) -> np.ndarray:
    img = img - img.mean()
    return img / (img.std() + 1e-6)


def _puncta(
    rng: np.random.Generator, support: np.ndarray, density: float, sigma: float
) -> np.ndarray:
    """Bright round dots scattered where ``support`` is high, each with a peak near 1."""
    dots = (rng.random(support.shape, dtype=np.float32) < density * support).astype(np.float32)
    dots *= rng.uniform(0.6, 1.4, size=support.shape).astype(np.float32)
    return _blur(dots, sigma) * np.float32(2 * np.pi * sigma**2)


class _Cells:
    """The shared geometry of one field: where cells and nuclei are."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        n_cells = max(3, round(size * size / 700))
        self.size = size
        self.r_nuc = max(1.5, size / 36)
        r_cell = 2.6 * self.r_nuc
        imp = np.zeros((size, size), np.float32)
        ys, xs = rng.integers(0, size, n_cells), rng.integers(0, size, n_cells)
        np.add.at(imp, (ys, xs), rng.uniform(0.8, 1.2, n_cells).astype(np.float32))
        nuc = _blur(imp, self.r_nuc) * np.float32(2 * np.pi * self.r_nuc**2)
        self.nuclei = np.clip((nuc - 0.3) * 3.0, 0, 1)
        body = _blur(imp, r_cell) * np.float32(2 * np.pi * r_cell**2)
        wobble = 1 + 0.25 * _norm(_blur(rng.standard_normal((size, size), np.float32), 3))
        self.cyto = np.clip(body * wobble * 1.6 - 0.15, 0, 1)
        self.cyto_only = np.clip(self.cyto - self.nuclei, 0, 1)


def _draw(kind: str, cells: _Cells, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(image in ~[0, 1], compartment where a phenotype acts)`` for one channel."""
    s = cells.size
    noise = rng.standard_normal((s, s), np.float32)
    if kind == "nuclei":
        img = cells.nuclei * (0.8 + 0.2 * np.clip(_norm(_blur(noise, 1.5)), -2, 2))
        return img, cells.nuclei
    if kind == "er":
        reticulum = np.clip(0.6 + 0.25 * _norm(_blur(noise, 1.2)), 0, 1)
        img = cells.cyto_only * reticulum * 0.8 + 0.3 * _blur(cells.nuclei, 2) * cells.cyto
        return img, cells.cyto_only
    if kind == "rna":
        speckles = _puncta(rng, cells.cyto, 0.01, 0.7)
        img = 0.25 * cells.cyto + 0.3 * cells.nuclei + 0.4 * speckles * cells.cyto
        return img, cells.cyto
    if kind in ("agp", "membrane"):
        gy, gx = np.gradient(_blur(cells.cyto, 1.0))
        edges = np.sqrt(gx * gx + gy * gy)
        edges /= edges.max() + 1e-6
        fibres = np.clip(_norm(_blur(noise, (0.6, 3.0) if kind == "agp" else 1.0)), 0, None)
        img = 0.8 * edges + 0.25 * cells.cyto_only * (0.5 + 0.3 * fibres)
        return img, cells.cyto_only
    # mito: tubular network from band-passed noise inside the cytoplasm
    band = _blur(noise, 0.9) - _blur(noise, 2.2)
    tubes = np.clip(1.0 - np.abs(_norm(band)) * 1.2, 0, 1)
    img = cells.cyto_only * (0.2 + 0.6 * tubes)
    return img, cells.cyto_only


def _phenotype(img: np.ndarray, support: np.ndarray, strength: float, rng) -> np.ndarray:
    """Move ~55 % x ``strength`` of the signal into bright puncta; total rises 10 % x strength."""
    puncta = _puncta(rng, support, 0.015, 0.8) * support
    kept = img * (1 - 0.55 * strength)
    wanted = img.sum() * (1 + 0.10 * strength) - kept.sum()
    return kept + puncta * np.float32(wanted / max(float(puncta.sum()), 1e-6))


def synthesize_site(
    seed: int | np.random.Generator | Sequence[int],
    channels: Sequence[str] = DEFAULT_CHANNELS,
    effects: Mapping[str, float] | None = None,
    image_size: int = 96,
    dtype: str | np.dtype = "uint16",
) -> np.ndarray:
    """One field of view ``(C, H, W)``; ``effects`` maps channel -> phenotype strength (0..1).

    Deterministic for a given ``seed`` (an int, a sequence like ``[seed, well, site]`` or a
    Generator). An empty ``effects`` draws a control site.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.name not in _RANGE:
        raise ValueError(f"dtype {dtype} is not supported; use uint8, uint16 or float32")
    background, scale, top = _RANGE[dtype.name]
    effects = dict(effects or {})
    cells = _Cells(rng, int(image_size))
    out = np.empty((len(channels), image_size, image_size), dtype)
    for i, name in enumerate(channels):
        img, support = _draw(channel_kind(name, i), cells, rng)
        strength = float(effects.get(name, 0.0))
        # the phenotype's random draws come after the channel's own, so controls and treated
        # sites share everything else
        pheno_rng = np.random.default_rng(rng.integers(2**63))
        if strength > 0:
            img = _phenotype(img, support, strength, pheno_rng)
        gain = rng.lognormal(0.0, 0.25)
        signal = background + scale * gain * img
        signal = signal + rng.standard_normal(img.shape, np.float32) * np.sqrt(
            np.maximum(signal, 1.0) * (scale / 1000.0)
        )
        if top is None:
            out[i] = signal
        else:
            out[i] = np.clip(np.rint(signal), 0, top)
    return out
