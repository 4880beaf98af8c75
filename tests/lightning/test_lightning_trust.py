"""``CheckpointUpgrade(trust=True)`` resumes under both Lightning packages (no deadlock), and
``load_from_checkpoint`` hands Lightning a path that may be read more than once."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "golden"

# Resume the real 1.2.10 ckpt_subclass golden (its TopKCheckpoint class key needs trust) with the
# recipe's classes built on PACKAGE. Lightning's resume_start holds pl_legacy_patch (a
# non-reentrant lock) while it loads: a loader that entered it again would hang here.
_SCRIPT = r"""
import importlib, json, sys, warnings
package, recipe_path, golden, workdir = sys.argv[1:5]
import pytest_ckpt_compat.lightning as integration
integration.trainer_module = lambda: importlib.import_module(package)
from pytest_ckpt_compat.matrix.workspace import load_recipe
recipe = load_recipe(recipe_path)
pl = recipe.pl
dm_cls, module_cls, _, topk_cls = recipe.CLASSES
seen = {}

class Probe(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        es = next(c for c in trainer.callbacks if type(c).__name__ == "EarlyStopping")
        seen.update(global_step=trainer.global_step, epoch=trainer.current_epoch, es_best=float(es.best_score),
                    es_wait=es.wait_count, trainer=type(trainer).__module__)

callbacks = recipe._callbacks(topk_cls, workdir, "ckpt_subclass") + [Probe(), integration.CheckpointUpgrade(trust=True)]
kwargs = recipe._trainer_kwargs(workdir, "ckpt_subclass", "cpu", callbacks)
kwargs.update(max_epochs=4)
schedule = {"gamma": 0.5, "step_size": 1, "tags": ["a", "b"]}
model = module_cls(hidden=16, lr=0.01, name="golden-ckpt_subclass", schedule=schedule)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    trainer = pl.Trainer(**kwargs)
    trainer.fit(model, datamodule=dm_cls(), ckpt_path=golden)
seen["final_global_step"] = trainer.global_step
print("RESULT " + json.dumps(seen))
"""


@pytest.mark.parametrize("package", ["lightning.pytorch", "pytorch_lightning"])
def test_trusted_resume_does_not_deadlock(package, tmp_path):
    pytest.importorskip(package)
    truth = json.loads((GOLDEN / "1.2.10" / "meta.json").read_text())["scenarios"]["ckpt_subclass"]["truth"]
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _SCRIPT,
                package,
                str(GOLDEN / "recipes" / "recipe.py"),
                str(GOLDEN / "1.2.10" / "ckpt_subclass.ckpt"),
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=150,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"trust=True resume under {package} did not finish in 150 s (deadlock on pl_legacy_patch?)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.split("RESULT ", 1)[1])
    cbs = truth["callbacks"]
    assert seen["trainer"].startswith(package)
    assert (seen["global_step"], seen["epoch"]) == (truth["trainer"]["global_step"], truth["completed_epochs"])
    assert (
        seen["es_best"] == pytest.approx(cbs["EarlyStopping"]["best_score"], abs=0)
        and seen["es_wait"] == cbs["EarlyStopping"]["wait_count"]
    )
    assert seen["final_global_step"] == truth["trainer"]["global_step"] + 2 * truth["steps_per_epoch"]


pl = pytest.importorskip("pytorch_lightning")


class ReadsTwice(pl.LightningModule):
    """Like chemprop's MPNN: its own ``load_from_checkpoint`` reads the checkpoint, then calls Lightning's."""

    def __init__(self, width: int = 3):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(width, 1)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, hparams_file=None, strict=True, **kwargs):
        peek = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        kwargs.setdefault("width", peek["hyper_parameters"]["width"])
        return super().load_from_checkpoint(checkpoint_path, map_location=map_location, strict=strict, **kwargs)


def test_load_from_checkpoint_passes_a_path_that_can_be_read_twice(tmp_path):
    from pytest_ckpt_compat.lightning import load_from_checkpoint

    model = ReadsTwice(width=5)
    path = tmp_path / "m.ckpt"
    ckpt = {"pytorch-lightning_version": "1.9.5", "state_dict": model.state_dict(), "hyper_parameters": {"width": 5}}
    torch.save(ckpt, path)
    before = path.read_bytes()
    loaded = load_from_checkpoint(ReadsTwice, path)
    assert loaded.hparams.width == 5 and torch.equal(loaded.net.weight, model.net.weight)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]  # the upgraded copy lived in a temporary folder, now gone


class Scale:
    """A plain class pickled in hparams (as chemprop pickles its metric objects): weights_only refuses it."""

    def __init__(self, factor: float = 2.0):
        self.factor = factor


class ReadsIntoABuffer(pl.LightningModule):
    """Like chemprop 2.1's MPNN: its ``load_from_checkpoint`` hands Lightning a buffer and passes ``**kwargs`` on."""

    def __init__(self, scale: Scale | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(2, 1)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, hparams_file=None, strict=True, **kwargs):
        buffer = io.BytesIO(Path(checkpoint_path).read_bytes())
        return super().load_from_checkpoint(buffer, map_location, hparams_file, strict, **kwargs)


def test_load_from_checkpoint_tells_an_override_with_kwargs_that_the_copy_may_be_read_in_full(tmp_path):
    """torch >= 2.6 reads a buffer with ``weights_only=True`` unless told: the file's own objects would be refused."""
    from pytest_ckpt_compat.lightning import load_from_checkpoint

    model = ReadsIntoABuffer(scale=Scale(3.0))
    path = tmp_path / "m.ckpt"
    ckpt = {"pytorch-lightning_version": "2.6.0", "state_dict": model.state_dict()}
    torch.save(dict(ckpt, hyper_parameters=dict(model.hparams)), path)
    loaded = load_from_checkpoint(ReadsIntoABuffer, path, trust=True)
    assert (type(loaded.hparams.scale), loaded.hparams.scale.factor) == (Scale, 3.0)
    assert torch.equal(loaded.net.weight, model.net.weight)
