"""Run under darts 0.23.x (see build.py): the 0.22 files as saved, then as ``ckpt-compat upgrade`` wrote them.

Expectations: darts 0.23 alone cannot load the whole-model files (``model.pt``, the run folder's
``_model.pth.tar``: ``No module named 'darts.utils.data.encoders'``; the real break, darts#1443)
while it reads the Lightning checkpoints; the upgraded files load, with the saved weights bit for
bit (their digest as 0.22 recorded it live) and the same forecast; and
``load_from_checkpoint(..., best=False)`` + ``fit`` resumes from the last checkpoint with weights,
optimizer state and counters exactly as saved, then trains one more epoch. darts and this package
need not share an environment: the upgrade ran before, in one with this package.
Usage: ``python resume_v0_23.py SAVED_DIR UPGRADED_DIR``; prints one JSON object, exits 0 only
when every expectation holds.
"""

import copy
import json
import math
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from darts.models import BlockRNNModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from save import NAME, digest, series  # noqa: E402


class Snapshot(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}
        self.optimizer = copy.deepcopy(trainer.optimizers[0].state_dict())
        self.counters = [trainer.current_epoch, trainer.global_step]


def timed(results: dict, name: str, fn) -> None:
    start = time.perf_counter()
    try:
        results[name] = fn()
    except Exception as exc:  # recorded: the expectations below decide
        results[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    results[f"{name}_s"] = round(time.perf_counter() - start, 2)


def loaded(model: BlockRNNModel) -> dict:
    return {
        "weights_sha256": digest(model.model.state_dict()),
        "forecast": [float(v) for v in model.predict(n=2, series=series()).values().ravel()],
        "encoders": type(model.encoders).__module__ + "." + type(model.encoders).__qualname__,
    }


def resume(folder: Path, last: Path) -> dict:
    saved = torch.load(last, map_location="cpu")
    model = BlockRNNModel.load_from_checkpoint(NAME, work_dir=str(folder), best=False)
    snapshot = Snapshot()
    trainer = pl.Trainer(
        max_epochs=saved["epoch"] + 2,
        callbacks=[snapshot],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    model.fit(series(), trainer=trainer)
    weights = snapshot.weights.keys() == saved["state_dict"].keys() and all(
        torch.equal(v, saved["state_dict"][k]) for k, v in snapshot.weights.items()
    )
    want, got = saved["optimizer_states"][0], snapshot.optimizer
    optimizer = want["state"].keys() == got["state"].keys() and all(
        torch.equal(torch.as_tensor(got["state"][i][f]), torch.as_tensor(v))
        for i, s in want["state"].items()
        for f, v in s.items()
    )
    return {
        "weights_exact": weights,
        "optimizer_exact": optimizer,
        "counters": snapshot.counters,
        "saved_counters": [saved["epoch"] + 1, saved["global_step"]],  # Lightning resumes at the next epoch
        "final_step": trainer.global_step,
        "finite_loss": math.isfinite(float(trainer.callback_metrics.get("train_loss", torch.tensor(math.nan)))),
    }


def main(saved: Path, upgraded: Path) -> int:
    truth = json.loads((saved / "meta.json").read_text())["truth"]
    last = next((saved / NAME / "checkpoints").glob("last-*.ckpt"))
    out: dict = {}
    timed(out, "plain_load", lambda: loaded(BlockRNNModel.load(str(saved / "model.pt"))))
    timed(out, "plain_load_from_checkpoint", lambda: BlockRNNModel.load_from_checkpoint(NAME, str(saved), best=False))
    timed(out, "plain_lightning_ckpt", lambda: sorted(torch.load(last, map_location="cpu"))[:3])
    timed(out, "upgraded_load", lambda: loaded(BlockRNNModel.load(str(upgraded / "model.pt"))))
    upgraded_last = upgraded / NAME / "checkpoints" / last.name
    timed(out, "upgraded_resume", lambda: resume(upgraded, upgraded_last))
    model_load = out["upgraded_load"] if isinstance(out["upgraded_load"], dict) else {}
    resumed = out["upgraded_resume"] if isinstance(out["upgraded_resume"], dict) else {}
    broken = "No module named 'darts.utils.data.encoders'"
    checks = {
        "0.23 alone: model.save() file fails": broken in str(out["plain_load"]),
        "0.23 alone: load_from_checkpoint fails": broken in str(out["plain_load_from_checkpoint"]),
        "0.23 alone: the Lightning .ckpt loads": isinstance(out["plain_lightning_ckpt"], list),
        "upgraded load: weights exact": model_load.get("weights_sha256") == truth["weights_sha256"],
        "upgraded load: same forecast": model_load.get("forecast") == truth["forecast"],
        "upgraded load: encoders moved": model_load.get("encoders", "").startswith("darts.dataprocessing.encoders"),
        "resume weights exact": resumed.get("weights_exact") is True,
        "resume optimizer exact": resumed.get("optimizer_exact") is True,
        "resume counters": resumed.get("counters") == resumed.get("saved_counters"),
        "one more epoch trains": resumed.get("final_step", 0) > resumed.get("saved_counters", [0, 1e9])[1]
        and resumed.get("finite_loss") is True,
    }
    out["checks"] = checks
    print(json.dumps(out, indent=1, default=str))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
