"""The bank: ready-made plates (every layout) and models the corpus cases copy and break."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def bank(tmp_path_factory):
    """Plates of 4 wells x 1 site x 16 px (tiff, imagexpress, operetta, rxrx1, ome-zarr v0.5
    and v0.4, imagexpress-z with 2 planes x 2 timepoints), model.pt (an untrained model for
    their 5 stains, with normalisation) and other_stains.pt (a model for GFP, RFP)."""
    from napari_dcmix.model import build_model, save_model
    from napari_dcmix.plate import open_plate
    from napari_dcmix.plate.normalise import estimate_channel_stats
    from napari_dcmix.synthetic import write_synthetic_plate

    root = tmp_path_factory.mktemp("bank")
    plates = root / "plates"
    specs = {
        "tiff": {"layout": "tiff"},
        "imagexpress": {"layout": "imagexpress"},
        "operetta": {"layout": "operetta"},
        "rxrx1": {"layout": "rxrx1"},
        "ome-zarr": {"layout": "ome-zarr"},
        "ome-zarr-0.4": {"layout": "ome-zarr", "ome_zarr_version": "0.4"},
        "imagexpress-z": {"layout": "imagexpress", "planes": 2, "timepoints": 2},
    }
    for name, kwargs in specs.items():
        write_synthetic_plate(plates / name, n_wells=4, sites=1, image_size=16, seed=3, **kwargs)
    plate = open_plate(plates / "tiff")
    model = build_model(plate.channels, ["control", "treated"], input_size=16, seed=0)
    model.normalisation = estimate_channel_stats(plate, seed=0)
    save_model(model, root / "model.pt")
    other = build_model(["GFP", "RFP"], ["control", "treated"], input_size=16, seed=0)
    other.normalisation = None
    save_model(other, root / "other_stains.pt")
    return root
