"""npe2 sample data: a small synthetic plate (written once to the cache) as a plate mosaic."""

from __future__ import annotations


def sample_plate_layers() -> list:
    """Layer data of the bundled synthetic sample plate."""
    from napari_dcmix._napari.layers import plate_layer_data
    from napari_dcmix.plate import open_plate
    from napari_dcmix.sample import sample_plate

    return plate_layer_data(open_plate(sample_plate().path))
