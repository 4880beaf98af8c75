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

from .callback import CheckpointUpgrade
from .namespaces import lightning_migration_disabled, trainer_module
from .seams import Installed, install, uninstall
from .upgrading import load_from_checkpoint, match_callback_states, upgraded_copy

__all__ = [
    "CheckpointUpgrade",
    "Installed",
    "install",
    "lightning_migration_disabled",
    "load_from_checkpoint",
    "match_callback_states",
    "trainer_module",
    "uninstall",
    "upgraded_copy",
]
