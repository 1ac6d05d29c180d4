"""The embedded sample plate: a small synthetic plate written once to a cache folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Bump when the sample's parameters or the synthetic generator change.
SAMPLE_VERSION = 2
SAMPLE_PARAMS = dict(
    layout="tiff",
    n_wells=48,
    sites=4,
    phenotype_channel="Mito",
    second_channel="ER",
    image_size=128,
    seed=2023,
    plate_name="DCMIX-Sample",
)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "napari-dcmix"


def sample_plate(root: str | os.PathLike | None = None):
    """Return the sample plate (a ``SyntheticPlate``), writing it on first use.

    Written to a temporary folder and renamed into place, so an interrupted write never leaves
    a half plate behind.
    """
    from napari_dcmix.synthetic import SyntheticPlate, load_synthetic_plate, write_synthetic_plate

    target = Path(root) if root is not None else cache_dir() / f"sample-plate-v{SAMPLE_VERSION}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".sample-", dir=target.parent))
        try:
            write_synthetic_plate(tmp / "plate", **SAMPLE_PARAMS)
            os.replace(tmp / "plate", target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    result: SyntheticPlate = load_synthetic_plate(target)
    return result
