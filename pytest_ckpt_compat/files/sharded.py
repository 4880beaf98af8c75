"""Sharded checkpoints are folders: which small file in them holds the Lightning state.

Only that metadata file is ever read (``meta.pt`` for FSDP/ModelParallel,
``checkpoint/mp_rank_00_model_states.pt`` for DeepSpeed); the shards are never opened.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import CorruptCheckpoint

# The small metadata file of each sharded layout: FSDP/ModelParallel, DeepSpeed.
SHARDED_METADATA = ("meta.pt", "checkpoint/mp_rank_00_model_states.pt")


def sharded_metadata(path: str | os.PathLike) -> Path | None:
    """The metadata file if ``path`` is a sharded checkpoint folder, else ``None`` (the one detector)."""
    path = Path(path)
    return next((path / name for name in SHARDED_METADATA if (path / name).is_file()), None) if path.is_dir() else None


def checkpoint_file(path: str | os.PathLike) -> Path:
    """The file that holds a checkpoint's Lightning state (the metadata file of a sharded directory)."""
    path = Path(path)
    if not path.is_dir():
        return path
    found = sharded_metadata(path)
    if found is not None:
        return found
    raise CorruptCheckpoint(
        f"{path} is a directory but not a sharded Lightning checkpoint: no meta.pt (FSDP/ModelParallel) "
        "and no checkpoint/mp_rank_00_model_states.pt (DeepSpeed)"
    )
