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

Or leave every call site unchanged and switch the whole process over once (``install()``, its
reverse ``uninstall()``): four seams per Lightning namespace, the loader ``load_from_checkpoint``
reads with, the connector every ``ckpt_path=`` resume goes through, and LightningCLI's hparams
read of ``--ckpt_path``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core.engine import plan, upgrade
from ..core.stamps import stamp
from ..core.versions import LIGHTNING_MODULES, VERSION_KEY
from ..files.loading import checkpoint_file, load_checkpoint

# The user's part; the Trainer harness helpers below (``trainer_module``, ...) serve the matrix.
__all__ = ["CheckpointUpgrade", "Installed", "install", "load_from_checkpoint", "uninstall"]


def trainer_module():
    """The installed Lightning trainer package: ``lightning.pytorch``, else ``pytorch_lightning``."""
    from ..core.versions import lightning_module_name

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


def _load_upgraded(
    path: Any,
    *,
    trust: bool,
    target_version: str | None,
    assume_version: str | None,
    callbacks: Iterable[Any] | None = None,
    map_location: Any = None,
    weights_only: bool | None = None,
) -> dict:
    """Our safe loader, then the catalogue. A caller's explicit ``weights_only=False`` means it trusts the file."""
    checkpoint = load_checkpoint(path, trust=trust or weights_only is False, map_location=map_location or "cpu")
    return upgrade(checkpoint, target_version, assume_version=assume_version, callbacks=callbacks)


def _stock_loader(io: Any) -> bool:
    """True for Lightning's ``TorchCheckpointIO`` (also inside a wrapper such as ``AsyncCheckpointIO``).

    Its load is a plain ``torch.load`` that our loader may replace; a CheckpointIO with a
    ``load_checkpoint`` of its own (compression, encryption, another format) reads the bytes itself.
    """
    while io is not None:
        fn = getattr(type(io), "load_checkpoint", None)
        module, name = getattr(fn, "__module__", "") or "", getattr(fn, "__qualname__", "")
        if not module.startswith(
            ("lightning_fabric.", "lightning.fabric.", "pytorch_lightning.", "lightning.pytorch.")
        ):
            return False
        if name == "TorchCheckpointIO.load_checkpoint":
            return True
        io = getattr(io, "checkpoint_io", None) if name == "_WrappingCheckpointIO.load_checkpoint" else None
    return False


def _accepts(fn: Any, name: str) -> bool:
    params = inspect.signature(fn).parameters.values()
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


class _UpgradingCheckpointIO:
    """Wraps a strategy's CheckpointIO: loads safely, upgrades, re-keys; saving is untouched.

    A local file read by Lightning's stock ``TorchCheckpointIO`` goes through our safe loader; a
    custom CheckpointIO that loads by itself, or a path only it can reach (remote storage), is
    honoured: it reads the bytes (and decides how safely), and we upgrade what it returns.
    """

    def __init__(
        self, inner: Any, trainer: Any, *, trust: bool, target_version: str | None, assume_version: str | None = None
    ):
        self.inner, self.trainer, self.trust, self.target_version = inner, trainer, trust, target_version
        self.assume_version = assume_version

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None, **kwargs: Any
    ) -> dict:
        options: dict[str, Any] = {
            "trust": self.trust,
            "target_version": self.target_version,
            "assume_version": self.assume_version,
        }
        if isinstance(path, (str, os.PathLike)) and os.path.exists(path) and _stock_loader(self.inner):
            checkpoint = _load_upgraded(
                path, **options, callbacks=self.trainer.callbacks, map_location=map_location, weights_only=weights_only
            )
        else:
            if map_location is not None:
                kwargs["map_location"] = map_location
            if weights_only is not None:
                kwargs["weights_only"] = weights_only
            if self.trust and _accepts(
                self.inner.load_checkpoint, "weights_only"
            ):  # Lightning 2.0's CheckpointIO has none
                kwargs["weights_only"] = False
            checkpoint = self.inner.load_checkpoint(path, **kwargs)
            upgrade(
                checkpoint, self.target_version, assume_version=self.assume_version, callbacks=self.trainer.callbacks
            )
        return match_callback_states(checkpoint, self.trainer.callbacks)

    def save_checkpoint(self, checkpoint: Any, *args: Any, **kwargs: Any) -> Any:
        """Saves go to the wrapped CheckpointIO, with the team catalogues' version stamps (``core.stamps``)."""
        stamp(checkpoint, getattr(self.trainer, "lightning_module", None))
        return self.inner.save_checkpoint(checkpoint, *args, **kwargs)

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

        def __init__(
            self, *, trust: bool = False, target_version: str | None = None, assume_version: str | None = None
        ) -> None:
            super().__init__()
            self.trust, self.target_version, self.assume_version = trust, target_version, assume_version
            self._wrapped: tuple | None = None

        def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
            strategy = trainer.strategy
            if not isinstance(strategy.checkpoint_io, _UpgradingCheckpointIO):
                original = strategy.checkpoint_io
                strategy.checkpoint_io = _UpgradingCheckpointIO(
                    original,
                    trainer,
                    trust=self.trust,
                    target_version=self.target_version,
                    assume_version=self.assume_version,
                )
                self._wrapped = (strategy, original)

        def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict) -> None:
            """Team catalogues' version stamps, also on saves after ``fit`` (while it runs, the wrapped
            CheckpointIO stamps every save, ``save_weights_only`` ones included)."""
            stamp(checkpoint, pl_module)

        def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
            if self._wrapped is not None:
                strategy, original = self._wrapped
                strategy.checkpoint_io = original
                self._wrapped = None

    return CheckpointUpgrade


CheckpointUpgrade = _make_callback_class()


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
    before = checkpoint.get(VERSION_KEY) if isinstance(checkpoint, dict) else None
    steps = plan(checkpoint, target_version, assume_version=assume_version)
    upgrade(checkpoint, target_version, assume_version=assume_version)
    if "weights_only" in inspect.signature(cls.load_from_checkpoint).parameters and "weights_only" not in kwargs:
        kwargs["weights_only"] = False
    if trust and not steps and before == checkpoint.get(VERSION_KEY) and not Path(path).is_dir():
        return cls.load_from_checkpoint(os.fspath(path), **kwargs)
    with upgraded_copy(checkpoint, path) as upgraded:
        del checkpoint  # the copy is what Lightning reads; drop our mmap of the original
        return cls.load_from_checkpoint(str(upgraded), **kwargs)


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


# ---------------------------------------------------------------------------------- install()
# The process-wide switch: four seams per Lightning namespace, all reached through Lightning's
# unchanged public calls. Lightning keeps its ``pl_legacy_patch`` lock and its own migration
# around each seam: our loader never enters the lock, and leaves the migration nothing to do.
_SWITCH_LOCK = threading.Lock()
_active: tuple | None = None  # (options, [(owner, attribute, original), ...]) while installed


def _pl_load_seam(original: Any, options: dict) -> Any:
    """``core.saving.pl_load``: what ``LightningModule/LightningDataModule.load_from_checkpoint`` read with."""

    @functools.wraps(original)
    def pl_load(path_or_url: Any, map_location: Any = None, **kwargs: Any) -> Any:
        if not (isinstance(path_or_url, (str, os.PathLike)) and os.path.isfile(path_or_url)):
            return original(path_or_url, map_location=map_location, **kwargs)  # buffers, URLs, remote: Lightning's
        return _load_upgraded(
            path_or_url, **options, map_location=map_location, weights_only=kwargs.get("weights_only")
        )

    return pl_load


def _resume_start_seam(original: Any, options: dict) -> Any:
    """``_CheckpointConnector.resume_start``: every ``fit/validate/test/predict(ckpt_path=...)`` loads in it."""

    @functools.wraps(original)
    def resume_start(self: Any, *args: Any, **kwargs: Any) -> Any:
        strategy = self.trainer.strategy
        inner = strategy.checkpoint_io
        if isinstance(inner, _UpgradingCheckpointIO):  # a CheckpointUpgrade callback has wrapped it already
            return original(self, *args, **kwargs)
        strategy.checkpoint_io = _UpgradingCheckpointIO(inner, self.trainer, **options)
        try:
            return original(self, *args, **kwargs)
        finally:
            strategy.checkpoint_io = inner

    return resume_start


def _dump_seam(original: Any, options: dict) -> Any:
    """``_CheckpointConnector.dump_checkpoint``: every save builds its dict here; add the version stamps."""

    @functools.wraps(original)
    def dump_checkpoint(self: Any, *args: Any, **kwargs: Any) -> Any:
        checkpoint = original(self, *args, **kwargs)
        stamp(checkpoint, getattr(self.trainer, "lightning_module", None))
        return checkpoint

    return dump_checkpoint


def _cli_seam(original: Any, options: dict) -> Any:
    """``LightningCLI._parse_ckpt_path`` (2.5.5+): reads the file's hparams with ``torch.load(weights_only=True)``."""

    @functools.wraps(original)
    def _parse_ckpt_path(self: Any, *args: Any, **kwargs: Any) -> Any:
        subcommand = self.config.get("subcommand")
        key = f"{subcommand}.ckpt_path"
        path = self.config.get(key) if subcommand else None
        if not (isinstance(path, (str, os.PathLike)) and os.path.isfile(path)):
            return original(self, *args, **kwargs)
        with upgraded_copy(_load_upgraded(path, **options), path) as copy:  # what it reads: the upgraded copy
            self.config[key] = str(copy)
            try:
                return original(self, *args, **kwargs)
            finally:
                self.config[key] = path  # ``fit`` resumes from the user's path, through resume_start

    return _parse_ckpt_path


def _seams(namespace: str) -> list:
    """``(owner, attribute, make_wrapper)`` for one installed Lightning namespace."""
    saving = importlib.import_module(f"{namespace}.core.saving")
    connector = importlib.import_module(f"{namespace}.trainer.connectors.checkpoint_connector")._CheckpointConnector
    seams = [
        (saving, "pl_load", _pl_load_seam),
        (connector, "resume_start", _resume_start_seam),
        (connector, "dump_checkpoint", _dump_seam),
    ]
    try:
        cli = importlib.import_module(f"{namespace}.cli").LightningCLI
    except ImportError:  # a jsonargparse that does not import: no LightningCLI to patch
        return seams
    if "_parse_ckpt_path" in vars(cli):
        seams.append((cli, "_parse_ckpt_path", _cli_seam))
    return seams


class Installed:
    """What ``install()`` returns; as a context manager it uninstalls on exit if that call installed."""

    def __init__(self, options: dict, owner: bool):
        self.options, self.owner = options, owner

    def __enter__(self) -> Installed:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.owner:
            uninstall()


def install(*, trust: bool = False, target_version: str | None = None, assume_version: str | None = None) -> Installed:
    """From now on, unchanged Lightning calls load checkpoints through our safe loader and catalogue.

    ``Model.load_from_checkpoint(path)`` (modules and datamodules), ``Trainer.fit/validate/test/
    predict(ckpt_path=...)`` and ``LightningCLI ... --ckpt_path``, under every installed Lightning
    namespace. Options as ``CheckpointUpgrade``; a caller's ``weights_only=False`` also trusts the
    file. Installing again with the same options does nothing; with other options it raises
    (``uninstall()`` first). Not for concurrent use: install before loading starts in other threads
    (a load already running finishes with what it started with). ``uninstall()`` reverses it.
    """
    global _active
    options = {"trust": trust, "target_version": target_version, "assume_version": assume_version}
    with _SWITCH_LOCK:
        if _active is not None:
            if _active[0] != options:
                raise RuntimeError(
                    f"pytest_ckpt_compat.lightning is installed with {_active[0]}; uninstall() before installing with "
                    f"{options}"
                )
            return Installed(options, owner=False)
        patched: list = []
        try:
            for module in _installed(LIGHTNING_MODULES):
                seam_options = dict(options, target_version=target_version or module.__version__)
                for owner, name, make in _seams(module.__name__):
                    original = vars(owner)[name]
                    setattr(owner, name, make(original, seam_options))
                    patched.append((owner, name, original))
        except BaseException:
            _restore(patched)
            raise
        if not patched:
            raise ImportError("install() found no Lightning: neither lightning.pytorch nor pytorch_lightning imports")
        _active = (options, patched)
    return Installed(options, owner=True)


def uninstall() -> bool:
    """Put back exactly the objects ``install()`` replaced; False if it was not installed."""
    global _active
    with _SWITCH_LOCK:
        if _active is None:
            return False
        _restore(_active[1])
        _active = None
    return True


def _restore(patched: list) -> None:
    for owner, name, original in reversed(patched):
        setattr(owner, name, original)
