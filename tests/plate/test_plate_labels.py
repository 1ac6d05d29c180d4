"""Plate-map CSVs: reading, filtering by plate, specific errors, fitting a plate."""

from __future__ import annotations

import pytest

from napari_dcmix.errors import LabelsError
from napari_dcmix.plate.labels import check_labels_fit, read_labels_csv, write_labels_csv


def write(tmp_path, text, name="labels.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_b2_and_b02_and_sorts(tmp_path):
    path = write(tmp_path, "well,label\nc1,treated\nB2,control\nB02,control\n")
    assert read_labels_csv(path) == {"B02": "control", "C01": "treated"}


def test_filters_on_plate_column(tmp_path):
    path = write(tmp_path, "plate,well,label\nP1,B02,a\nP2,B02,b\nP2,B03,a\n")
    assert read_labels_csv(path, plate="P2") == {"B02": "b", "B03": "a"}
    with pytest.raises(LabelsError, match="no labelled wells for plate 'P3'"):
        read_labels_csv(path, plate="P3")


def test_round_trip(tmp_path):
    labels = {"AA01": "x", "B2": "y"}
    path = write_labels_csv(tmp_path / "out.csv", labels, plate="P")
    assert read_labels_csv(path, plate="P") == {"B02": "y", "AA01": "x"}
    path = write_labels_csv(tmp_path / "plain.csv", labels)
    assert path.read_text().splitlines()[0] == "well,label"


@pytest.mark.parametrize(
    ("text", "match"),
    [("", "is empty"), ("wel,label\nB02,a\n", "no 'well' column"),
     ("well,class\nB02,a\n", "no 'label' column"),
     ("well,label\nB02,a\nB2,b\n", "line 3: well B02 is labelled 'b' but line 2"),
     ("well,label\nB0x,a\n", "line 2"), ("well,label\nB02,\n", "line 2.*empty label"),
     ("well,label\n", "no labelled wells")],
)  # fmt: skip
def test_specific_errors_name_file_and_line(tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(LabelsError, match=match) as info:
        read_labels_csv(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(LabelsError, match="cannot read labels file"):
        read_labels_csv(tmp_path / "nope.csv")


def test_check_labels_fit(synth_plates):
    plate = synth_plates["tiff"]
    from napari_dcmix.plate import open_plate

    opened = open_plate(plate.path)
    check_labels_fit(plate.labels, opened)
    with pytest.raises(LabelsError, match="H12"):
        check_labels_fit({**plate.labels, "H12": "x"}, opened)


def test_junk_wells_are_labels_errors(tmp_path, synth_plates):
    from napari_dcmix.plate import open_plate

    with pytest.raises(LabelsError, match="'Q-1'"):
        write_labels_csv(tmp_path / "x.csv", {"Q-1": "a"})
    with pytest.raises(LabelsError, match="'Q-1'"):
        check_labels_fit({"Q-1": "a"}, open_plate(synth_plates["tiff"].path))


def test_check_labels_fit_message_and_normalised_labels(synth_plates):
    from napari_dcmix.plate import open_plate

    opened = open_plate(synth_plates["tiff"].path)
    assert check_labels_fit({"A1": 1, "a02": "t"}, opened) == {"A01": "1", "A02": "t"}
    with pytest.raises(LabelsError) as info:
        check_labels_fit({"A1": "c", "H5": "t", "h06": "c"}, opened)
    message = str(info.value)
    assert "labels name 2 well(s)" in message and "H05, H06" in message
    assert str(opened.path) in message and "the plate has 4 well(s): A01 ... A04" in message
