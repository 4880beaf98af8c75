"""Atomic output: the one rule for how this package replaces a file, and what it may open.

Why: an upgrade often rewrites a user's only copy of a checkpoint. The new bytes go to a locked
temp file in the same folder, are fsynced, then ``os.replace``-d over the destination, so a
crash, a full disk or a Ctrl-C leaves either the old file or the new one, never half of each.
The checkpoint writer, the backup, the golden registry and the release-date cache all write
through here.

The one rule for what may be opened and replaced: only regular files. ``open_regular`` opens
with ``O_NONBLOCK`` and checks ``fstat`` before anything is read, so a FIFO named ``*.ckpt``
fails at once instead of blocking forever; ``atomic_output`` refuses a destination that exists
and is not a regular file (``-o /dev/null`` must not replace the system's ``/dev/null``). A
replaced file keeps its mode, owner, group and extended attributes where the OS allows.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
import signal
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union

try:  # POSIX only; elsewhere stale temp files are recognised by age instead of by lock.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from ...core.errors import NotARegularFile

__all__ = [
    "BACKUP_SUFFIX",
    "TEMP_MARKER",
    "atomic_output",
    "clean_stale_temp_files",
    "open_regular",
    "require_regular",
    "resolve_dest",
    "write_bytes",
]

TEMP_MARKER = ".ckpt-compat-tmp-"
BACKUP_SUFFIX = ".bak"
_NAME_KEEP = 100  # chars of the destination name kept in a temp name (NAME_MAX is 255)
_STALE_AGE_WITHOUT_LOCKS = 3600.0  # seconds; only where flock is unavailable
_U32 = 0xFFFFFFFF
_BUFFER = 1 << 20
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
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
            errno.EINVAL, f"{os.fsdecode(path)} is {_kind(st.st_mode)}, not a regular {what} file; refusing to use it"
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


def clean_stale_temp_files(folder: PathLike, *, name: str | None = None) -> list[Path]:
    """Remove temp files that a killed earlier write left in ``folder``; returns what was removed.

    Only *stale* ones go: a live writer holds an exclusive ``flock`` on its temp file until the
    rename, so a concurrent upgrade's temp file is left alone. ``name`` limits the sweep to temp
    files of one destination name.
    """
    prefix = f".{name[:_NAME_KEEP]}{TEMP_MARKER}" if name is not None else None
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return removed
    for entry in entries:
        if not entry.name.startswith(".") or TEMP_MARKER not in entry.name:
            continue
        if prefix is not None and not entry.name.startswith(prefix):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and _remove_if_stale(entry.path):
                removed.append(Path(entry.path))
    return removed


# --------------------------------------------------------------------------------------------
# Atomic output
# --------------------------------------------------------------------------------------------


def _write_all(fd: int, data: Any) -> None:
    """``os.write`` until done (the kernel may write less, e.g. >2 GiB per call on Linux).

    Every byte of every checkpoint this module writes goes through here or ``_copy_range``:
    the one place a test injects a full disk.
    """
    view = memoryview(data).cast("B")
    while view.nbytes:
        written = os.write(fd, view)
        view = view[written:]


def _copy_range(src_fd: int, dst_fd: int, offset: int, count: int) -> None:
    """Copy ``count`` bytes at ``offset`` of ``src_fd`` to ``dst_fd``'s position, in the kernel if possible."""
    if count and _copy_file_range_works():
        try:
            while count:
                n = os.copy_file_range(src_fd, dst_fd, min(count, 1 << 30), offset)
                if n == 0:
                    raise EOFError
                offset += n
                count -= n
        except OSError as exc:
            # Not supported for this pair of files: finish with read/write below.
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF):
                raise
        except EOFError:
            raise OSError(errno.EIO, f"source ended {count} bytes early while copying a tensor record") from None
    while count:
        chunk = os.pread(src_fd, min(count, _BUFFER), offset)
        if not chunk:
            raise OSError(errno.EIO, f"source ended {count} bytes early while copying a tensor record")
        _write_all(dst_fd, chunk)
        offset += len(chunk)
        count -= len(chunk)


@functools.lru_cache(maxsize=1)
def _copy_file_range_works() -> bool:
    return hasattr(os, "copy_file_range") and sys.platform.startswith("linux")


class Out:
    """A write-only, position-tracking, buffered sink on a raw fd (also torch.save's file object)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.pos = 0
        self._buf = bytearray()

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        n = view.nbytes
        if n >= _BUFFER:
            self.flush()
            _write_all(self.fd, view)
        else:
            self._buf += view
            if len(self._buf) >= _BUFFER:
                self.flush()
        self.pos += n
        return n

    def copy_from(self, src_fd: int, offset: int, count: int) -> None:
        self.flush()
        _copy_range(src_fd, self.fd, offset, count)
        self.pos += count

    def flush(self) -> None:
        if self._buf:
            _write_all(self.fd, self._buf)
            self._buf = bytearray()


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
        with _signals_deferred():  # a Ctrl-C / SIGTERM handler runs once the temp file is ours to remove
            tmp, fd = _create_temp(dest)
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


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the temp file is created, so no handler runs before we know its name."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None:  # pragma: no cover - not POSIX
        yield
        return
    previous = mask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, previous)


def _create_temp(dest: Path) -> tuple[Path, int]:
    """Create and lock ``.<name>.ckpt-compat-tmp-<random>`` beside ``dest``.

    Created with O_EXCL and the usual 0o666 & ~umask; the lock tells ``clean_stale_temp_files``
    (ours or another process's) that the file is in use. If a sweeper removed the file between
    our create and our lock, we notice (the path no longer names our inode) and start over.
    """
    for _ in range(100):
        tmp = dest.parent / f".{dest.name[:_NAME_KEEP]}{TEMP_MARKER}{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_CLOEXEC | _O_BINARY, 0o666)
        except FileExistsError:
            continue
        if fcntl is None:  # pragma: no cover
            return tmp, fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            ours = os.path.samestat(os.stat(tmp, follow_symlinks=False), os.fstat(fd))
        except FileNotFoundError:
            ours = False
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if ours:
            return tmp, fd
        os.close(fd)
    raise FileExistsError(errno.EEXIST, "could not create a unique temp file", str(dest.parent))


def _remove_if_stale(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | _O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # a live writer holds it
        else:  # pragma: no cover
            import time

            if time.time() - os.fstat(fd).st_mtime < _STALE_AGE_WITHOUT_LOCKS:
                return False
        try:
            if not os.path.samestat(os.stat(path, follow_symlinks=False), os.fstat(fd)):
                return False
        except FileNotFoundError:
            return False
        if os.name == "nt":  # pragma: no cover
            os.close(fd)
            fd = -1
        os.unlink(path)
        return True
    finally:
        if fd >= 0:
            os.close(fd)


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
