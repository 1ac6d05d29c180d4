"""napari-dcmix."""
