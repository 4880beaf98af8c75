"""The installed Lightning namespaces, and switching their own migration off.

``lightning.pytorch`` and ``pytorch_lightning`` may both be installed; the callback, the seams and
the matrix's Trainer harness reach them only through here.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterable

from ..core.versions import LIGHTNING_MODULES

__all__ = ["callback_bases", "installed", "lightning_migration_disabled", "trainer_module"]


def trainer_module():
    """The installed Lightning trainer package: ``lightning.pytorch``, else ``pytorch_lightning``."""
    from ..core.versions import lightning_module_name

    return importlib.import_module(lightning_module_name())


def installed(module_names: Iterable[str]) -> list:
    found = []
    for name in module_names:
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


def callback_bases() -> tuple:
    """``Callback`` of every installed Lightning namespace, so either Trainer accepts the callback."""
    return tuple(m.Callback for m in installed(LIGHTNING_MODULES))


@contextlib.contextmanager
def lightning_migration_disabled():
    """Switch Lightning's own migration off (both namespaces) so only this catalogue counts."""
    patched = []
    for utils in installed(f"{ns}.utilities.migration.utils" for ns in LIGHTNING_MODULES):
        patched.append((utils, utils._migration_index))
        utils._migration_index = dict
    try:
        yield
    finally:
        for utils, original in patched:
            utils._migration_index = original
