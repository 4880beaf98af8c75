"""pytest-ckpt-compat: upgrade old Lightning checkpoints through one documented catalogue.

The flow, one module each: ``catalogue`` (find and order the units in ``migrations/``) →
``engine`` (plan, apply, ledger) → ``loading`` / ``writing`` (safe load, atomic write) →
``lightning`` (Trainer and ``load_from_checkpoint`` integration) / ``cli`` → ``plugin`` (pytest).
"""
from __future__ import annotations

__version__ = "0.1.0"

from .catalogue import Catalogue, Migration, all_catalogues, lightning_catalogue, register_catalogue, unregister_catalogue
from .engine import applied_ids, plan, upgrade
from .errors import (
    CatalogueError,
    CheckpointCompatError,
    CheckpointNotFound,
    CheckpointTooNew,
    CorruptCheckpoint,
    GoldenError,
    HashMismatch,
    InvalidVersion,
    MigrationError,
    MissingGlobal,
    NotALightningCheckpoint,
    UnsafeCheckpoint,
)
from .loading import load_checkpoint

__all__ = [
    "Catalogue",
    "CatalogueError",
    "CheckpointCompatError",
    "CheckpointNotFound",
    "CheckpointTooNew",
    "CorruptCheckpoint",
    "GoldenError",
    "HashMismatch",
    "InvalidVersion",
    "Migration",
    "MigrationError",
    "MissingGlobal",
    "NotALightningCheckpoint",
    "UnsafeCheckpoint",
    "all_catalogues",
    "applied_ids",
    "lightning_catalogue",
    "load_checkpoint",
    "plan",
    "register_catalogue",
    "save_checkpoint",
    "unregister_catalogue",
    "upgrade",
]


def save_checkpoint(checkpoint, dest, *, source=None):
    """Write ``checkpoint`` atomically to ``dest`` (see :mod:`pytest_ckpt_compat.writing`)."""
    from .writing import save_checkpoint as _save

    return _save(checkpoint, dest, source=source)
