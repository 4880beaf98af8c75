"""What a path really is, decided before anything is read or written: links, ``..``, folders.

Why: the same file has many names (a symlink such as Lightning's ``last.ckpt``, ``dir/../x``).
Deciding on the name instead of the file replaced an input through ``-o`` without a backup and
named a backup after a link instead of the file it keeps. The rules, the same for every command:
an in-place upgrade writes the file a link points to and keeps its backup beside that file
(``in_place_target``); ``-o`` may not name the input itself (``is_same_entry``); a dangling link,
a loop of links, a plain folder or a sharded folder whose metadata is not a regular file is named
as such (``checked_input``).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..core.errors import CheckpointNotFound, NotARegularFile
from .names import shown
from .sharded import SHARDED_METADATA

__all__ = ["checked_input", "in_place_target", "is_same_entry", "sharded_metadata_entry"]


def sharded_metadata_entry(folder: Path) -> Path | None:
    """The metadata entry of a sharded checkpoint folder, whatever its type (a FIFO ``meta.pt`` too)."""
    return next((folder / name for name in SHARDED_METADATA if os.path.lexists(folder / name)), None)


def checked_input(path: Path, *, folder_ok: bool = False) -> Path:
    """``path`` itself, once it is known to name a checkpoint file or sharded folder; else a named error.

    ``CheckpointNotFound`` (exit 2) says whether the path or the file a link points to is missing;
    ``NotARegularFile`` (exit 2) names a loop of links, a plain folder (unless ``folder_ok``: a folder
    run searches it) and a sharded folder whose metadata is a FIFO, a device or a folder.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise CheckpointNotFound(
                f"{shown(path)} is a dangling symbolic link: it points to {shown(os.readlink(path))}, "
                "which does not exist; fix or remove the link"
            ) from None
        raise CheckpointNotFound(f"no such checkpoint: {shown(path)}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotARegularFile(
                f"{shown(path)} is a loop of symbolic links, not a checkpoint; fix the links"
            ) from None
        raise
    if not stat.S_ISDIR(st.st_mode):
        return path
    meta = sharded_metadata_entry(path)
    if meta is None:
        if folder_ok:
            return path
        raise NotARegularFile(
            f"{shown(path)} is a folder but not a sharded Lightning checkpoint (no "
            f"{' and no '.join(SHARDED_METADATA)}); give a checkpoint file, or upgrade the folder to search it",
        )
    meta_st = os.stat(meta)  # a dangling meta.pt link: FileNotFoundError, reported by the caller
    if not stat.S_ISREG(meta_st.st_mode):
        raise NotARegularFile(
            f"{shown(path)} is a sharded checkpoint folder whose {meta.relative_to(path)} is "
            f"{_kind(meta_st.st_mode)}, not a regular file; refusing to read it",
        )
    return path


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a folder"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a device"


def in_place_target(file: Path) -> Path:
    """The file an in-place upgrade of ``file`` writes: the end of its links, ``..`` resolved.

    Its lock, its backup (``TARGET.bak`` beside it) and its replacement all use this one path, so a
    linked ``last.ckpt`` is upgraded where its bytes are and the link keeps pointing at them.
    """
    return Path(os.path.realpath(file))


def _entry(path: Path) -> tuple[int, int, str] | None:
    """(device, inode of the folder, name): the directory entry that writing ``path`` replaces."""
    real = Path(os.path.realpath(path))
    try:
        st = os.stat(real.parent)
    except OSError:
        return None
    return st.st_dev, st.st_ino, real.name


def is_same_entry(output: Path, source: Path) -> bool:
    """Writing ``output`` would replace ``source`` itself: the same name through a link, ``..`` or a mount.

    A hard link of the source is another entry: writing it gives that name a new file and leaves
    the source as it was, so it is not the same entry.
    """
    mine = _entry(output)
    return mine is not None and mine == _entry(source)
