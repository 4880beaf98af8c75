"""Atomic output: the one rule for how this package replaces a file, and what it may open.

Why: an upgrade often rewrites a user's only copy of a checkpoint. The new bytes go to a locked
temp file in the same folder, are fsynced, then ``os.replace``-d over the destination, so a
crash, a full disk or a Ctrl-C leaves either the old file or the new one, never half of each.
The checkpoint writer, the backup, the golden registry and the release-date cache all write
through here; the bytes themselves go through ``sink``, the temp file is made by ``tempfiles``.

The one rule for what may be opened and replaced: only regular files. ``open_regular`` opens
with ``O_NONBLOCK`` and checks ``fstat`` before anything is read, so a FIFO named ``*.ckpt``
fails at once instead of blocking forever; ``atomic_output`` refuses a destination that exists
and is not a regular file (``-o /dev/null`` must not replace the system's ``/dev/null``). A
replaced file keeps its mode, owner, group and extended attributes where the OS allows.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Union

from ...core.errors import CheckpointNotFound, NotARegularFile
from ..names import shown
from .sink import Out
from .tempfiles import _O_BINARY, _O_CLOEXEC, TEMP_MARKER, clean_stale_temp_files, create_temp, fcntl, signals_deferred

__all__ = [
    "BACKUP_SUFFIX",
    "TEMP_MARKER",
    "Out",
    "atomic_output",
    "clean_stale_temp_files",
    "open_regular",
    "require_regular",
    "resolve_dest",
    "write_bytes",
]

BACKUP_SUFFIX = ".bak"
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

PathLike = Union[str, "os.PathLike[str]"]


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def require_regular(path: PathLike, st: os.stat_result, what: str = "checkpoint") -> None:
    """Raise ``NotARegularFile`` unless ``st`` (of ``path``) describes a regular file."""
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFile(
            errno.EINVAL, f"{shown(path)} is {_kind(st.st_mode)}, not a regular {what} file; refusing to use it"
        )


def open_regular(path: PathLike, flags: int = os.O_RDONLY, what: str = "checkpoint") -> int:
    """Open ``path`` (following symlinks) only if it is a regular file; returns a blocking fd.

    ``O_NONBLOCK`` makes opening a FIFO return at once (it would otherwise wait for a writer);
    the ``fstat`` of the opened fd is the check, so there is no stat-then-open race.
    """
    fd = os.open(path, flags | _O_NONBLOCK | _O_CLOEXEC | _O_BINARY)
    try:
        require_regular(path, os.fstat(fd), what)
        if _O_NONBLOCK and fcntl is not None:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


# --------------------------------------------------------------------------------------------
# Atomic output
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_output(dest: Path, *, like: Path | None = None, no_clobber: bool = False) -> Iterator[Out]:
    """Yield a sink on a locked temp file beside ``dest``; on success fsync it and rename it over ``dest``.

    ``dest`` must not exist or be a regular file (checked before and again just before the rename).
    The new file gets the metadata of ``like`` (default: the file it replaces).
    """
    folder = dest.parent
    _check_replaceable(dest)
    tmp, fd = None, -1
    try:
        with signals_deferred():  # a Ctrl-C / SIGTERM handler runs once the temp file is ours to remove
            tmp, fd = _create_temp_in_folder(dest)
        out = Out(fd)
        yield out
        out.flush()
        like = dest if like is None else like
        _copy_metadata(fd, tmp, _stat_or_none(like), like)
        os.fsync(fd)
        _check_replaceable(dest)
        if os.name == "nt":  # pragma: no cover - Windows cannot rename an open file
            os.close(fd)
            fd = -1
        if no_clobber:
            _rename_no_clobber(tmp, dest)
        else:
            os.replace(tmp, dest)
        _fsync_dir(folder)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    finally:
        if fd >= 0:
            os.close(fd)  # closing releases the lock, after the rename


def _create_temp_in_folder(dest: Path) -> tuple[Path, int]:
    """``create_temp``, with a missing folder named as such (not as the internal temp file's name)."""
    try:
        return create_temp(dest)
    except (FileNotFoundError, NotADirectoryError):
        if os.path.isdir(dest.parent):
            raise
        raise CheckpointNotFound(
            f"cannot write {shown(dest)}: the folder {shown(dest.parent)} does not exist; create it first"
        ) from None


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _check_replaceable(dest: Path) -> None:
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        return
    require_regular(dest, st, "output")


def _copy_metadata(fd: int, tmp: Path, st: os.stat_result | None, like: Path) -> None:
    """Give the new file the mode, owner, group and xattrs of the one it replaces, where allowed.

    An upgrade must not change who may read a checkpoint: as root, a plain replace would make
    another user's file root-owned. Owner and xattrs are best effort (EPERM, ENOTSUP are ignored).
    """
    if st is None:
        return
    if hasattr(os, "fchown") and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):
            os.fchown(fd, st.st_uid, st.st_gid)
        with contextlib.suppress(PermissionError):  # group only: allowed for a member of it
            os.fchown(fd, -1, st.st_gid)
    if hasattr(os, "fchmod"):  # after chown, which may clear set-id bits
        os.fchmod(fd, st.st_mode & 0o7777)
    else:  # pragma: no cover
        os.chmod(tmp, st.st_mode & 0o7777)
    _copy_xattrs(like, fd)


def _copy_xattrs(src: Path, fd: int) -> None:
    if not hasattr(os, "listxattr"):  # pragma: no cover - not Linux
        return
    try:
        names = os.listxattr(src)
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):  # security.* / trusted.* may need privileges
            os.setxattr(fd, name, os.getxattr(src, name))


def _rename_no_clobber(tmp: Path, dest: Path) -> None:
    """Rename that fails if ``dest`` exists, without a check-then-rename race where links work."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, f"refusing to overwrite existing file: {dest}", str(dest)) from None
    except OSError:  # no hard links on this filesystem
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, f"refusing to overwrite existing file: {dest}", str(dest)) from None
        os.replace(tmp, dest)
        return
    os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort where directories cannot be fsynced)."""
    if os.name == "nt":  # pragma: no cover
        return
    try:
        dfd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF, errno.EROFS):
            raise
    finally:
        os.close(dfd)


def write_bytes(dest: PathLike, data: bytes) -> None:
    """Replace ``dest`` atomically with ``data``: the golden registry and the release-date cache."""
    with atomic_output(resolve_dest(dest)) as out:
        out.write(data)


def resolve_dest(dest: PathLike) -> Path:
    """Write through a symlink (Lightning's ``last.ckpt`` may be one) instead of replacing the link."""
    path = Path(os.fspath(dest))
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    return path
