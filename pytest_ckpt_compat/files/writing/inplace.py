"""In-place upgrades: a lock so two upgraders do not interleave, and a backup that is never clobbered.

Both open only regular files (``atomic.open_regular``), so a FIFO named ``*.ckpt`` or ``*.bak``
is refused instead of blocking forever.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from ...core.errors import NotARegularFile
from ..names import shown
from . import sources
from .atomic import BACKUP_SUFFIX, PathLike, atomic_output, open_regular, require_regular, resolve_dest
from .sink import _BUFFER
from .tempfiles import fcntl

__all__ = ["backup", "exclusive", "keep_first_original"]


def backup(path: PathLike, *, overwrite: bool = False, name: str | None = None) -> Path:
    """Copy ``NAME`` to ``NAME.bak`` (suffix appended; or to ``name`` in the same folder) atomically.

    Returns the backup's path.

    Refuses (``FileExistsError``) to replace an existing, different backup unless
    ``overwrite=True``: the backup of a first upgrade is the only copy of the original, a second
    run must not clobber it. An existing backup with the same bytes is kept and returned, so a run
    killed after its backup can simply be run again. Mode and timestamps are kept, so the backup
    looks like the file it preserves (owner, group and xattrs too, where allowed).
    """
    src = Path(os.fspath(path))
    bak = src.with_name(name or src.name + BACKUP_SUFFIX)
    _refuse_link(bak)
    sources.check_unchanged(src)  # back up what was loaded, not what another process wrote since
    with open(open_regular(src), "rb") as fin:
        st = os.fstat(fin.fileno())
        if not overwrite and os.path.lexists(bak):
            require_regular(bak, os.stat(bak), "backup")  # a FIFO .bak is refused, not read
            if _same_bytes(fin.fileno(), st.st_size, bak):
                return bak
            raise FileExistsError(
                errno.EEXIST, f"a different backup already exists (not overwritten): {shown(bak)}", str(bak)
            )
        try:
            with atomic_output(bak, like=src, no_clobber=not overwrite) as out:
                out.copy_from(fin.fileno(), 0, st.st_size)
                out.flush()
                if os.utime in os.supports_fd:
                    os.utime(out.fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        except FileExistsError:  # another process made the backup meanwhile
            if _same_bytes(fin.fileno(), st.st_size, bak):
                return bak
            raise
    if os.utime not in os.supports_fd:  # pragma: no cover - platforms without futimens
        os.utime(bak, ns=(st.st_atime_ns, st.st_mtime_ns))
    return bak


def _refuse_link(bak: Path) -> None:
    """A backup is a regular file of its own: a link there (to the checkpoint itself, say) keeps nothing.

    Counted as the backup, a ``NAME.ckpt.bak`` linked to ``NAME.ckpt`` would let the upgrade replace
    the only original; followed, it would write the backup somewhere else.
    """
    if os.path.islink(bak):
        raise NotARegularFile(
            f"{shown(bak)} is a symbolic link (to {shown(os.readlink(bak))}), not a backup: the original must be "
            "kept there as a file of its own; move the link away and run again (nothing was written)",
        )


def _same_bytes(fd: int, size: int, other: Path) -> bool:
    try:
        with open(open_regular(other, what="backup"), "rb") as fh:
            if os.fstat(fh.fileno()).st_size != size:
                return False
            offset = 0
            while offset < size:
                mine = os.pread(fd, _BUFFER, offset)
                if not mine or fh.read(len(mine)) != mine:
                    return False
                offset += len(mine)
            return True
    except OSError:
        return False


@contextlib.contextmanager
def exclusive(path: PathLike) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on the checkpoint file ``path`` names for the ``with`` block.

    For in-place upgrades (load → backup → write): two processes upgrading the same file must not
    interleave, or the second backs up the first one's output. A waiter that gets the lock after
    the holder replaced the file finds the path naming a new inode and locks that one instead, so
    it then loads the upgraded file. Readers that do not lock (torch.load, Lightning) are unaffected.
    A missing file is not locked: the caller's load reports it.
    """
    target = resolve_dest(path)
    if fcntl is None:  # pragma: no cover
        yield target
        return
    while True:
        try:
            fd = open_regular(target)
        except FileNotFoundError:
            yield target
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.path.samestat(os.stat(target), os.fstat(fd))
            except FileNotFoundError:
                current = False
            if current:
                yield target
                return
        finally:
            os.close(fd)


def keep_first_original(file: PathLike, *, ours: bool) -> Path:
    """``NAME.bak`` holds the very first original; re-runs never refuse and never lose an original.

    ``ours``: the file is already our output (it has our ledger). A re-run over it (after
    ``--target``, or after installing a newer Lightning) keeps the existing ``NAME.bak``: the file
    is derived from it. An original that differs from an
    existing ``NAME.bak`` (a new file put in place of an upgraded one) is kept as ``NAME.bak.2``,
    ``.3``, ... (an identical copy already there is reused).
    """
    file = Path(os.fspath(file))
    first = file.with_name(file.name + BACKUP_SUFFIX)
    if ours and os.path.lexists(first):
        _refuse_link(first)
        return first
    n = 1
    while True:
        try:
            return backup(file, name=None if n == 1 else f"{first.name}.{n}")
        except FileExistsError:
            n += 1
