"""Temp files beside a destination: created locked, and swept only when their writer is gone.

Why: a write goes to ``.<name>.ckpt-compat-tmp-<random>`` in the destination's folder, so the
final rename is atomic. A killed writer (SIGKILL) leaves its temp file behind; the next run
removes it, but only once no live writer holds its ``flock``, so concurrent upgrades never lose
each other's temp files.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

try:  # POSIX only; elsewhere stale temp files are recognised by age instead of by lock.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["TEMP_MARKER", "clean_stale_temp_files", "create_temp", "signals_deferred"]

TEMP_MARKER = ".ckpt-compat-tmp-"
_NAME_KEEP = 100  # chars of the destination name kept in a temp name (NAME_MAX is 255)
_STALE_AGE_WITHOUT_LOCKS = 3600.0  # seconds; only where flock is unavailable
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


def clean_stale_temp_files(folder: str | os.PathLike[str], *, name: str | None = None) -> list[Path]:
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


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
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


def create_temp(dest: Path) -> tuple[Path, int]:
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
