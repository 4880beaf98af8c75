"""The golden recipe of teamnet (the pytest-ckpt-compat recipe contract; ``teamnet.goldens:RECIPE``).

It imports nothing from pytest_ckpt_compat: ``ckpt-compat golden add`` runs it in an isolated
environment that holds only this release, its Lightning and its torch.
"""

import os

import pytorch_lightning as pl

from .data import TeamData
from .losses import SmoothL1
from .model import TeamNet


class Recipe:
    package = "teamnet"
    scenarios = ("end_of_fit", "mid_epoch")

    def make_module(self, scenario, hparams=None):
        if hparams is not None:
            return TeamNet(**hparams)
        return TeamNet(hidden=6, lr=0.05, loss=SmoothL1(beta=0.5))

    def make_datamodule(self, scenario):
        return TeamData()

    def make_callbacks(self, scenario, dirpath):
        checkpoints = pl.callbacks.ModelCheckpoint(
            dirpath=os.path.join(dirpath, "checkpoints"), monitor="val_loss", save_top_k=2, save_last=True
        )
        return [checkpoints, pl.callbacks.EarlyStopping(monitor="val_loss", patience=3)]

    def trainer_kwargs(self, scenario, dirpath):
        return {
            "max_epochs": 2,
            "logger": False,
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "default_root_dir": dirpath,
        }


RECIPE = Recipe()
