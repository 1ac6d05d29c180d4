"""Small plates written to disk once per session, one per layout."""

from __future__ import annotations

import pytest

from napari_dcmix.synthetic import write_synthetic_plate

LAYOUTS = ["tiff", "rxrx1", "imagexpress", "operetta", "ome-zarr"]


@pytest.fixture(scope="session")
def synth_plates(tmp_path_factory):
    """``{layout: SyntheticPlate}``: 4 wells x 2 sites x 5 channels x 32 px, seed 5."""
    out = {}
    for layout in LAYOUTS:
        root = tmp_path_factory.mktemp(layout.replace("-", ""))
        out[layout] = write_synthetic_plate(
            root, layout=layout, n_wells=4, sites=2, image_size=32, seed=5
        )
    return out
