"""The bad-input corpus: one row per bad input, run through the real ``napari-dcmix`` CLI.

Each ``Case`` builds its own files in an empty workspace (``setup``), runs ``argv`` and expects:
exit status 2, exactly one error message (``napari-dcmix CMD: error: ...``) matching ``expect``
(a regular expression that names the file, well, channel or value), no traceback, and every
file of the workspace unchanged (no file added, changed or removed: nothing half-written).

To add a case for a new option: append a ``Case`` to ``CASES`` (or to a list below). Setup
helpers copy ready-made plates and models from the bank (``tests/bad_input/conftest.py``) and
change them: ``plate``, ``model``, ``write``, ``append``, ``remove``, ``truncate``,
``symlink``, ``fifo``, ``folder``, ``edit_json``, ``replace_text``. In ``argv`` and ``expect``,
``{ws}`` is the case's workspace (in ``expect`` it is regex-escaped). ``widget`` names a
``DcmixWidget`` method and its argument for the napari subset (tests/napari/
test_bad_input_widget.py): the same input must give a notification matching ``expect``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Setup = Callable[[Path, Path], None]  # (workspace, bank)


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    expect: str
    setup: tuple[Setup, ...] = ()
    xfail: str | None = None  # reason: a fix another engineer owns has not landed yet
    widget: tuple[str, str] | None = None  # (DcmixWidget method, argument with {ws})
    tags: frozenset[str] = field(default_factory=frozenset)

    def build(self, ws: Path, bank: Path) -> None:
        ws.mkdir(parents=True, exist_ok=True)
        for step in self.setup:
            step(ws, bank)

    def command(self, ws: Path) -> list[str]:
        return [a.replace("{ws}", str(ws)) for a in self.argv]


# --- setup helpers ---------------------------------------------------------------------------
def _one(ws: Path, pattern: str) -> Path:
    found = sorted(ws.glob(pattern))
    if not found:
        raise AssertionError(f"case setup: nothing matches {pattern} in {ws}")
    return found[0]


def plate(layout: str, name: str = "p") -> Setup:
    """A copy of the bank's synthetic plate folder of ``layout`` (4 wells x 1 site x 16 px,
    with its labels.csv) at ``ws/name``; layouts: tiff, imagexpress, operetta, rxrx1,
    ome-zarr, ome-zarr-0.4, imagexpress-z (2 planes, 2 timepoints)."""

    def run(ws: Path, bank: Path) -> None:
        shutil.copytree(bank / "plates" / layout, ws / name, symlinks=True)

    return run


def model(name: str = "model.pt", which: str = "model.pt") -> Setup:
    """A copy of a bank model: model.pt (the plates' 5 stains), other_stains.pt."""

    def run(ws: Path, bank: Path) -> None:
        shutil.copy2(bank / which, ws / name)

    return run


def _crop_model(name: str, crop: int) -> Setup:
    """The bank's model at bin 1 and a ``crop``-pixel crop (a model of another pixel scale)."""

    def run(ws: Path, bank: Path) -> None:
        from napari_dcmix.model import PixelScale, load_model, save_model

        m = load_model(bank / "model.pt")
        for member in m.members:
            member.scale, member.input_size = PixelScale(bin=1, crop=crop), crop
        save_model(m, ws / name)

    return run


def write(pattern: str, content: bytes | str) -> Setup:
    """Write ``content`` to ``ws/pattern`` (a glob matching one existing file, or a new path)."""

    def run(ws: Path, bank: Path) -> None:
        matches = sorted(ws.glob(pattern))
        path = matches[0] if matches else ws / pattern
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)

    return run


def append(pattern: str, content: str) -> Setup:
    def run(ws: Path, bank: Path) -> None:
        path = _one(ws, pattern)
        path.write_text(path.read_text() + content)

    return run


def remove(pattern: str) -> Setup:
    """Delete every file or folder matching ``pattern``."""

    def run(ws: Path, bank: Path) -> None:
        found = sorted(ws.glob(pattern))
        if not found:
            raise AssertionError(f"case setup: nothing matches {pattern} in {ws}")
        for path in found:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()

    return run


def truncate(pattern: str, size: int) -> Setup:
    def run(ws: Path, bank: Path) -> None:
        path = _one(ws, pattern)
        path.write_bytes(path.read_bytes()[:size])

    return run


def symlink(pattern: str, target: str) -> Setup:
    """Replace ``ws/pattern`` (or create it) by a symbolic link to ``target``."""

    def run(ws: Path, bank: Path) -> None:
        matches = sorted(ws.glob(pattern))
        path = matches[0] if matches else ws / pattern
        if path.exists() or path.is_symlink():
            path.unlink()
        os.symlink(target, path)

    return run


def fifo(pattern: str) -> Setup:
    def run(ws: Path, bank: Path) -> None:
        matches = sorted(ws.glob(pattern))
        path = matches[0] if matches else ws / pattern
        if path.exists():
            path.unlink()
        os.mkfifo(path)

    return run


def folder(rel: str) -> Setup:
    def run(ws: Path, bank: Path) -> None:
        (ws / rel).mkdir(parents=True, exist_ok=True)

    return run


def edit_json(pattern: str, change: Callable[[dict], object]) -> Setup:
    """Load the JSON file, let ``change`` edit it in place (or return a replacement), save."""

    def run(ws: Path, bank: Path) -> None:
        path = _one(ws, pattern)
        data = json.loads(path.read_text())
        new = change(data)
        path.write_text(json.dumps(data if new is None else new))

    return run


def replace_text(pattern: str, old: str, new: str) -> Setup:
    def run(ws: Path, bank: Path) -> None:
        path = _one(ws, pattern)
        text = path.read_text()
        if old not in text:
            raise AssertionError(f"case setup: {old!r} not in {path}")
        path.write_text(text.replace(old, new, 1))

    return run


def _ome(data: dict) -> dict:
    """The OME attributes of a v0.5 zarr.json (``attributes.ome``) or a v0.4 .zattrs."""
    return data["attributes"]["ome"] if "attributes" in data else data


def ome(change: Callable[[dict], object]) -> Callable[[dict], None]:
    def run(data: dict) -> None:
        change(_ome(data))

    return run


# --- paths inside the bank's plates ------------------------------------------------------------
TIFF = "p/SynthPlate"
IX = "p/SynthPlate/TimePoint_1"
OP = "p/SynthPlate/Images"
RX = "p/images/SynthPlate/Plate1"
ZARR = "p/SynthPlate.zarr"
LABELS = "{ws}/p/labels.csv"


def info(path: str = "{ws}/p", *extra: str) -> tuple[str, ...]:
    return ("info", path, *extra)


def train(plate_path: str = "{ws}/p", labels: str = LABELS, *extra: str) -> tuple[str, ...]:
    return ("train", plate_path, "--labels", labels, "--out", "{ws}/out.pt", "--epochs", "1",
            "--input-size", "16", *extra)  # fmt: skip


def predict(plate_path: str = "{ws}/p", *extra: str, model_path: str = "{ws}/model.pt"):
    return ("predict", plate_path, "--model", model_path, "--out", "{ws}/pred.csv", "--device",
            "cpu", "--quiet", *extra)  # fmt: skip


WS = "{ws}"
NO_LAYOUT = r"matches no supported plate layout"


# --- plates: any layout --------------------------------------------------------------------------
PLATES_ANY = [
    Case("plate-path-missing", info("{ws}/nowhere"), rf"plate path {WS}/nowhere does not exist",
         widget=("open_plate", "{ws}/nowhere")),
    Case("plate-folder-empty", info("{ws}/empty"), rf"plate folder {WS}/empty is empty",
         (folder("empty"),)),
    Case("plate-is-a-file", info("{ws}/x.tif"), rf"{WS}/x\.tif is a file; expected a plate folder",
         (write("x.tif", b"II*\x00"),)),
    Case("plate-no-layout", info("{ws}/junk"), rf"{WS}/junk {NO_LAYOUT}(.|\n)*- tiff: no readable",
         (write("junk/readme.txt", "hello"),), widget=("open_plate", "{ws}/junk")),
    Case("plate-plane-text", info("{ws}/p", "--plane", "two"),
         r"argument --plane: expected a plane number or 'max', found 'two'", (plate("tiff"),)),
    Case("plate-plane-negative", info("{ws}/p", "--plane", "-1"),
         r"argument --plane: expected a plane number >= 0 or 'max', found -1", (plate("tiff"),)),
    Case("plate-timepoint-text", info("{ws}/p", "--timepoint", "first"),
         r"argument --timepoint: expected a timepoint number, found 'first'", (plate("tiff"),)),
]  # fmt: skip

# --- plates: TIFF folder -------------------------------------------------------------------------
PLATES_TIFF = [
    Case("tiff-corrupt-first-image", info(), rf"cannot read image {WS}/{TIFF}/A01_s1\.tif",
         (plate("tiff"), write(f"{TIFF}/A01_s1.tif", b"not a tiff")),
         widget=("open_plate", "{ws}/p")),
    Case("tiff-channels-txt-count", info(),
         rf"{WS}/{TIFF}/channels\.txt names 3 channels but {WS}/{TIFF}/A01_s1\.tif has 5",
         (plate("tiff"), write(f"{TIFF}/channels.txt", "DNA\nER\nRNA\n"))),
    Case("tiff-channels-txt-not-utf8", info(),
         rf"channel list {WS}/{TIFF}/channels\.txt is not UTF-8 text: byte 0xb5",
         (plate("tiff"), write(f"{TIFF}/channels.txt", b"DNA\nER\nRNA\nAGP\n\xb5Mito\n"))),
    Case("tiff-duplicate-site", info(), r"both A02_s1\.tif and a02_s1\.tif are well A02 site 1",
         (plate("tiff"), write(f"{TIFF}/a02_s1.tif", b"II*\x00"))),
    Case("tiff-4d-image", info(), rf"{WS}/{TIFF}/A01_s1\.tif has shape \(2, 3, 4, 4\); expected",
         (plate("tiff"), lambda ws, bank: _write_tiff(ws / TIFF / "A01_s1.tif", (2, 3, 4, 4)))),
    Case("tiff-all-sites-broken-links", info(),
         r"- tiff: no readable files named like B02_s1\.tif in the folder \(A01_s1\.tif is a "
         r"broken symbolic link",
         (folder("p"), symlink("p/A01_s1.tif", "gone.tif"), symlink("p/A02_s1.tif", "gone.tif"))),
    Case("tiff-only-site-is-a-loop", info(), r"A01_s1\.tif is a symbolic link loop",
         (folder("p"), symlink("p/A01_s1.tif", "A01_s1.tif"))),
    Case("tiff-plane-2", info("{ws}/p", "--plane", "2"),
         rf"TIFF plate folder {WS}/{TIFF} has no plane 2: its planes are 1", (plate("tiff"),)),
    Case("tiff-timepoint-3", info("{ws}/p", "--timepoint", "3"),
         rf"TIFF plate folder {WS}/{TIFF} has no timepoint 3: its timepoints are 1",
         (plate("tiff"),)),
    Case("tiff-truncated-site-predict", predict(),
         rf"cannot read image {WS}/{TIFF}/A03_s1\.tif",
         (plate("tiff"), model(), truncate(f"{TIFF}/A03_s1.tif", 300))),
    Case("tiff-other-size-predict", predict(),
         rf"{WS}/{TIFF}/A02_s1\.tif has shape \(5, 8, 8\).*A01_s1\.tif",
         (plate("tiff"), model(), lambda ws, bank: _write_tiff(ws / TIFF / "A02_s1.tif",
                                                              (5, 8, 8)))),
]  # fmt: skip

# --- plates: ImageXpress -------------------------------------------------------------------------
PLATES_IX = [
    Case("ix-htd-too-few-wave-names", info(),
         rf"{WS}/p/SynthPlate/SynthPlate\.HTD names 3 wavelength\(s\).*no WaveName for w4, w5",
         (plate("imagexpress"), replace_text("p/SynthPlate/SynthPlate.HTD", '"WaveName4", "AGP"',
                                             ""),
          replace_text("p/SynthPlate/SynthPlate.HTD", '"WaveName5", "Mito"', "")),
         widget=("open_plate", "{ws}/p")),
    Case("ix-two-plates", info(), r"holds files of 2 plates \(Other, SynthPlate\)",
         (plate("imagexpress"),
          lambda ws, bank: shutil.copy(_one(ws, f"{IX}/SynthPlate_A01_w1*.tif"),
                                       ws / IX / "Other_A01_w1.tif"))),
    Case("ix-corrupt-first-image", info(), rf"cannot read image {WS}/{IX}/SynthPlate_A01_w1",
         (plate("imagexpress"), write(f"{IX}/SynthPlate_A01_w1[0-9A-F]*.tif", b"garbage"))),
    Case("ix-no-complete-site", info(), rf"{WS}/{IX}: no site has a file for every channel",
         (plate("imagexpress"), remove(f"{IX}/*_A0[12]_w1[0-9A-F]*.tif"),
          remove(f"{IX}/*_A0[34]_w2[0-9A-F]*.tif"))),
    Case("ix-plane-3", info("{ws}/p", "--plane", "3"),
         rf"ImageXpress plate {WS}/p/SynthPlate has no plane 3: its planes \(ZStep_n folders\) "
         r"are 1, 2 \(or 'max'", (plate("imagexpress-z"),)),
    Case("ix-timepoint-5", predict("{ws}/p", "--timepoint", "5"),
         r"has no timepoint 5: its timepoints \(TimePoint_n folders\) are 1, 2",
         (plate("imagexpress-z"), model())),
    Case("ix-plane-on-single-plane", info("{ws}/p", "--plane", "2"),
         r"ImageXpress plate .* has no plane 2: its planes \(ZStep_n folders\) are 1 ",
         (plate("imagexpress"),)),
    Case("ix-truncated-predict", predict(), rf"cannot read image {WS}/{IX}/SynthPlate_A04_w3",
         (plate("imagexpress"), model(), truncate(f"{IX}/SynthPlate_A04_w3[0-9A-F]*.tif", 200))),
]  # fmt: skip

# --- plates: Operetta ----------------------------------------------------------------------------
INDEX = f"{OP}/Index.idx.xml"
PLATES_OP = [
    Case("op-index-not-xml", info(), rf"cannot read the Harmony index {WS}/{OP}/Index\.idx\.xml",
         (plate("operetta"), write(INDEX, "<EvaluationInputData><Images><Image>")),
         widget=("open_plate", "{ws}/p")),
    Case("op-index-binary", info(), rf"cannot read the Harmony index {WS}/{OP}/Index\.idx\.xml",
         (plate("operetta"), write(INDEX, bytes(range(256)) * 4))),
    Case("op-index-no-images", info(), r"Index\.idx\.xml lists no Images/Image entries",
         (plate("operetta"), write(INDEX, "<EvaluationInputData/>"))),
    Case("op-index-row-not-int", info(),
         r"Index\.idx\.xml: Image entry 1 \(id 0101K1F1P1R1\) has Row 'one'; expected an integer",
         (plate("operetta"), replace_text(INDEX, "<Row>1</Row>", "<Row>one</Row>"))),
    Case("op-index-no-url", info(), r"Image entry 1 \(id 0101K1F1P1R1\) has no URL",
         (plate("operetta"), replace_text(INDEX, "<URL>r01c01f01p01-ch1sk1fk1fl1.tiff</URL>",
                                          ""))),
    Case("op-index-row-zero", info(),
         r"image r01c01f01p01-ch1sk1fk1fl1\.tiff has Row 0 and Col 1, which is not a well",
         (plate("operetta"), replace_text(INDEX, "<Row>1</Row>", "<Row>0</Row>"))),
    Case("op-index-col-huge", info(), r"has Row 1 and Col 5000, which is not a well",
         (plate("operetta"), replace_text(INDEX, "<Col>1</Col>", "<Col>5000</Col>"))),
    Case("op-all-files-missing", info(), rf"{WS}/{OP}: no site has a file for every channel",
         (plate("operetta"), remove(f"{OP}/*.tiff"))),
    Case("op-corrupt-first-image", info(),
         rf"cannot read image {WS}/{OP}/r01c01f01p01-ch1sk1fk1fl1\.tiff",
         (plate("operetta"), write(f"{OP}/r01c01f01p01-ch1sk1fk1fl1.tiff", b"II*\x00junk"))),
    Case("op-plane-2", info("{ws}/p", "--plane", "2"),
         r"Operetta plate .* has no plane 2: its planes \(PlaneID in Index\.idx\.xml\) are 1",
         (plate("operetta"),)),
    Case("op-timepoint-1", info("{ws}/p", "--timepoint", "1"),
         r"has no timepoint 1: its timepoints \(TimepointID in Index\.idx\.xml\) are 0",
         (plate("operetta"),)),
]  # fmt: skip

# --- plates: RxRx1 -------------------------------------------------------------------------------
PLATES_RX = [
    Case("rx-channel-w7", info(), r"RxRx1 channels are w1\.\.w6, found w7",
         (plate("rxrx1"), lambda ws, bank: shutil.copy(ws / RX / "A01_s1_w1.png",
                                                     ws / RX / "A01_s1_w7.png"))),
    Case("rx-two-plates", info("{ws}/p/images"), rf"{WS}/p/images holds 2 RxRx1 plates "
         r"\(SynthPlate/Plate1, SynthPlate/Plate2\); open one Plate folder",
         (plate("rxrx1"), lambda ws, bank: shutil.copytree(ws / RX, ws / RX.replace("1", "2")))),
    Case("rx-metadata-no-well-column", info(),
         rf"cannot read RxRx1 metadata {WS}/p/metadata\.csv: no 'well' column",
         (plate("rxrx1"), write("p/metadata.csv", "experiment,plate,site\nSynthPlate,1,1\n"))),
    Case("rx-metadata-not-utf8", info(),
         rf"cannot read RxRx1 metadata {WS}/p/metadata\.csv: not UTF-8 text \(byte 0xe9",
         (plate("rxrx1"), write("p/metadata.csv", b"experiment,plate,well,site,sirna\n"
                                                  b"SynthPlate,1,A01,1,caf\xe9\n"))),
    Case("rx-metadata-bad-site", info(),
         rf"cannot read RxRx1 metadata {WS}/p/metadata\.csv line 2: invalid literal",
         (plate("rxrx1"), write("p/metadata.csv", "experiment,plate,well,site\n"
                                                  "SynthPlate,1,A01,one\n"))),
    Case("rx-corrupt-first-png", info(), rf"cannot read image {WS}/{RX}/A01_s1_w1\.png",
         (plate("rxrx1"), write(f"{RX}/A01_s1_w1.png", b"\x89PNG\r\n\x1a\nbroken"))),
    Case("rx-no-complete-site", info(), rf"{WS}/{RX}: no site has a file for every channel",
         (plate("rxrx1"), remove(f"{RX}/A0[12]_s1_w1.png"), remove(f"{RX}/A0[34]_s1_w2.png"))),
    Case("rx-plane-max-is-fine-timepoint-2", info("{ws}/p", "--plane", "max", "--timepoint", "2"),
         rf"RxRx1 plate {WS}/{RX} has no timepoint 2: its timepoints are 1", (plate("rxrx1"),)),
]  # fmt: skip


# --- plates: OME-Zarr ----------------------------------------------------------------------------
def _wells(value):
    return ome(lambda o: o["plate"].__setitem__("wells", value))


PLATES_ZARR = [
    Case("zarr-group-no-plate", info(), rf"{WS}/{ZARR} is a Zarr group: it has no OME-NGFF "
         r"'plate' metadata", (plate("ome-zarr"), write(f"{ZARR}/zarr.json",
                                                       '{"zarr_format": 3, "node_type": "group"}')),
         widget=("open_plate", "{ws}/p")),
    Case("zarr-image-not-plate", info(f"{{ws}}/{ZARR}/A/1/0"),
         rf"{WS}/{ZARR}/A/1/0 is an OME-Zarr image, not a plate", (plate("ome-zarr"),)),
    Case("zarr-plate-json-invalid", info(), rf"cannot open Zarr group {WS}/{ZARR}",
         (plate("ome-zarr"), write(f"{ZARR}/zarr.json", "{not json"))),
    Case("zarr-well-json-invalid", info(),
         rf"cannot read the Zarr metadata of {WS}/{ZARR}/A/2: JSONDecodeError",
         (plate("ome-zarr"), write(f"{ZARR}/A/2/zarr.json", "{not json")),
         widget=("open_plate", "{ws}/p")),
    Case("zarr-image-json-invalid", info(),
         rf"cannot read the Zarr metadata of {WS}/{ZARR}/A/1/0: JSONDecodeError",
         (plate("ome-zarr"), write(f"{ZARR}/A/1/0/zarr.json", "[1, 2"))),
    Case("zarr-array-json-invalid", info(),
         rf"cannot read the Zarr metadata of {WS}/{ZARR}/A/1/0/s0: JSONDecodeError",
         (plate("ome-zarr"), write(f"{ZARR}/A/1/0/s0/zarr.json", "{\"zarr_format\": 3,"))),
    Case("zarr04-zarray-invalid", info(),
         rf"cannot read the Zarr metadata of {WS}/{ZARR}/A/1/0/s0: JSONDecodeError",
         (plate("ome-zarr-0.4"), write(f"{ZARR}/A/1/0/s0/.zarray", "{,}"))),
    Case("zarr04-well-zattrs-invalid", info(),
         rf"cannot read the Zarr metadata of {WS}/{ZARR}/A/1: JSONDecodeError",
         (plate("ome-zarr-0.4"), write(f"{ZARR}/A/1/.zattrs", "nope"))),
    Case("zarr-wells-not-a-list", info(),
         rf"{WS}/{ZARR}: OME-NGFF plate\.wells is dict .*; expected a list",
         (plate("ome-zarr"), edit_json(f"{ZARR}/zarr.json", _wells({"path": "A/1"}))),
         widget=("open_plate", "{ws}/p")),
    Case("zarr-wells-strings", info(),
         r"OME-Zarr plate well entry 'A/1' is not a valid well: expected an object with a 'path'",
         (plate("ome-zarr"), edit_json(f"{ZARR}/zarr.json", _wells(["A/1", "A/2"])))),
    Case("zarr04-rows-not-a-list", info(), r"OME-NGFF plate\.rows is str 'AB'; expected a list",
         (plate("ome-zarr-0.4"), edit_json(f"{ZARR}/.zattrs",
                                           ome(lambda o: o["plate"].__setitem__("rows", "AB"))))),
    Case("zarr-row-index-out-of-range", info(),
         r"well entry \{'path': 'A/1', 'rowIndex': 7, 'columnIndex': 0\} is not a valid well: "
         r"rowIndex 7 is outside the plate's 1 rows",
         (plate("ome-zarr"), edit_json(f"{ZARR}/zarr.json", _wells(
             [{"path": "A/1", "rowIndex": 7, "columnIndex": 0}])))),
    Case("zarr-plate-not-object", info(),
         rf"{WS}/{ZARR}: OME-NGFF 'plate' metadata is list; expected an object",
         (plate("ome-zarr"), edit_json(f"{ZARR}/zarr.json",
                                       ome(lambda o: o.__setitem__("plate", [1, 2]))))),
    Case("zarr-axes-shorter-than-array", info(),
         rf"{WS}/{ZARR}/A/1/0/s0 has 3 dimensions \(5, 16, 16\) but its multiscales axes are y, x",
         (plate("ome-zarr"), edit_json(f"{ZARR}/A/1/0/zarr.json", ome(
             lambda o: o["multiscales"][0].__setitem__("axes", [{"name": "y"}, {"name": "x"}])))),
         widget=("open_plate", "{ws}/p")),
    Case("zarr-axes-without-x", info(), r"multiscales axes are c, y, q; expected one distinct axis",
         (plate("ome-zarr"), edit_json(f"{ZARR}/A/1/0/zarr.json", ome(
             lambda o: o["multiscales"][0]["axes"][2].__setitem__("name", "q"))))),
    Case("zarr-no-multiscales", info(), rf"{WS}/{ZARR}/A/1/0 is not an OME-NGFF image "
         r"\(no multiscales datasets", (plate("ome-zarr"), edit_json(
             f"{ZARR}/A/1/0/zarr.json", ome(lambda o: o.pop("multiscales"))))),
    Case("zarr-dataset-array-missing", info(),
         rf"{WS}/{ZARR}/A/1/0/s9: the array its multiscales metadata lists is missing",
         (plate("ome-zarr"), edit_json(f"{ZARR}/A/1/0/zarr.json", ome(
             lambda o: o["multiscales"][0]["datasets"][0].__setitem__("path", "s9"))))),
    Case("zarr-every-well-absent", info(),
         rf"{WS}/{ZARR}: the OME-Zarr plate lists no wells with images",
         (plate("ome-zarr"), remove(f"{ZARR}/A"))),
    Case("zarr-well-without-well-metadata", info(),
         rf"{WS}/{ZARR}/A/2: well A02 has no OME-NGFF 'well' metadata",
         (plate("ome-zarr"), edit_json(f"{ZARR}/A/2/zarr.json", ome(lambda o: o.pop("well"))))),
    Case("zarr-well-images-not-a-list", info(),
         r"well A03's OME-NGFF 'well' metadata has no 'images' list",
         (plate("ome-zarr"), edit_json(f"{ZARR}/A/3/zarr.json",
                                       ome(lambda o: o["well"].__setitem__("images", "0"))))),
    Case("zarr-complex-dtype", info(),
         r"A/1/0/s0 holds complex64 values; expected integer or floating-point pixels",
         (plate("ome-zarr-0.4"), edit_json(f"{ZARR}/A/1/0/s0/.zarray",
                                           lambda d: d.update(dtype="<c8", fill_value=None)))),
    Case("zarr-invalid-fill-value", info(), rf"cannot read the Zarr metadata of "
         rf"{WS}/{ZARR}/A/1/0/s0: TypeError",
         (plate("ome-zarr-0.4"), edit_json(f"{ZARR}/A/1/0/s0/.zarray",
                                           lambda d: d.__setitem__("dtype", "|S4")))),
    Case("zarr-plane-2", info("{ws}/p", "--plane", "2"),
         rf"OME-Zarr plate {WS}/{ZARR} has no plane 2: its planes \(the z axis of its images, "
         r"from 1\) are 1 \(or 'max'", (plate("ome-zarr"),)),
    Case("zarr-timepoint-0", info("{ws}/p", "--timepoint", "0"),
         r"has no timepoint 0: its timepoints \(its t axis, from 1\) are 1", (plate("ome-zarr"),)),
    Case("zarr-corrupt-chunk-predict", predict(),
         rf"cannot read {WS}/{ZARR}/A/2/0/s0/c/0/0/0: .*\(truncated or corrupt chunk\)",
         (plate("ome-zarr"), model(), write(f"{ZARR}/A/2/0/s0/c/0/0/0", b"\x28\xb5\x2f\xfd junk"))),
]  # fmt: skip

# --- labels (train reads them after opening the plate) -------------------------------------------
L = "{ws}/labels.csv"
LABELS_CASES = [
    Case("labels-missing", train(labels="{ws}/nowhere.csv"),
         rf"cannot read labels file {WS}/nowhere\.csv: No such file or directory",
         (plate("tiff"),), widget=("import_annotations", "{ws}/nowhere.csv")),
    Case("labels-folder", train(labels="{ws}"), rf"labels file {WS} is a folder",
         (plate("tiff"),)),
    Case("labels-empty", train(labels=L), rf"labels file {WS}/labels\.csv is empty",
         (plate("tiff"), write("labels.csv", "")), widget=("import_annotations", L)),
    Case("labels-no-well-column", train(labels=L),
         r"has no 'well' column \(line 1 has site, label\)",
         (plate("tiff"), write("labels.csv", "site,label\n1,a\n"))),
    Case("labels-no-label-column", train(labels=L), r"has no 'label' column",
         (plate("tiff"), write("labels.csv", "well,class\nA01,a\n"))),
    Case("labels-semicolons", train(labels=L),
         r"has no 'well' column \(line 1 has well;label\) \(its fields look separated by ';'",
         (plate("tiff"), write("labels.csv", "well;label\nA01;a\nA02;b\n")),
         widget=("import_annotations", L)),
    Case("labels-bad-well", train(labels=L), rf"labels file {WS}/labels\.csv line 3: 'Q99x' is "
         r"not a well name", (plate("tiff"), write("labels.csv", "well,label\nA01,a\nQ99x,b\n")),
         widget=("import_annotations", L)),
    Case("labels-conflict", train(labels=L),
         r"line 4: well A01 is labelled 'b' but line 2 labels it 'a'",
         (plate("tiff"), write("labels.csv", "well,label\nA01,a\nA02,b\nA1,b\n"))),
    Case("labels-short-row", train(labels=L), r"line 3: 1 fields, expected 2",
         (plate("tiff"), write("labels.csv", "well,label\nA01,a\nA02\n"))),
    Case("labels-empty-label", train(labels=L), r"line 2: well A01 has an empty label",
         (plate("tiff"), write("labels.csv", "well,label\nA01, \n"))),
    Case("labels-cp1252", train(labels=L),
         rf"labels file {WS}/labels\.csv is not UTF-8 text: byte 0xe9 on line 3 .*Windows-1252",
         (plate("tiff"), write("labels.csv", b"well,label\nA01,control\nA02,trait\xe9\n")),
         widget=("import_annotations", L)),
    Case("labels-utf16", train(labels=L), r"labels\.csv is UTF-16 text",
         (plate("tiff"), write("labels.csv", "well,label\nA01,a\n".encode("utf-16")))),
    Case("labels-random-bytes", train(labels=L), r"labels\.csv is not UTF-8 text: byte 0x",
         (plate("tiff"), write("labels.csv", bytes(range(128, 256)) * 3))),
    Case("labels-nul-bytes", train(labels=L), r"labels\.csv line 2 holds a NUL byte",
         (plate("tiff"), write("labels.csv", b"well,label\nA01,a\x00b\n"))),
    Case("labels-other-plate-only", train(labels=L),
         r"has no labelled wells for plate 'SynthPlate': its 'plate' column names 'OtherPlate'",
         (plate("tiff"), write("labels.csv", "plate,well,label\nOtherPlate,A01,a\n"
                                             "OtherPlate,A02,b\n")),
         widget=("import_annotations", L)),
    Case("labels-wells-not-on-plate", train(labels=L),
         r"labels name 2 well\(s\) that plate 'SynthPlate' .* does not have: H11, H12",
         (plate("tiff"), write("labels.csv", "well,label\nA01,a\nA02,b\nH11,a\nH12,b\n")),
         widget=("import_annotations", L)),
    Case("labels-one-class", train(labels=L),
         r"labels: at least 2 classes are needed to train, found 1 \(\['a'\]\)",
         (plate("tiff"), write("labels.csv", "well,label\nA01,a\nA02,a\n"))),
]  # fmt: skip

# --- models --------------------------------------------------------------------------------------
M = "{ws}/m.pt"
MODELS = [
    Case("model-missing", predict(model_path="{ws}/nowhere.pt"),
         rf"model file '{WS}/nowhere\.pt': not found", (plate("tiff"),),
         widget=("load_model", "{ws}/nowhere.pt")),
    Case("model-missing-folder", predict(model_path="{ws}/gone/m.pt"),
         rf"model file '{WS}/gone/m\.pt': not found \(its folder {WS}/gone does not exist\)",
         (plate("tiff"),)),
    Case("model-is-a-folder", predict(model_path="{ws}/models"),
         rf"model file '{WS}/models' is a folder; expected a model file \(\.pt\)",
         (plate("tiff"), folder("models")), widget=("load_model", "{ws}/models")),
    Case("model-text-file", predict(model_path=M),
         rf"model file '{WS}/m\.pt' is not a napari-dcmix checkpoint: .*a text file \(it starts "
         r"with 'hello model'\)", (plate("tiff"), write("m.pt", "hello model\n")),
         widget=("load_model", M)),
    Case("model-empty-file", predict(model_path=M), r"found an empty file \(0 bytes\)",
         (plate("tiff"), write("m.pt", b""))),
    Case("model-png", predict(model_path=M), r"m\.pt' is not a napari-dcmix checkpoint: .*another "
         r"format \(it starts with bytes 89 50 4e 47", (plate("tiff"),
                                                        write("m.pt", b"\x89PNG\r\n\x1a\n" * 4))),
    Case("model-truncated", predict(model_path=M),
         rf"model file '{WS}/m\.pt': not a napari-dcmix checkpoint this version can load "
         r"\(unreadable or truncated", (plate("tiff"), model("m.pt"), truncate("m.pt", 3000)),
         widget=("load_model", M)),
    Case("model-zip-not-torch", predict(model_path=M), r"m\.pt': not a napari-dcmix checkpoint "
         r"this version can load \(unreadable or truncated",
         (plate("tiff"), lambda ws, bank: _write_zip(ws / "m.pt"))),
    Case("model-malicious-pickle", predict(model_path=M),
         r"m\.pt': not a napari-dcmix checkpoint this version can load \(refused: it holds Python "
         r"objects", (plate("tiff"), lambda ws, bank: _write_pickle(ws / "m.pt"))),
    Case("model-plain-dict", predict(model_path=M),
         rf"model file '{WS}/m\.pt': not a napari-dcmix checkpoint$",
         (plate("tiff"), lambda ws, bank: _torch_save(ws / "m.pt", {"weights": [1, 2]}))),
    Case("model-future-version", predict(model_path=M), r"m\.pt': format version 99, this "
         r"version of napari-dcmix reads format versions 1, 2",
         (plate("tiff"), lambda ws, bank: _torch_save(ws / "m.pt", {"format": "napari-dcmix",
                                                                   "format_version": 99}))),
    Case("model-inconsistent", predict(model_path=M), r"m\.pt': inconsistent checkpoint",
         (plate("tiff"), lambda ws, bank: _broken_checkpoint(bank, ws / "m.pt"))),
    Case("model-other-stains", predict(model_path=M),
         r"channels \['GFP', 'RFP'\] differ from plate 'SynthPlate'",
         (plate("tiff"), model("m.pt", "other_stains.pt"))),
    Case("importance-bad-model", ("importance", M), rf"model file '{WS}/m\.pt' is not a "
         r"napari-dcmix checkpoint", (write("m.pt", "not a model"),)),
    Case("importance-folder", ("importance", "{ws}"), rf"model file '{WS}' is a folder", ()),
    Case("info-bad-model", info(M), rf"model file '{WS}/m\.pt' is not a napari-dcmix "
         r"checkpoint: expected a PyTorch file .* found a text file",
         (write("m.pt", "not a model"),)),
    Case("info-truncated-model", info(M), r"\(unreadable or truncated",
         (model("m.pt"), truncate("m.pt", 3000))),
    Case("info-model-with-plane", info(M, "--plane", "2"),
         rf"--plane chooses what is read from a plate; {WS}/m\.pt is a model file",
         (model("m.pt"),)),
    Case("train-init-text-file", train("{ws}/p", LABELS, "--init", M),
         r"m\.pt' is not a napari-dcmix checkpoint", (plate("tiff"), write("m.pt", "text"))),
]  # fmt: skip

# --- outputs -------------------------------------------------------------------------------------
OUTPUTS = [
    Case("train-out-exists", train(), rf"{WS}/out\.pt exists; pass --overwrite to replace it",
         (plate("tiff"), write("out.pt", b"keep me"))),
    Case("train-out-is-folder", ("train", "{ws}/p", "--labels", LABELS, "--out", "{ws}/o"),
         rf"--out {WS}/o is a folder", (plate("tiff"), folder("o"))),
    Case("predict-out-exists", predict(), rf"{WS}/pred\.csv exists; pass --overwrite",
         (plate("tiff"), model(), write("pred.csv", "plate,well\nP,A01\n"))),
    Case("predict-out-is-folder", ("predict", "{ws}/p", "--model", "{ws}/model.pt", "--out",
                                   "{ws}/o", "--quiet"), rf"--out {WS}/o is a folder",
         (plate("tiff"), model(), folder("o"))),
    Case("predict-out-missing-folder", ("predict", "{ws}/p", "--model", "{ws}/model.pt", "--out",
                                        "{ws}/gone/pred.csv", "--device", "cpu", "--quiet"),
         rf"{WS}/gone/pred\.csv", (plate("tiff"), model())),
    Case("predict-out-under-a-file", ("predict", "{ws}/p", "--model", "{ws}/model.pt", "--out",
                                      "{ws}/afile/pred.csv", "--device", "cpu", "--quiet"),
         rf"{WS}/afile/pred\.csv", (plate("tiff"), model(), write("afile", "x"))),
    Case("synth-out-is-file", ("synth", "{ws}/f", "--wells", "2", "--image-size", "16"),
         rf"{WS}/f is a file; expected an output folder", (write("f", "keep"),)),
    Case("synth-out-not-empty", ("synth", "{ws}/o", "--wells", "2", "--image-size", "16"),
         rf"{WS}/o is not empty; choose an empty folder or pass --overwrite",
         (write("o/mine.txt", "keep"),)),
    Case("synth-out-under-a-file", ("synth", "{ws}/f/o", "--wells", "2", "--image-size", "16"),
         rf"cannot write {WS}/f/o: {WS}/f is a file, not a folder", (write("f", "keep"),)),
    Case("predict-plate-missing", predict("{ws}/nowhere"), rf"plate path {WS}/nowhere does not "
         r"exist", (model(),)),
    Case("predict-plate-no-layout", predict("{ws}/junk"), rf"{WS}/junk {NO_LAYOUT}",
         (model(), write("junk/notes.txt", "x"))),
    Case("predict-device-bogus", predict("{ws}/p", "--device", "tpu"),
         r"device: expected auto, cpu, cuda, cuda:N or mps, found 'tpu'", (plate("tiff"), model())),
]  # fmt: skip

# --- numbers -------------------------------------------------------------------------------------
SYNTH = ("synth", "{ws}/o", "--wells", "2", "--image-size", "16")
NUMBERS = [
    Case("synth-seed-negative", (*SYNTH, "--seed", "-5"),
         r"argument --seed: expected an integer seed 0 <= seed < 2\*\*63 .*found -5"),
    Case("synth-seed-65-bits", (*SYNTH, "--seed", str(2**64)),
         rf"argument --seed: expected an integer seed .*found {2**64}"),
    Case("synth-seed-text", (*SYNTH, "--seed", "abc"),
         r"argument --seed: expected an integer seed, found 'abc'"),
    Case("synth-wells-0", ("synth", "{ws}/o", "--wells", "0"),
         r"argument --wells: expected a number of wells 1 <= n <= 1536, found 0"),
    Case("synth-wells-5000", ("synth", "{ws}/o", "--wells", "5000"),
         r"argument --wells: expected a number of wells 1 <= n <= 1536, found 5000"),
    Case("synth-sites-0", ("synth", "{ws}/o", "--sites", "0"), r"argument --sites: .*found 0"),
    Case("synth-image-size-8", ("synth", "{ws}/o", "--image-size", "8"),
         r"argument --image-size: expected an image size in pixels 16 <= n <= 4096, found 8"),
    Case("synth-image-size-huge", ("synth", "{ws}/o", "--image-size", "100000"),
         r"argument --image-size: .*found 100000"),
    Case("synth-treated-fraction", (*SYNTH, "--treated-fraction", "1.5"),
         r"argument --treated-fraction: expected a number within 0\.\.1, found 1\.5"),
    Case("synth-treated-fraction-nan", (*SYNTH, "--treated-fraction", "nan"),
         r"argument --treated-fraction: expected a number within 0\.\.1, found nan"),
    Case("synth-planes-tiff", (*SYNTH, "--planes", "3"),
         r"several planes or timepoints: only the imagexpress, operetta and ome-zarr layouts "
         r"write them, not tiff"),
    Case("synth-phenotype-channel", (*SYNTH, "--phenotype-channel", "GFP"),
         r"phenotype channel 'GFP' is not one of the channels DNA, ER, RNA, AGP, Mito"),
    Case("synth-duplicate-channels", (*SYNTH, "--channels", "DNA,DNA,Mito"),
         r"channels: expected distinct, non-empty names, found \['DNA', 'DNA', 'Mito'\]"),
    Case("synth-rxrx1-channel", (*SYNTH, "--layout", "rxrx1", "--channels", "DNA,GFP"),
         r"channel 'GFP' is none of them"),
    Case("synth-plate-name-path", (*SYNTH, "--plate-name", "../escape"),
         r"plate name: expected a name usable as a folder name .*found '\.\./escape'"),
    Case("train-seed-negative", train("{ws}/p", LABELS, "--seed", "-1"),
         r"argument --seed: expected an integer seed 0 <= seed < 2\*\*63 .*found -1",
         (plate("tiff"),)),
    Case("train-seed-huge", train("{ws}/p", LABELS, "--seed", "99999999999999999999999"),
         r"argument --seed: .*found 99999999999999999999999", (plate("tiff"),)),
    Case("train-epochs-0", train("{ws}/p", LABELS, "--epochs", "0"),
         r"training epochs: expected >= 1, found 0", (plate("tiff"),)),
    Case("train-val-fraction", train("{ws}/p", LABELS, "--val-fraction", "1.5"),
         r"training validation fraction: expected 0 <= f < 1, found 1\.5", (plate("tiff"),)),
    Case("train-k-0", train("{ws}/p", LABELS, "--k", "0"),
         r"k \(blended images\): expected >= 1, found 0", (plate("tiff"),)),
    Case("train-input-size-4", train("{ws}/p", LABELS, "--input-size", "4"),
         r"input size: expected >= 8 pixels, found 4", (plate("tiff"),)),
    Case("train-lr-text", train("{ws}/p", LABELS, "--lr", "fast"),
         r"argument --lr: invalid float value: 'fast'", (plate("tiff"),)),
    # pixel scale, ensembles and evidence (the plates' sites are 16 x 16 px)
    Case("train-bin-0", train("{ws}/p", LABELS, "--bin", "0"),
         r"argument --bin: invalid int value|bin: expected a positive integer, found 0",
         (plate("tiff"),)),
    Case("train-bin-larger-than-site", train("{ws}/p", LABELS, "--bin", "32"),
         r"sites \(16 x 16 px\) are smaller than one bin of 32 x 32 px", (plate("tiff"),)),
    Case("train-crop-3", train("{ws}/p", LABELS, "--crop", "3"),
         r"crop: expected a positive integer of at least 8 pixels, found '3'", (plate("tiff"),)),
    Case("train-crop-text", train("{ws}/p", LABELS, "--crop", "big"),
         r"crop: expected a positive integer or 'full', found 'big'", (plate("tiff"),)),
    Case("train-crop-larger-than-site", train("{ws}/p", LABELS, "--crop", "32"),
         r"16 x 16 px after binning by 1 \(16 x 16 px before\), smaller than one 32 x 32 px "
         r"crop", (plate("tiff"),)),
    Case("train-ensemble-0", train("{ws}/p", LABELS, "--ensemble", "0"),
         r"training ensemble size: expected >= 1, found 0", (plate("tiff"),)),
    Case("train-reference-unknown", train("{ws}/p", LABELS, "--reference", "DMSO"),
         r"reference class 'DMSO' is not one of the labelled classes: control, treated",
         (plate("tiff"),)),
    Case("train-holdout-plate-one-plate", train("{ws}/p", LABELS, "--holdout", "plate"),
         r"--holdout plate needs at least 2 plates, found 1", (plate("tiff"),)),
    Case("train-workers-0", train("{ws}/p", LABELS, "--workers", "0"),
         r"argument --workers: expected a number of worker processes 1 <= n <= 1024, found 0",
         (plate("tiff"),)),
    Case("predict-max-tiles-0", predict("{ws}/p", "--max-tiles", "0"),
         r"--max-tiles: expected a positive integer, found 0", (plate("tiff"), model())),
    Case("predict-crop-larger-than-site", predict("{ws}/p", model_path="{ws}/c.pt"),
         r"the sites of plate 'SynthPlate' are 16 x 16 px after binning by 1 \(16 x 16 px "
         r"before\), smaller than one 32 x 32 px crop", (plate("tiff"), _crop_model("c.pt", 32))),
    Case("importance-ablation-without-labels", ("importance", "{ws}/model.pt", "--ablation",
                                                 "{ws}/p"),
         r"--ablation PLATE needs --labels CSV", (plate("tiff"), model())),
    Case("importance-ablation-one-class", ("importance", "{ws}/model.pt", "--ablation", "{ws}/p",
                                            "--labels", L),
         r"ablation needs labelled wells of at least 2 classes to compare, found 1 \(control\)",
         (plate("tiff"), model(), write("labels.csv", "well,label\nA01,control\nA02,control\n"))),
    Case("predict-batch-size-0", predict("{ws}/p", "--batch-size", "0"),
         r"batch size: expected (an integer )?>= 1, found 0", (plate("tiff"), model())),
    Case("predict-plane-5", predict("{ws}/p", "--plane", "5"),
         r"Operetta plate .* has no plane 5", (plate("operetta"), model())),
]  # fmt: skip

CASES: list[Case] = [*PLATES_ANY, *PLATES_TIFF, *PLATES_IX, *PLATES_OP, *PLATES_RX, *PLATES_ZARR,
                     *LABELS_CASES, *MODELS, *OUTPUTS, *NUMBERS]  # fmt: skip

# A handful run as a real `python -m napari_dcmix.cli` process each: the exit status and the
# absence of a traceback as a user's shell sees them (the rest share one process).
SUBPROCESS_IDS = (
    "plate-no-layout",
    "zarr-well-json-invalid",
    "labels-cp1252",
    "model-text-file",
    "synth-seed-negative",
    "tiff-truncated-site-predict",
)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: kind, permissions and content hash (files) or target
    (symbolic links); FIFOs are not opened."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[rel] = ("file", stat.S_IMODE(st.st_mode), digest)
            else:
                out[rel] = ("other", stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode))
    return out


# --- the bank ------------------------------------------------------------------------------------
def build_bank(root: Path) -> Path:
    """Write the bank into ``root``: plates of 4 wells x 1 site x 16 px (tiff, imagexpress,
    operetta, rxrx1, ome-zarr v0.5 and v0.4, imagexpress-z with 2 planes x 2 timepoints),
    model.pt (an untrained model for their 5 stains, with normalisation) and other_stains.pt
    (a model for GFP, RFP)."""
    from napari_dcmix.model import build_model, save_model
    from napari_dcmix.plate import open_plate
    from napari_dcmix.plate.normalise import estimate_channel_stats
    from napari_dcmix.synthetic import write_synthetic_plate

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
        write_synthetic_plate(root / "plates" / name, n_wells=4, sites=1, image_size=16, seed=3,
                              **kwargs)  # fmt: skip
    plate = open_plate(root / "plates" / "tiff")
    model = build_model(plate.channels, ["control", "treated"], input_size=16, seed=0)
    model.normalisation = estimate_channel_stats(plate, seed=0)
    save_model(model, root / "model.pt")
    other = build_model(["GFP", "RFP"], ["control", "treated"], input_size=16, seed=0)
    save_model(other, root / "other_stains.pt")
    return root


# --- file builders used by the setups --------------------------------------------------------
def _write_tiff(path: Path, shape: tuple[int, ...]) -> None:
    import numpy as np
    import tifffile

    tifffile.imwrite(path, np.ones(shape, np.uint16))


def _write_zip(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "a zip, not a model")


def _write_pickle(path: Path) -> None:
    """A legacy-format torch file whose unpickling would call os.system (refused)."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/dcmix-pwned",))

    path.write_bytes(pickle.dumps({"format": "napari-dcmix", "x": Evil()}, protocol=2))


def _torch_save(path: Path, payload: object) -> None:
    import torch

    torch.save(payload, path)


def _broken_checkpoint(bank: Path, path: Path) -> None:
    import torch

    payload = torch.load(bank / "model.pt", weights_only=True)
    state = payload["members"][0]["state_dict"]
    state.pop(next(iter(state)))
    torch.save(payload, path)
