"""Run under darts 0.22.x or 0.23.x (its own environment, see build.py): train a tiny model with encoders, save it.

darts writes two kinds of file: ``model.save(PATH)`` is ``torch.save`` of the whole
``TorchForecastingModel`` (``PATH``, with the Lightning checkpoint ``PATH.ckpt`` beside it), and
``save_checkpoints=True`` keeps Lightning checkpoints under ``<work_dir>/<name>/checkpoints/`` next to
``_model.pth.tar``, the whole model pickled at the start of training. The whole-model pickles hold
the model's encoders, classes of ``darts.utils.data.encoders`` which darts 0.23 moved to
``darts.dataprocessing.encoders`` (darts#1443): the real break this folder reproduces.
Under 0.23 it writes the same files after the move (what the team catalogue must leave alone).
Writes the files and ``meta.json`` (versions and the truth: weights digest, counters, a forecast).
Usage: ``python save.py OUT_DIR [MODEL_NAME]`` (run it with OUT_DIR's parent as the working directory).
"""

import hashlib
import json
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from darts import TimeSeries
from darts.models import BlockRNNModel

NAME = "darts022"


def series() -> TimeSeries:
    index = pd.date_range("2020-01-01", periods=48, freq="D")
    values = np.sin(np.arange(48) / 4.0) + 0.01 * np.arange(48)
    return TimeSeries.from_times_and_values(index, values.astype(np.float32))


def digest(state: dict) -> str:
    sha = hashlib.sha256()
    for key in sorted(state):
        sha.update(key.encode())
        sha.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


def truth(model: BlockRNNModel, train: TimeSeries) -> dict:
    optimizer = model.trainer.optimizers[0].state_dict()
    return {
        "weights_sha256": digest(model.model.state_dict()),
        "epochs_trained": model.epochs_trained,
        "global_step": model.trainer.global_step,
        "optimizer_steps": sorted({int(s["step"]) for s in optimizer["state"].values()}),
        "forecast": [float(v) for v in model.predict(n=2, series=train).values().ravel()],
        "encoders": type(model.encoders).__module__ + "." + type(model.encoders).__qualname__,
    }


def main(out: Path, name: str = NAME) -> None:
    torch.manual_seed(0)
    train = series()
    model = BlockRNNModel(
        input_chunk_length=6,
        output_chunk_length=2,
        hidden_dim=4,
        n_rnn_layers=1,
        batch_size=8,
        n_epochs=2,
        random_state=0,
        add_encoders={"cyclic": {"past": ["month"]}, "position": {"past": ["relative"]}},
        model_name=name,
        work_dir=str(out),
        save_checkpoints=True,
        force_reset=True,
        pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False},
    )
    model.fit(train)
    model.save(str(out / "model.pt"))
    versions = {n: metadata.version(n) for n in ("u8darts", "pytorch-lightning", "torch", "pandas", "numpy")}
    meta = {"versions": versions, "python": sys.version.split()[0], "model_name": name, "truth": truth(model, train)}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:3])
