"""Unchanged Lightning calls after ``lightning.install()``, on real goldens (run in a subprocess).

``python install_flows.py GROUP WORKDIR``, with ``CKPT_COMPAT_LIGHTNING`` naming the namespace
whose Trainer the recipe builds on. A subprocess because ``install()`` patches the process;
each group prints one ``RESULT {json}`` line that test_lightning_install.py asserts on. Resumes
are checked exactly by the matrix's own probe (``harness``): a mismatch raises inside ``fit``.
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import io
import json
import logging
import sys
import warnings
from pathlib import Path

import torch

from pytest_ckpt_compat import lightning as integration
from pytest_ckpt_compat.goldens.store import GoldenStore
from pytest_ckpt_compat.matrix import harness
from pytest_ckpt_compat.matrix.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
PRE_1_5, FAULT_TOLERANT, RECENT = "1.2.10/end_of_fit.ckpt", "1.5.10/fault_tolerant.ckpt", "1.9.5/custom_args.ckpt"


class Upgrades(logging.Handler):
    """Lightning's own migration logs "automatically upgraded" whenever it changes a loaded file."""

    def __init__(self, pl):
        super().__init__(logging.INFO)
        self.messages: list[str] = []
        logger = logging.getLogger(f"{pl.__name__}.utilities.migration.utils")
        logger.setLevel(logging.INFO)
        logger.addHandler(self)

    def emit(self, record):
        if "automatically upgraded" in record.getMessage():
            self.messages.append(record.getMessage())

    def take(self) -> int:
        count, self.messages[:] = len(self.messages), []
        return count


def _error(call) -> str | None:
    try:
        call()
    except Exception as exc:  # what plain Lightning raises, by name
        return type(exc).__name__
    return None


def _loaded(ws, name: str, cls=None, **kwargs) -> dict:
    """``Cls.load_from_checkpoint(path)``, unchanged, against the recipe's truth."""
    recipe, golden = ws.recipe, ws.store.get(name)
    cls = cls or recipe.CLASSES[1]
    model = cls.load_from_checkpoint(str(ws.fetch(golden)), **kwargs)
    saved = ws.load(golden)["state_dict"]
    exact = list(model.state_dict()) == list(saved) and all(
        torch.equal(model.state_dict()[k], t) for k, t in saved.items()
    )
    return {
        "hparams": recipe.jsonable(dict(model.hparams)) == golden.truth["hparams"],
        "weights": recipe._weights(model)[0] == golden.truth["weights_sha256"] and exact,
    }


def _resumed(ws, name: str, tmp: Path, path: Path | None = None, **trainer_kwargs) -> dict:
    """``Trainer.fit(ckpt_path=the golden file)`` restores exactly (the matrix probe), then trains an epoch."""
    recipe, golden = ws.recipe, ws.store.get(name)
    upgraded, _ = ws.upgraded(golden)
    golden_file = ws.load(golden)
    expected = harness.expected_counters(golden, upgraded, golden_file)
    probe = harness.make_probe(recipe.pl)(golden, golden.truth, expected, golden_file, upgraded, ws.view, tmp)
    trainer, model, _ = harness.fit(
        ws,
        golden,
        path or ws.fetch(golden),
        tmp,
        upgraded,
        max_epochs=expected["epoch"] + 1,
        extra=[probe],
        installed=True,
        trainer_kwargs=trainer_kwargs,
    )
    return {
        "restored": probe.restored,
        "batches": len(probe.losses) == expected["batches"],
        "global_step": int(trainer.global_step) == expected["global_step"] + sum(model.step_counts),
    }


def _evaluated(module_cls):
    """The recipe's module with the test and predict steps it lacks, to run ``test``/``predict(ckpt_path=)``."""

    class Evaluated(module_cls):
        def test_step(self, batch, batch_idx, *args):
            return self._loss(batch)

        def predict_step(self, batch, batch_idx, *args):
            return self(batch[0])

    return Evaluated


def group_trainer(ws, tmp: Path) -> dict:
    """load_from_checkpoint, fit and validate after install(); after uninstall(), plain Lightning again."""
    recipe = ws.recipe
    pl, module_cls, datamodule_cls = recipe.pl, recipe.CLASSES[1], recipe.CLASSES[0]
    upgrades = Upgrades(pl)
    out: dict = {"installed": {}, "uninstalled": {}}
    with integration.install():
        for name in (PRE_1_5, FAULT_TOLERANT, RECENT):
            out["installed"][f"load {name}"] = _loaded(ws, name)
        truth = ws.store.get(RECENT).truth
        dm = datamodule_cls.load_from_checkpoint(str(ws.fetch(ws.store.get(RECENT))))
        out["installed"]["datamodule hparams"] = recipe.jsonable(dict(dm.hparams)) == truth["datamodule_hparams"]
        for name in (PRE_1_5, FAULT_TOLERANT, RECENT):
            out["installed"][f"fit {name}"] = _resumed(ws, name, tmp / name.replace("/", "-"))
        evaluated_cls = _evaluated(module_cls)
        for name in (
            PRE_1_5,
            FAULT_TOLERANT,
        ):  # pre-1.6 files saved no validate/test/predict loop: the upgrade adds them
            golden = ws.store.get(name)
            for stage in ("validate", "test", "predict"):
                model = evaluated_cls(**golden.truth["hparams"])
                trainer = pl.Trainer(
                    **recipe._trainer_kwargs(str(tmp / f"{stage}-{golden.release}"), golden.scenario, "cpu", [])
                )
                loader = recipe.make_datamodule(golden.scenario).val_dataloader()
                getattr(trainer, stage)(model, dataloaders=loader, ckpt_path=str(ws.fetch(golden)))
                out["installed"][f"{stage} weights {name}"] = (
                    recipe._weights(model)[0] == golden.truth["weights_sha256"]
                )
        out["installed"]["lightning migrations"] = upgrades.take()
    # Lightning 2.x releases whose loader defaults to weights_only=False unpickle anything (and then
    # drop the pre-1.5 callback states); the others refuse the file: plain Lightning either way
    out["uninstalled"]["plain loader unpickles anything"] = _plain_loader_unpickles_anything(pl)
    pre15 = str(ws.fetch(ws.store.get(PRE_1_5)))
    out["uninstalled"]["load pre-1.5"] = _error(lambda: module_cls.load_from_checkpoint(pre15))
    seen = {}

    class Probe(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            stopper = next(cb for cb in trainer.callbacks if isinstance(cb, pl.callbacks.EarlyStopping))
            seen.update(EarlyStopping_best_score=recipe.jsonable(stopper.best_score), epoch=trainer.current_epoch)

    callbacks = recipe._callbacks(recipe.CLASSES[3], str(tmp / "plain"), "end_of_fit") + [Probe()]
    trainer = pl.Trainer(
        **dict(recipe._trainer_kwargs(str(tmp / "plain"), "end_of_fit", "cpu", callbacks), max_epochs=3)
    )
    error = _error(lambda: trainer.fit(module_cls(), datamodule=recipe.make_datamodule("end_of_fit"), ckpt_path=pre15))
    out["uninstalled"]["fit pre-1.5"] = error or seen
    _loaded(ws, RECENT)
    out["uninstalled"]["lightning migrations"] = upgrades.take()
    return out


def gzip_checkpoint_io(pl):
    class GzipCheckpointIO(pl.plugins.io.CheckpointIO):
        """A user's own CheckpointIO: checkpoints stored gzip-compressed, which only it can read."""

        calls: list = []

        def load_checkpoint(self, path, map_location=None, **kwargs):
            self.calls.append(Path(path).name)
            with gzip.open(path, "rb") as fh:
                return torch.load(io.BytesIO(fh.read()), map_location=map_location or "cpu", weights_only=False)

        def save_checkpoint(self, checkpoint, path, storage_options=None):
            buffer = io.BytesIO()
            torch.save(checkpoint, buffer)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(gzip.compress(buffer.getvalue()))

        def remove_checkpoint(self, path):
            Path(path).unlink(missing_ok=True)

    return GzipCheckpointIO()


def group_trusted(ws, tmp: Path) -> dict:
    """install(trust=True) on a file with a pickled user class (no deadlock); a custom CheckpointIO honoured."""
    out = {}
    subclass = "1.2.10/ckpt_subclass.ckpt"  # its callback key is the recipe's own class: only trust loads it
    with integration.install():
        module_cls = ws.recipe.CLASSES[1]
        out["untrusted load ckpt_subclass"] = _error(
            lambda: module_cls.load_from_checkpoint(str(ws.fetch(ws.store.get(subclass))))
        )
        if "weights_only" in inspect.signature(module_cls.load_from_checkpoint).parameters:  # Lightning 2.4+
            out["weights_only=False load ckpt_subclass"] = _loaded(ws, subclass, weights_only=False)
    with integration.install(trust=True):
        out["fit ckpt_subclass"] = _resumed(ws, "1.2.10/ckpt_subclass.ckpt", tmp / "trusted")
        out["load ckpt_subclass"] = _loaded(ws, "1.2.10/ckpt_subclass.ckpt")
    packed = tmp / "packed" / "end_of_fit.ckpt.gz"
    packed.parent.mkdir(parents=True)
    packed.write_bytes(gzip.compress(ws.fetch(ws.store.get(PRE_1_5)).read_bytes()))
    custom_io = gzip_checkpoint_io(ws.recipe.pl)
    with integration.install():
        out["fit custom io"] = _resumed(ws, PRE_1_5, tmp / "custom-io", path=packed, plugins=[custom_io])
    out["custom io calls"] = custom_io.calls
    return out


def group_cli(ws, tmp: Path) -> dict:
    """``LightningCLI fit --ckpt_path OLD``: resumes exactly after install(); plain Lightning refuses it."""
    recipe = ws.recipe
    cli_module = __import__(f"{recipe.pl.__name__}.cli", fromlist=["LightningCLI"])
    golden = ws.store.get(PRE_1_5)
    upgraded, _ = ws.upgraded(golden)
    golden_file = ws.load(golden)
    expected = harness.expected_counters(golden, upgraded, golden_file)

    def run(workdir: Path):
        probe = harness.make_probe(recipe.pl)(golden, golden.truth, expected, golden_file, upgraded, ws.view, workdir)
        callbacks = recipe._callbacks(recipe.CLASSES[3], str(workdir), golden.scenario)
        harness.align_checkpoint_dirs(callbacks, upgraded, integration.match_callback_states, workdir)
        defaults = recipe._trainer_kwargs(str(workdir), golden.scenario, "cpu", callbacks + [probe])
        defaults.update(max_epochs=expected["epoch"] + 1, deterministic=True)
        args = ["fit", "--ckpt_path", str(ws.fetch(golden))] + [
            f"--model.{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in golden.truth["hparams"].items()
        ]
        torch.manual_seed(1234)
        cli = cli_module.LightningCLI(
            recipe.CLASSES[1], recipe.CLASSES[0], trainer_defaults=defaults, args=args, save_config_callback=None
        )
        return {
            "restored": probe.restored,
            "batches": len(probe.losses) == expected["batches"],
            "global_step": int(cli.trainer.global_step) == expected["global_step"] + sum(cli.model.step_counts),
            "hparams": _cli_hparams(recipe, cli.model, golden.truth["hparams"]) == golden.truth["hparams"],
        }

    with integration.install():
        out = {"installed": run(tmp / "installed")}
    out["uninstalled"] = _error(lambda: run(tmp / "plain"))
    out["plain loader unpickles anything"] = _plain_loader_unpickles_anything(recipe.pl)
    return out


# jsonargparse reads ``extra.get("batchnorm", True)`` in GoldenModule's ``**extra`` as an argument of its
# own, so the CLI passes the default on and it is saved with the others.
CLI_ADDED_DEFAULTS = {"batchnorm": True}


def _cli_hparams(recipe, model, saved: dict) -> dict:
    """The module's hparams after ``LightningCLI``, less what the CLI adds: ``_instantiator`` and recipe defaults."""
    hparams = recipe.jsonable(dict(model.hparams))
    hparams.pop("_instantiator", None)
    for key, default in CLI_ADDED_DEFAULTS.items():
        if key not in saved and hparams.get(key, default) == default:
            hparams.pop(key, None)
    return hparams


def _plain_loader_unpickles_anything(pl) -> bool:
    """Lightning releases whose ``pl_load`` defaults to ``weights_only=False`` (2.5.0 among them) unpickle any file."""
    weights_only = inspect.signature(importlib.import_module(f"{pl.__name__}.core.saving").pl_load).parameters.get(
        "weights_only"
    )
    return weights_only is not None and weights_only.default is False


def main(argv: list[str]) -> None:
    group, workdir = argv[1], Path(argv[2])
    ws = Workspace(GoldenStore(ROOT / "golden", workdir / "cache"), workdir / "ws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = {"trainer": group_trainer, "trusted": group_trusted, "cli": group_cli}[group](ws, workdir)
    result["namespace"] = ws.recipe.pl.__name__
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv)
