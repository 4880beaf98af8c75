"""Version stamps: every checkpoint saved from now on carries each team catalogue's version key.

Why: a catalogue decides which of its units a file needs from the file's version key; a file that
has none cannot be told apart from one saved before the key existed (rf-detr#917, darts#1424), so
every unit runs on it again. Registering a catalogue is the one step a team takes; from then on
saving through ``CheckpointUpgrade`` or ``install()`` writes the key (the catalogue's target: the
team's installed release), unless the module wrote one itself (its ``on_save_checkpoint`` wins).
A catalogue with ``models`` stamps only the checkpoints of those modules (and their subclasses), so
a team catalogue never dates another model's files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import versions
from .catalogue import Catalogue, all_catalogues


def owns(catalogue: Catalogue, module: Any) -> bool:
    """Whether ``catalogue`` stamps checkpoints of ``module`` (a LightningModule or its class)."""
    if not catalogue.models:
        return True
    cls = module if isinstance(module, type) else type(module)
    names = {f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__}
    return any(
        (m in names) if isinstance(m, str) else (isinstance(m, type) and issubclass(cls, m)) for m in catalogue.models
    )


def stamp(checkpoint: dict, module: Any = None, catalogues: Iterable[Catalogue] | None = None) -> list[str]:
    """Set each team catalogue's version key that ``checkpoint`` lacks; returns the keys set."""
    if not isinstance(checkpoint, dict):
        return []
    done = []
    for catalogue in all_catalogues() if catalogues is None else catalogues:
        if catalogue.version_key == versions.VERSION_KEY or catalogue.version_key in checkpoint:
            continue
        if module is not None and not owns(catalogue, module):
            continue
        checkpoint[catalogue.version_key] = catalogue.default_target()
        done.append(catalogue.version_key)
    return done
