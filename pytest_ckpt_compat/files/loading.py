"""Safe loading: the public entry points (``load_checkpoint`` and the folder/format probes).

A safe load resolves only torch's ``weights_only`` names plus a small curated table
(``allowlist``) through a restricted Unpickler (``unpicklers``) and runs no code; nothing it does
outlives the load, and it costs at most what the file's size allows (``bounds``). ``trust=True``
unpickles normally (with Lightning's legacy shims and a namespace redirect). The bytes are
checked before torch reads them (``pickles``, ``formats``), torch's errors become named ones
(``load_errors``), and a sharded folder is read through its metadata file (``sharded``).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..core import redirects as _redirects
from ..core.errors import CheckpointNotFound, CorruptCheckpoint, NotALightningCheckpoint, NoTorchMagic
from . import bounds, formats, pickles, redirecting
from .allowlist import LegacyClassRef, legacy_class_ref, numpy_globals, safe_table
from .load_errors import translate
from .sharded import SHARDED_METADATA, checkpoint_file, sharded_metadata
from .unpicklers import RedirectingPickleModule, SafePickleModule
from .writing import sources
from .writing.atomic import open_regular

__all__ = [
    "SHARDED_METADATA",
    "LegacyClassRef",
    "checkpoint_file",
    "is_zip_checkpoint",
    "legacy_class_ref",
    "load_checkpoint",
    "numpy_globals",
    "sharded_metadata",
]


def is_zip_checkpoint(path: str | os.PathLike) -> bool:
    with open(open_regular(path), "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def load_checkpoint(
    path: str | os.PathLike,
    *,
    trust: bool = False,
    map_location: Any = "cpu",
    redirects: _redirects.Redirects | None = None,
) -> dict:
    """Load a checkpoint file (or a sharded directory's metadata) without running pickled code.

    Zip-format files are memory-mapped, so tensors are not read until used and the writer can
    carry their records over unchanged. ``trust=True`` allows arbitrary globals: use it only for
    files whose origin you trust (or that passed a hash check). Only regular files are opened
    (``NotARegularFile`` otherwise); the container is checked before torch reads it
    (``pickles``); a file of another format (MindSpore, NumPy, a Git LFS pointer: ``formats``)
    is ``NotALightningCheckpoint``, and any other failure ``CorruptCheckpoint`` or ``UnsafeCheckpoint``.
    Moved classes resolve through ``redirects`` (default: those every catalogue in use declares); the
    ones used are recorded in the ledger. A trusted file whose class cannot be rebuilt from its saved
    state (its pickle layout changed) is ``IncompatibleClass``.
    """
    file = checkpoint_file(path)
    name = os.fsdecode(file)
    try:
        fd = open_regular(file)
    except FileNotFoundError:
        raise CheckpointNotFound(f"no such checkpoint: {name}") from None
    with open(fd, "rb") as fh:
        st = os.fstat(fd)
        if st.st_size == 0:
            raise CorruptCheckpoint(f"{name} is empty")
        zipped = os.pread(fd, 4, 0) == b"PK\x03\x04"
        if zipped:
            pickles.check_archive(fh, name)
        else:
            try:
                pickles.check_legacy(fd, name)
            except NoTorchMagic:
                foreign = formats.identify(fd, st.st_size)
                if foreign is None:
                    raise
                raise NotALightningCheckpoint(found=f"{name} is not a torch file but {foreign}") from None
        # torch opens the very file we checked (no path race), whatever bytes its name holds
        source = f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else file
        if zipped:  # before torch maps it: the writer must know this file's identity while any tensor maps it
            sources.remember(file, st)
        per_load = redirecting.for_load(redirects)
        checkpoint = _load(source, name, zipped, trust, map_location, st.st_size, per_load)
        _redirects.record(checkpoint, per_load.used)
        return checkpoint


def _load(
    source: Any, name: str, zipped: bool, trust: bool, map_location: Any, size: int, per_load: redirecting.PerLoad
) -> Any:
    if trust:
        pickle_module: Any = RedirectingPickleModule(per_load)
    else:
        pickle_module = SafePickleModule(safe_table(), bounds.LoadBudget(size), per_load)
    try:
        # weights_only=False only because an explicit pickle_module carries the restriction (see unpicklers)
        checkpoint = torch.load(
            source, map_location=map_location, weights_only=False, pickle_module=pickle_module, mmap=zipped or None
        )
        bounds.check_expansion(checkpoint, size)
        return checkpoint
    except BaseException as exc:
        error = translate(exc, name, source, zipped, per_load if trust else None, per_load.redirects)
        if error is exc:
            raise
        try:
            raise error from (exc if isinstance(error, CorruptCheckpoint) else None)
        finally:  # no frame <-> traceback cycle: it would keep torch's frames (the file's mapping) alive
            del error
