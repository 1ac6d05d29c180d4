"""Synthetic plates: which wells are treated, in-memory arrays, and plates written to disk."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_dcmix.errors import PlateError
from napari_dcmix.plate.labels import write_labels_csv
from napari_dcmix.plate.wells import normalise_well, well_name
from napari_dcmix.synthetic.fields import DEFAULT_CHANNELS, KINDS, synthesize_site

CONTROL, TREATED = "control", "treated"
GROUND_TRUTH = "ground_truth.json"
# (rows, columns) of the standard plate formats, smallest first
PLATE_FORMATS = ((8, 12), (16, 24), (32, 48))


@dataclass
class SyntheticArrays:
    """An in-memory synthetic plate: ``images`` is ``(n_wells, sites, C, H, W)``."""

    images: np.ndarray
    wells: list[str]
    channels: list[str]
    labels: dict[str, str]
    ground_truth: dict[str, float]


@dataclass
class SyntheticPlate:
    """A synthetic plate on disk: ``path`` is what to pass to ``open_plate``; ``name`` and
    ``channels`` are what the opened Plate reports; ``ground_truth`` maps channel -> strength."""

    path: Path
    labels_csv: Path
    labels: dict[str, str]
    ground_truth: dict[str, float]
    layout: str
    name: str = ""
    channels: list[str] = field(default_factory=list)
    wells: list[str] = field(default_factory=list)


def plate_wells(n_wells: int) -> list[str]:
    """The first ``n_wells`` wells, row-major, of the smallest standard plate that holds them."""
    for rows, cols in PLATE_FORMATS:
        if n_wells <= rows * cols:
            return [well_name(r, c) for r in range(rows) for c in range(1, cols + 1)][:n_wells]
    raise PlateError(f"{n_wells} wells do not fit a 1536-well plate")


def assign_labels(wells: Sequence[str], treated_fraction: float, seed: int) -> dict[str, str]:
    """Treated/control per well, interleaved across the plate so position is no cue.

    The minority class gets one well, picked at random, in each of equal consecutive blocks.
    """
    if not 0.0 <= treated_fraction <= 1.0:
        raise ValueError(f"treated_fraction must be within 0..1, got {treated_fraction}")
    n = len(wells)
    n_treated = round(treated_fraction * n)
    minority, majority = (TREATED, CONTROL) if n_treated <= n - n_treated else (CONTROL, TREATED)
    n_minority = min(n_treated, n - n_treated)
    rng = np.random.default_rng([seed, 7919])
    labels = dict.fromkeys(wells, majority)
    if n_minority:
        for block in np.array_split(np.arange(n), n_minority):
            labels[wells[int(rng.choice(block))]] = minority
    return labels


def resolve_channel(name: str, channels: Sequence[str], role: str = "phenotype") -> str:
    """The channel ``name`` refers to: exact, case-insensitive, or same stain kind
    (``Mito`` finds ``MitoTracker``, ``DNA`` finds ``Hoechst``)."""
    if name in channels:
        return name
    for candidate in channels:
        if candidate.lower() == name.lower():
            return candidate
    kind = KINDS.get(name.lower())
    same = [c for c in channels if kind is not None and KINDS.get(c.lower()) == kind]
    if len(same) == 1:
        return same[0]
    raise PlateError(f"{role} channel {name!r} is not one of the channels {', '.join(channels)}")


def phenotype_effects(
    channels: Sequence[str],
    phenotype_channel: str,
    second_channel: str | None,
    second_strength: float,
) -> dict[str, float]:
    """Ground truth: ``{channel: phenotype strength}`` (1.0 phenotype, else 0 or second)."""
    phenotype_channel = resolve_channel(phenotype_channel, channels)
    if second_channel is not None:
        second_channel = resolve_channel(second_channel, channels, "second")
        if second_channel == phenotype_channel:
            raise PlateError("the second channel must differ from the phenotype channel")
    truth = dict.fromkeys(channels, 0.0)
    truth[phenotype_channel] = 1.0
    if second_channel is not None:
        truth[second_channel] = float(second_strength)
    return truth


def site_seed(seed: int, well: str, site: int) -> list[int]:
    """Seed of one site: independent of plate size and generation order."""
    return [int(seed), *well.encode(), int(site)]


def synthesize_plate_arrays(
    n_wells: int = 8,
    sites: int = 2,
    channels: Sequence[str] = DEFAULT_CHANNELS,
    phenotype_channel: str = "Mito",
    second_channel: str | None = None,
    second_strength: float = 0.3,
    image_size: int = 96,
    dtype: str = "uint16",
    seed: int = 0,
    treated_fraction: float = 0.5,
    wells: Sequence[str] | None = None,
) -> SyntheticArrays:
    """A synthetic plate in memory (same pixels as ``write_synthetic_plate`` would write)."""
    wells = [normalise_well(w) for w in wells] if wells is not None else plate_wells(n_wells)
    channels = list(channels)
    truth = phenotype_effects(channels, phenotype_channel, second_channel, second_strength)
    labels = assign_labels(wells, treated_fraction, seed)
    images = np.empty((len(wells), sites, len(channels), image_size, image_size), np.dtype(dtype))
    for i, (_well, site, data) in enumerate(
        _synthesize_sites(wells, sites, channels, labels, truth, image_size, dtype, seed)
    ):
        images[i // sites, site - 1] = data
    return SyntheticArrays(images, wells, channels, labels, truth)


def _synthesize_sites(
    wells: Sequence[str],
    sites: int,
    channels: Sequence[str],
    labels: dict[str, str],
    truth: dict[str, float],
    image_size: int,
    dtype: str,
    seed: int,
):
    """Yield ``(well, site, (C, H, W) pixels)`` for every site, row-major: the one place that
    decides which sites show the phenotype, shared by the in-memory and on-disk plates."""
    for well in wells:
        effects = truth if labels[well] == TREATED else None
        for site in range(1, sites + 1):
            yield (
                well,
                site,
                synthesize_site(site_seed(seed, well, site), channels, effects, image_size, dtype),
            )


def write_synthetic_plate(
    out_dir: str | Path,
    layout: str = "tiff",
    n_wells: int = 8,
    sites: int = 2,
    channels: Sequence[str] = DEFAULT_CHANNELS,
    phenotype_channel: str = "Mito",
    second_channel: str | None = None,
    second_strength: float = 0.3,
    image_size: int = 96,
    dtype: str = "uint16",
    seed: int = 0,
    treated_fraction: float = 0.5,
    plate_name: str = "SynthPlate",
    wells: Sequence[str] | None = None,
    ome_zarr_version: str = "0.5",
) -> SyntheticPlate:
    """Write a synthetic plate in ``layout`` under ``out_dir`` with ``labels.csv`` and
    ``ground_truth.json`` beside it; deterministic per ``seed``.

    Treated wells show the phenotype in ``phenotype_channel`` (strength 1) and, weaker, in
    ``second_channel``. The rxrx1 layout stores 8-bit PNGs named by RxRx1 stains, so there
    ``dtype`` is uint8 and DNA/ER/AGP/RNA/Mito become Hoechst/ConA/Phalloidin/Syto14/
    MitoTracker (phenotype channel names may be given either way).
    """
    from napari_dcmix.synthetic.writers import WRITERS, OmeZarrV04Writer, layout_channels

    if layout not in WRITERS:
        raise PlateError(f"unknown layout {layout!r}; expected one of {', '.join(WRITERS)}")
    if ome_zarr_version not in ("0.4", "0.5"):
        raise PlateError(f"ome_zarr_version must be '0.4' or '0.5', not {ome_zarr_version!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_previous(out_dir)
    names = layout_channels(layout, channels)
    if layout == "rxrx1":
        dtype = "uint8"
    wells = [normalise_well(w) for w in wells] if wells is not None else plate_wells(n_wells)
    truth = phenotype_effects(names, phenotype_channel, second_channel, second_strength)
    labels = assign_labels(wells, treated_fraction, seed)
    writer_cls = (
        OmeZarrV04Writer if layout == "ome-zarr" and ome_zarr_version == "0.4" else WRITERS[layout]
    )
    writer = writer_cls(out_dir, plate_name, names, sites, seed)
    for well, site, data in _synthesize_sites(
        wells, sites, names, labels, truth, image_size, dtype, seed
    ):
        writer.write_site(well, site, data)
    writer.finish(wells)
    labels_csv = write_labels_csv(out_dir / "labels.csv", labels)
    record = {
        "layout": layout,
        "name": writer.name,
        "path": writer.path.relative_to(out_dir).as_posix(),
        "phenotype_channel": max(truth, key=truth.__getitem__),
        "channel_strength": truth,
        "channels": names,
        "seed": seed,
    }
    (out_dir / GROUND_TRUTH).write_text(json.dumps(record, indent=2) + "\n")
    return SyntheticPlate(writer.path, labels_csv, labels, truth, layout, writer.name, names, wells)


def _remove_previous(out_dir: Path) -> None:
    """Delete a synthetic plate written earlier into ``out_dir`` (found via its record)."""
    import shutil

    try:
        old = out_dir / json.loads((out_dir / GROUND_TRUTH).read_text())["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if old.resolve() != out_dir.resolve() and out_dir.resolve() in old.resolve().parents:
        shutil.rmtree(old, ignore_errors=True)


def load_synthetic_plate(out_dir: str | Path) -> SyntheticPlate:
    """The :class:`SyntheticPlate` written into ``out_dir`` (which may have been moved since)."""
    from napari_dcmix.plate.labels import read_labels_csv

    out_dir = Path(out_dir)
    try:
        record = json.loads((out_dir / GROUND_TRUTH).read_text())
        labels_csv = out_dir / "labels.csv"
        labels = read_labels_csv(labels_csv)
        return SyntheticPlate(
            path=out_dir / record["path"],
            labels_csv=labels_csv,
            labels=labels,
            ground_truth={k: float(v) for k, v in record["channel_strength"].items()},
            layout=record["layout"],
            name=record["name"],
            channels=list(record["channels"]),
            wells=list(labels),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise PlateError(f"{out_dir} is not a synthetic plate folder: {exc}") from None
