"""Synthetic cell-like plates with a known phenotype channel, written in any layout."""

from __future__ import annotations

from napari_dcmix.synthetic.fields import DEFAULT_CHANNELS, synthesize_site
from napari_dcmix.synthetic.plate import (
    CONTROL,
    TREATED,
    SyntheticArrays,
    SyntheticPlate,
    assign_labels,
    load_synthetic_plate,
    plate_wells,
    synthesize_plate_arrays,
    write_synthetic_plate,
)

__all__ = [
    "CONTROL",
    "DEFAULT_CHANNELS",
    "TREATED",
    "SyntheticArrays",
    "SyntheticPlate",
    "assign_labels",
    "load_synthetic_plate",
    "plate_wells",
    "synthesize_plate_arrays",
    "synthesize_site",
    "write_synthetic_plate",
]
