"""Atomic outputs: every file or folder the project writes appears whole or not at all.

A file is written to a temporary file in the target's folder, flushed and fsynced, then renamed
over the target (``os.replace``, atomic on POSIX), keeping the target's permissions; the folder
is fsynced after the rename. A failure at any point (a full disk, a file-size limit, an
exception in the caller's code, SIGKILL) leaves a pre-existing target byte-identical and no
partial file at the target path (a killed process may leave a hidden ``.<name>.dcmix-tmp-*``
beside it, never the target itself). Folders (synthetic plates, sessions) are built in a
temporary folder beside the target and renamed into place the same way.

Errors name the target: ``OutputError`` (a ``DcmixError``) says which path could not be
written and why, and that an existing file there is unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from napari_dcmix.errors import DcmixError

TMP_MARK = ".dcmix-tmp-"


class OutputError(DcmixError, OSError):
    """An output file or folder could not be written (the message names it). Also an
    ``OSError``, so code that handles failed writes as OSError (``except OSError``) keeps
    catching it now that writes go through this module; ``str()`` is the message."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


# errors that mean "the bytes could not be stored" (full disk, quota, file-size limit, I/O)
_WRITE_ERRNOS = {errno.EFBIG, errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}


def write_failure(exc: BaseException) -> OSError | None:
    """The OSError of a failed write behind ``exc``: writers such as ``torch.save`` turn the
    OSError of a full disk or a file-size limit into their own exception (raised while
    handling it), which would otherwise reach the user without the path."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _default_mode(is_dir: bool = False) -> int:
    """The mode a new file (or folder) gets from the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if is_dir else 0o666) & ~umask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Fail early (before any long work) when ``path`` cannot be written: its folder missing,
    not a folder, or not writable; ``path`` itself a folder. Returns ``path`` as a Path."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; expected the path of a file")
    if not folder.exists():
        raise OutputError(f"cannot write {what} {path}: its folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"cannot write {what} {path}: {folder} is not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:80]}{TMP_MARK}", dir=folder)
    except OSError as exc:
        raise OutputError(
            f"cannot write {what} {path}: folder {folder} is not writable ({_reason(exc)})"
        ) from None
    os.close(fd)
    os.unlink(tmp)
    return path


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike,
    mode: str = "w",
    *,
    encoding: str | None = "utf-8",
    newline: str | None = None,
    what: str = "file",
) -> Iterator[IO[Any]]:
    """``with atomic_write(path) as fh: fh.write(...)``: the target appears only when the block
    ends without an exception, complete and fsynced, with the target's permissions kept (a new
    file gets the usual umask permissions). ``mode`` is ``"w"`` (text) or ``"wb"``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        target_mode = stat.S_IMODE(os.stat(path).st_mode)
        existed = True
    except FileNotFoundError:
        target_mode, existed = _default_mode(), False
    except OSError as exc:
        raise OutputError(f"cannot write {what} {path}: {_reason(exc)}") from None
    unchanged = f"; the existing {path.name} is unchanged" if existed else ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:80]}{TMP_MARK}", dir=folder)
    except OSError as exc:
        raise OutputError(
            f"cannot write {what} {path}: cannot create a file in {folder} ({_reason(exc)})"
        ) from None
    tmp_path = Path(tmp)
    try:
        kwargs: dict[str, Any] = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_path, target_mode)
        os.replace(tmp_path, path)
    except OSError as exc:
        _unlink(tmp_path)
        if exc.errno == errno.EXDEV:  # pragma: no cover - same folder, cannot happen
            raise
        raise OutputError(f"cannot write {what} {path}: {_reason(exc)}{unchanged}") from None
    except Exception as exc:
        _unlink(tmp_path)
        failure = write_failure(exc)
        if failure is None:
            raise
        raise OutputError(f"cannot write {what} {path}: {_reason(failure)}{unchanged}") from exc
    except BaseException:
        _unlink(tmp_path)
        raise
    _fsync_dir(folder)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, what: str = "file") -> Path:
    with atomic_write(path, "wb", what=what) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(
    path: str | os.PathLike, text: str, what: str = "file", encoding: str = "utf-8"
) -> Path:
    with atomic_write(path, "w", encoding=encoding, newline="", what=what) as fh:
        fh.write(text)
    return Path(path)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


@contextlib.contextmanager
def atomic_directory(
    path: str | os.PathLike, *, overwrite: bool = False, what: str = "folder"
) -> Iterator[Path]:
    """``with atomic_directory(out) as tmp: write into tmp``: ``tmp`` is a new folder beside
    ``out``; when the block ends without an exception it is renamed to ``out``. An existing
    ``out`` is refused unless ``overwrite`` (then it is replaced in one rename, its old content
    removed afterwards; an empty existing folder is always replaced). On failure nothing at
    ``out`` changes and the temporary folder is removed."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file; expected a folder path")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputError(f"{what} {path} exists and is not empty (nothing was written)")
    if not folder.is_dir():
        raise OutputError(f"cannot write {what} {path}: its folder {folder} does not exist")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name[:80]}{TMP_MARK}", dir=folder))
        os.chmod(tmp, _default_mode(is_dir=True))
    except OSError as exc:
        raise OutputError(
            f"cannot write {what} {path}: folder {folder} is not writable ({_reason(exc)})"
        ) from None
    try:
        yield tmp
        _fsync_tree(tmp)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name[:80]}{TMP_MARK}old-", dir=folder))
            os.replace(path, old / "content")
        try:
            os.replace(tmp, path)
        except OSError:
            if old is not None:  # put the previous folder back
                os.replace(old / "content", path)
                shutil.rmtree(old, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write {what} {path}: {_reason(exc)}") from None
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        failure = write_failure(exc)
        if failure is None:
            raise
        raise OutputError(f"cannot write {what} {path}: {_reason(failure)}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_tree(root: Path) -> None:
    """fsync every file and folder under ``root`` (before it is renamed into place)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))
