"""A recipe (the pytest-ckpt-compat recipe contract) for chemprop's own model: a tiny MPNN.

chemprop 2.0 pickles its metric objects in an MPNN's ``hyper_parameters``; 2.1 renamed those classes
(``chemprop.nn.metrics.MAEMetric`` -> ``MAE``, chemprop#1156), so 2.0's files do not load under 2.1.
This recipe records that break as goldens of each chemprop release (``goldens/``) and lets the
matrix resume them with the installed chemprop: ``RECIPE`` names the team catalogue (``catalogue/``,
the redirects of the renamed classes), ``WITHOUT_CATALOGUE`` is the same recipe before anyone knew.

Why it looks like this: it runs in chemprop 2.0.5's own environment (``ckpt-compat golden add``
copies it there, where pytest-ckpt-compat is not installed), so it imports nothing from
pytest_ckpt_compat, and chemprop/Lightning only inside the hooks (listing the suite imports nothing
heavy). The model is tiny (message passing width 16, a 16 -> 8 -> 1 head), the data 12 SMILES in
3 batches of 4, unshuffled: the same batches on every run.
"""

from __future__ import annotations

import io
from pathlib import Path

SMILES = ["C", "CC", "CCC", "CCO", "CO", "c1ccccc1", "CC(=O)O", "CCN", "CCCl", "OCCO", "C=C", "C#N"]
BATCH_SIZE = 4  # 3 training batches per epoch: mid_epoch saves after batch 1 of epoch 1
MAX_EPOCHS = 2
HIDDEN = 16
CATALOGUE = str(Path(__file__).resolve().parent / "catalogue" / "__init__.py") + ":catalogue"


def _metric(metrics, name):
    """chemprop 2.1's metric class (``MAE``), or 2.0's (``MAEMetric``) where that is the installed one."""
    cls = getattr(metrics, name, None) or getattr(metrics, name + "Metric")
    return cls()


def rebuild_module(hparams):
    """An MPNN from a file's ``hyper_parameters``, as the installed chemprop's ``MPNN.load_from_checkpoint``
    builds it: chemprop 2.1 re-creates metrics unpickled without their torchmetrics state and the
    submodules saved as ``{"cls": ..., **kwargs}`` (``MPNN._load``, run here on the hyperparameters);
    chemprop 2.0 builds the submodules the same way (``MPNN.load_from_file``). The caller's dict is
    left as it is (``_load`` works on a copy made by a save/load round trip)."""
    import torch
    from chemprop import models

    if hasattr(models.MPNN, "_load"):  # chemprop >= 2.1
        buffer = io.BytesIO()
        torch.save({"hyper_parameters": dict(hparams), "state_dict": {}}, buffer)
        buffer.seek(0)
        submodules, _, rebuilt = models.MPNN._load(buffer, "cpu")
    else:  # chemprop 2.0
        rebuilt = {k: (dict(v) if k in ("message_passing", "agg", "predictor") else v) for k, v in hparams.items()}
        submodules = {k: rebuilt[k].pop("cls")(**rebuilt[k]) for k in ("message_passing", "agg", "predictor")}
    rebuilt.update(submodules)
    return models.MPNN(**rebuilt)


def _datamodule_class():
    from chemprop import data, featurizers
    from lightning import pytorch as pl

    class SmilesData(pl.LightningDataModule):
        """The 12 SMILES with a target made from their length, in fixed order (train and validation)."""

        def _loader(self):
            points = [data.MoleculeDatapoint.from_smi(s, [0.1 * len(s) + 0.01 * i]) for i, s in enumerate(SMILES)]
            dataset = data.MoleculeDataset(points, featurizers.SimpleMoleculeMolGraphFeaturizer())
            return data.build_dataloader(dataset, batch_size=BATCH_SIZE, num_workers=0, shuffle=False)

        def train_dataloader(self):
            return self._loader()

        def val_dataloader(self):
            return self._loader()

    return SmilesData


class ChempropRecipe:
    """The recipe object; ``catalogue`` names the team catalogue the matrix registers (``None``: none)."""

    package = "chemprop"
    scenarios = ("end_of_fit", "mid_epoch")

    def __init__(self, catalogue=CATALOGUE):
        self.catalogue = catalogue

    def make_module(self, scenario, hparams=None):
        if hparams is not None:
            return rebuild_module(hparams)
        from chemprop import models, nn

        return models.MPNN(
            nn.BondMessagePassing(d_h=HIDDEN),
            nn.MeanAggregation(),
            nn.RegressionFFN(input_dim=HIDDEN, hidden_dim=8),
            batch_norm=True,  # stated: 2.0's default was True, 2.1's is False
            metrics=[_metric(nn.metrics, "RMSE"), _metric(nn.metrics, "MAE")],
            warmup_epochs=1,
        )

    def make_datamodule(self, scenario):
        return _datamodule_class()()

    def make_callbacks(self, scenario, dirpath):
        from lightning.pytorch.callbacks import ModelCheckpoint

        return [ModelCheckpoint(dirpath=str(Path(dirpath) / "checkpoints"), monitor="val_loss", save_top_k=1)]

    def trainer_kwargs(self, scenario, dirpath):
        return {
            "max_epochs": MAX_EPOCHS,
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "default_root_dir": dirpath,
        }


RECIPE = ChempropRecipe()
WITHOUT_CATALOGUE = ChempropRecipe(catalogue=None)
