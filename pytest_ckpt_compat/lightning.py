"""Make Lightning use this catalogue when it loads a checkpoint: one line of user setup.

Resuming (``Trainer.fit/validate/test/predict(ckpt_path=...)``)::

    trainer = Trainer(callbacks=[CheckpointUpgrade(), ...])

The callback's ``setup`` hook runs before the Trainer restores a checkpoint; it wraps the
strategy's ``CheckpointIO`` so that loading goes through our safe loader and ``upgrade``, and the
upgraded callback states are matched to the Trainer's live callbacks (old files name a callback's
class but not its configuration). Lightning's own migration then finds a current checkpoint and
does nothing.

``LightningModule``/``LightningDataModule.load_from_checkpoint`` take no plugins, so use::

    model = load_from_checkpoint(MyModel, "old.ckpt")
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from .engine import plan, upgrade
from .loading import checkpoint_file, load_checkpoint
from .versions import LIGHTNING_MODULES, VERSION_KEY


def trainer_module():
    """The installed Lightning trainer package: ``lightning.pytorch``, else ``pytorch_lightning``."""
    from .versions import lightning_module_name

    return importlib.import_module(lightning_module_name())


def _installed(module_names: Iterable[str]) -> list:
    found = []
    for name in module_names:
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


def _callback_bases() -> tuple:
    """``Callback`` of every installed Lightning namespace, so either Trainer accepts the callback."""
    return tuple(m.Callback for m in _installed(LIGHTNING_MODULES))


@contextlib.contextmanager
def lightning_migration_disabled():
    """Switch Lightning's own migration off (both namespaces) so only this catalogue counts."""
    patched = []
    for utils in _installed(f"{ns}.utilities.migration.utils" for ns in LIGHTNING_MODULES):
        patched.append((utils, utils._migration_index))
        utils._migration_index = dict
    try:
        yield
    finally:
        for utils, original in patched:
            utils._migration_index = original


def match_callback_states(checkpoint: dict, callbacks: Iterable[Any]) -> dict:
    """Re-key callback states whose key no live callback owns to the one live callback of that class.

    Keys written for a class but not its configuration (``"EarlyStopping"``) or for another
    configuration get the live callback's ``state_key`` when exactly one live callback of that
    class lacks its state and exactly one unclaimed key names that class. Everything else stays.
    """
    states = checkpoint.get("callbacks")
    if not isinstance(states, dict):
        return checkpoint
    callbacks = list(callbacks)
    live_keys = {cb.state_key for cb in callbacks}
    unclaimed = [k for k in states if k not in live_keys]
    for callback in callbacks:
        if callback.state_key in states:
            continue
        name = type(callback).__qualname__
        same_class = [cb for cb in callbacks if type(cb).__qualname__ == name and cb.state_key not in states]
        candidates = [k for k in unclaimed if _class_name(k) == name]
        if len(candidates) == 1 and len(same_class) == 1:
            states[callback.state_key] = states.pop(candidates[0])
            unclaimed.remove(candidates[0])
    return checkpoint


def _class_name(key: Any) -> str:
    if isinstance(key, str):
        return key.split("{", 1)[0]
    return getattr(key, "__qualname__", "")


class _UpgradingCheckpointIO:
    """Wraps a strategy's CheckpointIO: loads safely, upgrades, re-keys; saving is untouched."""

    def __init__(self, inner: Any, trainer: Any, *, trust: bool, target_version: str | None, assume_version: str | None = None):
        self.inner, self.trainer, self.trust, self.target_version = inner, trainer, trust, target_version
        self.assume_version = assume_version

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None, **kwargs: Any) -> dict:
        if isinstance(path, (str, os.PathLike)) and os.path.exists(path):
            checkpoint = load_checkpoint(path, trust=self.trust, map_location=map_location or "cpu")
        else:  # remote storage: the wrapped CheckpointIO knows how to reach it
            checkpoint = self.inner.load_checkpoint(path, map_location=map_location, weights_only=False if self.trust else weights_only, **kwargs)
        upgrade(checkpoint, self.target_version, assume_version=self.assume_version, callbacks=self.trainer.callbacks)
        return match_callback_states(checkpoint, self.trainer.callbacks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _make_callback_class():
    bases = _callback_bases()
    if not bases:  # pragma: no cover - the package is usable without Lightning for CLI work
        bases = (object,)

    class CheckpointUpgrade(*bases):
        """Upgrade checkpoints that the Trainer resumes from, with this package's catalogue.

        ``trust=True`` unpickles arbitrary globals (only for files you trust); ``target_version``
        defaults to the installed Lightning; ``assume_version`` names the release that wrote a
        file with no version key (Lightning before 0.8.2), as ``--assume-version`` does.
        """

        def __init__(self, *, trust: bool = False, target_version: str | None = None, assume_version: str | None = None) -> None:
            super().__init__()
            self.trust, self.target_version, self.assume_version = trust, target_version, assume_version
            self._wrapped: tuple | None = None

        def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
            strategy = trainer.strategy
            if not isinstance(strategy.checkpoint_io, _UpgradingCheckpointIO):
                original = strategy.checkpoint_io
                strategy.checkpoint_io = _UpgradingCheckpointIO(
                    original, trainer, trust=self.trust, target_version=self.target_version, assume_version=self.assume_version
                )
                self._wrapped = (strategy, original)

        def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
            if self._wrapped is not None:
                strategy, original = self._wrapped
                strategy.checkpoint_io = original
                self._wrapped = None

    return CheckpointUpgrade


CheckpointUpgrade = _make_callback_class()


def load_from_checkpoint(cls: Any, path: str | os.PathLike, *, trust: bool = False, target_version: str | None = None, **kwargs: Any) -> Any:
    """``cls.load_from_checkpoint(path, **kwargs)`` on the upgraded checkpoint (path left untouched).

    Lightning gets a *path*: an upgraded copy in a temporary folder (tensor records carried over,
    so it costs little), or with ``trust`` the original when nothing needs upgrading. A path, not
    a buffer, because classes that override ``load_from_checkpoint`` may read their argument more
    than once (chemprop's MPNN does). The copy was written from what our loader accepted, so
    Lightning may read it with ``weights_only=False`` without widening what the file can run (and
    numpy state in it still loads).
    """
    from .writing import save_checkpoint

    file = checkpoint_file(path)
    checkpoint = load_checkpoint(path, trust=trust)
    before = checkpoint.get(VERSION_KEY) if isinstance(checkpoint, dict) else None
    steps = plan(checkpoint, target_version)
    upgrade(checkpoint, target_version)
    if "weights_only" in inspect.signature(cls.load_from_checkpoint).parameters and "weights_only" not in kwargs:
        kwargs["weights_only"] = False
    if trust and not steps and before == checkpoint.get(VERSION_KEY) and not Path(path).is_dir():
        return cls.load_from_checkpoint(os.fspath(path), **kwargs)
    with tempfile.TemporaryDirectory(prefix="ckpt-compat-") as folder:
        upgraded = Path(folder) / Path(file).name
        save_checkpoint(checkpoint, upgraded, source=file)
        del checkpoint  # the copy is what Lightning reads; drop our mmap of the original
        return cls.load_from_checkpoint(str(upgraded), **kwargs)
