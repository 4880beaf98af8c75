"""A tiny team recipe for the ``golden record`` tests: CPU, 2 epochs x 4 batches of 8, seeded data.

``RECIPE`` is deterministic; ``NOISY`` adds OS randomness to the encoder's weights (which no seed
controls), so two recordings differ in ``state_dict['encoder.weight']``; ``NO_MODULE`` lacks
``make_module``; ``NO_DATA`` does not build.
"""

from __future__ import annotations

import random

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class TinyNet(pl.LightningModule):
    def __init__(self, hidden: int = 4, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = torch.nn.Linear(3, hidden)
        self.head = torch.nn.Linear(hidden, 1)

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)]


class TinyData(pl.LightningDataModule):
    def train_dataloader(self):
        x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
        return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)

    def val_dataloader(self):
        return self.train_dataloader()


class TinyRecipe:
    package = "pytorch-lightning"

    def make_module(self, scenario, hparams=None):
        return TinyNet(**(hparams or {}))

    def make_datamodule(self, scenario):
        return TinyData()

    def make_callbacks(self, scenario, dirpath):
        return [pl.callbacks.ModelCheckpoint(dirpath=dirpath + "/checkpoints", monitor="val_loss", save_top_k=2)]

    def trainer_kwargs(self, scenario, dirpath):
        return dict(
            max_epochs=2,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=dirpath,
            num_sanity_val_steps=0,
            accelerator="cpu",
        )


class NoisyRecipe(TinyRecipe):
    def make_module(self, scenario, hparams=None):
        module = super().make_module(scenario, hparams)
        with torch.no_grad():
            module.encoder.weight.add_(random.SystemRandom().random())
        return module


class NoData(TinyRecipe):
    def make_datamodule(self, scenario):
        raise ValueError(f"no data for {scenario}")


class NoModule:
    package = "pytorch-lightning"

    def make_datamodule(self, scenario):
        return TinyData()

    def make_callbacks(self, scenario, dirpath):
        return []

    def trainer_kwargs(self, scenario, dirpath):
        return {}


RECIPE = TinyRecipe()
NOISY = NoisyRecipe()
NO_MODULE = NoModule()
NO_DATA = NoData()
