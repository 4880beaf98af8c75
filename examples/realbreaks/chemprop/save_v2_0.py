"""Run under chemprop 2.0.x (its own environment, see build.py): train a tiny MPNN and save a checkpoint.

The file pickles chemprop 2.0's metric and loss classes in ``hyper_parameters``
(``chemprop.nn.metrics.RMSEMetric``, ``chemprop.nn.loss.MSELoss``), which chemprop 2.1 renamed and
moved (chemprop#1156): the real break this folder reproduces. Usage: ``python save_v2_0.py OUT_DIR``.
"""

import json
import sys
from importlib import metadata
from pathlib import Path

import lightning.pytorch as pl
import torch
from chemprop import data, featurizers, models, nn

SMILES = ["C", "CC", "CCC", "CCO", "CO", "c1ccccc1", "CC(=O)O", "CCN", "CCCl", "OCCO", "C=C", "C#N"]


def loader(shuffle: bool = False):
    points = [data.MoleculeDatapoint.from_smi(s, [0.1 * len(s) + 0.01 * i]) for i, s in enumerate(SMILES)]
    dataset = data.MoleculeDataset(points, featurizers.SimpleMoleculeMolGraphFeaturizer())
    return data.build_dataloader(dataset, batch_size=4, num_workers=0, shuffle=shuffle)


def main(out: Path) -> None:
    torch.manual_seed(0)
    model = models.MPNN(
        nn.BondMessagePassing(d_h=16),
        nn.MeanAggregation(),
        nn.RegressionFFN(input_dim=16, hidden_dim=8),
        metrics=[nn.metrics.RMSEMetric(), nn.metrics.MAEMetric()],
    )
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,  # a ModelCheckpoint state would hold this machine's paths
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(model, loader(), loader())
    out.mkdir(parents=True, exist_ok=True)
    path = out / "chemprop-2.0-metrics.ckpt"
    trainer.save_checkpoint(path)
    versions = {name: metadata.version(name) for name in ("chemprop", "lightning", "torch", "torchmetrics")}
    meta = {"file": path.name, "versions": versions, "python": sys.version.split()[0], "smiles": SMILES}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
