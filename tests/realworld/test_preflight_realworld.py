"""Preflight on every file of the real-world set, then the real load and resume, file by file.

The projects' own classes are not installed here, so the module each file meets is the one
``test_realworld`` rebuilds from the state_dict's names and shapes and the saved optimizer, with a
constructor that takes the saved hyperparameters (one argument where the file names it,
``hparams_name``) and one scheduler per saved scheduler state: the right module, as far as the file
shows it. The callbacks are the ones its state keys name, the precision 16-mixed where it holds
GradScaler state. Preflight's verdict (its fail/lost findings) is then compared with what the real
``load_from_checkpoint`` and ``fit(ckpt_path=...)`` through ``CheckpointUpgrade`` do: which saved
state each live callback, optimizer, scheduler and the precision plugin received, which saved
hyperparameter reached the constructor, or the named error. Files no module can meet (not Lightning,
or pickling classes of a project that is not installed) get the named error from both. On the files
whose callbacks watch a metric, the same comparison with that monitor changed.
"""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch

from tests.realworld import test_realworld as rw  # skips (or fails) as that module does without the data

pl = rw.pl

from pytest_ckpt_compat.core.errors import CheckpointCompatError  # noqa: E402
from pytest_ckpt_compat.files.loading import load_checkpoint  # noqa: E402
from pytest_ckpt_compat.lightning import CheckpointUpgrade, load_from_checkpoint  # noqa: E402
from pytest_ckpt_compat.lightning.preflight import preflight  # noqa: E402

OK = "nothing lost"
# file -> (preflight's verdict, what the real load and resume did). Agreement is asserted per row.
TABLE = {
    "asteroid-1.1.4-epoch3.ckpt": (OK, OK),
    "asteroid-1.1.4-epoch0.ckpt": (OK, OK),
    "anomalib-1.9.3-no-optimizer.ckpt": (OK, OK),  # optimizer_states [{}]: Lightning's mock optimizer
    "pyannote-2.1.3-segmentation.ckpt": ("MissingGlobal", "MissingGlobal"),  # pyannote not installed
    "chemprop-v1-model-not-lightning.pt": ("NotALightningCheckpoint", "NotALightningCheckpoint"),
    "contact-point-0.7-lbfgs.ckpt": ("lost callbacks", "lost callbacks"),  # 0.7 ModelCheckpoint: no config
    "contact-point-0.7-adam.ckpt": ("lost callbacks", "lost callbacks"),
    "aegnn-1.4.9-early-stopping.ckpt": (OK, OK),
    "chemprop-2.2.2-regression.ckpt": ("MissingGlobal", "MissingGlobal"),  # chemprop not installed
    "pyannote-1.x-state-dict-not-lightning.pt": ("NotALightningCheckpoint", "NotALightningCheckpoint"),
    "mindspore-lenet-not-torch.ckpt": ("NotALightningCheckpoint", "NotALightningCheckpoint"),
    "darts-2.2.5-lr-find-temp.ckpt": (OK, OK),
    "darts-1.5.8-lstm-last.ckpt": (OK, OK),
    "darts-2.0.6-params-check.ckpt": (OK, OK),
    "gluonts-1.4.4-ts-embedding.ckpt": (OK, OK),
    "neuralforecast-nlinear.ckpt": ("MissingGlobal", "MissingGlobal"),  # neuralforecast not installed
    "darts-2.0.9-float64-rnn.ckpt": (OK, OK),
    "darts-1.9.0-tcn-early-stopping.ckpt": (OK, OK),
    "astrolab-2.5.1-amp-swa.ckpt": (OK, OK),
    "astrolab-2.5.1-amp-skipped-step.ckpt": (OK, OK),
    "astrolab-2.5.1-onecycle-datamodule.ckpt": (OK, OK),
    "lobster-lfs-pointer.ckpt": ("NotALightningCheckpoint", "NotALightningCheckpoint"),
    "himl-1.6.4-native-amp.ckpt": (OK, OK),
    "innereye-1.2.8-monitor-epoch.ckpt": (OK, OK),
    "long-short-lstm-2.4.0-last.ckpt": (OK, OK),
    "pytorch-tabular-1.3.6-omegaconf.ckpt": (OK, OK),  # hparams_name "config": one constructor argument
    "pytorch-tabular-1.8.6-omegaconf-lr-find.ckpt": (OK, OK),
}


def test_the_table_covers_every_file():
    assert sorted(TABLE) == sorted(entry["file"] for entry in rw.MANIFEST)


@pytest.mark.parametrize(
    ("entry", "predicted", "happened"),
    [
        pytest.param(p.values[0], *TABLE[p.values[0]["file"]], id=p.id, marks=p.marks)
        for p in rw.entries("lightning", "foreign-classes", "refuse", check="preflight")
    ],
)
def test_preflight_agrees_with_the_real_load_and_resume(entry, predicted, happened, tmp_path):
    options = {"trust": entry["trust"] is not None, "assume_version": entry.get("assume_version")}
    path = rw.data_file(entry)
    try:
        upgraded = _upgraded(path, **options)
    except CheckpointCompatError as exc:  # no module can meet this file: both must name the same error
        assert (_named(preflight, path, pl.LightningModule, **options), type(exc).__name__) == (predicted, happened)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert _named(load_from_checkpoint, pl.LightningModule, path, **options) == happened
        return
    module = matching_module(upgraded)
    amp = rw.amp_plugin(upgraded)
    report = preflight(
        path, module, callbacks=rw.live_callbacks(upgraded), precision="16-mixed" if amp else None, **options
    )
    problems = sorted({f"{f.severity} {f.area}" for f in report.findings if f.severity != "note"})
    real = _real_losses(path, upgraded, module, tmp_path, **options)
    assert ("; ".join(problems) or OK, "; ".join(real) or OK) == (predicted, happened), report.lines()


# The files whose callbacks watch a metric, with the monitor changed (Lightning#1463, #19097): preflight
# says each state would be dropped; CheckpointUpgrade must then hand none of them to the new callbacks.
MONITORED = {
    "aegnn-1.4.9-early-stopping.ckpt": 2,
    "darts-1.9.0-tcn-early-stopping.ckpt": 2,
    "astrolab-2.5.1-amp-swa.ckpt": 2,
    "astrolab-2.5.1-onecycle-datamodule.ckpt": 2,
    "himl-1.6.4-native-amp.ckpt": 1,  # its other ModelCheckpoint has monitor=None and is kept as it is
    "innereye-1.2.8-monitor-epoch.ckpt": 1,
}


def watching_another_metric(upgraded: dict) -> list:
    """The live callbacks the file's keys name, each one with a monitor watching ``other_metric`` instead."""
    live = []
    for callback in rw.live_callbacks(upgraded):
        if getattr(callback, "monitor", None) is not None:
            callback.monitor = "other_metric"  # what state_key reads
        live.append(callback)
    return live


@pytest.mark.parametrize(
    ("entry", "dropped"),
    [
        pytest.param(p.values[0], MONITORED[p.values[0]["file"]], id=p.id, marks=p.marks)
        for p in rw.entries("lightning", check="preflight")
        if p.values[0]["file"] in MONITORED
    ],
)
def test_a_changed_monitor_on_real_files_is_lost_as_preflight_says(entry, dropped, tmp_path):
    options = {"trust": entry["trust"] is not None, "assume_version": entry.get("assume_version")}
    path = rw.data_file(entry)
    upgraded = _upgraded(path, **options)
    module, amp = matching_module(upgraded), rw.amp_plugin(upgraded)
    callbacks = watching_another_metric(upgraded)
    report = preflight(path, module, callbacks=callbacks, precision="16-mixed" if amp else None, **options)
    lost = [f.message for f in report.findings if f.severity == "lost"]
    assert len(lost) == dropped and all(m.endswith("reaches no live callback") for m in lost), report.lines()
    real = _real_losses(path, upgraded, module, tmp_path, callbacks=watching_another_metric, **options)
    assert real == ["lost callbacks"]


def _upgraded(path, *, trust, assume_version):
    from pytest_ckpt_compat.core.engine import upgrade

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return upgrade(load_checkpoint(path, trust=trust), assume_version=assume_version)


def _named(call, *args, **kwargs) -> str:
    try:
        call(*args, **kwargs)
    except CheckpointCompatError as exc:
        return type(exc).__name__
    return "no error"


class KeptScheduler(torch.optim.lr_scheduler.LRScheduler):
    """Takes any saved scheduler state (``LRScheduler.load_state_dict`` updates ``__dict__``) and keeps
    the learning rates as they are: the file's scheduler class and its lambdas are not in the file."""

    def get_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]


def matching_module(upgraded: dict) -> type:
    """The rebuilt module with the saved hyperparameters' constructor and the saved scheduler count."""
    base = type(rw.rebuild_module(upgraded))
    schedulers = len(upgraded.get("lr_schedulers") or [])

    class Matching(base):  # type: ignore[misc, valid-type]
        def __init__(self, **hparams):
            super().__init__()
            self.received_hparams = hparams

        def configure_optimizers(self):
            optimizer = super().configure_optimizers()
            if optimizer is None or not schedulers:
                return optimizer
            return [optimizer], [KeptScheduler(optimizer) for _ in range(schedulers)]

    name = upgraded.get("hparams_name")
    saved = upgraded.get("hyper_parameters") or {}
    names = [name] if isinstance(name, str) and name != "kwargs" else [n for n in saved if str(n).isidentifier()]
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [inspect.Parameter(n, keyword, default=None) for n in names]
    Matching.__init__.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return Matching


def _real_losses(path, upgraded, module, tmp_path, *, trust, assume_version, callbacks=rw.live_callbacks) -> list[str]:
    """What the real ``load_from_checkpoint`` and resume did not restore, in preflight's words."""
    lost = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = load_from_checkpoint(module, path, trust=trust, assume_version=assume_version)
    name = upgraded.get("hparams_name")  # Lightning passes everything as that one argument where it is one
    wanted = {name} if name in inspect.signature(module).parameters else set(upgraded.get("hyper_parameters") or {})
    if set(loaded.received_hparams) != wanted:
        lost.append("lost hyperparameters")
    received = _resume(
        path, upgraded, module(), tmp_path, callbacks(upgraded), trust=trust, assume_version=assume_version
    )
    if received["callbacks"] < len(upgraded.get("callbacks") or {}):
        lost.append("lost callbacks")
    if received["optimizers"] < len([o for o in upgraded.get("optimizer_states") or [] if o]):
        lost.append("lost optimizers")
    if received["lr_schedulers"] < len(upgraded.get("lr_schedulers") or []):
        lost.append("lost lr_schedulers")
    amp = rw.amp_plugin(upgraded)
    if amp is not None and received["precision"] < 1:
        lost.append("lost precision")
    return lost


def _resume(path, upgraded, model, tmp_path, callbacks, *, trust, assume_version) -> dict:
    """``fit(ckpt_path=path)`` (one batch) through ``CheckpointUpgrade``; counts what received a saved state."""
    received = {"callbacks": 0, "optimizers": 0, "lr_schedulers": 0, "precision": 0}

    def counted(obj, part):
        original = obj.load_state_dict

        def load_state_dict(state, *args, **kwargs):
            received[part] += 1
            return original(state, *args, **kwargs)

        obj.load_state_dict = load_state_dict
        return obj

    live = [counted(cb, "callbacks") for cb in callbacks]
    configure = model.configure_optimizers

    def configure_optimizers():
        conf = configure()
        if isinstance(conf, tuple):  # ([optimizer], [schedulers])
            return [counted(o, "optimizers") for o in conf[0]], [counted(s, "lr_schedulers") for s in conf[1]]
        return counted(conf, "optimizers") if conf is not None else None

    model.configure_optimizers = configure_optimizers
    amp = rw.amp_plugin(upgraded)
    epoch, _ = rw.expected_counters(upgraded)
    trainer = pl.Trainer(
        max_epochs=epoch + 1,
        limit_train_batches=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[CheckpointUpgrade(trust=trust, assume_version=assume_version), *live],
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=bool(live),
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        plugins=[counted(amp, "precision")] if amp else None,
    )
    extra = {"weights_only": False} if trust and "weights_only" in inspect.signature(trainer.fit).parameters else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, ckpt_path=str(path), **extra)
    return received
