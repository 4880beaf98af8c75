"""Realistic regressions of Lightning's restore and save paths, planted at run time (monkeypatch).

Each mutant is what a plausible one-line change in Lightning 2.x would do: a restore step
skipped, a value reset, a check that raises turned into a silent skip, a file saved wrong
(``saves``: only a file saved now by the mutated release shows it, so the round trip runs), a way
of using a file (validate/test/predict, explicit load kwargs, the module's own hooks) broken.
``killed_by`` names the check that must report it. ``apply(pl, mp)`` patches
the installed namespace (``pytorch_lightning`` or ``lightning.pytorch``); ``needs`` names a
golden scenario without which no CPU golden can show the regression (the test then skips it with
that reason instead of counting a survivor).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Mutant:
    id: str
    what: str
    apply: Callable  # (pl module, monkeypatch) -> None
    needs: str | None = None  # a scenario that must be in the golden subset (e.g. amp_16_mixed_cpu)
    saves: bool = False  # a save-path regression: the round trip (a file saved now) must be run too
    killed_by: str | None = None  # the check that must fail on it: a CELLS name or "round_trip"


# The checks each mutant run executes on the goldens (``-k`` matches by substring: "resume" alone
# would also select plain_resume, so all are named).
CELLS = ("load", "resume", "plain_resume", "evaluate")


def _mod(pl, name: str):
    return importlib.import_module(f"{pl.__name__}.{name}")


def _connector(pl):
    return _mod(pl, "trainer.connectors.checkpoint_connector")._CheckpointConnector


def _after(mp, cls, name: str, then: Callable) -> None:
    """Wrap ``cls.name``: run the original, then ``then(self, *args)`` (the planted bug)."""
    original = getattr(cls, name)

    @functools.wraps(original)
    def wrapper(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        then(self, *args, **kwargs)
        return result

    mp.setattr(cls, name, wrapper)


def _noop(mp, cls, name: str) -> None:
    mp.setattr(cls, name, lambda self, *a, **k: None)


# ------------------------------------------------------------------------------------ the mutants
def batches_that_stepped_not_restored(pl, mp):
    loop = _mod(pl, "loops.training_epoch_loop")._TrainingEpochLoop
    original = loop.on_load_checkpoint

    def on_load_checkpoint(self, state_dict):
        original(self, state_dict)
        self._batches_that_stepped = 0

    mp.setattr(loop, "on_load_checkpoint", on_load_checkpoint)


def val_loop_progress_not_restored(pl, mp):
    _noop(mp, _mod(pl, "loops.evaluation_loop")._EvaluationLoop, "load_state_dict")


def strict_off_in_fit(pl, mp):
    def restore_model(self):
        if not self._loaded_checkpoint:
            return
        self.trainer.strategy.load_model_state_dict(self._loaded_checkpoint, strict=False)

    mp.setattr(_connector(pl), "restore_model", restore_model)


def model_weights_not_restored(pl, mp):
    _noop(mp, _mod(pl, "strategies.strategy").Strategy, "load_model_state_dict")


def early_stopping_wait_count_ignored(pl, mp):
    _after(mp, pl.callbacks.EarlyStopping, "load_state_dict", lambda self, *a, **k: setattr(self, "wait_count", 0))


def early_stopping_best_score_ignored(pl, mp):
    import torch

    _after(
        mp,
        pl.callbacks.EarlyStopping,
        "load_state_dict",
        lambda self, *a, **k: setattr(self, "best_score", torch.tensor(float("inf"))),
    )


def model_checkpoint_state_ignored(pl, mp):
    _noop(mp, pl.callbacks.ModelCheckpoint, "load_state_dict")


def best_model_score_not_restored(pl, mp):
    _after(
        mp,
        pl.callbacks.ModelCheckpoint,
        "load_state_dict",
        lambda self, *a, **k: setattr(self, "best_model_score", None),
    )


def callback_states_not_restored(pl, mp):
    def restore_callbacks(self):
        if self._loaded_checkpoint:
            _mod(pl, "trainer.call")._call_callbacks_on_load_checkpoint(self.trainer, self._loaded_checkpoint)

    mp.setattr(_connector(pl), "restore_callbacks", restore_callbacks)


def _drop_on_load(pl, mp, cls, key: str) -> None:
    """``load_from_checkpoint`` of a ``cls`` subclass no longer sees ``checkpoint[key]``."""
    saving = _mod(pl, "core.saving")
    original = saving._load_state

    def _load_state(target, checkpoint, *args, **kwargs):
        if issubclass(target, cls):
            checkpoint = {k: v for k, v in checkpoint.items() if k != key}
        return original(target, checkpoint, *args, **kwargs)

    mp.setattr(saving, "_load_state", _load_state)


def datamodule_hparams_dropped(pl, mp):
    _drop_on_load(pl, mp, pl.LightningDataModule, "datamodule_hyper_parameters")


def module_hparams_dropped(pl, mp):
    _drop_on_load(pl, mp, pl.LightningModule, "hyper_parameters")


def precision_plugin_state_not_restored(pl, mp):
    _noop(mp, _connector(pl), "restore_precision_plugin_state")


def missing_optimizer_key_skipped(pl, mp):
    def restore_optimizers_and_schedulers(self):
        if not self._loaded_checkpoint:
            return
        if "optimizer_states" in self._loaded_checkpoint:  # the planted bug: a silent skip
            self.restore_optimizers()
        if "lr_schedulers" not in self._loaded_checkpoint:
            raise KeyError("Trying to restore learning rate scheduler state but checkpoint contains only the model.")
        self.restore_lr_schedulers()

    mp.setattr(_connector(pl), "restore_optimizers_and_schedulers", restore_optimizers_and_schedulers)


def missing_scheduler_key_skipped(pl, mp):
    def restore_optimizers_and_schedulers(self):
        if not self._loaded_checkpoint:
            return
        if "optimizer_states" not in self._loaded_checkpoint:
            raise KeyError("Trying to restore optimizer state but checkpoint contains only the model.")
        self.restore_optimizers()
        if "lr_schedulers" in self._loaded_checkpoint:  # the planted bug: a silent skip
            self.restore_lr_schedulers()

    mp.setattr(_connector(pl), "restore_optimizers_and_schedulers", restore_optimizers_and_schedulers)


def optimizer_state_not_loaded(pl, mp):
    _noop(mp, _mod(pl, "strategies.strategy").Strategy, "load_optimizer_state_dict")


def optimizer_lr_not_restored(pl, mp):
    strategy = _mod(pl, "strategies.strategy").Strategy
    original = strategy.load_optimizer_state_dict

    def load_optimizer_state_dict(self, checkpoint):
        initial = [[g["lr"] for g in opt.param_groups] for opt in self.optimizers]
        original(self, checkpoint)
        for opt, lrs in zip(self.optimizers, initial):
            for group, lr in zip(opt.param_groups, lrs):
                group["lr"] = lr

    mp.setattr(strategy, "load_optimizer_state_dict", load_optimizer_state_dict)


def scheduler_state_not_loaded(pl, mp):
    _noop(mp, _connector(pl), "restore_lr_schedulers")


def scheduler_only_last_epoch(pl, mp):
    def restore_lr_schedulers(self):
        for config, state in zip(self.trainer.lr_scheduler_configs, self._loaded_checkpoint["lr_schedulers"]):
            config.scheduler.last_epoch = state["last_epoch"]

    mp.setattr(_connector(pl), "restore_lr_schedulers", restore_lr_schedulers)


def loops_state_ignored(pl, mp):
    _noop(mp, _mod(pl, "loops.fit_loop")._FitLoop, "load_state_dict")


def epoch_progress_off_by_one(pl, mp):
    def then(self, *a, **k):
        self.epoch_progress.current.completed -= 1
        self.epoch_progress.current.processed -= 1

    _after(mp, _mod(pl, "loops.fit_loop")._FitLoop, "load_state_dict", then)


def global_step_off_by_one(pl, mp):
    def then(self, *a, **k):
        self.epoch_loop.automatic_optimization.optim_progress.optimizer.step.total.completed += 1

    _after(mp, _mod(pl, "loops.fit_loop")._FitLoop, "load_state_dict", then)


def mid_epoch_batch_progress_reset(pl, mp):
    def then(self, *a, **k):
        progress = self.epoch_loop.batch_progress
        progress.current.reset()

    _after(mp, _mod(pl, "loops.fit_loop")._FitLoop, "load_state_dict", then)


# ------------------------------------------------------------------- the save path (round trip)
def _after_dump(pl, mp, then: Callable) -> None:
    """``dump_checkpoint`` (what ``save_checkpoint`` writes) changed by ``then(checkpoint)`` before it returns."""
    connector = _connector(pl)
    original = connector.dump_checkpoint

    @functools.wraps(original)
    def dump_checkpoint(self, *args, **kwargs):
        checkpoint = original(self, *args, **kwargs)
        then(checkpoint)
        return checkpoint

    mp.setattr(connector, "dump_checkpoint", dump_checkpoint)


def saved_global_step_too_high(pl, mp):
    def then(checkpoint):
        checkpoint["global_step"] += 1
        step = checkpoint["loops"]["fit_loop"]["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"]
        step["total"]["ready"] += 1
        step["total"]["completed"] += 1

    _after_dump(pl, mp, then)


def truncated_version_stamp(pl, mp):
    def then(checkpoint):
        checkpoint["pytorch-lightning_version"] = ".".join(pl.__version__.split(".")[:2])  # "2.6", not "2.6.6"

    _after_dump(pl, mp, then)


def hparams_saved_as_attribute_dict(pl, mp):
    def then(checkpoint):  # ``obj.hparams`` saved as it is, not as ``dict(obj.hparams)``
        checkpoint["hyper_parameters"] = pl.utilities.parsing.AttributeDict(checkpoint["hyper_parameters"])

    _after_dump(pl, mp, then)


def _skip_module_hook(pl, mp, hook: str) -> None:
    """The trainer no longer calls the LightningModule's own ``hook`` (callbacks' hooks still run)."""
    call = _mod(pl, "trainer.call")
    original = call._call_lightning_module_hook

    def _call_lightning_module_hook(trainer, hook_name, *args, **kwargs):
        if hook_name == hook:
            return None
        return original(trainer, hook_name, *args, **kwargs)

    mp.setattr(call, "_call_lightning_module_hook", _call_lightning_module_hook)


def module_on_save_checkpoint_not_called(pl, mp):
    _skip_module_hook(pl, mp, "on_save_checkpoint")


# ------------------------------------------------------------------- other ways a file is used
def module_on_load_checkpoint_not_called(pl, mp):
    _skip_module_hook(pl, mp, "on_load_checkpoint")


def validate_ignores_checkpoint_weights(pl, mp):
    connector = _connector(pl)
    original = connector._restore_modules_and_callbacks

    def _restore_modules_and_callbacks(self, checkpoint_path=None, weights_only=None):
        if self.trainer.state.fn != "validate":
            return original(self, checkpoint_path, weights_only=weights_only)
        self.resume_start(checkpoint_path, weights_only=weights_only)  # the planted bug: no restore_model()
        self.restore_datamodule()
        self.restore_callbacks()

    mp.setattr(connector, "_restore_modules_and_callbacks", _restore_modules_and_callbacks)


def predict_loads_non_strict(pl, mp):
    connector = _connector(pl)
    original = connector.restore_model

    def restore_model(self):
        if self.trainer.state.fn != "predict" or not self._loaded_checkpoint:
            return original(self)
        _mod(pl, "trainer.call")._call_lightning_module_hook(
            self.trainer, "on_load_checkpoint", self._loaded_checkpoint
        )
        state = dict(self._loaded_checkpoint["state_dict"])
        state.pop(next(iter(state)))  # one key lost on the way, and strict loading off hides it
        checkpoint = dict(self._loaded_checkpoint, state_dict=state)
        self.trainer.strategy.load_model_state_dict(checkpoint, strict=False)

    mp.setattr(connector, "restore_model", restore_model)


def saved_hparams_override_kwargs(pl, mp):
    module, saving = _mod(pl, "core.module"), _mod(pl, "core.saving")
    original = module._load_from_checkpoint

    def _load_from_checkpoint(cls, path, map_location=None, hparams_file=None, strict=None, weights_only=None, **kw):
        with saving.pl_legacy_patch():
            saved = saving.pl_load(path, map_location="cpu", weights_only=weights_only).get("hyper_parameters") or {}
        kw = {k: saved.get(k, v) for k, v in kw.items()}  # the planted bug: the saved value wins
        return original(cls, path, map_location, hparams_file, strict, weights_only, **kw)

    mp.setattr(module, "_load_from_checkpoint", _load_from_checkpoint)


def averaged_model_not_restored(pl, mp):
    """2.6's WeightAveraging restores the live weights from ``current_model_state`` but not its AveragedModel."""

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        if "current_model_state" in checkpoint:
            pl_module.load_state_dict(checkpoint["current_model_state"])

    mp.setattr(_mod(pl, "callbacks.weight_averaging").WeightAveraging, "on_load_checkpoint", on_load_checkpoint)


MUTANTS = [
    Mutant(
        "batches_that_stepped", "_batches_that_stepped (logger step) not restored", batches_that_stepped_not_restored
    ),
    Mutant("val_loop_progress", "validation-loop progress not restored", val_loop_progress_not_restored),
    Mutant("strict_off", "fit(ckpt_path) loads weights with strict silently off", strict_off_in_fit),
    Mutant("weights", "model weights not restored by fit(ckpt_path)", model_weights_not_restored),
    Mutant("es_wait_count", "EarlyStopping wait_count ignored on load", early_stopping_wait_count_ignored),
    Mutant("es_best_score", "EarlyStopping best_score ignored on load", early_stopping_best_score_ignored),
    Mutant("mc_state", "ModelCheckpoint.load_state_dict ignored", model_checkpoint_state_ignored),
    Mutant("mc_best_score", "ModelCheckpoint best_model_score not restored", best_model_score_not_restored),
    Mutant("callback_states", "callbacks' load_state_dict never called", callback_states_not_restored),
    Mutant("dm_hparams", "datamodule hyperparameters dropped by load_from_checkpoint", datamodule_hparams_dropped),
    Mutant("module_hparams", "module hyperparameters dropped by load_from_checkpoint", module_hparams_dropped),
    Mutant(
        "precision_state",
        "precision plugin (GradScaler) state not restored",
        precision_plugin_state_not_restored,
        needs="amp_16_mixed_cpu",
    ),
    Mutant(
        "missing_optimizer_key", "missing optimizer_states skipped instead of raising", missing_optimizer_key_skipped
    ),
    Mutant("missing_scheduler_key", "missing lr_schedulers skipped instead of raising", missing_scheduler_key_skipped),
    Mutant("optimizer_state", "optimizer state not loaded", optimizer_state_not_loaded),
    Mutant("optimizer_lr", "optimizer param-group lr reset to the configured one", optimizer_lr_not_restored),
    Mutant("scheduler_state", "scheduler state not loaded", scheduler_state_not_loaded),
    Mutant("scheduler_partial", "scheduler: only last_epoch restored", scheduler_only_last_epoch),
    Mutant("loops_state", "loops' state dict ignored", loops_state_ignored),
    Mutant("epoch_off_by_one", "epoch progress restored one too low", epoch_progress_off_by_one),
    Mutant("global_step_off", "global step restored one too high", global_step_off_by_one),
    Mutant(
        "mid_epoch_progress",
        "mid-epoch batch progress reset (the unfinished epoch restarts)",
        mid_epoch_batch_progress_reset,
    ),
    Mutant(
        "averaged_model",
        "WeightAveraging restores the live weights but not its averaged model (EMA)",
        averaged_model_not_restored,
        needs="ema_averaging",
        killed_by="resume",
    ),
    # the save path: only a file saved now by the mutated release shows these
    Mutant(
        "saved_global_step",
        "global_step saved one too high",
        saved_global_step_too_high,
        saves=True,
        killed_by="round_trip",
    ),
    Mutant(
        "version_stamp", "a truncated version stamp saved", truncated_version_stamp, saves=True, killed_by="round_trip"
    ),
    Mutant(
        "hparams_object",
        "hyperparameters saved as an AttributeDict (weights_only refuses it)",
        hparams_saved_as_attribute_dict,
        saves=True,
        killed_by="round_trip",
    ),
    Mutant(
        "on_save_hook",
        "the module's own on_save_checkpoint not called",
        module_on_save_checkpoint_not_called,
        saves=True,
        killed_by="round_trip",
    ),
    # the other ways a file is used
    Mutant(
        "on_load_hook",
        "the module's own on_load_checkpoint not called by the trainer",
        module_on_load_checkpoint_not_called,
        killed_by="resume",
    ),
    Mutant(
        "validate_weights",
        "validate(ckpt_path) ignores the file's weights",
        validate_ignores_checkpoint_weights,
        killed_by="evaluate",
    ),
    Mutant(
        "predict_non_strict",
        "predict(ckpt_path) loads with strict=False, dropping a key",
        predict_loads_non_strict,
        killed_by="evaluate",
    ),
    Mutant(
        "load_kwargs",
        "load_from_checkpoint lets saved hyperparameters override explicit kwargs",
        saved_hparams_override_kwargs,
        killed_by="load",
    ),
]
