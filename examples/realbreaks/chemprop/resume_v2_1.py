"""Run under chemprop 2.1.x with this package installed (see build.py): the 2.0 file, without and with
the team catalogue (``catalogue/``). Prints one JSON object; exits 0 only when every expectation holds.

Expectations: chemprop 2.1 alone cannot load the file (the real break); this package without the
catalogue names the failure (``MissingGlobal``, exit 10); with it ``load_from_checkpoint`` gives the
file's weights bit for bit, and ``Trainer.fit(ckpt_path=...)`` restores weights, optimizer state and
counters exactly, then trains one more epoch. Usage: ``python resume_v2_1.py FILE``.
"""

import copy
import json
import math
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from chemprop import data, featurizers, models, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalogue import catalogue  # noqa: E402

from pytest_ckpt_compat import CheckpointCompatError, load_checkpoint, register_catalogue, upgrade  # noqa: E402
from pytest_ckpt_compat.lightning import CheckpointUpgrade, load_from_checkpoint  # noqa: E402


def loader(smiles):
    points = [data.MoleculeDatapoint.from_smi(s, [0.1 * len(s) + 0.01 * i]) for i, s in enumerate(smiles)]
    dataset = data.MoleculeDataset(points, featurizers.SimpleMoleculeMolGraphFeaturizer())
    return data.build_dataloader(dataset, batch_size=4, num_workers=0, shuffle=False)


class Snapshot(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}
        self.optimizer = copy.deepcopy(trainer.optimizers[0].state_dict())
        self.counters = (trainer.current_epoch, trainer.global_step)


def timed(results, name, fn):
    start = time.perf_counter()
    try:
        results[name] = fn()
    except Exception as exc:  # recorded: the expectations below decide
        results[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    results[f"{name}_s"] = round(time.perf_counter() - start, 2)


def main(path: Path) -> int:
    smiles = json.loads((path.parent / "meta.json").read_text())["smiles"]
    out: dict = {}
    timed(out, "plain_chemprop", lambda: type(models.MPNN.load_from_checkpoint(path)).__name__)
    timed(out, "without_unit", lambda: load_checkpoint(path, trust=True) and "loaded")
    register_catalogue(catalogue())
    want = upgrade(load_checkpoint(path, trust=True))
    out["redirects"] = want["ckpt_compat"]["redirects"]
    out["applied"] = want["ckpt_compat"]["applied"].get("chemprop")

    def load():
        # weights_only=False: chemprop 2.1 hands Lightning a buffer of objects (chemprop#1325, not this break)
        model = load_from_checkpoint(models.MPNN, path, trust=True, weights_only=False)
        return all(torch.equal(v, want["state_dict"][k]) for k, v in model.state_dict().items())

    timed(out, "load_exact", load)
    snapshot = Snapshot()

    def resume():
        model = models.MPNN(
            nn.BondMessagePassing(d_h=16),
            nn.MeanAggregation(),
            nn.RegressionFFN(input_dim=16, hidden_dim=8),
            batch_norm=True,  # 2.0's default, saved in the file; 2.1 changed the default to False
            metrics=[nn.metrics.RMSE(), nn.metrics.MAE()],
        )
        trainer = pl.Trainer(
            max_epochs=3,
            callbacks=[CheckpointUpgrade(trust=True), snapshot],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        )
        trainer.fit(model, loader(smiles), loader(smiles), ckpt_path=path)
        weights = snapshot.weights.keys() == want["state_dict"].keys() and all(
            torch.equal(v, want["state_dict"][k]) for k, v in snapshot.weights.items()
        )
        saved_opt, got_opt = want["optimizer_states"][0], snapshot.optimizer
        optimizer = saved_opt["state"].keys() == got_opt["state"].keys() and all(
            torch.equal(got_opt["state"][i][f], v) for i, s in saved_opt["state"].items() for f, v in s.items()
        )
        loss = float(trainer.callback_metrics.get("train_loss", torch.tensor(0.0)))
        return {
            "weights_exact": weights,
            "optimizer_exact": optimizer,
            "counters": list(snapshot.counters),
            "saved_counters": [want["epoch"], want["global_step"]],
            "final_step": trainer.global_step,
            "finite_loss": math.isfinite(loss),
        }

    timed(out, "resume", resume)
    resumed = out["resume"] if isinstance(out["resume"], dict) else {}
    checks = {
        "chemprop 2.1 alone fails": "RMSEMetric" in str(out["plain_chemprop"]),
        "without the unit: MissingGlobal": str(out["without_unit"]).startswith("MissingGlobal"),
        "load_from_checkpoint exact": out["load_exact"] is True,
        "resume weights exact": resumed.get("weights_exact") is True,
        "resume optimizer exact": resumed.get("optimizer_exact") is True,
        "resume counters": resumed.get("counters") == resumed.get("saved_counters"),
        "one more epoch trains": resumed.get("final_step", 0) > want["global_step"] and resumed.get("finite_loss"),
    }
    out["checks"] = checks
    print(json.dumps(out, indent=1, default=str))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    assert issubclass(CheckpointCompatError, Exception)
    sys.exit(main(Path(sys.argv[1])))
