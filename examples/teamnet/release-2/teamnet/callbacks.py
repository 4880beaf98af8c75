"""Callbacks that ship with teamnet."""

import pytorch_lightning as pl


class BatchCounter(pl.Callback):
    """Counts the training batches seen over the whole fit; the count is saved and resumed with the run."""

    def __init__(self):
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1

    def state_dict(self):
        return {"batches": self.batches}

    def load_state_dict(self, state_dict):
        self.batches = int(state_dict["batches"])
