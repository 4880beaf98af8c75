"""The Trainer harness of the matrix: fit a golden under its recipe and probe what was restored.

Why a module of its own: the ``resume`` checks (:mod:`.checks`) and the Lightning integration
tests drive the same ``fit(ckpt_path=...)`` with the recipe's model, datamodule, callbacks and
Trainer arguments; they share these public helpers instead of reaching into the checks.

- :func:`expected_counters`: where a resume must start (epoch, global step, batches left);
- :func:`fit`: one ``fit(ckpt_path=path)`` (through ``CheckpointUpgrade``, plain, or installed);
- :func:`make_probe`: a callback that runs :func:`.restored.check_restored` right after the restore;
- :func:`align_checkpoint_dirs`: each ModelCheckpoint back at the folder it was saved from.

The recipe's objects come from the suite's recipe (:class:`.suites.RecipeView`, the public
contract), so a team's goldens run through the same harness as the built-in ones.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from pathlib import Path

from packaging.version import Version

from ..core import ledger, versions
from ..goldens.store import Golden
from .restored import check_restored
from .workspace import Workspace

__all__ = [
    "align_checkpoint_dirs",
    "data_hparams",
    "expected_counters",
    "fit",
    "make_probe",
    "rebuilt_hparams",
]

_FORMAT_1_6 = Version("1.6.0")


def _exact_keys(checkpoint: dict, callbacks) -> dict:
    """What plain Lightning does with callback states: look each live ``state_key`` up, nothing else."""
    return checkpoint


def fit(
    ws: Workspace,
    golden: Golden,
    path: Path,
    tmp_path: Path,
    upgraded: dict,
    *,
    max_epochs: int,
    extra: Sequence = (),
    plain: bool = False,
    installed: bool = False,
    trainer_kwargs: dict | None = None,
):
    """One ``fit(ckpt_path=path)`` with the recipe's model, datamodule, callbacks and Trainer arguments.

    ``plain``: as a user without this package: no ``CheckpointUpgrade``, Lightning's migration on.
    ``installed``: ``lightning.install()`` is active: no ``CheckpointUpgrade``, Lightning's migration on.
    """
    import torch

    from ..lightning import CheckpointUpgrade, lightning_migration_disabled, match_callback_states

    view = ws.view
    torch.manual_seed(1234)
    model = view.make_module(golden, upgraded)
    callbacks = view.make_callbacks(golden.scenario, str(tmp_path))
    align_checkpoint_dirs(
        callbacks, upgraded, _exact_keys if plain and not installed else match_callback_states, tmp_path
    )
    plain = plain or installed
    kwargs = view.trainer_kwargs(golden.scenario, str(tmp_path))
    upgrader = [] if plain else [CheckpointUpgrade(trust=golden.name in ws.trusted)]
    kwargs["callbacks"] = callbacks + list(extra) + upgrader
    kwargs.update(max_epochs=max_epochs, deterministic=True, **(trainer_kwargs or {}))
    datamodule = view.make_datamodule(golden.scenario)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = view.pl.Trainer(**kwargs)
        with contextlib.nullcontext() if plain else lightning_migration_disabled():
            trainer.fit(model, datamodule=datamodule, ckpt_path=str(path), **_full_read(ws, golden, trainer, plain))
    return trainer, model, datamodule


def _full_read(ws: Workspace, golden: Golden, trainer, plain: bool) -> dict:
    """``weights_only=False`` for plain Lightning on a team's golden: a model that pickles objects the
    weights-only unpickler cannot rebuild (chemprop's) is resumed so by its users too, as Lightning
    >= 2.6 reads weights-only otherwise. The file was written from what our loader accepted; whether
    it loads weights-only is the ``weights_only`` check's question."""
    import inspect

    wanted = plain and ws.view.team
    return {"weights_only": False} if wanted and "weights_only" in inspect.signature(trainer.fit).parameters else {}


def file_weights(truth: dict) -> tuple[str, float]:
    """The digest of the weights the file's ``state_dict`` holds: the live module's, recorded when it was
    saved, except under a WeightAveraging callback (2.6): that one saves its averaged module there (and the
    live weights under ``current_model_state``), which ``load_from_checkpoint`` and ``validate`` restore."""
    for averaged in (truth.get("averaged") or {}).values():
        return averaged["module_sha256"], averaged["module_sum"]
    return truth["weights_sha256"], truth["weights_sum"]


def data_hparams(hparams: dict) -> dict:
    """The recorded hparams with a pickled function (``{"callable": ...}``, e.g. 1.0 - 1.2's argparse
    ``_gpus_arg_default``) as the catalogue writes it: ``None``, the default it stood for."""
    return {k: None if isinstance(v, dict) and list(v) == ["callable"] else v for k, v in hparams.items()}


# LightningCLI (2.x) writes these into the saved hparams; Lightning's instantiator consumes them when
# ``load_from_checkpoint`` rebuilds the object from the file, so a rebuilt module/datamodule has none.
CLI_KEYS = ("_class_path", "_instantiator")


def rebuilt_hparams(recorded: dict, live: dict) -> dict:
    """The recorded hparams a rebuilt object must have: without the CLI's own entries it does not carry."""
    if "_instantiator" not in recorded:
        return recorded
    if isinstance(recorded.get("class_path"), str) and isinstance(recorded.get("init_args"), dict):
        # 2.3's nested form, as ``pl-2.4.0-cli-hparams-class-path-flat`` writes it for newer releases
        recorded = {"_class_path": recorded["class_path"], **recorded["init_args"], **recorded}
        recorded = {k: v for k, v in recorded.items() if k not in ("class_path", "init_args")}
    return {k: v for k, v in recorded.items() if k not in CLI_KEYS or k in live}


def expected_counters(golden: Golden, upgraded: dict, golden_file: dict) -> dict:
    """Where a resume must start, per the documented counter decision.

    Files without loop state (before 1.6, unless saved fault-tolerant) resume at their saved
    ``epoch`` with ``global_step`` = the optimizer steps the file proves: optimizers that keep no
    ``step`` count (SGD) cannot be counted. Files with loop state resume exactly where they stopped.
    """
    truth = golden.truth
    steps = sum(truth["optimizer_steps"])
    if truth.get("scaler") is not None:  # AMP: the steps the GradScaler skipped (inf gradients) count too
        steps = int(truth["trainer"]["global_step"])
    if versions.parse(golden.saved_version) < _FORMAT_1_6 and "loops" not in golden_file:
        provable = sum(n for n, opt in zip(truth["optimizer_steps"], truth["optimizer_state"]) if opt.get("step"))
        original = ledger.get(upgraded, ledger.ORIGINAL_COUNTERS) or {}
        if not any(opt.get("step") for opt in truth["optimizer_state"]):  # no step evidence (SGD): saved - 1
            provable = max(int(original.get("global_step", golden_file.get("global_step") or 0)) - 1, 0)
        epoch = int(original.get("epoch", golden_file.get("epoch", 0)))
        return {"epoch": epoch, "global_step": provable, "batches": truth["steps_per_epoch"], "mid_epoch": 0}
    mid = int(truth.get("batches_in_current_epoch") or 0)
    return {
        "epoch": int(truth["completed_epochs"]),
        "global_step": steps,
        "batches": truth["steps_per_epoch"] - mid,
        "mid_epoch": mid,
    }


def align_checkpoint_dirs(callbacks: list, upgraded: dict, match_callback_states, tmp_path: Path) -> None:
    """Give each ModelCheckpoint the dirpath it was saved with, or Lightning drops its top-k state.

    ``ModelCheckpoint.load_state_dict`` restores best_k_models/kth_value only when the dirpath is
    unchanged; the probe points it back into ``tmp_path`` right after the restore.
    """
    states = dict(upgraded.get("callbacks") or {})
    matched = match_callback_states({"callbacks": states}, callbacks)["callbacks"]
    for cb in callbacks:
        state = matched.get(getattr(cb, "state_key", None))
        if isinstance(state, dict) and state.get("dirpath") and hasattr(cb, "dirpath"):
            cb._ckpt_compat_dirpath = cb.dirpath
            cb.dirpath = state["dirpath"]


def make_probe(pl):
    class RestoreProbe(pl.Callback):
        """Asserts the restored state on ``on_train_start``; records the loss of every later batch and the steps."""

        def __init__(self, golden, truth, expected, golden_file, upgraded, recipe, tmp_path):
            self.golden, self.truth, self.expected = golden, truth, expected
            self.golden_file, self.upgraded, self.recipe = golden_file, upgraded, recipe
            self.restored, self.losses, self.exact_keys = False, [], False
            self.steps = 0  # optimizer steps after the restore (a module of any recipe)

        def on_train_start(self, trainer, pl_module):
            self.restored = True
            check_restored(
                trainer,
                self.golden,
                self.truth,
                self.expected,
                self.golden_file,
                self.upgraded,
                self.recipe,
                pl_module,
                exact_keys=self.exact_keys,
            )
            for cb in trainer.callbacks:
                if hasattr(cb, "_ckpt_compat_dirpath"):
                    cb.dirpath = cb._ckpt_compat_dirpath

        def on_before_optimizer_step(self, trainer, pl_module, optimizer, *args):
            self.steps += 1

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args):
            value = trainer.callback_metrics.get("train_loss")
            if value is None and isinstance(outputs, dict):  # a module that logs no train_loss: its step's loss
                value = outputs.get("loss")
            self.losses.append(None if value is None else float(value))

    return RestoreProbe
