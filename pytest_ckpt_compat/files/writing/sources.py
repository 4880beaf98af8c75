"""Which files loaded checkpoints are memory-mapped from, and whether they changed since.

Why: ``load_checkpoint`` maps zip checkpoints (``mmap=True``), so their tensors are the file's
pages. If another process truncates the file (a training job rewriting ``last.ckpt``), touching
those pages kills us with SIGBUS; if it replaces the file, an in-place upgrade would overwrite
the new checkpoint with the old one's content. The loader records each file's identity here and
the writer compares it before and after writing, so both end in ``SourceChanged`` instead.
An entry lives as long as the file is mapped, however many files are loaded meanwhile.
"""

from __future__ import annotations

import os
import threading

from ...core.errors import SourceChanged
from ..names import shown

_PRUNE_FROM = 64  # entries before the first look at which files are still mapped
_loaded: dict[str, tuple[int, int, int, int]] = {}
_lock = threading.Lock()
_prune_at = _PRUNE_FROM


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def remember(path: str | os.PathLike, st: os.stat_result) -> None:
    """Record the identity of the file a checkpoint is loaded from (before torch maps it).

    Kept as long as this process maps the file (any tensor of it alive); no count limit decides,
    so 300 loads in between cannot drop the guard of a checkpoint still in use (a truncated
    source then raised SIGBUS instead of ``SourceChanged``). Growth is pruned of files no longer
    mapped, at doubling sizes (amortised: one read of ``/proc/self/maps`` per doubling).
    """
    global _prune_at
    key = os.path.realpath(path)
    with _lock:
        _loaded.pop(key, None)
        _loaded[key] = _identity(st)
        if len(_loaded) <= _prune_at:
            return
        mapped = _mapped_files()
        if mapped is not None:
            for other, seen in list(_loaded.items()):
                if other != key and seen[:2] not in mapped:
                    del _loaded[other]
        _prune_at = max(_PRUNE_FROM, 2 * len(_loaded))


def _mapped_files() -> set[tuple[int, int]] | None:
    """``(st_dev, st_ino)`` of every file this process maps, or ``None`` where ``/proc`` cannot say."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    found = set()
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) >= 5 and fields[4] != "0":
            major, _, minor = fields[3].partition(":")
            found.add((os.makedev(int(major, 16), int(minor, 16)), int(fields[4])))
    return found


def check_unchanged(path: str | os.PathLike) -> None:
    """Raise ``SourceChanged`` if ``path`` no longer names the file, size and mtime seen at load."""
    key = os.path.realpath(path)
    with _lock:
        seen = _loaded.get(key)
    if seen is None:
        return
    try:
        now = _identity(os.stat(key))
    except FileNotFoundError:
        now = None
    if now != seen:
        what = (
            "was removed"
            if now is None
            else (
                "was replaced by another file"
                if now[:2] != seen[:2]
                else f"changed (size {seen[2]} -> {now[2]} bytes, or its mtime)"
            )
        )
        raise SourceChanged(
            f"{shown(path)} {what} after it was loaded: another process is writing it; nothing was written. "
            "Run the upgrade again when that process is done (for a training job's last.ckpt, after training)."
        )
