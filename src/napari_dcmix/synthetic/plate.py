"""Synthetic plates: which wells are treated, in-memory arrays, and plates written to disk."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_dcmix.errors import PlateError
from napari_dcmix.plate.labels import write_labels_csv
from napari_dcmix.plate.pixel_size import as_number
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
    pixel_size_um: float | None = None  # as written into the plate's metadata (None: none)


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
    planes: int = 1,
    timepoints: int = 1,
):
    """Yield ``(well, site, (C, H, W) pixels)`` for every site, row-major: the one place that
    decides which sites show the phenotype, shared by the in-memory and on-disk plates.

    With several ``planes`` / ``timepoints`` it yields ``(well, site, plane, timepoint,
    pixels)`` (1-based plane and timepoint): plane 1 of timepoint 1 has the pixels of the
    single-plane plate; every other plane and timepoint is another draw of the same well
    (same phenotype), so a maximum projection differs from every single plane."""
    stacked = planes > 1 or timepoints > 1
    for well in wells:
        effects = truth if labels[well] == TREATED else None
        for site in range(1, sites + 1):
            for t in range(1, timepoints + 1):
                for z in range(1, planes + 1):
                    draw = site_seed(seed, well, site) + ([] if (z, t) == (1, 1) else [z, t])
                    data = synthesize_site(draw, channels, effects, image_size, dtype)
                    yield (well, site, z, t, data) if stacked else (well, site, data)


def check_seed(seed: object) -> int:
    """``seed`` as an int 0 <= seed < 2**63, else PlateError saying what was found."""
    if (
        isinstance(seed, bool)
        or not isinstance(seed, (int, np.integer))
        or not (0 <= int(seed) < 2**63)
    ):
        raise PlateError(f"seed: expected an integer 0 <= seed < 2**63, found {seed!r}")
    return int(seed)


def check_plate_name(name: str) -> str:
    """A plate name that is safe as a file or folder name (it names the plate's folder)."""
    bad = not isinstance(name, str) or not name.strip() or name.startswith(".")
    bad = bad or any(c in name for c in "/\\\0") or not name.isprintable()
    if bad:
        raise PlateError(
            f"plate name: expected a name usable as a folder name (no '/', '\\', leading '.' "
            f"or control characters), found {name!r}"
        )
    return name


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
    planes: int = 1,
    timepoints: int = 1,
    pixel_size_um: float | None = None,
) -> SyntheticPlate:
    """Write a synthetic plate in ``layout`` under ``out_dir`` with ``labels.csv`` and
    ``ground_truth.json`` beside it; deterministic per ``seed``.

    Treated wells show the phenotype in ``phenotype_channel`` (strength 1) and, weaker, in
    ``second_channel``. The rxrx1 layout stores 8-bit PNGs named by RxRx1 stains, so there
    ``dtype`` is uint8 and DNA/ER/AGP/RNA/Mito become Hoechst/ConA/Phalloidin/Syto14/
    MitoTracker (phenotype channel names may be given either way). ``planes`` and
    ``timepoints`` (imagexpress: ``ZStep_n`` / ``TimePoint_n`` folders; operetta: PlaneID
    1.. and TimepointID 0.. in the index; ome-zarr: 5-D tczyx images) write several of each.
    ``pixel_size_um`` (micrometres per pixel) is written as each instrument writes it: OME-TIFF
    PhysicalSizeX/Y (tiff), MetaXpress spatial-calibration in each TIFF (imagexpress), Harmony
    ImageResolutionX/Y in metres (operetta), an OME-NGFF scale with micrometer axes
    (ome-zarr); the rxrx1 layout stores none (as the dataset), so there it is not written.

    Atomic: everything is checked, then written into a temporary folder and renamed into
    place. A new (or empty) ``out_dir`` appears whole or not at all; into an existing folder
    (the CLI's ``--overwrite``) each top-level item (plate folder, ``labels.csv``,
    ``ground_truth.json``) is renamed into place once all are written, replacing a plate
    written there before; a failure leaves the folder as it was.
    """
    from napari_dcmix.synthetic.writers import WRITERS, OmeZarrV04Writer, layout_channels

    if layout not in WRITERS:
        raise PlateError(f"unknown layout {layout!r}; expected one of {', '.join(WRITERS)}")
    if ome_zarr_version not in ("0.4", "0.5"):
        raise PlateError(f"ome_zarr_version must be '0.4' or '0.5', not {ome_zarr_version!r}")
    seed = check_seed(seed)
    check_plate_name(plate_name)
    for what, value in (("planes", planes), ("timepoints", timepoints), ("sites", sites)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PlateError(f"{what}: expected an integer >= 1, found {value!r}")
    if (planes > 1 or timepoints > 1) and layout not in ("imagexpress", "operetta", "ome-zarr"):
        raise PlateError(
            f"several planes or timepoints: only the imagexpress, operetta and ome-zarr layouts "
            f"write them, not {layout}"
        )
    if pixel_size_um is not None:
        size = as_number(pixel_size_um)
        if size is None:
            raise PlateError(
                f"pixel size: expected a positive number of micrometres, found {pixel_size_um!r}"
            )
        pixel_size_um = size if layout != "rxrx1" else None
    names = layout_channels(layout, channels)
    if not names or len(set(names)) != len(names) or not all(n.strip() for n in names):
        raise PlateError(f"channels: expected distinct, non-empty names, found {list(channels)}")
    if layout == "rxrx1":
        dtype = "uint8"
    wells = [normalise_well(w) for w in wells] if wells is not None else plate_wells(n_wells)
    truth = phenotype_effects(names, phenotype_channel, second_channel, second_strength)
    labels = assign_labels(wells, treated_fraction, seed)
    writer_cls = (
        OmeZarrV04Writer if layout == "ome-zarr" and ome_zarr_version == "0.4" else WRITERS[layout]
    )

    def write_into(folder: Path):
        writer = writer_cls(folder, plate_name, names, sites, seed)
        writer.n_planes, writer.n_timepoints = planes, timepoints
        writer.pixel_size_um = pixel_size_um
        for item in _synthesize_sites(
            wells, sites, names, labels, truth, image_size, dtype, seed, planes, timepoints
        ):
            if len(item) == 5:
                well, site, z, t, data = item
                writer.write_site(well, site, data, plane=z, timepoint=t)
            else:
                writer.write_site(*item)
        writer.finish(wells)
        write_labels_csv(folder / "labels.csv", labels)
        record = {
            "layout": layout,
            "name": writer.name,
            "path": writer.path.relative_to(folder).as_posix(),
            "phenotype_channel": max(truth, key=truth.__getitem__),
            "channel_strength": truth,
            "channels": names,
            "seed": seed,
            "planes": planes,
            "timepoints": timepoints,
            "pixel_size_um": pixel_size_um,
        }
        (folder / GROUND_TRUTH).write_text(json.dumps(record, indent=2) + "\n")
        return writer

    out_dir = Path(out_dir)
    relative = _write_atomically(out_dir, write_into)
    return SyntheticPlate(out_dir / relative[0], out_dir / "labels.csv", labels, truth, layout,
                          relative[1], names, wells, pixel_size_um)  # fmt: skip


def _write_atomically(out_dir: Path, write_into) -> tuple[str, str]:
    """Run ``write_into(folder)`` in a temporary folder and put the result at ``out_dir``;
    returns (the plate's path relative to ``out_dir``, the plate's name)."""
    import shutil
    import tempfile

    from napari_dcmix.atomic import TMP_MARK, OutputError, atomic_directory, write_failure

    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"synthetic plate folder {out_dir} is a file; expected a folder path")
    for parent in out_dir.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"cannot write {out_dir}: {parent} is a file, not a folder")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the folder {out_dir.parent} for {out_dir}: {exc.strerror or exc}"
        ) from None
    if not out_dir.exists() or not any(out_dir.iterdir()):
        with atomic_directory(out_dir, overwrite=True, what="synthetic plate folder") as tmp:
            writer = write_into(tmp)
            relative = writer.path.relative_to(tmp).as_posix()
        return relative, writer.name
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".synth{TMP_MARK}", dir=out_dir))
    except OSError as exc:
        raise OutputError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None
    try:
        writer = write_into(staging)
        relative = writer.path.relative_to(staging).as_posix()
        previous = _previous_plate(out_dir)
        items = sorted(p.name for p in staging.iterdir() if p.name != GROUND_TRUTH)
        # ground_truth.json (the record that makes the folder a synthetic plate) goes last
        for name in [*items, GROUND_TRUTH]:
            target = out_dir / name
            if target.is_dir() and not target.is_symlink():
                os.replace(target, staging / f".old-{name}")
            os.replace(staging / name, target)
        if previous is not None and previous.exists() and previous != out_dir / relative:
            shutil.rmtree(previous, ignore_errors=True)
    except Exception as exc:
        failure = exc if isinstance(exc, OSError) else write_failure(exc)
        if failure is None:
            raise
        reason = failure.strerror or str(failure)
        raise OutputError(f"cannot write synthetic plate folder {out_dir}: {reason}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return relative, writer.name


def _previous_plate(out_dir: Path) -> Path | None:
    """A synthetic plate written earlier into ``out_dir`` (found via its record)."""
    try:
        old = out_dir / json.loads((out_dir / GROUND_TRUTH).read_text())["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    inside = out_dir.resolve() in old.resolve().parents
    return old if inside and old.resolve() != out_dir.resolve() else None


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
            pixel_size_um=record.get("pixel_size_um"),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise PlateError(f"{out_dir} is not a synthetic plate folder: {exc}") from None
