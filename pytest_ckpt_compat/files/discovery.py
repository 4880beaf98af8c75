"""Which checkpoints a list of paths names: files stay, sharded folders are one checkpoint, folders are searched.

Why a room of its own: discovery runs before the per-file error boundary, so anything it raises
stopped a whole run (one unreadable subfolder, and nothing was upgraded). Here every problem
becomes an entry that fails on its own (``Found.error``) or a skip with its reason, and the run
goes on. A folder is searched for ``*.ckpt`` files and sharded checkpoint folders without leaving
it: a symbolic link that points outside the folder is skipped and said so, unless the user asks
to follow links (``follow_links``); a link inside it names a file that is upgraded once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .names import shown
from .paths import sharded_metadata_entry

__all__ = ["Discovery", "Found", "discover"]


@dataclass(frozen=True)
class Found:
    """One checkpoint to upgrade, or a path that could not be searched (``error`` set: it fails alone)."""

    path: Path
    error: OSError | None = None


@dataclass
class Discovery:
    found: list[Found] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, why), to be printed
    _seen: set[str] = field(default_factory=set)

    def add(self, path: Path) -> None:
        key = os.path.realpath(path)  # a link and its target inside the folder: one checkpoint
        if key not in self._seen:
            self._seen.add(key)
            self.found.append(Found(path))

    def fail(self, path: Path, error: OSError) -> None:
        self.found.append(Found(path, error))


def discover(paths: list[Path], *, follow_links: bool = False) -> Discovery:
    """The checkpoints ``paths`` name, in order; a path given explicitly is used even if it is a link."""
    result = Discovery()
    for path in paths:
        try:
            searched = path.is_dir() and sharded_metadata_entry(path) is None
        except OSError:  # a name too long, a loop of links: the per-file boundary reports it
            searched = False
        if searched:
            _search(path, result, follow_links)
        else:
            result.add(path)
    return result


def _search(top: Path, result: Discovery, follow_links: bool) -> None:
    """Depth first, names in order: a folder's files and sharded folders, then its subfolders."""
    inside = os.path.realpath(top)
    visited: set[tuple[int, int]] = set()  # folders already searched: links may form loops
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in visited:
                continue
            visited.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            result.fail(folder, exc)
            continue
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            try:
                is_link, is_dir = entry.is_symlink(), entry.is_dir()
            except OSError as exc:
                result.fail(path, exc)
                continue
            if not is_dir and not entry.name.endswith(".ckpt"):
                continue
            if is_link and not follow_links:
                why = _not_followed(path, is_dir, inside, top)
                if why:
                    result.skipped.append((path, why))
                    continue
            if not is_dir:
                result.add(path)  # a regular file, a FIFO, a dangling link: the per-file boundary decides
            elif sharded_metadata_entry(path) is not None:
                result.add(path)
            else:
                subfolders.append(path)
        stack.extend(reversed(subfolders))


def _not_followed(link: Path, is_dir: bool, inside: str, top: Path) -> str:
    """Why a link found in a folder run is not followed, or ``""`` if its target is upgraded through it."""
    target = os.path.realpath(link)
    if is_dir:
        where = "a folder inside it, searched under its own name" if _within(target, inside) else "a folder outside it"
        return f"a symbolic link to {where} ({shown(target)}); not followed (--follow-links follows links)"
    if not _within(target, inside):
        return (
            f"a symbolic link to {shown(target)}, outside {shown(top)}; not followed, so not upgraded "
            "(--follow-links follows links)"
        )
    return ""


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
