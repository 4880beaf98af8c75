"""Atomic checkpoint writes that carry tensor records over unchanged where that is provably safe.

Rooms: ``atomic`` (temp + fsync + rename, metadata kept, only regular files opened or
replaced) on ``tempfiles`` (locked temp files, stale ones swept) and ``sink`` (where every byte is
written), ``carryover`` (which records of the source can be copied, via the ``/proc`` page
map), ``zipformat`` (torch's archive layout); ``inplace`` adds the lock and backup of
``--in-place``. Either path's output loads with ``torch.load(weights_only=True)`` exactly as
``torch.save``'s would.
"""

from __future__ import annotations

import logging
import os
from typing import Any, NamedTuple

from ...core.errors import CheckpointCompatError, CheckpointWriteError
from ..names import shown
from . import sources
from .atomic import (
    BACKUP_SUFFIX,
    TEMP_MARKER,
    PathLike,
    atomic_output,
    clean_stale_temp_files,
    resolve_dest,
    write_bytes,
)
from .inplace import backup, exclusive, keep_first_original

__all__ = [
    "BACKUP_SUFFIX",
    "TEMP_MARKER",
    "backup",
    "clean_stale_temp_files",
    "exclusive",
    "keep_first_original",
    "save_checkpoint",
    "write_bytes",
]

_log = logging.getLogger(__name__)


class _WriteReport(NamedTuple):
    """How a checkpoint was written: for tests and benchmarks, never needed by callers."""

    mode: str  # "carry-over" or "plain"
    copied_records: int
    new_records: int
    reason: str  # why the plain path was taken ("" for carry-over)


def save_checkpoint(checkpoint: Any, dest: PathLike, *, source: PathLike | None = None) -> None:
    """Write ``checkpoint`` to ``dest`` atomically.

    ``source``: the zip-format file the checkpoint was loaded from with ``mmap=True``; its tensor
    records are copied over instead of re-serialised. Without it (or when that cannot be proven
    safe) the checkpoint is written with ``torch.save``. Either way the result loads with
    ``torch.load(weights_only=True)`` exactly as ``torch.save``'s output would. On any failure the
    temp file is removed and ``dest`` is untouched: ``SourceChanged`` if ``source`` changed since it
    was loaded, ``NotPlainData`` if a pickled-class stand-in is left, ``CheckpointWriteError`` (the
    cause chained) for anything that fails while writing, ``NotARegularFile`` for a device or FIFO.
    """
    _save_checkpoint(checkpoint, dest, source=source)


def _save_checkpoint(checkpoint: Any, dest: PathLike, *, source: PathLike | None = None) -> _WriteReport:
    import torch  # here, not at import: the registry writers use this package without torch

    from .carryover import carry_over_plan
    from .plaindata import plain_data_pickle
    from .zipformat import write_archive

    dest_path = resolve_dest(dest)
    clean_stale_temp_files(dest_path.parent, name=dest_path.name)
    if source is not None:
        sources.check_unchanged(source)
    plan, reason = (None, "no source given") if source is None else carry_over_plan(checkpoint, source)
    try:
        with atomic_output(dest_path) as out:
            try:
                if plan is None:
                    torch.save(checkpoint, out, pickle_module=plain_data_pickle)
                    report = _WriteReport("plain", 0, 0, reason)
                else:
                    write_archive(plan, out)
                    report = _WriteReport("carry-over", plan.copied, plan.new, "")
            except (CheckpointCompatError, OSError):
                out.raise_if_interrupted()
                raise
            except (Exception, RecursionError) as exc:
                out.raise_if_interrupted()  # torch turned a Ctrl-C in our write into its own error
                raise CheckpointWriteError(f"cannot write {shown(dest_path)}: {type(exc).__name__}: {exc}") from exc
            out.raise_if_interrupted()  # ... or swallowed it: the file may be incomplete
            if source is not None:  # the source must not have changed while we read it
                sources.check_unchanged(source)
    finally:
        if plan is not None:
            os.close(plan.source_fd)
    if report.mode == "plain":
        _log.debug("wrote %s with torch.save (%s)", dest_path, reason)
    else:
        _log.debug(
            "wrote %s: %d tensor records carried over, %d new", dest_path, report.copied_records, report.new_records
        )
    return report
