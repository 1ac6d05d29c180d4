"""Whole-image reads straight from the chunk files of a local, unsharded Zarr array.

zarr-python reads every selection through its async codec pipeline (a hop to its event-loop
thread and a thread pool for each call). For one 5 x 512 x 512 site that machinery costs about
as much CPU as the decompression itself, and on a machine whose cores the model keeps busy
every such millisecond slows prediction. The reads plate prediction makes are simple (every
c, y, x pixel of an image at one t and z index), so the chunks to read are known up front:
this module opens each chunk file, decompresses it with the codec zarr itself uses
(numcodecs), and writes it into the output, decoding straight into the output where a chunk
is a contiguous block of it.

Only arrays it fully understands take this path (``DirectChunks.of`` returns None otherwise,
and the caller reads through zarr):
- a local folder store (``zarr.storage.LocalStore``), a regular chunk grid, no sharding;
- Zarr v2: no filters, C order, a numcodecs compressor or none;
- Zarr v3: the ``bytes`` codec (native byte order) plus at most one of zstd, blosc or gzip;
- a native-endian numeric dtype and a fill value.
A chunk that is not stored reads as the fill value, as in zarr. A stored chunk that cannot be
decoded raises ``ChunkDecodeError`` (a ``PlateError``) naming the chunk file. Blosc frames are
checked against their header first: the Blosc 1 decoder trusts the header's sizes, so a
truncated chunk would otherwise decode into garbage (zarr's own path returns it silently).
"""

from __future__ import annotations

import copy
import itertools
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from napari_dcmix.errors import PlateError

_scratch = threading.local()  # per-thread buffers for the compressed bytes and cut chunks


class ChunkDecodeError(PlateError):
    """A stored chunk could not be read or decoded (the message names the chunk file)."""


def _buffer(name: str, nbytes: int) -> memoryview:
    """A per-thread scratch buffer of at least ``nbytes`` (reused: no page faults per read)."""
    buf = getattr(_scratch, name, None)
    if buf is None or len(buf) < nbytes:
        buf = bytearray(max(nbytes, 1))
        setattr(_scratch, name, buf)
    return memoryview(buf)[:nbytes]


def _v3_codec(codecs: tuple) -> Any | None:
    """The numcodecs codec for a v3 chain ``bytes`` (+ zstd | blosc | gzip), else None.

    Returns ``False`` for a bare ``bytes`` chain (no compression)."""
    import numcodecs

    if not codecs or type(codecs[0]).__name__ != "BytesCodec" or len(codecs) > 2:
        return None
    endian = getattr(codecs[0], "endian", None)
    endian = getattr(endian, "value", endian)
    if endian not in (None, sys.byteorder):
        return None
    if len(codecs) == 1:
        return False
    spec = codecs[1].to_dict()
    name, config = spec.get("name"), dict(spec.get("configuration") or {})
    if name == "zstd":
        return numcodecs.Zstd(level=config.get("level", 0), checksum=config.get("checksum", False))
    if name == "blosc":  # blosc frames describe themselves: decoding needs no settings
        return numcodecs.Blosc()
    if name == "gzip":
        return numcodecs.GZip(level=config.get("level", 1))
    return None


def _v2_codec(metadata: Any) -> Any | None:
    """The v2 array's numcodecs compressor (``False`` when uncompressed), else None."""
    if getattr(metadata, "filters", None) or getattr(metadata, "order", "C") != "C":
        return None
    compressor = getattr(metadata, "compressor", None)
    if compressor is None:
        return False
    return compressor if hasattr(compressor, "decode") else None


class DirectChunks:
    """Reads ``(C, Y, X)`` images (other axes at 0) of one Zarr array from its chunk files."""

    def __init__(self, root: Path, array: Any, codec: Any) -> None:
        self.root = root
        self.shape = tuple(int(n) for n in array.shape)
        self.chunks = tuple(int(n) for n in array.chunks)
        self.dtype = np.dtype(array.dtype)
        self.fill_value = array.fill_value
        self.codec = codec
        self.zarr_format = int(array.metadata.zarr_format)
        self._key = array.metadata.encode_chunk_key

    @classmethod
    def of(cls, array: Any) -> DirectChunks | None:
        """The direct reader for ``array``, or None when it needs zarr's own pipeline."""
        try:
            from zarr.storage import LocalStore

            store = array.store
            if not isinstance(store, LocalStore) or getattr(array, "shards", None) is not None:
                return None
            dtype = np.dtype(array.dtype)
            if dtype.kind not in "biuf" or not (dtype.isnative or dtype.itemsize == 1):
                return None
            if array.fill_value is None or len(array.chunks) != len(array.shape):
                return None
            metadata = array.metadata
            if metadata.zarr_format == 3:
                grid = type(getattr(metadata, "chunk_grid", None)).__name__
                codec = _v3_codec(tuple(metadata.codecs)) if grid == "RegularChunkGrid" else None
            else:
                codec = _v2_codec(metadata)
            if codec is None:
                return None
            return cls(Path(store.root) / array.path, array, codec)
        except Exception:  # an unusual array or zarr version: zarr's own path reads it
            return None

    def moved(self, root: Path) -> DirectChunks:
        """The same reader for another array whose metadata document is byte for byte this
        one's (same shape, chunks, dtype, codecs, fill value and chunk keys): only the folder
        differs, so nothing needs parsing."""
        other = copy.copy(self)
        other.root = Path(root)
        return other

    def output_shape(self, axes: str) -> tuple[int, ...]:
        """``(C, Y, X)`` of ``read`` (C = 1 without a channel axis)."""
        shape = tuple(n for n, a in zip(self.shape, axes, strict=True) if a in "cyx")
        return shape if "c" in axes else (1, *shape)

    def read(self, axes: str, at: dict[str, int] | None = None) -> tuple[np.ndarray, list[int]]:
        """``(C, Y, X)`` of the image at the t and z indices ``at`` (default 0; other axes at
        0) and the channels with no stored chunk.

        A chunk that is not stored is the fill value; ``ChunkDecodeError`` when a stored chunk
        cannot be read or decoded."""
        kept = [i for i, a in enumerate(axes) if a in "cyx"]
        c_axis = axes.index("c") if "c" in axes else None
        out = np.empty(self.output_shape(axes), self.dtype)
        target = out if c_axis is not None else out[0]
        position = [(at or {}).get(a, 0) if i not in kept else 0 for i, a in enumerate(axes)]
        grids = [
            range(-(-self.shape[i] // self.chunks[i]))
            if i in kept
            else range(position[i] // self.chunks[i], position[i] // self.chunks[i] + 1)
            for i in range(len(axes))
        ]
        present: set[int] = set()
        for coords in itertools.product(*grids):
            region = tuple(
                slice(k * self.chunks[i], min((k + 1) * self.chunks[i], self.shape[i]))
                for i, k in enumerate(coords)
                if i in kept
            )
            view = target[region]
            offsets = [p % c for p, c in zip(position, self.chunks, strict=True)]
            if self._read_chunk(coords, kept, view, offsets):
                present.add(coords[c_axis] if c_axis is not None else 0)
        n_c = self.shape[c_axis] if c_axis is not None else 1
        c_size = self.chunks[c_axis] if c_axis is not None else 1
        missing = [c for c in range(n_c) if c // c_size not in present]
        return out, missing

    def _read_chunk(
        self, coords: tuple[int, ...], kept: list[int], view: np.ndarray, offsets: list[int]
    ) -> bool:
        """Decode chunk ``coords`` into ``view`` (dropped axes at ``offsets`` inside the
        chunk); False (view = fill value) when not stored."""
        path = self.root / self._key(coords)
        try:
            with open(path, "rb", buffering=0) as fh:
                size = os.fstat(fh.fileno()).st_size
                data = _buffer("compressed", size)
                got = fh.readinto(data)
                while got < size:
                    n = fh.readinto(data[got:])
                    if not n:
                        raise ChunkDecodeError(f"cannot read {path}: shorter than its size")
                    got += n
        except FileNotFoundError:
            view[...] = self.fill_value
            return False
        except OSError as exc:
            raise ChunkDecodeError(f"cannot read {path}: {exc}") from None
        # the chunk's own block of pixels: a dropped axis (t, z) must be size 1 in the chunk,
        # and kept axes must not be cut at the array's edge, for it to be the view itself
        whole = view.flags.c_contiguous and all(
            self.chunks[i] == 1 for i in range(len(self.chunks)) if i not in kept
        )
        whole = whole and view.shape == tuple(self.chunks[i] for i in kept)
        nbytes = int(np.prod(self.chunks)) * self.dtype.itemsize
        dst = view if whole else np.frombuffer(_buffer("chunk", nbytes), self.dtype)
        try:
            if self.codec is False:
                if len(data) != nbytes:
                    raise ValueError(f"{len(data)} bytes, expected {nbytes}")
                np.copyto(dst.reshape(-1), np.frombuffer(data, self.dtype))
            else:
                if getattr(self.codec, "codec_id", None) == "blosc":
                    _check_blosc_frame(data, nbytes)
                self.codec.decode(data, out=dst.reshape(-1).view(np.uint8))
        except Exception as exc:
            raise ChunkDecodeError(
                f"cannot read {path}: {type(exc).__name__}: {exc} (truncated or corrupt chunk)"
            ) from None
        if not whole:
            chunk = dst.reshape(self.chunks)
            index = tuple(
                slice(0, view.shape[kept.index(i)]) if i in kept else offsets[i]
                for i in range(len(self.chunks))
            )
            view[...] = chunk[index]
        return True


def _check_blosc_frame(data: memoryview, nbytes: int) -> None:
    """ValueError unless the Blosc frame's header sizes match the stored bytes and the chunk."""
    if len(data) < 16:
        raise ValueError(f"{len(data)} bytes, shorter than a Blosc header")
    raw, compressed = (int.from_bytes(data[i : i + 4], "little") for i in (4, 12))
    if compressed != len(data) or raw != nbytes:
        raise ValueError(
            f"Blosc header says {compressed} stored bytes for {raw} pixel bytes; "
            f"found {len(data)} stored bytes for a {nbytes}-byte chunk"
        )
