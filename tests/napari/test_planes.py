"""The plane / timepoint chooser (core API: ``open_plate(path, layout=None, *, plane=None,
timepoint=None)``, plates exposing ``planes``, ``timepoints``, ``plane``, ``timepoint``)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from napari_dcmix.plate import open_plate

needs_planes = pytest.mark.skipif(
    "plane" not in inspect.signature(open_plate).parameters,
    reason="the plate reader cannot choose planes / timepoints yet",
)


@pytest.fixture
def stack_plate(tmp_path):
    """An ImageXpress plate, 2 timepoints x 3 z steps, pixel value = 100 t + 10 z + channel."""
    import tifffile

    root = tmp_path / "stack"
    for t in (1, 2):
        for z in (1, 2, 3):
            folder = root / f"TimePoint_{t}" / f"ZStep_{z}"
            folder.mkdir(parents=True)
            for well in ("A01", "A02"):
                for ch in (1, 2):
                    value = 100 * t + 10 * z + ch
                    tifffile.imwrite(folder / f"P_{well}_s1_w{ch}.tif",
                                     np.full((16, 16), value, np.uint16))  # fmt: skip
    return root


def test_single_plane_plates_hide_the_chooser(widget):
    section = widget.plate_section
    assert section.plane_combo.isHidden() and section.time_combo.isHidden()


@needs_planes
def test_choose_plane_timepoint_and_max_projection(widget, stack_plate, qtbot):
    assert widget.open_plate(stack_plate)
    section = widget.plate_section
    planes = [section.plane_combo.itemText(i) for i in range(section.plane_combo.count())]
    assert len(planes) == 4 and planes[-1] == "max"
    assert section.time_combo.count() == 2 and not section.time_combo.isHidden()
    widget.session.set_annotations({"A01": "treated"})
    first = widget.plate.read("A01", 1)

    section.plane_combo.setCurrentIndex(1)
    section._plane_chosen(1)
    second = widget.plate.read("A01", 1)
    assert not np.array_equal(first, second)
    assert widget.annotations == {"A01": "treated"}  # kept across planes
    layer = widget.viewer.layers[widget.plate.channels[0]]
    assert int(np.asarray(layer.data[0])[:16, :16].max()) == int(second[0].max())

    section.plane_combo.setCurrentIndex(3)  # max projection
    section._plane_chosen(3)
    projected = widget.plate.read("A01", 1)
    assert int(projected[0].max()) >= int(second[0].max())
