"""OME-Zarr (OME-NGFF) HCS plates: v0.4 on Zarr v2 and v0.5 on Zarr v3.

Wells come from the plate metadata, sites from each well's ``images`` (site n = the n-th
image), channel names from the first image's ``omero.channels[].label`` (else ``ch1``...).
Pixels are read from the full-resolution level (``datasets[0]``) one site at a time. Planes
and timepoints are numbered from 1 along the z and t axes of the first image (plane n is z
index n - 1, as site n is the n-th image; ``[1]`` without the axis); plane 1 and timepoint 1
are read unless ``open_plate(plane=..., timepoint=...)`` chooses others, or ``plane="max"`` the
maximum over z. ``read_thumbnail`` reads a coarser stored level of the
image's pyramid when one has the requested scale, else a strided selection of level 0.

Missing chunks: zarr reads a chunk that is not stored as the array's fill value, and writers
legitimately skip chunks that are all fill value, so a single missing chunk cannot be told from
a dark one. When *every* stored chunk of a channel of a site is missing (a channel that is the
fill value over a whole site: lost data, not an image), ``read_with_notes`` returns a note
naming the well, site and channels (``read`` emits it as a ``PlateWarning``) and still returns
the fill value (one ``stat`` per chunk, stopping at the first present chunk of each channel;
checked for local folder stores only).

Pixel size (``Plate.pixel_size_um``): the y and x entries of the ``scale`` coordinate
transformation of each image's first dataset, times those of a ``multiscales``-level ``scale``
when there is one, in the units of the y and x ``axes`` (micrometer, nanometer, millimeter...,
converted to micrometres). Read on first use from up to ``PIXEL_SIZE_IMAGES`` images spread
over the plate. A scale without a unit is unknown (None): ome-zarr-py and other writers write
a scale of 1 without a unit when they know no pixel size, so a unit-less number is not a
measurement; so is an unknown unit.

Remote plates (``http(s)://``, ``s3://``) open through fsspec (``open_remote``) and are read
through zarr; their ``path`` is the URL.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from napari_dcmix.errors import PlateError, PlateWarning
from napari_dcmix.plate.base import MAX_PROJECTION, Plate, choose_plane, choose_timepoint
from napari_dcmix.plate.layouts import NotThisLayout
from napari_dcmix.plate.layouts._zarr_direct import DirectChunks
from napari_dcmix.plate.pixel_size import PixelSize, Sample, combine, spread, to_um
from napari_dcmix.plate.wells import normalise_well

LAYOUT = "ome-zarr"
_MARKERS = ("zarr.json", ".zgroup", ".zattrs")
#: images whose metadata the pixel size is read from (spread over the plate; each is a read)
PIXEL_SIZE_IMAGES = 4


def _ome(attrs: dict) -> dict:
    return attrs.get("ome", attrs)


class OmeZarrPlate(Plate):
    """An OME-Zarr HCS plate, read lazily through zarr.

    Opened arrays (and each image's multiscales metadata) are cached per site, so repeated
    reads parse no metadata; the caches are filled under a lock and are safe across threads.
    """

    def __init__(
        self, *, group, image_paths: dict[tuple[str, int], str], url: str | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if url:  # a remote plate: ``path`` is its URL (a ``Path`` would fold the "//")
            self.path = url  # type: ignore[assignment]
        self._group = group
        self._image_paths = image_paths
        self._arrays: dict[tuple[str, int], tuple] = {}
        self._levels: dict[tuple[str, int, int], tuple | None] = {}
        self._directs: dict[tuple[str, int], DirectChunks | None] = {}
        self._direct_reads = True  # False: every read goes through zarr (tests compare both)
        # (array metadata document, axes) -> a direct reader of an array opened through zarr;
        # sites whose documents match are read without opening them (``_fast_direct``)
        self._templates: dict[tuple[bytes, str], DirectChunks] = {}
        self._fast: dict[tuple[str, int], tuple[DirectChunks, str, str] | None] = {}
        self._lock = threading.Lock()

    def _array(self, well: str, site: int):
        key = (well, site)
        with self._lock:
            if key not in self._arrays:
                self._arrays[key] = _level0(self._group, self._image_paths[key], self.path)
            return self._arrays[key]

    def _indices(self) -> list[dict[str, int]]:
        """The t and z indices to read: one, or every plane for the maximum projection
        (plane n and timepoint n are indices n - 1, as site n is the n-th image)."""
        planes = self.planes if self.plane == MAX_PROJECTION else [self.plane]
        return [{"t": self.timepoint - 1, "z": int(z) - 1} for z in planes]

    def _check_indices(self, well: str, site: int, array, axes: str, where: str) -> None:
        """PlateError when this site's image lacks the chosen plane or timepoint (images of
        one plate may differ; the plate's numbers come from its first image)."""
        for index in self._indices():
            for axis, what in (("z", "plane"), ("t", "timepoint")):
                n = array.shape[axes.index(axis)] if axis in axes else 1
                if index[axis] >= n:
                    raise PlateError(
                        f"plate {self.name!r}: well {well} site {site} ({where}) has {n} "
                        f"{what}(s); {what} {index[axis] + 1} was asked for"
                    )

    def _read_site_notes(self, well: str, site: int) -> tuple[np.ndarray, list[str]]:
        """Straight from the chunk files when ``DirectChunks`` handles the array (local,
        unsharded, a plain codec chain: less than half the time of a zarr read), else zarr.
        A note names the channels whose every chunk is missing from the store (in any plane
        of a maximum projection)."""
        fast = self._fast_direct(well, site)
        if fast is not None:
            direct, axes, where = fast
            array: Any = direct  # the shape and fill value the checks and notes need
        else:
            array, axes, where, _ = self._array(well, site)
            direct = self._direct(well, site, array)
            if direct is not None:
                self._remember(direct, axes)
        self._check_indices(well, site, array, axes, where)
        data, missing = None, set()
        for index in self._indices():
            if direct is not None:
                plane, gone = direct.read(axes, index)
            else:
                gone = _missing_channels(array, axes, where, index)
                plane = _read_cyx(array, axes, where, 1, at=index)
            missing.update(gone)
            data = plane if data is None else np.maximum(data, plane, out=data)
        return data, self._missing_notes(well, site, array, where, sorted(missing))

    def _read_site(self, well: str, site: int) -> np.ndarray:
        return self._read_site_notes(well, site)[0]

    def _find_pixel_size(self) -> PixelSize:
        """The y/x scale and units of up to ``PIXEL_SIZE_IMAGES`` images' multiscales."""
        samples: list[Sample] = []
        for key in spread(sorted(self._image_paths), PIXEL_SIZE_IMAGES):
            where = f"{self.path}/{self._image_paths[key]}"
            try:
                attrs = _attrs(_node(self._group, self._image_paths[key], where), where)
            except (KeyError, PlateError):
                continue  # a missing or unreadable image: the read path names it
            samples.append((self._image_paths[key], image_pixel_size(attrs)))
        return combine(samples, "OME-NGFF multiscales scale and axis units")

    @functools.cached_property
    def _fast_root(self) -> Path | None:
        """The plate group's folder when sites may be found from their files: a local folder
        store without consolidated metadata (zarr reads nodes from the consolidated copy,
        which the files may not match). Else None. Found once per plate."""
        try:
            from zarr.storage import LocalStore

            store = self._group.store
            metadata = self._group.metadata
            if not isinstance(store, LocalStore) or metadata.consolidated_metadata is not None:
                return None
            return Path(store.root) / self._group.path
        except Exception:  # another zarr version or store: the zarr path reads it
            return None

    def _remember(self, direct: DirectChunks, axes: str) -> None:
        """Keep ``direct`` as the template of arrays with its metadata documents and axes."""
        try:
            document = _array_documents(direct.root, direct.zarr_format)
        except OSError:
            return
        with self._lock:
            self._templates.setdefault((document, axes), direct)

    def _fast_direct(self, well: str, site: int) -> tuple[DirectChunks, str, str] | None:
        """(direct reader, axes, where) of a site, found from its files alone: its image's
        multiscales read with ``json``, its array's metadata document compared byte for byte
        with that of an array already opened through zarr and validated (``_templates``).
        Opening each site's image and array through zarr costs about 2 ms of CPU per site
        (event-loop hops, metadata parsing), as much as decoding a 5 x 512 x 512 zstd site,
        and it is most of what a bioformats2raw (Blosc lz4) site costs to read. None sends
        the site through ``_array`` (the first of its kind, a remote plate, metadata that
        differ or do not parse: the zarr path then reads it or names what is wrong)."""
        key = (well, site)
        with self._lock:
            if key in self._fast:
                return self._fast[key]
            if not self._direct_reads or not self._templates:
                return None
        base = self._fast_root
        if base is None:
            return None
        try:
            found = self._found(base, key)
        except Exception:  # missing, unreadable or unusual metadata: the zarr path
            found = None
        with self._lock:
            self._fast[key] = found  # a miss, too: the zarr path has this site from now on
        return found

    def _found(self, base: Path, key: tuple[str, int]) -> tuple[DirectChunks, str, str] | None:
        """``_fast_direct``'s lookup. Only what zarr itself would open the same way matches:
        plain relative paths, the image a group of the plate's Zarr format, axes a list of
        one-letter names, and the array's documents (v3 ``zarr.json``; v2 ``.zarray`` and
        ``.zattrs``) equal to a template's, so an array zarr would refuse never matches."""
        image_path = self._image_paths[key]
        if not _plain_path(image_path):
            return None
        image = base / image_path
        fmt = int(self._group.metadata.zarr_format)
        if fmt == 3:
            node = json.loads((image / "zarr.json").read_bytes())
            if node.get("zarr_format") != 3 or node.get("node_type") != "group":
                return None
            attrs = node["attributes"]
        else:
            if json.loads((image / ".zgroup").read_bytes()).get("zarr_format") != 2:
                return None
            attrs = json.loads((image / ".zattrs").read_bytes())
        multiscales = _ome(attrs)["multiscales"][0]
        level = multiscales["datasets"][0]["path"]
        raw_axes = multiscales["axes"]
        names = [a.get("name") if isinstance(a, dict) else a for a in raw_axes]
        if not (_plain_path(level) and isinstance(raw_axes, list)):
            return None
        if not all(isinstance(n, str) and len(n) == 1 for n in names):
            return None
        axes = "".join(names).lower()
        document = _array_documents(image / level, fmt)
        with self._lock:
            template = self._templates.get((document, axes))
        if template is None:
            return None
        return template.moved(image / level), axes, f"{self.path}/{image_path}/{level}"

    def _direct(self, well: str, site: int, array) -> DirectChunks | None:
        key = (well, site)
        with self._lock:
            if key in self._directs:
                return self._directs[key]
        reader = DirectChunks.of(array) if self._direct_reads else None
        with self._lock:
            self._directs[key] = reader
        return reader

    def _missing_notes(
        self, well: str, site: int, array, where: str, missing: list[int]
    ) -> list[str]:
        """A note when every chunk of some channel of this site is absent from disk."""
        if not missing:
            return []
        names = ", ".join(
            repr(self.channels[i]) if i < len(self.channels) else str(i) for i in missing
        )
        return [
            f"plate {self.name!r}: well {well} site {site}: no stored chunk for channel(s) "
            f"{names} in {where}; read as the fill value {array.fill_value} (missing data)"
        ]

    def _read_thumbnail(self, well: str, site: int, factor: int) -> np.ndarray:
        """A stored pyramid level of this scale when there is one, else a strided selection.

        A level matches when its y/x scale is ``factor`` times level 0's (within 10 %) and its
        shape is ``H // factor`` or ``ceil(H / factor)``; a floor-sized level is edge-padded.
        The strided selection is exactly ``read()[:, ::f, ::f]``: the site read through
        ``DirectChunks`` and subsampled where it handles the array and its chunks are at least
        ``f`` pixels on a side (a strided selection then touches every chunk anyway), else
        ``arr[..., ::f, ::f]`` through zarr.
        """
        array, axes, where, datasets = self._array(well, site)
        self._check_indices(well, site, array, axes, where)
        level = self._pyramid_level(well, site, factor, datasets)
        direct = self._direct(well, site, array) if level is None else None
        tiles = [direct.chunks[axes.index(a)] for a in "yx"] if direct is not None else [0]
        data = None
        for index in self._indices():
            if level is not None:
                plane = _read_cyx(*level, 1, at=index)
            elif min(tiles) >= factor:  # then ``::factor`` touches every chunk: read them all
                plane = np.ascontiguousarray(direct.read(axes, index)[0][:, ::factor, ::factor])
            else:
                plane = _read_cyx(array, axes, where, factor, at=index)
            data = plane if data is None else np.maximum(data, plane, out=data)
        _, th, tw = self.thumbnail_shape(factor)
        if level is not None and data.shape[1:] != (th, tw):
            pad = ((0, 0), (0, th - data.shape[1]), (0, tw - data.shape[2]))
            data = np.pad(data, pad, mode="edge")
        return data

    def _pyramid_level(self, well: str, site: int, factor: int, datasets: list) -> tuple | None:
        """(array, axes, where) of the stored level ``factor`` times coarser, else None."""
        key = (well, site, factor)
        with self._lock:
            if key in self._levels:
                return self._levels[key]
        found = None
        h, w = self.image_shape
        base = _yx_scale(datasets[0]) if datasets and isinstance(datasets[0], dict) else None
        for dataset in datasets[1:]:
            if not isinstance(dataset, dict):
                continue
            scale = _yx_scale(dataset)
            if base is None or scale is None:
                break
            ratios = (scale[0] / base[0], scale[1] / base[1])
            if not all(abs(r - factor) <= 0.1 * factor for r in ratios):
                continue
            try:
                array, axes, where, _ = _open_level(
                    self._group, self._image_paths[(well, site)], self.path, dataset["path"]
                )
            except (PlateError, KeyError):
                continue
            if "y" not in axes or "x" not in axes or len(axes) != array.ndim:
                continue
            ly, lx = array.shape[axes.index("y")], array.shape[axes.index("x")]
            if ly in (h // factor, -(-h // factor)) and lx in (w // factor, -(-w // factor)):
                found = (array, axes, where)
                break
        with self._lock:
            self._levels[key] = found
        return found


def _read_cyx(
    array, axes: str, where: str, step: int, at: dict[str, int] | None = None
) -> np.ndarray:
    """``(C, Y, X)`` of an image array at the t and z indices ``at`` (default 0; other axes
    at 0), every ``step``-th pixel along y and x.

    One zarr selection for all channels, so each chunk is decoded once.
    """
    at = at or {}
    index = tuple(
        slice(None, None, step) if a in "yx" else slice(None) if a == "c" else at.get(a, 0)
        for a in axes
    )
    try:
        data = np.asarray(array[index])
    except Exception as exc:
        raise PlateError(f"cannot read {where}: {type(exc).__name__}: {exc}") from None
    kept = [a for a in axes if a in "cyx"]
    if "c" not in kept:
        data, kept = data[None], ["c", *kept]
    return np.moveaxis(data, kept.index("c"), 0)


def _missing_channels(array, axes: str, where: str, at: dict[str, int] | None = None) -> list[int]:
    """Channel indices whose every chunk (t and z at ``at``, default 0) is missing from a
    local folder store."""
    at = at or {}
    base = Path(where)
    try:
        if not base.is_dir():
            return []
        storage = array.shards or array.chunks  # shards are the stored objects when sharded
        encode = array.metadata.encode_chunk_key
        ranges = [
            range(-(-n // cs)) if a in "cyx" else range(at.get(a, 0) // cs, at.get(a, 0) // cs + 1)
            for a, n, cs in zip(axes, array.shape, storage, strict=True)
        ]
        ci = axes.index("c") if "c" in axes else None
        present: set[int] = set()
        for coords in itertools.product(*ranges):
            c_chunk = coords[ci] if ci is not None else 0
            if c_chunk not in present and os.path.exists(base / encode(coords)):
                present.add(c_chunk)
        n_c = array.shape[ci] if ci is not None else 1
        c_size = storage[ci] if ci is not None else 1
        return [c for c in range(n_c) if c // c_size not in present]
    except Exception:  # unusual store or metadata: no check rather than a failed read
        return []


def _yx_scale(dataset: dict) -> tuple[float, float] | None:
    """(y, x) of a dataset's ``scale`` coordinate transformation (y and x are the last axes)."""
    transforms = dataset.get("coordinateTransformations")
    for t in transforms if isinstance(transforms, list) else []:
        scale = t.get("scale") if isinstance(t, dict) and t.get("type") == "scale" else None
        if isinstance(scale, list) and len(scale) >= 2:
            y, x = scale[-2:]
            try:
                if y and x:
                    return float(y), float(x)
            except (TypeError, ValueError):
                return None
    return None


def image_pixel_size(attrs: dict) -> tuple[float | str, float | str] | str:
    """(y, x) micrometres per pixel of an OME-NGFF image's full-resolution dataset (or why
    there are none): its ``scale`` times the multiscales-level one, in the axes' units."""
    try:
        multiscales = attrs["multiscales"][0]
        datasets = multiscales["datasets"]
        first = datasets[0]
    except (KeyError, IndexError, TypeError):
        return "no multiscales datasets"
    if not isinstance(multiscales, dict) or not isinstance(first, dict):
        return "no multiscales datasets"
    axes = multiscales.get("axes")
    if not isinstance(axes, list) or not axes:
        return "no axes (OME-NGFF before 0.4 has no units)"
    names = [a.get("name") if isinstance(a, dict) else a for a in axes]
    if "y" not in names or "x" not in names:
        return f"no y and x axes (axes {names})"
    scale = _scale_of(first.get("coordinateTransformations"), len(axes))
    if isinstance(scale, str):
        return f"dataset {first.get('path')!r}: {scale}"
    if "coordinateTransformations" in multiscales:
        outer = _scale_of(multiscales["coordinateTransformations"], len(axes), required=False)
        if isinstance(outer, str):
            return f"multiscales: {outer}"
        if outer is not None:
            scale = [a * b for a, b in zip(scale, outer, strict=True)]
    out: list[float | str] = []
    for axis in ("y", "x"):
        i = names.index(axis)
        unit = axes[i].get("unit") if isinstance(axes[i], dict) else None
        if unit is None:
            out.append(f"a scale of {scale[i]:g} without a unit (unknown size)")
            continue
        value = to_um(scale[i], unit)
        out.append(value if isinstance(value, float) else f"axis unit: {value}")
    return out[0], out[1]


def _scale_of(transforms, n_axes: int, required: bool = True) -> list[float] | str | None:
    """The ``scale`` vector of a list of coordinate transformations (one entry per axis),
    None when there is none and it is not ``required``, or why it is unusable."""
    if not isinstance(transforms, list):
        return (
            "no coordinateTransformations"
            if required
            else "coordinateTransformations is not a list"
        )
    scales = [t for t in transforms if isinstance(t, dict) and t.get("type") == "scale"]
    if not scales:
        return "no scale transformation" if required else None
    scale = scales[0].get("scale")
    if not isinstance(scale, list) or len(scale) != n_axes:
        return f"scale {str(scale)[:60]} does not have one entry per axis ({n_axes})"
    numbers = []
    for v in scale:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
            return f"scale {str(scale)[:60]} is not a list of positive numbers"
        numbers.append(float(v))
    return numbers


def _plain_path(path: object) -> bool:
    """A relative path of plain names: no empty, ``.`` or ``..`` part, not absolute (zarr
    refuses or normalises the others; a folder join would follow them)."""
    return isinstance(path, str) and all(p not in ("", ".", "..") for p in path.split("/"))


def _array_documents(folder: Path, zarr_format: int) -> bytes:
    """What zarr reads to open the array in ``folder``, as one byte string: ``zarr.json``
    (v3), or ``.zarray`` and the ``.zattrs`` beside it (v2; none is an empty part)."""
    if zarr_format == 3:
        return (folder / "zarr.json").read_bytes()
    attrs = folder / ".zattrs"
    extra = attrs.read_bytes() if attrs.exists() else b""
    return (folder / ".zarray").read_bytes() + b"\0" + extra


def _level0(group, image_path: str, root: Path):
    """(array, axes, where, datasets) of an image's full-resolution level."""
    return _open_level(group, image_path, root, None)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _attrs(node, where: str) -> dict:
    """A node's OME attributes (``ome`` of v0.5, the attributes themselves before)."""
    try:
        attrs = dict(node.attrs)
    except Exception as exc:  # unreadable or invalid JSON metadata
        raise PlateError(f"cannot read the metadata of {where}: {_describe(exc)}") from None
    ome = attrs.get("ome", attrs)
    if not isinstance(ome, dict):
        raise PlateError(
            f"{where}: the 'ome' attribute is {type(ome).__name__}; expected an object"
        )
    return ome


def _node(group, sub: str, where: str):
    """``group[sub]``; KeyError when nothing is stored there; PlateError naming ``where`` when
    the node's metadata (zarr.json, .zarray, .zgroup, .zattrs) cannot be read."""
    try:
        return group[sub]
    except KeyError:
        raise
    except Exception as exc:  # invalid JSON, unsupported metadata...
        raise PlateError(f"cannot read the Zarr metadata of {where}: {_describe(exc)}") from None


def _open_level(group, image_path: str, root: Path, level: str | None):
    where = f"{root}/{image_path}"
    try:
        image = _node(group, image_path, where)
    except KeyError:
        raise PlateError(f"{where}: the image listed in its well's metadata is missing") from None
    attrs = _attrs(image, where)
    try:
        multiscales = attrs["multiscales"][0]
        datasets = list(multiscales["datasets"])
        level = datasets[0]["path"] if level is None else level
        if not isinstance(level, str):
            raise TypeError(f"dataset path {level!r} is not a string")
    except (KeyError, IndexError, TypeError) as exc:
        raise PlateError(
            f"{where} is not an OME-NGFF image (no multiscales datasets: {exc})"
        ) from None
    try:
        array = _node(image, level, f"{where}/{level}")
    except KeyError:
        raise PlateError(
            f"{where}/{level}: the array its multiscales metadata lists is missing"
        ) from None
    if not hasattr(array, "shape") or not hasattr(array, "dtype"):
        raise PlateError(f"{where}/{level} is a group; expected an array")
    raw_axes = multiscales.get("axes", []) if isinstance(multiscales, dict) else []
    if not isinstance(raw_axes, list):
        raise PlateError(f"{where}: multiscales axes are {raw_axes!r}; expected a list")
    axes = [a.get("name") if isinstance(a, dict) else a for a in raw_axes]
    if not axes:  # v0.1-0.3 images are 5-D tczyx
        axes = list("tczyx"[-array.ndim :])
    if not all(isinstance(a, str) and len(a) == 1 for a in axes):
        raise PlateError(
            f"{where}: multiscales axes {axes}; expected one-letter names like t, c, z, y, x"
        )
    text = "".join(axes).lower()
    if len(text) != array.ndim or len(set(text)) != len(text) or not {"y", "x"} <= set(text):
        raise PlateError(
            f"{where}/{level} has {array.ndim} dimensions {tuple(array.shape)} but its "
            f"multiscales axes are {', '.join(axes) or 'none'}; expected one distinct axis "
            "per dimension, including y and x"
        )
    if np.dtype(array.dtype).kind not in "biuf":
        raise PlateError(
            f"{where}/{level} holds {array.dtype} values; expected integer or floating-point pixels"
        )
    return array, text, f"{where}/{level}", datasets


def _well_name(entry, rows: list, cols: list, where: Path) -> str:
    try:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise TypeError("expected an object with a 'path' like \"B/2\"")
        if "rowIndex" in entry and "columnIndex" in entry:
            for key, names in (("rowIndex", rows), ("columnIndex", cols)):
                index = entry[key]
                if isinstance(index, bool) or not isinstance(index, int):
                    raise ValueError(f"{key} {index!r} is not an integer")
                if not 0 <= index < len(names):
                    what = "rows" if key == "rowIndex" else "columns"
                    raise ValueError(f"{key} {index} is outside the plate's {len(names)} {what}")
            row = rows[entry["rowIndex"]]["name"]
            col = cols[entry["columnIndex"]]["name"]
        else:
            row, col = entry["path"].split("/")[:2]
        return normalise_well(f"{row}{col}")
    except (KeyError, IndexError, ValueError, TypeError, PlateError) as exc:
        raise PlateError(
            f"{where}: OME-Zarr plate well entry {entry!r} is not a valid well: {exc}"
        ) from None


def _list(value, what: str, where: Path) -> list:
    if not isinstance(value, list):
        raise PlateError(
            f"{where}: OME-NGFF {what} is {type(value).__name__} {str(value)[:60]!r}; "
            "expected a list"
        )
    return value


def open_layout(
    path: Path | str, plane: int | str | None = None, timepoint: int | None = None
) -> Plate:
    """Open an OME-Zarr HCS plate from a folder, or from an ``http(s)://`` or ``s3://`` URL
    (``open_remote``); NotThisLayout if a folder is not a Zarr group.

    A well listed in the plate metadata but absent from the store is a missing well (skipped
    with a PlateWarning naming it); metadata that is not valid JSON or not OME-NGFF raises
    PlateError naming the node. Planes and timepoints: ``[1]`` (t and z read at index 0)."""
    url = path.rstrip("/") if isinstance(path, str) and "://" in path else None
    if url is None and (not path.is_dir() or not any((path / m).is_file() for m in _MARKERS)):
        raise NotThisLayout("no zarr.json / .zgroup / .zattrs (not a Zarr group)")
    import zarr

    try:
        group = open_remote(url) if url else zarr.open_group(str(path), mode="r")
    except PlateError:
        raise
    except Exception as exc:
        raise PlateError(f"cannot open Zarr group {path}: {_describe(exc)}") from None
    path = url or path
    attrs = _attrs(group, str(path))
    if "plate" not in attrs:
        what = "an OME-Zarr image, not a plate" if "multiscales" in attrs else "a Zarr group"
        raise PlateError(
            f"{path} is {what}: it has no OME-NGFF 'plate' metadata "
            f"(attributes found: {', '.join(sorted(map(str, attrs))) or 'none'})"
        )
    meta = attrs["plate"]
    if not isinstance(meta, dict):
        raise PlateError(
            f"{path}: OME-NGFF 'plate' metadata is {type(meta).__name__}; expected an object"
        )
    rows = _list(meta.get("rows", []), "plate.rows", path)
    cols = _list(meta.get("columns", []), "plate.columns", path)
    image_paths: dict[tuple[str, int], str] = {}
    absent: list[str] = []
    for entry in _list(meta.get("wells", []), "plate.wells", path):
        well = _well_name(entry, rows, cols, path)
        where = f"{path}/{entry['path']}"
        try:
            node = _node(group, entry["path"], where)
        except KeyError:
            absent.append(f"{well} ({entry['path']})")
            continue
        well_meta = _attrs(node, where).get("well")
        images = well_meta.get("images") if isinstance(well_meta, dict) else None
        if well_meta is None:
            raise PlateError(f"{where}: well {well} has no OME-NGFF 'well' metadata")
        if not isinstance(images, list):
            raise PlateError(
                f"{where}: well {well}'s OME-NGFF 'well' metadata has no 'images' list "
                f"(found {str(well_meta)[:80]})"
            )
        for site, image in enumerate(images, start=1):
            if not isinstance(image, dict) or not isinstance(image.get("path"), str):
                raise PlateError(
                    f"{where}: well {well} image {site} is {str(image)[:60]!r}; expected an "
                    "object with a 'path'"
                )
            image_paths[(well, site)] = f"{entry['path']}/{image['path']}"
    if absent:
        shown = ", ".join(absent[:10]) + (
            f", ... {len(absent) - 10} more" if len(absent) > 10 else ""
        )
        warnings.warn(
            f"{path}: skipped {len(absent)} well(s) listed in the plate metadata but absent "
            f"from the store (missing wells): {shown}",
            PlateWarning,
            stacklevel=3,
        )
    if not image_paths:
        raise PlateError(f"{path}: the OME-Zarr plate lists no wells with images")
    first_key = min(image_paths)
    array, axes, where, _ = _level0(group, image_paths[first_key], path)
    where_plate = f"OME-Zarr plate {path}"
    n_z = array.shape[axes.index("z")] if "z" in axes else 1
    n_t = array.shape[axes.index("t")] if "t" in axes else 1
    planes, timepoints = list(range(1, n_z + 1)), list(range(1, n_t + 1))
    chosen_z = choose_plane(planes, plane, where_plate, "the z axis of its images, from 1")
    chosen_t = choose_timepoint(timepoints, timepoint, where_plate, "its t axis, from 1")
    first_attrs = _attrs(group[image_paths[first_key]], where)
    n_channels = array.shape[axes.index("c")] if "c" in axes else 1
    omero = first_attrs.get("omero")
    channels = omero.get("channels") if isinstance(omero, dict) else None
    labels = [ch.get("label") if isinstance(ch, dict) else None for ch in channels or []]
    if len(labels) != n_channels or not all(isinstance(x, str) and x for x in labels):
        labels = [f"ch{i + 1}" for i in range(n_channels)]
    sites: dict[str, list[int]] = {}
    for well, site in image_paths:
        sites.setdefault(well, []).append(site)
    default_name = url.rsplit("/", 1)[-1] if url else path.name
    return OmeZarrPlate(
        name=str(meta.get("name") or default_name.removesuffix(".zarr")),
        layout=LAYOUT,
        path=path,
        sites=sites,
        channels=labels,
        image_shape=(array.shape[axes.index("y")], array.shape[axes.index("x")]),
        dtype=array.dtype,
        shape_source=where,
        group=group,
        image_paths=image_paths,
        planes=planes,
        timepoints=timepoints,
        plane=chosen_z,
        timepoint=chosen_t,
        url=url,
    )


# --- remote plates ---------------------------------------------------------------------------

REMOTE_SCHEMES = ("http", "https", "s3")


def open_remote(url: str):
    """The root Zarr group of a plate at an ``http(s)://`` or ``s3://`` URL, through fsspec
    (its credentials and settings: for S3 the usual AWS variables or profile; fsspec's
    ``FSSPEC_S3_ANON=true`` for a public bucket, ``FSSPEC_S3_ENDPOINT_URL`` for another
    S3-compatible service). Pixels are then read through zarr (the direct chunk reader is
    for local folders only). Errors name the URL and what was expected."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in REMOTE_SCHEMES:
        raise PlateError(
            f"{url}: cannot open {scheme}:// URLs; expected an OME-Zarr plate at an http://, "
            "https:// or s3:// URL, or a local folder"
        )
    try:
        import zarr
        from zarr.storage import FsspecStore

        store = FsspecStore.from_url(url.rstrip("/"), read_only=True)
        return zarr.open_group(store, mode="r")
    except ImportError as exc:
        raise PlateError(
            f"{url}: reading {scheme}:// URLs needs the Python package {exc.name or exc} "
            f"(pip install {'s3fs' if scheme == 's3' else 'aiohttp'})"
        ) from None
    except Exception as exc:
        raise PlateError(remote_error(url, exc)) from None


def remote_error(url: str, exc: BaseException) -> str:
    """What went wrong opening ``url``, in words (404, no connection, no credentials...)."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    expected = "expected an OME-Zarr plate (the folder holding its zarr.json or .zgroup)"
    if isinstance(exc, FileNotFoundError) or "NotFound" in name:
        return (
            f"{url}: nothing there (no zarr.json or .zgroup: HTTP 404 or no such key); " + expected
        )
    if "Credentials" in name:
        return (
            f"{url}: no S3 credentials found ({text}); expected AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or an AWS profile), or FSSPEC_S3_ANON=true for a public bucket"
        )
    if isinstance(exc, PermissionError) or "Forbidden" in text or "AccessDenied" in text:
        return f"{url}: access denied ({text}); {expected} that these credentials may read"
    if isinstance(exc, (OSError, TimeoutError)) or "Connect" in name:
        return f"{url}: cannot connect ({name}: {text}); {expected} at a server that answers"
    return f"{url}: cannot open as an OME-Zarr plate ({name}: {text}); {expected}"
