"""Preflight verdicts against what a real load or resume then does, file by file.

One real checkpoint (Trainer.fit with ModelCheckpoint, EarlyStopping and a scheduler), checked
against the right module (nothing reported) and against wrong ones: a renamed layer, a removed
hyperparameter, a changed ``monitor``, one more optimizer. Each verdict is followed by the real
``fit(ckpt_path=...)`` / ``load_from_checkpoint`` it predicts.
"""

from __future__ import annotations

import copy
import functools
import json

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("pytorch_lightning")
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint  # noqa: E402

from pytest_ckpt_compat.cli import main  # noqa: E402
from pytest_ckpt_compat.core.errors import PreflightFailed  # noqa: E402
from pytest_ckpt_compat.lightning.preflight import Finding, preflight  # noqa: E402


class Model(pl.LightningModule):
    def __init__(self, width: int = 3, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(width, 1)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return torch.nn.functional.mse_loss(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.nn.functional.mse_loss(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1)}

    def train_dataloader(self):
        g = torch.Generator().manual_seed(0)
        return DataLoader(TensorDataset(torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)), batch_size=4)

    val_dataloader = train_dataloader


class RenamedLayer(Model):
    def __init__(self, width: int = 3, lr: float = 0.1):
        super().__init__(width, lr)
        self.body = self.net
        del self.net

    def forward(self, x):
        return self.body(x)


class RemovedHparam(Model):
    def __init__(self, lr: float = 0.1):  # width is gone (fixed at 3)
        super(Model, self).__init__()  # LightningModule's, skipping Model's
        self.save_hyperparameters()
        self.net = torch.nn.Linear(3, 1)


class TwoOptimizers(Model):
    def configure_optimizers(self):
        return [torch.optim.Adam(self.parameters()), torch.optim.SGD(self.parameters(), lr=0.1)], []


def _callbacks(monitor="val_loss"):
    return [ModelCheckpoint(monitor="val_loss"), EarlyStopping(monitor=monitor, patience=3)]


def _trainer(tmp_path, epochs, callbacks):
    return pl.Trainer(
        max_epochs=epochs,
        callbacks=callbacks,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("preflight")
    torch.manual_seed(0)
    trainer = _trainer(folder, 2, _callbacks())
    trainer.fit(Model())
    trainer.save_checkpoint(folder / "saved.ckpt")
    return folder / "saved.ckpt"


def test_the_right_module_and_callbacks_report_nothing_and_resume(saved, tmp_path):
    report = preflight(saved, Model, callbacks=_callbacks())
    assert report.findings == [] and report.ok
    report.raise_for_problems()  # nothing to raise
    _trainer(tmp_path, 3, _callbacks()).fit(Model(), ckpt_path=saved)


def test_a_renamed_layer_is_named_with_the_prefix_hint_and_the_resume_fails(saved, tmp_path):
    findings = preflight(saved, RenamedLayer, callbacks=_callbacks()).findings
    hint = (
        "the file's keys start with 'net.' where the module's start with 'body.': "
        "toolkit.rename_state_keys(checkpoint, [prefix('net.', 'body.')])"
    )
    assert findings == [
        Finding("fail", "state_dict", "2 missing key(s): body.weight, body.bias", hint),
        Finding("fail", "state_dict", "2 unexpected key(s): net.weight, net.bias", hint),
    ]
    with pytest.raises(RuntimeError, match="Missing key"):
        _trainer(tmp_path, 3, _callbacks()).fit(RenamedLayer(), ckpt_path=saved)


def test_a_removed_hyperparameter_is_lost_and_load_from_checkpoint_drops_it_silently(saved):
    report = preflight(saved, RemovedHparam, callbacks=_callbacks())
    assert report.findings == [
        Finding("lost", "hyperparameters", "saved 'width' is not an argument of RemovedHparam: the load drops it")
    ]
    with pytest.raises(PreflightFailed, match="saved 'width' is not an argument"):
        report.raise_for_problems()
    model = RemovedHparam.load_from_checkpoint(saved, weights_only=False)
    assert "width" not in model.hparams  # the real load: no error, the value is gone


def test_a_changed_monitor_names_the_state_key_it_would_need_and_the_resume_starts_fresh(saved, tmp_path):
    findings = preflight(saved, Model, callbacks=_callbacks(monitor="train_loss")).findings
    saved_key = "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}"
    assert findings == [
        Finding(
            "lost",
            "callbacks",
            f"the state saved under {saved_key} reaches no live callback",
            "your EarlyStopping has state_key EarlyStopping{'monitor': 'train_loss', 'mode': 'min'}; "
            f"it would need {saved_key}",
        ),
        Finding(
            "note",
            "callbacks",
            "EarlyStopping{'monitor': 'train_loss', 'mode': 'min'} has no saved state: it starts fresh",
        ),
    ]
    state = torch.load(saved, weights_only=True)["callbacks"][saved_key]
    callbacks = _callbacks(monitor="train_loss")
    callbacks[1].on_train_start = lambda *a: None
    trainer = _trainer(tmp_path, 2, callbacks)  # max_epochs reached: restore only
    trainer.fit(Model(), ckpt_path=saved)
    assert state["best_score"] != callbacks[1].best_score  # what the file held is not what runs


def test_two_optimizers_under_automatic_optimization_fail_as_the_resume_does(saved, tmp_path):
    findings = preflight(saved, TwoOptimizers, callbacks=_callbacks()).findings
    assert findings == [
        Finding(
            "fail",
            "optimizers",
            "2 optimizers under automatic optimization: Lightning 2 refuses to train them",
            "set self.automatic_optimization = False",
        ),
        Finding("note", "optimizers", f"{ONE_OPTIMIZER}2: the last 1 start fresh"),
        Finding(
            "lost",
            "lr_schedulers",
            "the file has 1 scheduler state(s), configure_optimizers returns 0: the last 1 are not restored",
        ),
    ]
    with pytest.raises(Exception, match="multiple optimizers is only supported with manual optimization"):
        _trainer(tmp_path, 3, _callbacks()).fit(TwoOptimizers(), ckpt_path=saved)


ONE_OPTIMIZER = "the file has 1 optimizer state(s), configure_optimizers returns "


class ManualTwo(Model):  # several optimizers: Lightning 2 trains them only under manual optimization
    def __init__(self, width: int = 3, lr: float = 0.1):
        super().__init__(width, lr)
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        first, second = self.optimizers()
        loss = super().training_step(batch, batch_idx)
        first.zero_grad()
        second.zero_grad()
        self.manual_backward(loss)
        first.step()
        second.step()

    def configure_optimizers(self):
        first = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        second = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
        return [first, second], [torch.optim.lr_scheduler.StepLR(first, 1)]


class OptimizerProbe(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        self.states = [copy.deepcopy(o.state_dict()["state"]) for o in trainer.optimizers]


@pytest.mark.filterwarnings("ignore")
def test_optimizer_counts_that_differ_restore_in_order_as_preflight_says(saved, tmp_path):
    """Lightning pairs saved states with the configured optimizers in order: one more starts fresh (a
    note), one fewer drops the last saved state (lost); neither resume raises."""
    assert preflight(saved, ManualTwo, callbacks=_callbacks()).findings == [
        Finding("note", "optimizers", f"{ONE_OPTIMIZER}2: the last 1 start fresh")
    ]
    probe = OptimizerProbe()
    _trainer(tmp_path, 3, [*_callbacks(), probe]).fit(ManualTwo(), ckpt_path=saved)
    adam = torch.load(saved, weights_only=True)["optimizer_states"][0]["state"]
    assert [sorted(s) for s in probe.states] == [sorted(adam), []]
    assert all(torch.equal(probe.states[0][i]["exp_avg"], adam[i]["exp_avg"]) for i in adam)

    trainer = _trainer(tmp_path / "two", 1, _callbacks())
    trainer.fit(ManualTwo())
    trainer.save_checkpoint(tmp_path / "two.ckpt")
    assert preflight(tmp_path / "two.ckpt", Model, callbacks=_callbacks()).findings == [
        Finding(
            "lost",
            "optimizers",
            "the file has 2 optimizer state(s), configure_optimizers returns 1: the last 1 are not restored",
        )
    ]
    probe = OptimizerProbe()
    _trainer(tmp_path / "two", 2, [*_callbacks(), probe]).fit(Model(), ckpt_path=tmp_path / "two.ckpt")
    states = torch.load(tmp_path / "two.ckpt", weights_only=True)["optimizer_states"]
    assert len(probe.states) == 1 and sorted(probe.states[0]) == sorted(states[0]["state"]) != []
    assert sorted(states[1]["state"]) != []  # the SGD momentum the resume has no optimizer for


def test_cli_check_prints_the_report_and_exits_12_on_problems(saved, capsys):
    spec = 'EarlyStopping{"monitor": "val_loss", "patience": 3}'
    base = ["check", str(saved), "--callback", 'ModelCheckpoint{"monitor": "val_loss"}', "--callback", spec]
    assert main([*base, "--model", f"{__name__}:Model"]) == 0
    assert capsys.readouterr().out.strip() == f"{saved} -> {__name__}.Model: nothing would be lost"
    assert main([*base, "--model", f"{__name__}:RemovedHparam", "--json"]) == 12
    out = json.loads(capsys.readouterr().out)
    assert (out["ok"], [f["area"] for f in out["findings"]]) == (False, ["hyperparameters"])
    assert main([*base, "--model", "no_such_module:Model"]) == 2
    assert "cannot build" in capsys.readouterr().err


def test_compiled_keys_and_a_weights_only_file_are_named_as_the_resume_fails(saved, tmp_path):
    checkpoint = torch.load(saved, weights_only=True)
    checkpoint["state_dict"] = {k.replace("net.", "net._orig_mod."): v for k, v in checkpoint["state_dict"].items()}
    del checkpoint["optimizer_states"], checkpoint["lr_schedulers"]
    torch.save(checkpoint, tmp_path / "odd.ckpt")
    findings = preflight(tmp_path / "odd.ckpt", Model, callbacks=_callbacks()).findings
    assert {f.hint for f in findings if f.area == "state_dict"} == {
        "the file was saved from a torch.compile'd module: toolkit.strip_compiled_prefix"
    }
    assert (
        Finding(
            "fail",
            "optimizers",
            "the file has no optimizer state (saved with weights only)",
            "resume raises; load_from_checkpoint works",
        )
        in findings
    )
    checkpoint["state_dict"] = torch.load(saved, weights_only=True)["state_dict"]
    torch.save(checkpoint, tmp_path / "weights.ckpt")
    with pytest.raises(KeyError, match="optimizer"):
        _trainer(tmp_path, 3, _callbacks()).fit(Model(), ckpt_path=tmp_path / "weights.ckpt")


class NoOptimizer(Model):  # anomalib's kind: Lightning runs a mock optimizer and saves its state, {}
    def configure_optimizers(self):
        return None


class OneArgument(Model):  # hparams saved from one argument: the file names it (hparams_name)
    def __init__(self, config: dict):
        super(Model, self).__init__()
        self.save_hyperparameters(config)
        self.config = config
        self.net = torch.nn.Linear(config["width"], 1)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    ("module", "saved"),
    [
        (NoOptimizer, {"optimizer_states": [{}]}),
        (functools.partial(OneArgument, {"width": 3, "lr": 0.1}), {"hparams_name": "config"}),
    ],
)
def test_no_optimizer_and_a_one_argument_constructor_report_nothing_as_the_load_and_resume_do(module, saved, tmp_path):
    trainer = _trainer(tmp_path, 1, _callbacks())
    trainer.fit(module())
    trainer.save_checkpoint(tmp_path / "saved.ckpt")
    checkpoint = torch.load(tmp_path / "saved.ckpt", weights_only=True)
    assert {key: checkpoint[key] for key in saved} == saved
    cls = type(module())
    assert preflight(tmp_path / "saved.ckpt", cls, callbacks=_callbacks()).findings == []
    loaded = cls.load_from_checkpoint(tmp_path / "saved.ckpt", weights_only=True)
    assert dict(loaded.hparams) == {"width": 3, "lr": 0.1}
    _trainer(tmp_path, 2, _callbacks()).fit(loaded, ckpt_path=tmp_path / "saved.ckpt")


def test_cli_check_takes_the_version_of_a_file_that_has_none(saved, tmp_path, capsys):
    checkpoint = torch.load(saved, weights_only=True)
    del checkpoint["pytorch-lightning_version"]
    torch.save(checkpoint, tmp_path / "unversioned.ckpt")
    base = ["check", str(tmp_path / "unversioned.ckpt"), "--model", f"{__name__}:Model"]
    callbacks = [
        "--callback",
        'ModelCheckpoint{"monitor": "val_loss"}',
        "--callback",
        'EarlyStopping{"monitor": "val_loss"}',
    ]
    assert main([*base, *callbacks]) == 3  # NotALightningCheckpoint: pass --assume-version
    assert "--assume-version" in capsys.readouterr().err
    assert main([*base, *callbacks, "--assume-version", pl.__version__]) == 0
    assert capsys.readouterr().out.strip().endswith("nothing would be lost")


def test_a_module_that_configures_no_optimizer_loses_the_saved_state_as_the_resume_does(saved, tmp_path):
    assert preflight(saved, NoOptimizer, callbacks=_callbacks()).findings == [
        Finding(
            "lost", "optimizers", "optimizer 0: configure_optimizers returns none; the saved state is not restored"
        ),
        Finding(
            "lost",
            "lr_schedulers",
            "the file has 1 scheduler state(s), configure_optimizers returns 0: the last 1 are not restored",
        ),
    ]
    trainer = _trainer(tmp_path, 3, _callbacks())
    with pytest.warns(UserWarning, match="returned `None`, this fit will run with no optimizer"):
        trainer.fit(NoOptimizer(), ckpt_path=saved)  # Lightning's mock optimizer takes the state and drops it
    assert trainer.optimizers[0].state_dict() == {} and trainer.lr_scheduler_configs == []


def test_a_state_kept_under_its_class_name_goes_to_a_live_callback_of_that_class(saved, tmp_path):
    """A 0.10/1.0 state without configuration: lost without such a callback (with a hint that fits),
    received by one (preflight re-keys it as CheckpointUpgrade does)."""
    checkpoint = torch.load(saved, weights_only=True)
    states = checkpoint["callbacks"]
    states["EarlyStopping"] = states.pop("EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}")
    torch.save(checkpoint, tmp_path / "bare.ckpt")
    findings = preflight(tmp_path / "bare.ckpt", Model, callbacks=_callbacks()[:1]).findings
    assert findings == [
        Finding(
            "lost",
            "callbacks",
            "the state saved under EarlyStopping reaches no live callback",
            "the file records no configuration for it: a live EarlyStopping would receive it",
        )
    ]
    assert preflight(tmp_path / "bare.ckpt", Model, callbacks=_callbacks()).findings == []
