"""Fuzzing the plate-metadata parsers and the labels reader (hypothesis): whatever the input,
the result is a Plate (whose first site reads or fails with a DcmixError) or labels, or a
DcmixError; never another exception.

Inputs are real files: one small plate per format is written once, and each example replaces
one metadata file (OME-Zarr plate / well / image JSON, the Harmony index XML, the ImageXpress
.HTD, the labels CSV) or a folder's file names, then restores it. Each test also checks that
it met both kinds of input (a readable plate and an error). Examples are derandomized (the same
100 inputs on every run) and the database is off (nothing written to the tree); for a longer,
random run: ``DCMIX_FUZZ_EXAMPLES=2000 pytest tests/bad_input/test_fuzz.py`` (1500 random
examples per test passed on this code)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_dcmix.errors import DcmixError
from napari_dcmix.plate import open_plate
from napari_dcmix.plate.labels import read_labels_csv
from napari_dcmix.plate.layouts import imagexpress, operetta, rxrx1, tiff
from napari_dcmix.synthetic import write_synthetic_plate

FUZZ = settings(max_examples=int(os.environ.get("DCMIX_FUZZ_EXAMPLES", 100)), deadline=None,
                derandomize="DCMIX_FUZZ_EXAMPLES" not in os.environ, database=None,
                suppress_health_check=[HealthCheck.too_slow])  # fmt: skip

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
plane_choices = st.none() | st.integers(-2, 4) | st.just("max") | st.text(max_size=4)
timepoint_choices = st.none() | st.integers(-2, 4) | st.booleans()


def outcome(path: Path, **select) -> str:
    """Open the plate and read its first site: 'plate' or 'error' (a DcmixError). Any other
    exception propagates and fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            plate = open_plate(path, **select)
            if plate.wells:
                data = plate.read(*plate.site_keys()[0])
                assert isinstance(data, np.ndarray) and data.shape[0] == len(plate.channels)
            assert isinstance(plate.planes, list) and isinstance(plate.timepoints, list)
            return "plate"
        except DcmixError:
            return "error"


@st.composite
def mutated(draw, document):
    """``document`` with one node (reached by a random path) replaced by a random JSON value,
    deleted, or left alone."""
    doc = copy.deepcopy(document)
    parent, key = None, None
    node = doc
    for _ in range(draw(st.integers(0, 6))):
        if isinstance(node, dict) and node:
            k = draw(st.sampled_from(sorted(node)))
        elif isinstance(node, list) and node:
            k = draw(st.integers(0, len(node) - 1))
        else:
            break
        parent, key, node = node, k, node[k]
    action = draw(st.sampled_from(["replace", "delete", "keep"]))
    if parent is None:
        return draw(json_values) if action == "replace" else doc
    if action == "replace":
        parent[key] = draw(json_values)
    elif action == "delete":
        del parent[key]
    return doc


def fuzz(strategy, body) -> set[str]:
    """Run ``body(example)`` (which returns an outcome) over the examples of ``strategy``;
    returns the outcomes met, so a test can check that it reached both kinds of input."""
    seen: set[str] = set()

    @FUZZ
    @given(strategy)
    def run(example) -> None:
        seen.add(body(example))

    run()
    return seen


class Restoring:
    """A file whose original bytes come back after each example."""

    def __init__(self, path: Path) -> None:
        self.path, self.original = path, path.read_bytes()

    def __enter__(self):
        return self

    def write(self, data: bytes | str) -> None:
        self.path.write_bytes(data.encode() if isinstance(data, str) else data)

    def __exit__(self, *exc) -> None:
        self.path.write_bytes(self.original)


@pytest.fixture(scope="module")
def plates():
    root = Path(tempfile.mkdtemp(prefix="dcmix-fuzz-"))
    out = {}
    for layout in ("ome-zarr", "operetta", "imagexpress"):
        out[layout] = write_synthetic_plate(root / layout, layout=layout, n_wells=2, sites=1,
                                            image_size=8 * 2, seed=1).path  # fmt: skip
    yield out
    shutil.rmtree(root, ignore_errors=True)


# --- OME-Zarr JSON ---------------------------------------------------------------------------
ZARR_DOCS = {"plate": "zarr.json", "well": "A/1/zarr.json", "image": "A/1/0/zarr.json",
             "array": "A/1/0/s0/zarr.json"}  # fmt: skip


@pytest.mark.parametrize("which", list(ZARR_DOCS))
def test_ome_zarr_metadata(plates, which):
    target = plates["ome-zarr"] / ZARR_DOCS[which]
    document = json.loads(target.read_text())

    def body(example) -> str:
        doc, plane = example
        with Restoring(target) as file:
            file.write(json.dumps(doc))
            return outcome(plates["ome-zarr"], plane=plane)

    assert fuzz(st.tuples(mutated(document), plane_choices), body) == {"plate", "error"}


def test_ome_zarr_metadata_bytes(plates):
    def body(raw: bytes) -> str:
        with Restoring(plates["ome-zarr"] / "A" / "2" / "zarr.json") as file:
            file.write(raw)
            return outcome(plates["ome-zarr"])

    raw = st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
    assert "error" in fuzz(raw, body)


# --- Operetta index XML ----------------------------------------------------------------------
field_text = st.one_of(st.integers(-3, 1200).map(str), st.text(max_size=6), st.none())


FIELDS = ("id", "URL", "Row", "Col", "FieldID", "PlaneID", "TimepointID", "ChannelID",
          "ChannelName")  # fmt: skip


def index_entries(index: Path) -> list[dict[str, str]]:
    """The Image entries of a real index, as {tag: text}."""
    import xml.etree.ElementTree as ET

    ns = "{http://www.perkinelmer.com/PEHH/HarmonyV5}"
    return [{f: img.findtext(ns + f) for f in FIELDS}
            for img in ET.parse(index).getroot().iter(ns + "Image")]  # fmt: skip


@st.composite
def harmony_index(draw, entries: list[dict[str, str]]):
    """The real entries, some fields replaced, removed or entries dropped / repeated."""
    ns = draw(st.sampled_from(['xmlns="http://www.perkinelmer.com/PEHH/HarmonyV5"', ""]))
    chosen = draw(st.lists(st.sampled_from(entries), max_size=len(entries) + 2)
                  | st.just(entries))  # fmt: skip
    images = []
    for entry in chosen:
        fields = dict(entry)
        for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
            fields[field] = draw(field_text)
        body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items() if v is not None)
        images.append(f"<Image>{body}</Image>")
    plates_xml = draw(st.sampled_from(["", "<Plates><Plate><Name>N</Name></Plate></Plates>"]))
    return (f'<?xml version="1.0" encoding="utf-8"?><EvaluationInputData {ns}>{plates_xml}'
            f"<Images>{''.join(images)}</Images></EvaluationInputData>")  # fmt: skip


def escape(text: str) -> str:
    from xml.sax.saxutils import escape as xml_escape

    return xml_escape("".join(c for c in text if c.isprintable()))


def test_operetta_index(plates):
    def body(example) -> str:
        xml, plane, timepoint = example
        with Restoring(plates["operetta"] / "Images" / "Index.idx.xml") as file:
            file.write(xml.encode("utf-8", errors="replace"))
            return outcome(plates["operetta"], plane=plane, timepoint=timepoint)

    entries = index_entries(plates["operetta"] / "Images" / "Index.idx.xml")
    xml = harmony_index(entries) | st.binary(max_size=300).map(lambda b: b.decode("latin-1"))
    seen = fuzz(st.tuples(xml, plane_choices, timepoint_choices), body)
    assert seen == {"plate", "error"}


# --- ImageXpress .HTD ------------------------------------------------------------------------
htd_lines = st.lists(
    st.one_of(
        st.builds(lambda i, n: f'"WaveName{i}", "{n}"', st.integers(0, 12),
                  st.text(alphabet=st.characters(blacklist_characters='"\r\n'), max_size=8)),
        st.text(max_size=30),
        st.just('"NWavelengths", 5'),
    ),
    max_size=12,
)  # fmt: skip


def test_imagexpress_htd(plates):
    htd = next(plates["imagexpress"].glob("*.HTD"))

    def body(example) -> str:
        text, plane, timepoint = example
        with Restoring(htd) as file:
            file.write(text.encode("latin-1", errors="replace"))
            return outcome(plates["imagexpress"], plane=plane, timepoint=timepoint)

    text = htd_lines.map("\r\n".join) | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
    assert fuzz(st.tuples(text, plane_choices, timepoint_choices), body) == {"plate", "error"}


# --- file names ------------------------------------------------------------------------------
name_parts = st.sampled_from(["_", "-", "s", "w", "p", "f", "ch", "sk", "fk1fl1", "r", "c", "A",
                              "b", "AF", "ZZ", "0", "1", "02", "999", "1000", ".tif", ".TIFF",
                              ".png", "_thumb", "Plate", "ZStep_", "TimePoint_"])  # fmt: skip
file_names = st.lists(name_parts, min_size=1, max_size=9).map("".join) | st.text(max_size=20)


@FUZZ
@given(file_names)
def test_filename_parsers(name):
    for parse in (tiff.parse_filename, rxrx1.parse_filename, imagexpress.parse_filename,
                  operetta.parse_filename):  # fmt: skip
        parse(name)  # a key or None, never an exception


def test_folders_of_odd_file_names():
    def body(example) -> str:
        names, real_images = example
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            for i, name in enumerate(names):
                path = root / name
                if real_images and i % 2 == 0:
                    tifffile.imwrite(path, np.full((4, 4), i, np.uint16))
                else:
                    path.write_bytes(b"")
            return outcome(root)

    usable = file_names.filter(lambda n: n and "/" not in n and "\x00" not in n
                               and n not in (".", ".."))  # fmt: skip
    names = st.lists(usable, min_size=1, max_size=5, unique=True)
    assert "error" in fuzz(st.tuples(names, st.booleans()), body)


# --- labels CSV ------------------------------------------------------------------------------
cell_words = ["well", "label", "plate", "A01", "b2", "AF48", "Z99", "", " ", "P1", "ctrl", '"',
              "x,y", "\t"]  # fmt: skip
csv_cells = st.one_of(st.sampled_from(cell_words), st.text(max_size=6))
csv_text = st.lists(st.lists(csv_cells, min_size=0, max_size=4).map(",".join), max_size=6).map(
    "\n".join
)


def test_labels_csv():
    def body(example) -> str:
        raw, plate = example
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "labels.csv"
            path.write_bytes(raw)
            try:
                labels = read_labels_csv(path, plate=plate)
            except DcmixError:
                return "error"
        assert labels and all(isinstance(k, str) and isinstance(v, str) and v
                              for k, v in labels.items())  # fmt: skip
        return "labels"

    raw = st.one_of(csv_text.map(str.encode), st.binary(max_size=200),
                    csv_text.map(lambda t: t.encode("utf-16")))  # fmt: skip
    valid = st.lists(st.tuples(st.sampled_from(["A01", "b2", "AF48", " c7 "]),
                               st.sampled_from(["x", "y"])), min_size=1, max_size=4).map(
        lambda rows: ("well,label\n" + "\n".join(f"{w},{lab}" for w, lab in rows)).encode()
    )  # fmt: skip
    seen = fuzz(st.tuples(raw | valid, st.none() | st.sampled_from(["P1", "x"])), body)
    assert seen == {"labels", "error"}
