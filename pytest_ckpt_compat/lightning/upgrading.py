"""Load a checkpoint for Lightning: our safe loader and the catalogue, then a path or a dict Lightning reads.

``load_from_checkpoint`` for ``LightningModule``/``LightningDataModule`` (which take no plugins),
``upgraded_copy`` for every front that must hand Lightning a path, and ``match_callback_states``,
the re-keying of callback states to live callbacks (``callback_keys.rekey``, the one algorithm).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core import callback_keys
from ..core.engine import upgrade_with_result
from ..files.loading import checkpoint_file, load_checkpoint

__all__ = ["load_from_checkpoint", "load_upgraded", "match_callback_states", "upgraded_copy"]

LIVE = "the Trainer's live callbacks"


def match_callback_states(checkpoint: dict, callbacks: Iterable[Any]) -> dict:
    """Re-key callback states to the live callbacks that own none yet (unique matches only); returns it.

    ``callback_keys.rekey`` with the live callbacks: Lightning restores a state only under its
    callback's ``state_key``, so any unclaimed key of the same class counts (see ``rekey``).
    """
    callback_keys.rekey(checkpoint, callbacks, how=LIVE, saved_keys=True)
    return checkpoint


def load_upgraded(
    path: Any,
    *,
    trust: bool,
    target_version: str | None,
    assume_version: str | None,
    callbacks: Iterable[Any] | None = None,
    map_location: Any = None,
    weights_only: bool | None = None,
) -> dict:
    """Our safe loader, then the catalogue, then the live ``callbacks``' keys (if given).

    A caller's explicit ``weights_only=False`` means it trusts the file.
    """
    checkpoint = load_checkpoint(path, trust=trust or weights_only is False, map_location=map_location or "cpu")
    return upgrade_loaded(checkpoint, target_version=target_version, assume_version=assume_version, callbacks=callbacks)


def upgrade_loaded(
    checkpoint: dict, *, target_version: str | None, assume_version: str | None, callbacks: Iterable[Any] | None
) -> dict:
    """The catalogue on a loaded checkpoint, then (once) the re-keying to the live callbacks."""
    upgrade_with_result(checkpoint, target_version, assume_version=assume_version)
    if callbacks is not None:
        match_callback_states(checkpoint, callbacks)
    return checkpoint


def load_from_checkpoint(
    cls: Any,
    path: str | os.PathLike,
    *,
    trust: bool = False,
    target_version: str | None = None,
    assume_version: str | None = None,
    **kwargs: Any,
) -> Any:
    """``cls.load_from_checkpoint(path, **kwargs)`` on the upgraded checkpoint (path left untouched).

    Lightning gets a *path*: an upgraded copy in a temporary folder (tensor records carried over,
    so it costs little), or with ``trust`` the original when nothing needs upgrading. A path, not
    a buffer, because classes that override ``load_from_checkpoint`` may read their argument more
    than once (chemprop's MPNN does). The copy was written from what our loader accepted, so
    Lightning may read it with ``weights_only=False`` without widening what the file can run (and
    numpy state in it still loads).
    """
    checkpoint = load_checkpoint(path, trust=trust)
    result = upgrade_with_result(checkpoint, target_version, assume_version=assume_version)
    if "weights_only" not in kwargs and _takes_weights_only(cls):
        kwargs["weights_only"] = False
    if trust and not result.changed and not Path(path).is_dir():
        return cls.load_from_checkpoint(os.fspath(path), **kwargs)
    with upgraded_copy(checkpoint, path) as upgraded:
        del checkpoint  # the copy is what Lightning reads; drop our mmap of the original
        return cls.load_from_checkpoint(str(upgraded), **kwargs)


def _takes_weights_only(cls: Any) -> bool:
    """Whether ``cls.load_from_checkpoint`` takes ``weights_only``, itself or through the ``**kwargs`` of an
    override that hands them on to Lightning's (chemprop 2.1's MPNN re-reads the file into a buffer, which
    torch >= 2.6 then loads with ``weights_only=True`` unless told otherwise: chemprop#1325)."""
    for klass in cls.__mro__:
        if "load_from_checkpoint" not in vars(klass):
            continue
        params = inspect.signature(klass.load_from_checkpoint).parameters
        if "weights_only" in params:
            return True
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return False
    return False


@contextlib.contextmanager
def upgraded_copy(checkpoint: dict, source: str | os.PathLike):
    """Write the upgraded ``checkpoint`` of ``source`` into a temporary folder; yield its path.

    Plain data only (``save_checkpoint`` refuses the rest), so ``torch.load(weights_only=True)``
    reads it; the folder is removed on exit.
    """
    from ..files.writing import save_checkpoint

    file = checkpoint_file(source)
    with tempfile.TemporaryDirectory(prefix="ckpt-compat-") as folder:
        copy = Path(folder) / Path(file).name
        save_checkpoint(checkpoint, copy, source=file)
        del checkpoint
        yield copy
