"""Which files loaded checkpoints are memory-mapped from, and whether they changed since.

Why: ``load_checkpoint`` maps zip checkpoints (``mmap=True``), so their tensors are the file's
pages. If another process truncates the file (a training job rewriting ``last.ckpt``), touching
those pages kills us with SIGBUS; if it replaces the file, an in-place upgrade would overwrite
the new checkpoint with the old one's content. The loader records each file's identity here and
the writer compares it before and after writing, so both end in ``SourceChanged`` instead.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from ...core.errors import SourceChanged

_KEEP = 256  # recent loads remembered; older ones are simply not checked
_loaded: OrderedDict[str, tuple[int, int, int, int]] = OrderedDict()


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def remember(path: str | os.PathLike, st: os.stat_result) -> None:
    """Record the identity of the file a checkpoint was just loaded from."""
    key = os.path.realpath(path)
    _loaded[key] = _identity(st)
    _loaded.move_to_end(key)
    while len(_loaded) > _KEEP:
        _loaded.popitem(last=False)


def check_unchanged(path: str | os.PathLike) -> None:
    """Raise ``SourceChanged`` if ``path`` no longer names the file, size and mtime seen at load."""
    key = os.path.realpath(path)
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
            f"{os.fsdecode(path)} {what} after it was loaded: another process is writing it; nothing was written. "
            "Run the upgrade again when that process is done (for a training job's last.ckpt, after training)."
        )
