"""Preflight on the real goldens (0.10 – 2.6.6): the recipe's own module reports nothing; a wrong one
(a renamed layer, a removed hyperparameter, a changed ``monitor``) is named; AMP and weights-only
files get the verdicts their resume gives (the matrix checks those resumes). Each wrong module's
verdict is then compared with what the real load does: ``fit(ckpt_path=...)`` through
``CheckpointUpgrade`` (which state each live callback receives, or the error) and
``load_from_checkpoint``."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

pytest.importorskip("pytorch_lightning")

from pytest_ckpt_compat.core.engine import upgrade  # noqa: E402
from pytest_ckpt_compat.files.loading import load_checkpoint  # noqa: E402
from pytest_ckpt_compat.lightning import CheckpointUpgrade, load_from_checkpoint, trainer_module  # noqa: E402
from pytest_ckpt_compat.lightning.preflight import preflight  # noqa: E402
from pytest_ckpt_compat.matrix.workspace import load_recipe  # noqa: E402

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


@pytest.fixture(scope="module")
def module_class():
    return load_recipe(str(GOLDEN / "recipes" / "recipe.py")).CLASSES[1]  # GoldenModule


def _callbacks(monitor="val_loss", checkpoint_monitor="val_loss"):
    pl = trainer_module()
    return [
        pl.callbacks.ModelCheckpoint(monitor=checkpoint_monitor, save_top_k=2, save_last=True),
        pl.callbacks.EarlyStopping(monitor=monitor, patience=3),
    ]


@pytest.mark.parametrize(
    "golden",
    ["0.10.0/end_of_fit", "1.2.10/end_of_fit", "1.6.5/mid_epoch", "2.0.9/end_of_fit", "2.6.6/early_stop_waited"],
)
def test_the_recipe_module_reports_nothing_on_goldens_of_every_era(golden, module_class):
    report = preflight(GOLDEN / f"{golden}.ckpt", module_class, callbacks=_callbacks())
    assert report.findings == [] and report.ok


def test_amp_and_weights_only_goldens_get_their_resume_verdicts(module_class):
    amp = GOLDEN / "2.6.6" / "amp_16_mixed_cpu.ckpt"
    assert preflight(amp, module_class, callbacks=_callbacks(), precision="16-mixed").findings == []
    assert [f.area for f in preflight(amp, module_class, callbacks=_callbacks()).findings] == ["precision"]
    weights = preflight(GOLDEN / "2.6.6" / "save_weights_only.ckpt", module_class, callbacks=_callbacks())
    assert [(f.severity, f.area) for f in weights.findings] == [
        ("fail", "optimizers"),
        ("note", "callbacks"),
        ("note", "callbacks"),
    ]


def test_a_wrong_module_is_named_on_a_golden(module_class):
    class RenamedLayer(module_class):
        def __init__(self, hidden=16, lr=0.01, name="golden", schedule=None):
            super().__init__(hidden, lr, name, schedule)
            self.body = self.net
            del self.net

    class RemovedHparam(module_class):
        def __init__(self, hidden=16, lr=0.01, schedule=None):
            super().__init__(hidden, lr, "golden", schedule)

    path = GOLDEN / "2.6.6" / "end_of_fit.ckpt"
    renamed = preflight(path, RenamedLayer, callbacks=_callbacks()).findings
    assert [(f.severity, f.area) for f in renamed] == [("fail", "state_dict"), ("fail", "state_dict")]
    assert renamed[0].hint.endswith("toolkit.rename_state_keys(checkpoint, [prefix('net.', 'body.')])")
    removed = preflight(path, RemovedHparam, callbacks=_callbacks()).findings
    assert [f.message for f in removed] == [
        "saved 'name' is not an argument of " + RemovedHparam.__qualname__ + ": the load drops it"
    ]
    monitor = preflight(path, module_class, callbacks=_callbacks("train_loss")).findings
    assert [(f.severity, f.area) for f in monitor] == [("lost", "callbacks"), ("note", "callbacks")]
    assert "it would need EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}" in monitor[0].hint


# ------------------------------------------------------------- each verdict against what the load does
def _restore(path, module, callbacks, tmp_path):
    """``fit(ckpt_path=path)`` through ``CheckpointUpgrade``; returns what each live callback received."""
    pl = trainer_module()
    received: dict = {}
    for callback in callbacks:
        callback.load_state_dict = lambda state, key=callback.state_key: received.setdefault(key, state)
    trainer = pl.Trainer(
        max_epochs=_epochs_done(path),  # fit restores everything, then trains no batch
        callbacks=[CheckpointUpgrade(), *callbacks],
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, datamodule=_recipe().CLASSES[0](), ckpt_path=str(path))
    return received


def _epochs_done(path) -> int:
    fit_loop = upgrade(load_checkpoint(path))["loops"]["fit_loop"]
    return int(fit_loop["epoch_progress"]["current"]["processed"])


def _recipe():
    return load_recipe(str(GOLDEN / "recipes" / "recipe.py"))


@pytest.mark.parametrize("golden", ["1.2.10/end_of_fit", "2.6.6/end_of_fit"])
def test_the_right_module_restores_every_state_as_preflight_says(golden, module_class, tmp_path):
    path, callbacks = GOLDEN / f"{golden}.ckpt", _callbacks()
    assert preflight(path, module_class, callbacks=_callbacks()).findings == []
    saved = load_checkpoint(path)["callbacks"]
    received = _restore(path, module_class(), callbacks, tmp_path)
    assert sorted(received) == sorted(cb.state_key for cb in callbacks) and len(received) == len(saved)


@pytest.mark.parametrize("golden", ["1.2.10/end_of_fit", "2.6.6/end_of_fit"])
def test_a_renamed_layer_fails_the_resume_with_the_keys_preflight_names(golden, module_class, tmp_path):
    class RenamedLayer(module_class):
        def _setup(self, hidden, lr, schedule, *args):
            super()._setup(hidden, lr, schedule, *args)
            self.body = self.net
            del self.net

    path = GOLDEN / f"{golden}.ckpt"
    findings = preflight(path, RenamedLayer, callbacks=_callbacks()).findings
    with pytest.raises(RuntimeError, match="Error.s. in loading state_dict for RenamedLayer") as failed:
        _restore(path, RenamedLayer(), _callbacks(), tmp_path)
    missing, unexpected = re.findall(r"(?:Missing|Unexpected) key\(s\) in state_dict: (.*)\. ", str(failed.value))
    assert [f.message for f in findings] == [
        "8 missing key(s): " + _few(missing.replace('"', "")),
        "9 unexpected key(s): " + _few(unexpected.replace('"', "")),
    ]  # BatchNorm loads without a saved num_batches_tracked: 8 missing, as torch counts them


def _few(keys: str) -> str:
    names = keys.split(", ")
    return ", ".join(names[:5]) + f", ... ({len(names) - 5} more)"


@pytest.mark.parametrize("golden", ["1.2.10/end_of_fit", "2.6.6/end_of_fit"])
def test_a_removed_hyperparameter_passed_on_by_kwargs_fails_as_preflight_says(golden, module_class):
    pl = trainer_module()

    class RemovedName(module_class):  # ``name`` is gone; other options go to the base class
        def __init__(self, hidden=16, lr=0.01, schedule=None, **kwargs):
            pl.LightningModule.__init__(self, **kwargs)
            self.save_hyperparameters()
            self._setup(hidden, lr, schedule)

    path = GOLDEN / f"{golden}.ckpt"
    findings = preflight(path, RemovedName, callbacks=_callbacks()).findings
    with pytest.raises(TypeError, match="unexpected keyword argument 'name'") as failed:
        load_from_checkpoint(RemovedName, path)
    name = RemovedName.__qualname__
    assert [(f.severity, f.area, f.message) for f in findings] == [
        ("note", "hyperparameters", f"saved 'name' goes to {name}'s **kwargs"),
        ("fail", "hyperparameters", f"building {name} from the saved hyperparameters fails: TypeError: {failed.value}"),
    ]


@pytest.mark.parametrize("golden", ["1.2.10/end_of_fit", "2.6.6/end_of_fit"])
def test_a_changed_monitor_drops_both_states_as_preflight_says(golden, module_class, tmp_path):
    """Preflight: no live callback receives the val_loss states; ``CheckpointUpgrade`` must not hand
    them to the callbacks that now watch train_loss (their best scores are of another metric)."""
    path, callbacks = GOLDEN / f"{golden}.ckpt", _callbacks("train_loss", checkpoint_monitor="train_loss")
    findings = preflight(path, module_class, callbacks=_callbacks("train_loss", "train_loss")).findings
    lost = [f.message for f in findings if f.severity == "lost"]
    assert lost == [
        "the state saved under EarlyStopping{'monitor': 'val_loss', 'mode': 'min'} reaches no live callback",
        "the state saved under ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, "
        "'every_n_epochs': 1, 'train_time_interval': None} reaches no live callback",
    ]
    assert _restore(path, module_class(), callbacks, tmp_path) == {}


@pytest.mark.parametrize(
    "golden",
    [
        f"{release}/{p.stem}"
        for release in ("0.10.0", "1.2.10", "2.6.6")
        for p in sorted((GOLDEN / release).glob("*.ckpt"))
    ],
)
def test_every_scenario_with_its_recipe_module_and_callbacks_reports_nothing(golden, tmp_path):
    """The module, callbacks and precision each golden was saved with: nothing would be lost, except the
    optimizer state a weights-only file does not hold (its resume raises; load_from_checkpoint works)."""
    recipe, scenario = _recipe(), golden.split("/")[1]
    module = recipe.CLASSES[2] if scenario == "manual_opt" else recipe.module_class(scenario)
    module = module[0] if isinstance(module, (tuple, list)) else module
    callbacks = recipe._callbacks(recipe.CLASSES[3], str(tmp_path), scenario)
    precision = "16-mixed" if scenario.startswith("amp") else None
    report = preflight(GOLDEN / f"{golden}.ckpt", module, callbacks=callbacks, precision=precision, trust=True)
    problems = [(f.severity, f.area) for f in report.findings if f.severity != "note"]
    assert problems == ([("fail", "optimizers")] if scenario == "save_weights_only" else []), report.lines()


@pytest.mark.parametrize(
    ("golden", "expected"),
    [
        ("1.2.10/weight_averaging", [("note", "lr_schedulers")]),  # saves no SWA state: a fresh SWALR
        ("2.6.6/weight_averaging", []),  # the callback's own state restores SWALR
    ],
)
def test_swalrs_scheduler_state_is_the_live_averaging_callbacks(golden, expected, tmp_path):
    """configure_optimizers returns no scheduler; the file's one is SWALR's, which only a live
    StochasticWeightAveraging accounts for: without one it is reported lost."""
    recipe = _recipe()
    module = recipe.module_class("weight_averaging")
    callbacks = recipe._callbacks(recipe.CLASSES[3], str(tmp_path), "weight_averaging")
    path = GOLDEN / f"{golden}.ckpt"
    with_swa = preflight(path, module, callbacks=callbacks, trust=True).findings
    assert [(f.severity, f.area) for f in with_swa if f.area == "lr_schedulers"] == expected
    without = [cb for cb in callbacks if type(cb).__name__ != "StochasticWeightAveraging"]
    assert len(without) == len(callbacks) - 1
    lost = [f.message for f in preflight(path, module, callbacks=without, trust=True).findings if f.severity == "lost"]
    assert "the file has 1 scheduler state(s), configure_optimizers returns 0: the last 1 are not restored" in lost
