"""Image decoding with errors that name the file, and a plate of one file per channel."""

from __future__ import annotations

import errno
import mmap
import os
import stat
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from napari_dcmix.errors import PlateError, PlateWarning
from napari_dcmix.plate.base import Plate

TIFF_SUFFIXES = (".tif", ".tiff")


def read_image(path: Path) -> np.ndarray:
    """Pixels of one image file (TIFF via tifffile, anything else via Pillow)."""
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            return tifffile.imread(path)
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im)
    except FileNotFoundError:
        raise PlateError(f"image file {path} is missing") from None
    except Exception as exc:  # decoders raise many types for truncated / corrupt files
        raise PlateError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None


def image_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` of an image file, reading its header only."""
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                return tuple(series.shape), np.dtype(series.dtype)
        from PIL import Image

        with Image.open(path) as im:
            mode_dtypes = {
                "L": "uint8",
                "I;16": "uint16",
                "I;16B": "uint16",
                "I": "int32",
                "F": "float32",
                "1": "bool",
            }
            if im.mode in mode_dtypes:
                return (im.height, im.width), np.dtype(mode_dtypes[im.mode])
            arr = np.asarray(im)  # rare modes (RGB...): decode once
            return arr.shape, arr.dtype
    except FileNotFoundError:
        raise PlateError(f"image file {path} is missing") from None
    except Exception as exc:
        raise PlateError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None


def entry_problem(entry: os.DirEntry | Path) -> str | None:
    """Why a folder entry named like an image cannot be read as one (a broken symbolic link,
    a symbolic link loop, a folder, a FIFO, a socket or device), else None. A symbolic link
    to a regular file is fine. One ``stat`` at most (none for a regular ``DirEntry``)."""
    path = Path(entry.path) if isinstance(entry, os.DirEntry) else Path(entry)
    if isinstance(entry, os.DirEntry) and entry.is_file(follow_symlinks=False):
        return None
    try:
        mode = os.stat(path).st_mode  # follows symbolic links
    except FileNotFoundError:
        try:
            target = os.readlink(path)
        except OSError:
            return "has disappeared"
        return f"is a broken symbolic link (to {target}, which does not exist)"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop (it never reaches a file)"
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not an image file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not an image file"
    return "is a socket or device, not an image file"


def scan_folder(
    folder: Path, parse: Callable[[str], object | None]
) -> tuple[list[tuple[Path, object]], list[str]]:
    """``([(path, key)], problems)``: the entries of ``folder`` whose name ``parse`` turns into
    a key (hidden names skipped), split into readable files and one sentence per entry that is
    named like an image but cannot be read as one (see ``entry_problem``); sorted by name."""
    found: list[tuple[Path, object]] = []
    problems: list[str] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise PlateError(f"cannot list folder {folder}: {exc.strerror or exc}") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        key = parse(entry.name)
        if key is None:
            continue
        problem = entry_problem(entry)
        if problem is None:
            found.append((Path(entry.path), key))
        else:
            problems.append(f"{entry.name} {problem}")
    return found, problems


def warn_unreadable(folder: Path, problems: Sequence[str], stacklevel: int = 3) -> None:
    """One PlateWarning naming every entry that looks like an image but cannot be read."""
    if not problems:
        return
    shown = "; ".join(problems[:10]) + (
        f"; ... {len(problems) - 10} more" if len(problems) > 10 else ""
    )
    warnings.warn(
        f"{folder}: skipped {len(problems)} entr{'y' if len(problems) == 1 else 'ies'} named "
        f"like an image that cannot be read as one: {shown}",
        PlateWarning,
        stacklevel=stacklevel,
    )


def read_text_file(path: Path, what: str) -> str:
    """The text of a small metadata file as UTF-8 (a BOM is dropped); PlateError naming the
    file when it cannot be read or is not UTF-8 text."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlateError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlateError(
            f"{what} {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start} cannot be decoded; save it as UTF-8"
        ) from None


def walk_files(root: Path, max_depth: int = 4) -> Iterator[Path]:
    """Files under ``root`` down to ``max_depth`` folder levels, hidden entries skipped."""
    root = Path(root)
    base_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).parts) - base_depth
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if depth >= max_depth:
            dirnames[:] = []
        for f in sorted(filenames):
            if not f.startswith("."):
                yield Path(dirpath) / f


class RawTiff(NamedTuple):
    """Where the pixels of an uncompressed TIFF's first series lie, contiguous, in its file."""

    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype  # in the file's byte order

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize


def raw_tiff_layout(path: Path) -> RawTiff | None:
    """The contiguous uncompressed pixel block of ``path``'s first series, else None.

    None for compressed, tiled (unless tiles are whole rows), predictor / bit-packed data, or
    anything tifffile cannot parse (the normal read path then reports the problem).
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            offset = series.dataoffset
            if offset is None or series.dtype is None:
                return None
            dtype = np.dtype(series.dtype).newbyteorder(tif.byteorder)
            return RawTiff(int(offset), tuple(series.shape), dtype)
    except Exception:  # unreadable: the full read path names the file in its error
        return None


class TiffMapper:
    """Memory-maps uncompressed TIFFs so that a strided view touches only the rows it keeps.

    The header of each file is parsed once and cached (re-parsed if the file's size or mtime
    changes); safe to use from several threads. A file whose every non-pixel byte (all bytes
    before and after the pixel block) equals that of a file already parsed has the same layout,
    so the files of a plate written by one writer are parsed only once.
    """

    TEMPLATES = 4  # layouts remembered for byte comparison
    TEMPLATE_MAX_BYTES = 65536  # larger headers / trailers are parsed file by file

    def __init__(self, max_cached: int | None = None) -> None:
        # path -> (file size, mtime, layout or None when the file cannot be mapped)
        self._layouts: dict[Path, tuple[int, int, RawTiff | None]] = {}
        self._max_cached = max_cached
        # (file size, bytes before the pixels, bytes after them, layout), newest first
        self._templates: tuple[tuple[int, bytes, bytes, RawTiff], ...] = ()

    def _layout_of(self, fh, path: Path, size: int) -> RawTiff | None:
        """Layout of the open file: a template whose non-pixel bytes all match, else parsed."""
        for t_size, head, tail, raw in self._templates:
            if t_size != size:
                continue
            fh.seek(0)
            if fh.read(len(head)) != head:
                continue
            fh.seek(raw.offset + raw.nbytes)
            if fh.read(len(tail) + 1) == tail:
                return raw
        raw = raw_tiff_layout(path)
        if raw is not None and raw.nbytes > 0 and raw.offset + raw.nbytes <= size:
            end = raw.offset + raw.nbytes
            if size - raw.nbytes <= self.TEMPLATE_MAX_BYTES:
                fh.seek(0)
                head = fh.read(raw.offset)
                fh.seek(end)
                tail = fh.read(size - end + 1)
                if len(head) == raw.offset and len(tail) == size - end:
                    known = ((size, head, tail, raw), *self._templates)
                    self._templates = known[: self.TEMPLATES]  # one assignment: thread-safe
        return raw

    def _raw(self, fh, path: Path) -> RawTiff | None:
        """Cached layout of the open file ``fh`` (re-parsed when it changed), else None."""
        stat = os.fstat(fh.fileno())
        cached = self._layouts.get(path)
        if cached is None or cached[:2] != (stat.st_size, stat.st_mtime_ns):
            cached = (stat.st_size, stat.st_mtime_ns, self._layout_of(fh, path, stat.st_size))
            if self._max_cached is not None and len(self._layouts) >= self._max_cached:
                self._layouts.clear()  # bounded: a long session may see many files
            self._layouts[path] = cached
        raw = cached[2]
        if raw is None or raw.nbytes == 0 or stat.st_size < raw.offset + raw.nbytes:
            return None
        return raw

    def view(self, path: Path) -> np.ndarray | None:
        """Read-only array over the file's pixels (shape as ``tifffile.imread``), or None."""
        if path.suffix.lower() not in TIFF_SUFFIXES:
            return None
        try:
            with open(path, "rb") as fh:
                raw = self._raw(fh, path)
                if raw is None:
                    return None
                mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        count = raw.nbytes // raw.dtype.itemsize
        # the array keeps the map alive; it is unmapped when the last view is gone
        return np.frombuffer(mapped, raw.dtype, count=count, offset=raw.offset).reshape(raw.shape)

    def read_into(self, path: Path, out: np.ndarray) -> bool:
        """Copy an uncompressed TIFF's pixels straight into ``out`` (one ``readinto``, no
        decoder, no intermediate array). ``out`` must be C-contiguous with the file's dtype
        (native byte order) and shape (``(1, H, W)`` also takes an ``(H, W)`` file). False,
        with ``out`` undefined, where the file needs the general decoder (compressed, other
        dtype / shape, truncated, unreadable): that path then reports the problem."""
        if path.suffix.lower() not in TIFF_SUFFIXES or not out.flags.c_contiguous:
            return False
        try:
            with open(path, "rb", buffering=0) as fh:
                raw = self._raw(fh, path)
                if raw is None or raw.dtype != out.dtype:
                    return False
                if raw.shape != out.shape and (1, *raw.shape) != out.shape:
                    return False
                buf = memoryview(out).cast("B")
                fh.seek(raw.offset)
                got = 0
                while got < raw.nbytes:
                    n = fh.readinto(buf[got:])
                    if not n:
                        return False  # shrank since the size check
                    got += n
        except (OSError, ValueError):
            return False
        return True


class ChannelFilesPlate(Plate):
    """A plate stored as one 2-D image file per (well, site, channel).

    ``files[(well, site)]`` holds one entry per channel: a path, or a tuple of paths (one per
    plane) whose pixel-wise maximum is the channel (the maximum projection over the planes).
    """

    def __init__(
        self, *, files: Mapping[tuple[str, int], Sequence[Path | tuple[Path, ...]]], **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self._files = {key: list(paths) for key, paths in files.items()}
        self._tiffs = TiffMapper()

    def _read_site(self, well: str, site: int) -> np.ndarray:
        items = self._files[(well, site)]
        out = np.empty((len(items), *self.image_shape), dtype=self.dtype)
        for i, item in enumerate(items):
            if isinstance(item, tuple):  # maximum projection over the planes
                self._read_file(item[0], out[i])
                plane = np.empty(self.image_shape, dtype=self.dtype)
                for path in item[1:]:
                    self._read_file(path, plane)
                    np.maximum(out[i], plane, out=out[i])
            else:
                self._read_file(item, out[i])
        return out

    def _read_file(self, path: Path, out: np.ndarray) -> None:
        """One channel image into ``out`` (H, W), checked for shape and dtype."""
        if _decode_tiff_into(path, out):
            return
        img = read_image(path)
        if img.ndim == 3 and img.shape[-1] in (3, 4):  # RGB(A) saved greyscale: take one
            img = img[..., 0]
        if img.shape != self.image_shape:
            raise PlateError(
                f"image {path} has shape {img.shape}, but {self._shape_source} has "
                f"{self.image_shape}: all images of a plate must have the same size"
            )
        self._check_dtype(img.dtype, f"image {path}")
        out[...] = img

    def _views(self, well: str, site: int) -> list[list[np.ndarray]] | None:
        """Per channel, its file (or each plane's file, for a maximum projection) memory-
        mapped (uncompressed TIFFs), else None (PNG, compressed or bad files: the full read
        path decodes and reports them)."""
        views: list[list[np.ndarray]] = []
        for item in self._files[(well, site)]:
            planes = []
            for path in item if isinstance(item, tuple) else (item,):
                view = self._tiffs.view(path)
                if view is not None and view.ndim == 3 and view.shape[-1] in (3, 4):
                    view = view[..., 0]
                if view is None or view.shape != self.image_shape:
                    return None
                self._check_dtype(view.dtype, f"image {path}")
                planes.append(view)
            views.append(planes)
        return views

    def _read_thumbnail(self, well: str, site: int, factor: int) -> np.ndarray:
        """Uncompressed TIFFs: memory-mapped, only every ``factor``-th row touched."""
        views = self._views(well, site)
        if views is None:
            return super()._read_thumbnail(well, site, factor)
        out = np.empty(self.thumbnail_shape(factor), dtype=self.dtype)
        for i, planes in enumerate(views):
            out[i] = planes[0][::factor, ::factor]
            for view in planes[1:]:
                np.maximum(out[i], view[::factor, ::factor], out=out[i])
        return out

    def cheap_regions(self, well: str, site: int) -> bool:
        return self._views(self._site(well, site), int(site)) is not None

    def _read_region(self, well: str, site: int, y0: int, y1: int, x0: int, x1: int):
        """Uncompressed TIFFs: memory-mapped, only the region's rows touched."""
        views = self._views(well, site)
        if views is None:
            return super()._read_region(well, site, y0, y1, x0, x1)
        out = np.empty((len(views), y1 - y0, x1 - x0), dtype=self.dtype)
        for i, planes in enumerate(views):
            out[i] = planes[0][y0:y1, x0:x1]
            for view in planes[1:]:
                np.maximum(out[i], view[y0:y1, x0:x1], out=out[i])
        return out


_RAW_TIFFS = TiffMapper(max_cached=4096)  # layouts of uncompressed TIFFs read by plates


def _decode_tiff_into(path: Path, out: np.ndarray) -> bool:
    """Decode a TIFF straight into ``out``; False if it needs the general path (which reports
    any problem with the file named). Uncompressed contiguous pixels (of ``out``'s shape and
    dtype) are copied with one ``readinto``; other single-page TIFFs go through tifffile."""
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return False
    if _RAW_TIFFS.read_into(path, out):
        return True
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if len(tif.pages) != 1 or page.shape != out.shape or page.dtype != out.dtype:
                return False
            page.asarray(out=out)
        return True
    except Exception:  # read_image reports the problem with the file named
        return False


def complete_sites(
    found: Mapping[tuple[str, int], Mapping[int, Path]],
    channel_ids: Sequence[int],
    where: Path,
    why: Mapping[tuple[str, int], str] | None = None,
) -> dict[tuple[str, int], list]:
    """Keep sites that have a file for every channel; warn once listing the skipped ones.

    A channel's file may be a tuple of paths (one per plane, for a maximum projection); the
    layout leaves a channel out of ``found`` when a plane lacks its file."""
    complete: dict[tuple[str, int], list] = {}
    skipped: list[str] = []
    for (well, site), by_channel in found.items():
        missing = [c for c in channel_ids if c not in by_channel]
        if missing:
            extra = f" {why[(well, site)]}" if why and (well, site) in why else ""
            skipped.append(f"{well} site {site} (no channel {', '.join(map(str, missing))}{extra})")
        else:
            complete[(well, site)] = [by_channel[c] for c in channel_ids]
    if skipped:
        shown = "; ".join(skipped[:10]) + (
            f"; ... {len(skipped) - 10} more" if len(skipped) > 10 else ""
        )
        warnings.warn(
            f"{where}: skipped {len(skipped)} site(s) missing a channel file: {shown}",
            PlateWarning,
            stacklevel=3,
        )
    return complete


def sites_by_well(keys) -> dict[str, list[int]]:
    """``{well: [sites]}`` from ``(well, site)`` keys."""
    out: dict[str, list[int]] = {}
    for well, site in keys:
        out.setdefault(well, []).append(site)
    return out
