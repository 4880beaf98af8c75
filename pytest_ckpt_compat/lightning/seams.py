"""``install()`` / ``uninstall()``: unchanged Lightning calls load through our loader and catalogue.

The process-wide switch: four seams per Lightning namespace, all reached through Lightning's
unchanged public calls: the loader ``load_from_checkpoint`` reads with, the connector every
``ckpt_path=`` resume goes through, and LightningCLI's hparams read of ``--ckpt_path``. Lightning
keeps its ``pl_legacy_patch`` lock and its own migration around each seam: our loader never enters
the lock, and leaves the migration nothing to do.
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
from typing import Any

from ..core.stamps import stamp
from ..core.versions import LIGHTNING_MODULES
from .callback import UpgradingCheckpointIO
from .namespaces import installed
from .upgrading import load_upgraded, upgraded_copy

__all__ = ["Installed", "install", "uninstall"]

_SWITCH_LOCK = threading.Lock()
_active: tuple | None = None  # (options, [(owner, attribute, original), ...]) while installed


def _pl_load_seam(original: Any, options: dict) -> Any:
    """``core.saving.pl_load``: what ``LightningModule/LightningDataModule.load_from_checkpoint`` read with."""

    @functools.wraps(original)
    def pl_load(path_or_url: Any, map_location: Any = None, **kwargs: Any) -> Any:
        if not (isinstance(path_or_url, (str, os.PathLike)) and os.path.isfile(path_or_url)):
            return original(path_or_url, map_location=map_location, **kwargs)  # buffers, URLs, remote: Lightning's
        return load_upgraded(path_or_url, **options, map_location=map_location, weights_only=kwargs.get("weights_only"))

    return pl_load


def _resume_start_seam(original: Any, options: dict) -> Any:
    """``_CheckpointConnector.resume_start``: every ``fit/validate/test/predict(ckpt_path=...)`` loads in it."""

    @functools.wraps(original)
    def resume_start(self: Any, *args: Any, **kwargs: Any) -> Any:
        strategy = self.trainer.strategy
        inner = strategy.checkpoint_io
        if isinstance(inner, UpgradingCheckpointIO):  # a CheckpointUpgrade callback has wrapped it already
            return original(self, *args, **kwargs)
        strategy.checkpoint_io = UpgradingCheckpointIO(inner, self.trainer, **options)
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
        with upgraded_copy(load_upgraded(path, **options), path) as copy:  # what it reads: the upgraded copy
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
                    f"pytest_ckpt_compat.lightning is installed with {_active[0]}; "
                    f"uninstall() before installing with {options}"
                )
            return Installed(options, owner=False)
        patched: list = []
        try:
            for module in installed(LIGHTNING_MODULES):
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
