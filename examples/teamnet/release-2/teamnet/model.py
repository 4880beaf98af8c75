"""TeamNet: a backbone (called ``encoder`` before 2.0.0) and a head, trained with Adam and StepLR."""

import pytorch_lightning as pl
import torch

from . import VERSION_KEY, __version__
from .nn.losses import SmoothL1

FEATURES = 4


class TeamNet(pl.LightningModule):
    """``width`` units in the backbone (``hidden`` before 2.0.0); ``loss`` is saved with the hyperparameters."""

    def __init__(self, width=8, lr=0.05, loss=None):
        super().__init__()
        if loss is None:
            loss = SmoothL1(beta=0.5)
        self.save_hyperparameters()
        self.backbone = torch.nn.Linear(FEATURES, width)
        self.head = torch.nn.Linear(width, 1)
        self.loss_fn = loss

    def forward(self, x):
        return self.head(torch.tanh(self.backbone(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", self.loss_fn(self(x), y))

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return [optimizer], [scheduler]

    def on_save_checkpoint(self, checkpoint):
        """Stamp the release that saved the file: a later release's migrations start from it."""
        checkpoint[VERSION_KEY] = __version__
