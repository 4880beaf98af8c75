"""TeamData: a tiny deterministic regression set (the same tensors on every run and machine)."""

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from .model import FEATURES


def _regression(samples, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, FEATURES, generator=generator)
    weights = torch.arange(1, FEATURES + 1, dtype=torch.float32).unsqueeze(1) / FEATURES
    return TensorDataset(x, x @ weights)


class TeamData(pl.LightningDataModule):
    """32 training samples in 4 batches of 8 (unshuffled), 16 validation samples in 2."""

    def __init__(self, batch_size=8):
        super().__init__()
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(_regression(32, seed=0), batch_size=self.batch_size)

    def val_dataloader(self):
        return DataLoader(_regression(16, seed=1), batch_size=self.batch_size)
