"""pytest-ckpt-compat: upgrade old Lightning checkpoints through one documented catalogue.

The flow, one module each: ``catalogue`` (find and order the units in ``migrations/``) →
``engine`` (plan, apply, ledger) → ``loading`` / ``writing`` (safe load, atomic write) →
``lightning`` (Trainer and ``load_from_checkpoint`` integration) / ``cli`` → ``plugin`` (pytest).

The public names below are resolved on first use (PEP 562): pytest imports this package for its
plugin in every run, and a run that does not use it must not pay for importing torch.
"""
from __future__ import annotations

import importlib

from .versions import TOOL_VERSION

__version__ = TOOL_VERSION

_EXPORTS = {
    "Catalogue": "catalogue",
    "Migration": "catalogue",
    "all_catalogues": "catalogue",
    "lightning_catalogue": "catalogue",
    "register_catalogue": "catalogue",
    "unregister_catalogue": "catalogue",
    "applied_ids": "engine",
    "plan": "engine",
    "upgrade": "engine",
    "CatalogueError": "errors",
    "CheckpointCompatError": "errors",
    "CheckpointNotFound": "errors",
    "CheckpointTooNew": "errors",
    "CorruptCheckpoint": "errors",
    "GoldenError": "errors",
    "HashMismatch": "errors",
    "InvalidVersion": "errors",
    "MigrationError": "errors",
    "MissingGlobal": "errors",
    "NotALightningCheckpoint": "errors",
    "UnsafeCheckpoint": "errors",
    "load_checkpoint": "loading",
    "save_checkpoint": "writing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
