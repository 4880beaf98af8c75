"""``CheckpointUpgrade``: the Trainer callback that upgrades the checkpoint a Trainer resumes from.

Its ``setup`` hook runs before the Trainer restores a checkpoint; it wraps the strategy's
``CheckpointIO`` (``UpgradingCheckpointIO``, also used by ``install()``'s resume seam) so that
loading goes through our safe loader and the catalogue, and the upgraded callback states are
matched to the Trainer's live callbacks.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from ..core.stamps import stamp
from .namespaces import callback_bases
from .upgrading import load_upgraded, upgrade_loaded

__all__ = ["CheckpointUpgrade", "UpgradingCheckpointIO"]


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


class UpgradingCheckpointIO:
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
            return load_upgraded(
                path, **options, callbacks=self.trainer.callbacks, map_location=map_location, weights_only=weights_only
            )
        if map_location is not None:
            kwargs["map_location"] = map_location
        if weights_only is not None:
            kwargs["weights_only"] = weights_only
        if self.trust and _accepts(self.inner.load_checkpoint, "weights_only"):  # Lightning 2.0's CheckpointIO has none
            kwargs["weights_only"] = False
        checkpoint = self.inner.load_checkpoint(path, **kwargs)
        return upgrade_loaded(
            checkpoint,
            target_version=self.target_version,
            assume_version=self.assume_version,
            callbacks=self.trainer.callbacks,
        )

    def save_checkpoint(self, checkpoint: Any, *args: Any, **kwargs: Any) -> Any:
        """Saves go to the wrapped CheckpointIO, with the team catalogues' version stamps (``core.stamps``)."""
        stamp(checkpoint, getattr(self.trainer, "lightning_module", None))
        return self.inner.save_checkpoint(checkpoint, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _make_callback_class():
    bases = callback_bases()
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
            if not isinstance(strategy.checkpoint_io, UpgradingCheckpointIO):
                original = strategy.checkpoint_io
                strategy.checkpoint_io = UpgradingCheckpointIO(
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
