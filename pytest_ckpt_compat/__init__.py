"""pytest-ckpt-compat: upgrade old Lightning checkpoints through one documented catalogue.

The flow, one module each: ``catalogue`` (find and order the units in ``migrations/``) →
``engine`` (plan, upgrade, ledger) → ``loading`` / ``writing`` (safe load, atomic write) →
``lightning`` (Trainer and ``load_from_checkpoint`` integration) / ``cli`` → ``plugin`` (pytest).

The public names below are resolved on first use (PEP 562): pytest imports this package for its
plugin in every run, and a run that does not use it must not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .core.versions import TOOL_VERSION

if TYPE_CHECKING:  # the same names as _EXPORTS, for type checkers and IDEs; resolved lazily at run time
    from .commands import load_checkpoint
    from .core.catalogue import (
        Catalogue,
        Migration,
        all_catalogues,
        lightning_catalogue,
        register_catalogue,
        unregister_catalogue,
    )
    from .core.engine import UpgradeResult, applied_ids, plan, upgrade, upgrade_with_result
    from .core.errors import (
        CatalogueError,
        CheckpointCompatError,
        CheckpointNotFound,
        CheckpointTooNew,
        CorruptCheckpoint,
        GoldenError,
        HashMismatch,
        IncompatibleClass,
        InvalidVersion,
        MigrationError,
        MissingGlobal,
        NotALightningCheckpoint,
        PreflightFailed,
        RecipeError,
        UnsafeCheckpoint,
    )
    from .files.writing import save_checkpoint
    from .goldens.recipes import Recipe

__version__ = TOOL_VERSION

_EXPORTS = {
    "Catalogue": "core.catalogue",
    "Migration": "core.catalogue",
    "all_catalogues": "core.catalogue",
    "lightning_catalogue": "core.catalogue",
    "register_catalogue": "core.catalogue",
    "unregister_catalogue": "core.catalogue",
    "applied_ids": "core.engine",
    "plan": "core.engine",
    "upgrade": "core.engine",
    "upgrade_with_result": "core.engine",
    "UpgradeResult": "core.engine",
    "Recipe": "goldens.recipes",
    "CatalogueError": "core.errors",
    "CheckpointCompatError": "core.errors",
    "CheckpointNotFound": "core.errors",
    "CheckpointTooNew": "core.errors",
    "CorruptCheckpoint": "core.errors",
    "GoldenError": "core.errors",
    "HashMismatch": "core.errors",
    "IncompatibleClass": "core.errors",
    "InvalidVersion": "core.errors",
    "MigrationError": "core.errors",
    "MissingGlobal": "core.errors",
    "NotALightningCheckpoint": "core.errors",
    "PreflightFailed": "core.errors",
    "RecipeError": "core.errors",
    "UnsafeCheckpoint": "core.errors",
    "load_checkpoint": "commands",
    "save_checkpoint": "files.writing",
}

# Spelled out (not computed) so that type checkers read it; tests check it against _EXPORTS.
__all__ = [
    "Catalogue",
    "CatalogueError",
    "CheckpointCompatError",
    "CheckpointNotFound",
    "CheckpointTooNew",
    "CorruptCheckpoint",
    "GoldenError",
    "HashMismatch",
    "IncompatibleClass",
    "InvalidVersion",
    "Migration",
    "MigrationError",
    "MissingGlobal",
    "NotALightningCheckpoint",
    "PreflightFailed",
    "Recipe",
    "RecipeError",
    "UnsafeCheckpoint",
    "UpgradeResult",
    "__version__",
    "all_catalogues",
    "applied_ids",
    "lightning_catalogue",
    "load_checkpoint",
    "plan",
    "register_catalogue",
    "save_checkpoint",
    "unregister_catalogue",
    "upgrade",
    "upgrade_with_result",
]


if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name is an error there too

    def __getattr__(name: str) -> object:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value  # resolved once
        return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
