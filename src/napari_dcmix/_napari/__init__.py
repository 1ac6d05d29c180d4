"""The thin napari layer: reader, sample data, plate layers, widgets and chart."""
