"""Shared helpers for the tests of the pre-1.6 migration units (imported as a plain module)."""

from __future__ import annotations

import contextlib
import copy

import torch

from pytest_ckpt_compat import lightning_catalogue
from pytest_ckpt_compat.ops import differences


def unit(unit_id: str):
    """The catalogue's Migration with this id (units are loaded by path, never imported)."""
    for migration in lightning_catalogue().migrations:
        if migration.id == unit_id:
            return migration
    raise LookupError(unit_id)


def tensors(obj, found=None) -> list:
    """Every tensor object reachable from ``obj`` (for identity checks)."""
    found = [] if found is None else found
    if isinstance(obj, torch.Tensor):
        found.append(obj)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            tensors(key, found)
            tensors(value, found)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            tensors(value, found)
    return found


def snapshot(obj):
    """A deep copy that compares equal to the original (tensors compared by value in ``same``)."""
    return copy.deepcopy(obj)


def same(a, b) -> bool:
    """Structural equality, key order included, tensors by dtype and value (the package's one comparison)."""
    return not differences(a, b, ordered_keys=True)


@contextlib.contextmanager
def lightning_migrations_off(monkeypatch):
    """Switch off Lightning's own checkpoint migration (both namespaces) so only ours is tested."""
    for name in ("lightning.pytorch.utilities.migration.utils", "pytorch_lightning.utilities.migration.utils"):
        try:
            module = __import__(name, fromlist=["_migration_index"])
        except ImportError:
            continue
        monkeypatch.setattr(module, "_migration_index", lambda: {})
    yield


def tiny_fit(tmp_path, *, max_epochs=2, ckpt_path=None, callbacks=(), optimizer="adam", weights_only=True, probe=None):
    """Train (or resume) a tiny model on CPU: 4 training batches per epoch, 2 validation batches."""
    import lightning.pytorch as pl

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(8, 2)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def on_train_start(self):
            if probe is not None:
                probe["start"] = (self.trainer.current_epoch, self.trainer.global_step)

        def on_train_epoch_start(self):
            if probe is not None:
                probe.setdefault("epochs", []).append(self.trainer.current_epoch)

        def configure_optimizers(self):
            if optimizer == "adam":
                return torch.optim.Adam(self.parameters(), lr=0.01)
            return torch.optim.SGD(self.parameters(), lr=0.01)

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(48, 8, generator=g), torch.randn(48, 2, generator=g)
    data = torch.utils.data.TensorDataset(x, y)
    train = torch.utils.data.DataLoader(torch.utils.data.Subset(data, range(32)), batch_size=8)
    val = torch.utils.data.DataLoader(torch.utils.data.Subset(data, range(32, 48)), batch_size=8)
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=bool(callbacks),
        callbacks=list(callbacks),
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        accelerator="cpu",
        devices=1,
    )
    model = Tiny()
    trainer.fit(model, train, val, ckpt_path=ckpt_path, weights_only=weights_only)
    return trainer, model
