"""TeamNet: an encoder and a head, trained with Adam and a StepLR schedule."""

import pytorch_lightning as pl
import torch

from .losses import SmoothL1

FEATURES = 4


class TeamNet(pl.LightningModule):
    """``hidden`` units in the encoder; ``loss`` (a :class:`SmoothL1`) is saved with the hyperparameters."""

    def __init__(self, hidden=8, lr=0.05, loss=None):
        super().__init__()
        if loss is None:
            loss = SmoothL1(beta=0.5)
        self.save_hyperparameters()
        self.encoder = torch.nn.Linear(FEATURES, hidden)
        self.head = torch.nn.Linear(hidden, 1)
        self.loss_fn = loss

    def forward(self, x):
        return self.head(torch.tanh(self.encoder(x)))

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
