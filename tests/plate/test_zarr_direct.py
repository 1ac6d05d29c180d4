"""OME-Zarr sites are read straight from the chunk files when the array is simple (local,
unsharded, a plain codec chain): pixels identical to zarr's own reads for every chunking,
codec and Zarr version, the fill value for chunks that are not stored, and zarr's own path
(with its errors) for everything else."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import zarr
from numcodecs import Blosc, Zstd
from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import open_plate
from napari_dcmix.plate._io import PlateWarning
from napari_dcmix.plate.layouts._zarr_direct import DirectChunks


def _pixels(shape, seed=0, dtype=np.uint16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 5000, shape).astype(dtype)


def _v3(path, data, chunks, compressors="auto", **kw):
    arr = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=data.dtype,
                            zarr_format=3, compressors=compressors, **kw)  # fmt: skip
    arr[...] = data
    return zarr.open_array(str(path), mode="r")


def _v2(path, data, chunks, compressor, **kw):
    arr = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=data.dtype,
                            zarr_format=2, compressors=compressor, **kw)  # fmt: skip
    arr[...] = data
    return zarr.open_array(str(path), mode="r")


def _zarr_read(arr, axes: str) -> np.ndarray:
    index = tuple(slice(None) if a in "cyx" else 0 for a in axes)
    data = np.asarray(arr[index])
    return data if "c" in axes else data[None]


CASES = {
    # name: (zarr format, axes, shape, chunks, codec)
    "v3 zstd, one chunk per site": (3, "cyx", (5, 64, 64), (5, 64, 64), ZstdCodec()),
    "v3 zstd, edge chunks": (3, "cyx", (3, 50, 70), (2, 16, 32), "auto"),
    "v3 blosc lz4, tczyx planes": (3, "tczyx", (2, 4, 3, 40, 40), (1, 1, 1, 40, 40),
                                   BloscCodec(cname="lz4")),
    "v3 gzip": (3, "czyx", (2, 2, 30, 30), (1, 2, 16, 30), GzipCodec(level=1)),
    "v3 uncompressed": (3, "yx", (33, 20), (16, 16), None),
    "v2 blosc lz4, tczyx planes": (2, "tczyx", (1, 5, 1, 48, 48), (1, 1, 1, 48, 48),
                                   Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)),
    "v2 zstd, edge chunks": (2, "cyx", (4, 37, 41), (3, 16, 16), Zstd(level=1)),
    "v2 uncompressed": (2, "cyx", (2, 20, 20), (1, 8, 8), None),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_direct_reads_equal_zarr(tmp_path, name):
    fmt, axes, shape, chunks, codec = CASES[name]
    data = _pixels(shape)
    if fmt == 3:
        arr = _v3(tmp_path / "a.zarr", data, chunks, compressors=codec)
    else:
        arr = _v2(tmp_path / "a.zarr", data, chunks, codec)
    reader = DirectChunks.of(arr)
    assert reader is not None
    got, missing = reader.read(axes)
    assert missing == []
    np.testing.assert_array_equal(got, _zarr_read(arr, axes))


def test_missing_chunks_are_the_fill_value_and_named(tmp_path):
    data = _pixels((3, 32, 32)) + 1
    arr = _v3(tmp_path / "a.zarr", data, (1, 16, 16), compressors=ZstdCodec(), fill_value=9)
    for key in ("c/1/0/0", "c/1/0/1", "c/1/1/0", "c/1/1/1", "c/2/0/1"):
        (tmp_path / "a.zarr" / key).unlink()
    got, missing = DirectChunks.of(arr).read("cyx")
    np.testing.assert_array_equal(got, _zarr_read(arr, "cyx"))
    assert missing == [1]  # channel 2 keeps three of its four chunks
    assert (got[1] == 9).all() and (got[2, :16, 16:] == 9).all()


def _crc(path):
    from zarr.codecs import BytesCodec, Crc32cCodec

    data = _pixels((2, 8, 8))
    arr = zarr.create_array(str(path), shape=data.shape, chunks=(1, 8, 8), dtype=data.dtype,
                            serializer=BytesCodec(), compressors=[Crc32cCodec()])  # fmt: skip
    arr[...] = data
    return zarr.open_array(str(path), mode="r")


def _sharded(path):
    data = _pixels((2, 32, 32))
    return _v3(path, data, (1, 16, 16), shards=(2, 32, 32))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_sharded, id="sharded"),
        pytest.param(
            lambda p: _v2(p, _pixels((2, 8, 8)).astype(">u2"), (1, 8, 8), None), id="big-endian"
        ),
        pytest.param(lambda p: _v2(p, _pixels((2, 8, 8)), (1, 8, 8), None, order="F"), id="F"),
        pytest.param(_crc, id="crc32c"),
    ],
)
def test_other_arrays_are_left_to_zarr(tmp_path, make):
    assert DirectChunks.of(make(tmp_path / "a.zarr")) is None


def _bioformats2raw_plate(tmp_path):
    from napari_dcmix.synthetic.writers import Bioformats2rawWriter

    sites = {w: _pixels((5, 48, 48), seed=i) for i, w in enumerate(["A01", "A02", "B01"])}
    writer = Bioformats2rawWriter(tmp_path, "P", ["DNA", "ER", "RNA", "AGP", "Mito"], 1, 0)
    for well, data in sites.items():
        writer.write_site(well, 1, data)
    writer.finish(list(sites))
    return writer.path, sites


def test_plate_reads_use_the_direct_path_and_match_zarr(tmp_path):
    path, sites = _bioformats2raw_plate(tmp_path)
    direct, via_zarr = open_plate(path), open_plate(path)
    via_zarr._direct_reads = False
    for well, data in sites.items():
        np.testing.assert_array_equal(direct.read(well, 1), data)
        np.testing.assert_array_equal(via_zarr.read(well, 1), data)
    assert all(r is not None for r in direct._directs.values())
    assert not via_zarr._directs or all(r is None for r in via_zarr._directs.values())


def test_missing_plane_warns_on_the_direct_path(tmp_path):
    path, _ = _bioformats2raw_plate(tmp_path)
    shutil.rmtree(path / "A" / "2" / "0" / "s0" / "0" / "3")  # t=0, channel 3 (AGP)
    plate = open_plate(path)
    with pytest.warns(
        PlateWarning, match=r"well A02 site 1: no stored chunk for channel\(s\) 'AGP'"
    ):
        assert plate.read("A02", 1)[3].max() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlateWarning)
        assert plate.read("A01", 1).max() > 0


@pytest.mark.parametrize("keep", [40, 8, 0])
def test_truncated_chunk_names_the_file(tmp_path, keep):
    path, _ = _bioformats2raw_plate(tmp_path)
    image = path / "A" / "1" / "0" / "s0"
    chunk = next(f for f in sorted(image.rglob("*")) if f.is_file() and not f.name.startswith("."))
    chunk.write_bytes(chunk.read_bytes()[:keep])
    plate = open_plate(path)
    # (zarr itself decodes such a Blosc chunk into garbage without a word)
    with pytest.raises(PlateError, match=rf"cannot read {chunk}: .*truncated or corrupt"):
        plate.read("A01", 1)
    assert plate.read("A02", 1).shape == (5, 48, 48)  # other sites still read


def test_truncated_zstd_chunk_names_the_file(tmp_path):
    data = _pixels((2, 16, 16))
    _v3(tmp_path / "a.zarr", data, (2, 16, 16), compressors=ZstdCodec())
    chunk = tmp_path / "a.zarr" / "c" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-10])
    reader = DirectChunks.of(zarr.open_array(str(tmp_path / "a.zarr"), mode="r"))
    with pytest.raises(PlateError, match=r"cannot read .*c/0/0/0: .*truncated or corrupt"):
        reader.read("cyx")


def test_thumbnails_read_directly_when_every_chunk_is_touched(tmp_path, monkeypatch):
    from napari_dcmix.plate.layouts import omezarr

    path, sites = _bioformats2raw_plate(tmp_path)  # 48 x 48 planes, one chunk each
    plate = open_plate(path)
    through_zarr = []
    real = omezarr._read_cyx
    spy = lambda *a, **k: through_zarr.append(a[3]) or real(*a, **k)  # noqa: E731 - a[3]: step
    monkeypatch.setattr(omezarr, "_read_cyx", spy)
    for f in (2, 5, 48, 64):  # 64: wider than a chunk, so zarr's strided read skips chunks
        np.testing.assert_array_equal(plate.read_thumbnail("A02", 1, f), sites["A02"][:, ::f, ::f])
    assert through_zarr == [64]


def test_a_site_of_another_size_is_named(tmp_path):
    from napari_dcmix.synthetic.writers import Bioformats2rawWriter

    writer = Bioformats2rawWriter(tmp_path, "P", ["DNA", "ER"], 1, 0)
    writer.write_site("A01", 1, _pixels((2, 48, 48)))
    writer.write_site("A02", 1, _pixels((2, 40, 40)))
    writer.finish(["A01", "A02"])
    plate = open_plate(writer.path)
    with pytest.raises(PlateError, match=r"well A02 site 1 has shape \(2, 40, 40\)"):
        plate.read("A02", 1)


def test_sites_like_one_already_read_are_found_without_zarr(tmp_path):
    """After the first site, a site whose array metadata document is byte for byte the same is
    read from its files alone (no zarr node opened: about 2 ms of CPU a site saved), with the
    pixels zarr reads; a site whose array differs (other chunks) goes through zarr and reads
    right; one whose image metadata are broken is named as before."""
    path, sites = _bioformats2raw_plate(tmp_path)
    plate = open_plate(path)
    for well, data in sites.items():
        np.testing.assert_array_equal(plate.read(well, 1), data)
    assert set(plate._arrays) == {("A01", 1)}  # the only site opened through zarr
    assert set(plate._fast) == {("A02", 1), ("B01", 1)}

    array = plate._array("B01", 1)[0]
    rechunked = zarr.create_array(str(path), name=array.path, shape=array.shape,
                                  chunks=(1, 1, 1, 16, 16), dtype=array.dtype, zarr_format=2,
                                  compressors=Blosc(cname="zstd"), overwrite=True)  # fmt: skip
    rechunked[...] = sites["B01"][None, :, None]
    plate = open_plate(path)
    for well, data in sites.items():
        np.testing.assert_array_equal(plate.read(well, 1), data)
    assert set(plate._arrays) == {("A01", 1), ("B01", 1)}
    assert plate._fast[("A02", 1)] is not None and plate._fast[("B01", 1)] is None  # a miss

    plate = open_plate(path)
    plate.read("A01", 1)
    (path / plate._image_paths[("A02", 1)] / ".zattrs").write_text("{not json")
    with pytest.raises(PlateError, match=r"Zarr metadata of .*A/2/0: JSONDecodeError"):
        plate.read("A02", 1)


def _edit_image(path, edit) -> str:
    """Apply ``edit`` to A02's multiscales (bioformats2raw: Zarr v2 ``.zattrs``); its level."""
    attrs = path / "A" / "2" / "0" / ".zattrs"
    doc = json.loads(attrs.read_text())
    level = doc["multiscales"][0]["datasets"][0]["path"]
    edit(doc["multiscales"][0], level)
    attrs.write_text(json.dumps(doc))
    return level


def _level_through_dotdot(path, tmp_path):
    _edit_image(path, lambda ms, lv: ms["datasets"][0].update(path=f"../../../B/1/0/{lv}"))


def _absolute_level(path, tmp_path):
    def edit(ms, level):
        shutil.copytree(path / "B" / "1" / "0" / level, tmp_path / "elsewhere" / level)
        ms["datasets"][0]["path"] = str(tmp_path / "elsewhere" / level)

    _edit_image(path, edit)


def _two_letter_axis(path, tmp_path):  # "tc", "z", "y", "x" still joins to "tczyx"
    _edit_image(path, lambda ms, lv: ms.update(axes=[{"name": "tc"}, *ms["axes"][2:]]))


def _corrupt_array_attrs(path, tmp_path):
    level = _edit_image(path, lambda ms, lv: None)
    (path / "A" / "2" / "0" / level / ".zattrs").write_text("{bad")


@pytest.mark.parametrize(
    "spoil", [_level_through_dotdot, _absolute_level, _two_letter_axis, _corrupt_array_attrs]
)
def test_metadata_zarr_refuses_are_refused_whatever_was_read_before(tmp_path, spoil):
    """A site whose metadata zarr refuses (a level outside its image, an axis name of two
    letters, corrupt array attributes) is refused by name, read alone or after a site that
    left a template: never read from another folder (here: B01's pixels)."""
    path, _ = _bioformats2raw_plate(tmp_path)
    spoil(path, tmp_path)
    with pytest.raises(PlateError, match=r"A/2/0"):
        open_plate(path).read("A02", 1)
    plate = open_plate(path)
    plate.read("A01", 1)
    with pytest.raises(PlateError, match=r"A/2/0"):
        plate.read("A02", 1)
    assert plate._fast.get(("A02", 1)) is None


def test_consolidated_plates_are_read_through_zarr(tmp_path):
    """zarr opens the nodes of a consolidated plate from its consolidated copy, which the
    files may not match: such plates never take the files-only path."""
    path, sites = _bioformats2raw_plate(tmp_path)
    zarr.consolidate_metadata(str(path))
    plate = open_plate(path)
    for well, data in sites.items():
        np.testing.assert_array_equal(plate.read(well, 1), data)
    assert not plate._fast and len(plate._arrays) == len(sites)
