"""Save golden checkpoints with whatever Lightning release is installed in this interpreter.

Why one version-agnostic script: every golden must come from the real historical release, so the
same recipe runs unchanged from pytorch-lightning 1.0 to 2.6 (and the unified ``lightning``
package). Renamed Trainer arguments and hook signatures are resolved by feature detection, never
by editing the script per release.

The ``truth`` written next to each checkpoint is read from the live trainer, optimizers,
schedulers and callbacks at the moment of saving, never from the saved file, so consumers can
check what an upgraded checkpoint restores against what really happened.

Usage (run by ``ckpt-compat golden add`` inside an isolated environment)::

    python recipe.py --package pytorch-lightning --build-dir /golden-build/1.6.5 --out DIR \
        [--scenario NAME ...] [--accelerator cpu|gpu]

Writes ``DIR/<scenario>.ckpt`` and ``DIR/recipe-result.json``. Python >= 3.6 syntax on purpose.
"""
import argparse
import hashlib
import inspect
import json
import math
import os
import pathlib
import platform
import random
import shutil
import struct
import sys
import traceback
import types

# Stable module name for the classes defined here: pre-1.5 Lightning pickles callback *classes*
# as dict keys, and "__main__" would make those keys meaningless to anyone loading the file.
MODULE_NAME = "ckpt_compat_recipe"
if __name__ == "__main__":
    sys.modules[MODULE_NAME] = sys.modules["__main__"]
# This module itself (run as a script or imported by path): its functions find the classes here, never
# through ``sys.modules[MODULE_NAME]``, which another copy of the recipe loaded later may have taken.
_SELF = sys.modules[__name__]

ALL_SCENARIOS = (
    "end_of_fit",
    "mid_epoch",
    "manual_opt",
    "two_checkpoints",
    "ckpt_subclass",
    "fault_tolerant",
    "amp_16_mixed",
    "early_stop_waited",
    "custom_args",
    "grad_accum",
    "save_weights_only",
    "amp_16_mixed_cpu",
    "onecycle_lr",
    "cyclic_lr",
    "reduce_on_plateau",
    "two_optimizers",
    "path_hparams",
    "argparse_hparams",
    "weight_averaging",
    "stateful_loader",
    "cli_saved",
    "ema_averaging",
)
CORE_SCENARIOS = ("end_of_fit", "mid_epoch")
STEPS_PER_EPOCH = 4
VAL_BATCHES = 2
BATCH_SIZE = 8
MAX_EPOCHS = 2
MID_EPOCH_AT = (1, 1)  # (epoch index, batch index) after which mid-epoch scenarios save

# Scenarios whose state differs from the defaults where a restore can go wrong unnoticed.
# early_stop_waited: validation targets are the negated training targets, so every epoch that
# learns the training data raises val_loss (deterministically) and EarlyStopping waits.
# custom_args: module and datamodule built with non-default arguments (saved hparams differ).
MODULE_ARGS = {
    "early_stop_waited": {"lr": 0.05},
    "custom_args": {"hidden": 12, "lr": 0.02, "schedule": {"step_size": 2, "gamma": 0.25, "tags": ["c"]}},
}
# Schedulers that change optimizer hyperparameters other than ``lr`` (OneCycleLR cycles Adam's
# betas, CyclicLR SGD's momentum), stepped every batch: total_steps leaves room for the matrix's
# extra epoch after a resume. ReduceLROnPlateau monitors val_loss, which rises (RisingValDataModule).
MODULE_ARGS["onecycle_lr"] = {"schedule": {"kind": "onecycle", "max_lr": 0.05, "total_steps": 16, "tags": ["o"]}}
MODULE_ARGS["cyclic_lr"] = {
    "schedule": {"kind": "cyclic", "base_lr": 0.001, "max_lr": 0.05, "step_size_up": 3, "tags": ["cy"]}
}
MODULE_ARGS["reduce_on_plateau"] = {"schedule": {"kind": "plateau", "factor": 0.5, "patience": 0, "tags": ["p"]}}
MODULE_ARGS["two_optimizers"] = {"schedule": {"kind": "gan", "step_size": 1, "gamma": 0.5, "tags": ["g"]}}
# A pathlib path among the hyperparameters (a PosixPath when saved on Linux).
MODULE_ARGS["path_hparams"] = {"data_dir": pathlib.Path("/golden-build/data/path_hparams")}
# Set by the matrix's round trip only: the top-level key the module's on_save_checkpoint writes,
# proving the hook ran on the save path (None when recording goldens: their files stay unchanged).
SAVE_MARK = None
# weight_averaging: StochasticWeightAveraging from the first epoch (its averaged copy differs from the
# live weights at the mid-epoch save), no BatchNorm (SWA would add an epoch to recompute its statistics)
# and no scheduler of the module's own (SWA installs its SWALR).
MODULE_ARGS["weight_averaging"] = {"batchnorm": False, "schedule": {"kind": "none", "tags": ["w"]}}
# cli_saved: the module and datamodule a LightningCLI config builds (the link sets batch_size).
CLI_CONFIG = {"hidden": 12, "lr": 0.02, "name": "golden-cli_saved", "batch_size": 4}
# ema_averaging: 2.6's EMAWeightAveraging, saved mid-epoch: the file's state_dict holds the averaged
# weights, current_model_state the live ones, averaging_state the AveragedModel's n_averaged.
MID_EPOCH_SCENARIOS = ("mid_epoch", "fault_tolerant", "weight_averaging", "stateful_loader", "ema_averaging")
RISING_VAL = ("early_stop_waited", "reduce_on_plateau")
DATAMODULE_ARGS = {"custom_args": {"batch_size": 4, "data_seed": 11, "noise": 0.25}}
DATAMODULE_ARGS["cli_saved"] = {"batch_size": CLI_CONFIG["batch_size"]}
ACCUMULATE = {"grad_accum": 2}

pl = None  # the imported Lightning package, set by main()
torch = None
CLASSES = None  # the classes of _build_classes(), set on first use


def _version_tuple(text):
    parts = []
    for piece in text.split(".")[:3]:
        digits = ""
        for ch in piece:
            if ch.isdigit():
                digits += ch
            else:
                break
        parts.append(int(digits or 0))
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


# ----------------------------------------------------------------------------------------- JSON
def jsonable(value):
    """Tensors become floats (or lists); non-finite floats become the strings "inf"/"-inf"/"nan"."""
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dim() == 0:
            return jsonable(value.item())
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, pathlib.PurePath):
        return value.as_posix()
    if isinstance(value, argparse.Namespace):
        return jsonable(vars(value))
    if callable(value) and hasattr(value, "__qualname__") and not isinstance(value, type):
        # a function or bound method pickled in a state (older torch schedulers): its name, not its address
        return {"callable": "%s.%s" % (getattr(value, "__module__", "?"), value.__qualname__)}
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return repr(value)


def _as_count(value):
    value = jsonable(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# ---------------------------------------------------------------------------------------- model
def _build_classes():
    """Define the Lightning classes after the Lightning package has been imported."""
    nn = torch.nn
    F = torch.nn.functional

    class GoldenDataModule(pl.LightningDataModule):
        def __init__(self, batch_size=BATCH_SIZE, data_seed=7, noise=0.1):
            super().__init__()
            if hasattr(self, "save_hyperparameters"):
                self.save_hyperparameters()
            self.batch_size = batch_size
            g = torch.Generator()
            g.manual_seed(data_seed)
            n_train = STEPS_PER_EPOCH * batch_size
            n_val = VAL_BATCHES * batch_size
            x = torch.randn(n_train + n_val, 8, generator=g)
            w = torch.randn(8, 2, generator=g)
            y = x @ w + noise * torch.randn(n_train + n_val, 2, generator=g)
            self._train = torch.utils.data.TensorDataset(x[:n_train], y[:n_train])
            self._val = torch.utils.data.TensorDataset(x[n_train:], self.VAL_TARGET_SIGN * y[n_train:])

        VAL_TARGET_SIGN = 1.0

        def prepare_data(self):
            pass

        def setup(self, stage=None):
            pass

        def train_dataloader(self):
            return torch.utils.data.DataLoader(self._train, batch_size=self.batch_size, shuffle=False)

        def val_dataloader(self):
            return torch.utils.data.DataLoader(self._val, batch_size=self.batch_size, shuffle=False)

    class GoldenModule(pl.LightningModule):
        def __init__(self, hidden=16, lr=0.01, name="golden", schedule=None, **extra):
            super().__init__()
            self.save_hyperparameters()
            self._setup(hidden, lr, schedule, extra.get("batchnorm", True))

        def _setup(self, hidden, lr, schedule, batchnorm=True):
            if (schedule or {}).get("kind") == "gan" and _version_tuple(pl.__version__) >= (2, 0, 0):
                self.automatic_optimization = False  # 2.x: several optimizers only under manual optimization
            norm = nn.BatchNorm1d(hidden) if batchnorm else nn.Identity()
            self.net = nn.Sequential(nn.Linear(8, hidden), norm, nn.ReLU(), nn.Linear(hidden, 2))
            self._lr = lr
            self._schedule = schedule or {}
            self.step_counts = []
            self.live_optimizers = []
            self.live_schedulers = []
            self.batches_seen = {}  # epoch index -> training batches finished
            self.batch_indices = []  # [epoch, sample indices] of each batch that carries its indices
            self.save_hook = None  # callable(module, epoch, batch_idx) -> None
            self.checkpoint_loads = 0  # on_load_checkpoint calls (bookkeeping, never saved)

        def forward(self, x):
            return self.net(x)

        def _loss(self, batch):
            x, y = batch[0], batch[1]
            return F.mse_loss(self(x), y)

        def training_step(self, batch, batch_idx, *args):
            if len(batch) > 2:  # stateful_loader: (x, y, sample index)
                self.batch_indices.append([int(self.trainer.current_epoch), [int(i) for i in batch[2]]])
            loss = self._loss(batch)
            self.log("train_loss", loss, on_step=True, on_epoch=False)
            if self._schedule.get("kind") == "gan" and not getattr(self, "automatic_optimization", True):  # 1.0: none
                self._gan_manual_step(loss, batch_idx)
                return None
            return loss

        def _gan_manual_step(self, loss, batch_idx):
            """2.x: both optimizers step every batch (as 1.x's automatic loop does), schedulers per epoch."""
            opt_g, opt_d = self.optimizers()
            opt_g.zero_grad()
            opt_d.zero_grad()
            self.manual_backward(loss)
            opt_g.step()
            opt_d.step()
            if batch_idx == STEPS_PER_EPOCH - 1:
                for sched in self.live_schedulers:
                    sched.step()

        def validation_step(self, batch, batch_idx, *args):
            loss = self._loss(batch)
            self.log("val_loss", loss, on_step=False, on_epoch=True)
            return loss

        def _count(self, optimizer):
            """Count real optimizer.step() calls (the optimizer's own state may lack a step)."""
            idx = len(self.step_counts)
            self.step_counts.append(0)
            inner = optimizer.step
            counts = self.step_counts

            def step(opt_self, *a, **kw):
                counts[idx] += 1
                return inner(*a, **kw)

            optimizer.step = types.MethodType(step, optimizer)
            self.live_optimizers.append(optimizer)

        def configure_optimizers(self):
            self.step_counts[:] = []
            self.live_optimizers[:] = []
            self.live_schedulers[:] = []
            kind = self._schedule.get("kind")
            if kind == "gan":
                return self._two_optimizers()
            if kind == "cyclic":
                opt = torch.optim.SGD(self.parameters(), lr=self._lr, momentum=0.9)
            else:
                opt = torch.optim.Adam(self.parameters(), lr=self._lr)
            if kind == "none":  # weight_averaging: the optimizer alone (SWA installs its own scheduler)
                self._count(opt)
                return opt
            sched = _make_scheduler(opt, self._schedule)
            self.live_schedulers.append(sched)
            self._count(opt)
            if kind in ("onecycle", "cyclic"):
                return [opt], [{"scheduler": sched, "interval": "step"}]
            if kind == "plateau":
                return [opt], [{"scheduler": sched, "monitor": "val_loss"}]
            return [opt], [sched]

        def _two_optimizers(self):
            """GAN-style: a "generator" (body) and a "discriminator" (head) optimizer, each with a scheduler."""
            body = list(self.net[0].parameters()) + list(self.net[1].parameters())
            head = list(self.net[3].parameters())
            opt_g = torch.optim.Adam(body, lr=self._lr, betas=(0.5, 0.999))
            opt_d = torch.optim.Adam(head, lr=self._lr * 2, betas=(0.5, 0.999))
            sched_g = torch.optim.lr_scheduler.StepLR(opt_g, step_size=1, gamma=self._schedule.get("gamma", 0.5))
            sched_d = torch.optim.lr_scheduler.ExponentialLR(opt_d, gamma=0.9)
            self.live_schedulers.extend([sched_g, sched_d])
            self._count(opt_g)
            self._count(opt_d)
            return [opt_g, opt_d], [sched_g, sched_d]

        def on_load_checkpoint(self, checkpoint):
            # The matrix proves Lightning still calls a module's own hook (resume, load_from_checkpoint).
            self.checkpoint_loads += 1

        def on_save_checkpoint(self, checkpoint):
            # Adds to the file only when the matrix's round trip asks (SAVE_MARK): the goldens stay as they are.
            if SAVE_MARK is not None:
                checkpoint[SAVE_MARK] = {"hook": "on_save_checkpoint"}

        def on_train_batch_end(self, *args, **kwargs):
            # 0.10 calls (batch, batch_idx, dataloader_idx), later (outputs, batch, batch_idx, ...):
            # count batches ourselves instead of trusting a positional index.
            epoch = int(self.trainer.current_epoch)
            self.batches_seen[epoch] = self.batches_seen.get(epoch, 0) + 1
            if self.save_hook is not None:
                self.save_hook(self, epoch, self.batches_seen[epoch] - 1)

    class ManualModule(GoldenModule):
        """Two optimizers stepped by hand; the second only every other batch."""

        def _manual_step(self, batch, batch_idx):
            opt_a, opt_b = self.optimizers()
            loss = self._loss(batch)
            self.log("train_loss", loss, on_step=True, on_epoch=False)
            opt_a.zero_grad()
            opt_b.zero_grad()
            params = inspect.signature(self.manual_backward).parameters
            if "optimizer" in params:
                self.manual_backward(loss, opt_a)
            else:
                self.manual_backward(loss)
            opt_a.step()
            if batch_idx % 2 == 1:
                opt_b.step()
            if batch_idx == STEPS_PER_EPOCH - 1:
                for sched in self.live_schedulers:
                    sched.step()

        def configure_optimizers(self):
            self.step_counts[:] = []
            self.live_optimizers[:] = []
            self.live_schedulers[:] = []
            body = list(self.net[0].parameters()) + list(self.net[1].parameters())
            head = list(self.net[3].parameters())
            opt_a = torch.optim.Adam(body, lr=self._lr)
            opt_b = torch.optim.SGD(head, lr=0.1, momentum=0.9)
            sched_a = torch.optim.lr_scheduler.StepLR(opt_a, step_size=1, gamma=0.5)
            sched_b = torch.optim.lr_scheduler.ExponentialLR(opt_b, gamma=0.9)
            self.live_schedulers.extend([sched_a, sched_b])
            self._count(opt_a)
            self._count(opt_b)
            return [opt_a, opt_b], [sched_a, sched_b]

        @property
        def automatic_optimization(self):
            return False

        @automatic_optimization.setter
        def automatic_optimization(self, value):
            pass

    # Which training_step signature manual optimization accepts changed over time (1.1 passes
    # optimizer_idx with several optimizers, 1.6+ rejects it): try the plain one first.
    class ManualModulePlain(ManualModule):
        def training_step(self, batch, batch_idx):
            self._manual_step(batch, batch_idx)

    class ManualModuleIdx(ManualModule):
        def training_step(self, batch, batch_idx, optimizer_idx=None):
            self._manual_step(batch, batch_idx)

    for cls in (ManualModulePlain, ManualModuleIdx):
        cls.__name__ = "ManualModule"

    class GanModule(GoldenModule):
        """two_optimizers under 1.x automatic optimization: training_step is called once per optimizer."""

        def training_step(self, batch, batch_idx, optimizer_idx=None):
            return GoldenModule.training_step(self, batch, batch_idx)

    class ArgparseModule(GoldenModule):
        """hparams saved from an ``argparse.Namespace`` (``save_hyperparameters(args)``), the 1.x idiom."""

        def __init__(self, args):
            # As a user's module: LightningModule.__init__ only (GoldenModule's would save its own
            # arguments too). Naming __class__ gives this frame the cell that Lightning's
            # save_hyperparameters looks for to find the init argument's name (hparams_name "args").
            super(GoldenModule, self).__init__()
            assert __class__ is not None
            if isinstance(args, dict):  # load_from_checkpoint passes the saved hparams back as a dict
                args = argparse.Namespace(**args)
            self.save_hyperparameters(args)
            self._setup(args.hidden, args.lr, None)

    class CliModule(GoldenModule):
        """cli_saved: typed arguments, as LightningCLI reads a class's signature (``batch_size`` is linked)."""

        def __init__(self, hidden: int = 16, lr: float = 0.01, name: str = "golden", batch_size: int = BATCH_SIZE):
            # As ArgparseModule: LightningModule.__init__ only, so the saved hparams are these four
            # arguments (GoldenModule's would add its own ``schedule``), however the module is rebuilt.
            super(GoldenModule, self).__init__()
            assert __class__ is not None
            self.save_hyperparameters()
            self._setup(hidden, lr, None)

    class StatefulLoader(torch.utils.data.DataLoader):
        """A resumable train loader: ``state_dict``/``load_state_dict`` as Lightning 2.2+ saves and restores
        them (``torchdata``'s StatefulDataLoader likewise counts the batches it has yielded)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.batches_yielded = 0
            self._resume_at = 0

        def __iter__(self):
            start, self._resume_at = self._resume_at, 0
            self.batches_yielded = start
            for n, batch in enumerate(super().__iter__()):
                if n >= start:
                    self.batches_yielded = n + 1
                    yield batch

        def state_dict(self):
            return {"batches_yielded": self.batches_yielded}

        def load_state_dict(self, state_dict):
            self._resume_at = int(state_dict["batches_yielded"])

    from_mc = _model_checkpoint_class()

    class TopKCheckpoint(from_mc):
        """A user subclass: pre-1.5 keys its state by this class, 1.5+ by its qualname."""

    class RisingValDataModule(GoldenDataModule):
        """Validation targets negated: learning the training data makes val_loss rise."""

        VAL_TARGET_SIGN = -1.0

    class StatefulDataModule(GoldenDataModule):
        """stateful_loader: each training batch carries its sample indices; the loader saves how far it got."""

        def train_dataloader(self):
            x, y = self._train.tensors
            data = torch.utils.data.TensorDataset(x, y, torch.arange(len(x)))
            return StatefulLoader(data, batch_size=self.batch_size, shuffle=False)

    class CliDataModule(GoldenDataModule):
        """cli_saved: typed arguments for LightningCLI."""

        def __init__(self, batch_size: int = BATCH_SIZE, data_seed: int = 7, noise: float = 0.1):
            super().__init__(batch_size=batch_size, data_seed=data_seed, noise=noise)

    for cls in (
        GoldenDataModule,
        GoldenModule,
        TopKCheckpoint,
        ManualModulePlain,
        ManualModuleIdx,
        RisingValDataModule,
        ArgparseModule,
        GanModule,
        CliModule,
        StatefulLoader,
        StatefulDataModule,
        CliDataModule,
    ):
        cls.__module__ = MODULE_NAME
        cls.__qualname__ = cls.__name__
        setattr(_SELF, cls.__name__, cls)
    return GoldenDataModule, GoldenModule, (ManualModulePlain, ManualModuleIdx), TopKCheckpoint


def _make_scheduler(opt, schedule):
    lrs = torch.optim.lr_scheduler
    kind = schedule.get("kind")
    if kind == "onecycle":  # cycles Adam's betas[0] between 0.95 and 0.85 (cycle_momentum)
        return lrs.OneCycleLR(opt, max_lr=schedule["max_lr"], total_steps=schedule["total_steps"])
    if kind == "cyclic":  # cycles SGD's momentum between 0.9 and 0.8 (cycle_momentum)
        return lrs.CyclicLR(
            opt, base_lr=schedule["base_lr"], max_lr=schedule["max_lr"], step_size_up=schedule["step_size_up"]
        )
    if kind == "plateau":
        return lrs.ReduceLROnPlateau(opt, mode="min", factor=schedule["factor"], patience=schedule["patience"])
    return lrs.StepLR(opt, step_size=schedule.get("step_size", 1), gamma=schedule.get("gamma", 0.5))


def _argparse_namespace():
    """Hyperparameters as Lightning 1.x examples made them: Trainer.add_argparse_args plus the model's own."""
    parser = argparse.ArgumentParser(add_help=False)
    parser = pl.Trainer.add_argparse_args(parser)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.01)
    return parser.parse_args(["--hidden", "10", "--lr", "0.02"])


def module_class(scenario):
    """The LightningModule class a scenario saves with (and a resume must rebuild)."""
    recipe = _SELF
    if scenario == "argparse_hparams":
        return recipe.ArgparseModule
    if scenario == "cli_saved":
        return recipe.CliModule
    if scenario == "two_optimizers" and _version_tuple(pl.__version__) < (2, 0, 0):
        return recipe.GanModule  # 1.0 - 1.9 require the optimizer_idx argument; 2.x refuses it (manual)
    return recipe.GoldenModule


def make_module(scenario, hparams):
    """A module of the scenario's class built from (recorded) hyperparameters, as a resume rebuilds it."""
    if scenario == "argparse_hparams":
        return module_class(scenario)(argparse.Namespace(**hparams))
    if scenario == "cli_saved":  # the CLI's own entries (_class_path, _instantiator) are not arguments
        if isinstance(hparams.get("init_args"), dict):  # 2.3.x saved the CLI's config nested
            hparams = hparams["init_args"]
        params = inspect.signature(module_class(scenario).__init__).parameters
        hparams = {k: v for k, v in hparams.items() if k in params}
    return module_class(scenario)(**hparams)


def make_datamodule(scenario):
    """The datamodule a scenario trains on (also how a resume must rebuild it)."""
    cls = _SELF.GoldenDataModule
    if scenario in RISING_VAL:
        cls = _SELF.RisingValDataModule
    if scenario == "stateful_loader":
        cls = _SELF.StatefulDataModule
    if scenario == "cli_saved":
        cls = _SELF.CliDataModule
    return cls(**DATAMODULE_ARGS.get(scenario, {}))


def module_hparams(scenario):
    """The arguments a scenario's LightningModule is built with."""
    hparams = dict(hidden=16, lr=0.01, name="golden-" + scenario, schedule={"step_size": 1, "gamma": 0.5, "tags": ["a", "b"]})
    hparams.update(MODULE_ARGS.get(scenario, {}))
    return hparams


class LightningRecipe(object):
    """The built-in goldens as one recipe of the public contract (``pytest_ckpt_compat/goldens/recipes.py``).

    The matrix rebuilds every golden's objects through these methods, exactly as it does a team's
    recipe; ``main()`` below keeps its own runner for the quirks of releases back to 0.10.
    """

    scenarios = ALL_SCENARIOS

    @property
    def package(self):
        return "lightning" if pl.__name__.startswith("lightning") else "pytorch-lightning"

    def make_module(self, scenario, hparams=None):
        if hparams is None:
            hparams = vars(_argparse_namespace()) if scenario == "argparse_hparams" else module_hparams(scenario)
            if scenario == "cli_saved":
                hparams = dict(CLI_CONFIG)
        if scenario == "manual_opt":  # the 2.x ``training_step`` signature first
            manual = _classes()[2]
            return (manual[0] if isinstance(manual, (tuple, list)) else manual)(**hparams)
        return make_module(scenario, hparams)

    def make_datamodule(self, scenario):
        return make_datamodule(scenario)

    def make_callbacks(self, scenario, dirpath):
        return _callbacks(_classes()[3], dirpath, scenario)

    def trainer_kwargs(self, scenario, dirpath):
        kwargs = _trainer_kwargs(dirpath, scenario, "cpu", [])
        kwargs.pop("callbacks", None)
        return kwargs


def _classes():
    recipe = _SELF
    if getattr(recipe, "CLASSES", None) is None:
        recipe.CLASSES = _build_classes()
    return recipe.CLASSES


RECIPE = LightningRecipe()


def _model_checkpoint_class():
    return pl.callbacks.ModelCheckpoint


class StopRecipe(Exception):
    """Raised from a hook right after a mid-epoch save, to end training there."""


# -------------------------------------------------------------------------------------- trainer
def _trainer_kwargs(build_dir, scenario, accelerator, callbacks, precision=None):
    params = inspect.signature(pl.Trainer.__init__).parameters
    kw = {"max_epochs": MAX_EPOCHS, "logger": False, "num_sanity_val_steps": 0, "callbacks": callbacks}
    kw["default_root_dir"] = os.path.join(build_dir, scenario)
    if "enable_progress_bar" in params:
        kw["enable_progress_bar"] = False
    elif "progress_bar_refresh_rate" in params:
        kw["progress_bar_refresh_rate"] = 0
    if "enable_model_summary" in params:
        kw["enable_model_summary"] = False
    elif "weights_summary" in params:
        kw["weights_summary"] = None
    if "enable_checkpointing" in params:
        kw["enable_checkpointing"] = True
    elif "checkpoint_callback" in params:
        kw["checkpoint_callback"] = True
        if "ModelCheckpoint" in str(params["checkpoint_callback"].annotation):
            # 0.10 - 1.0.x: only the instance given here is wired to the trainer (save_function);
            # with True an extra default ModelCheckpoint would overwrite our class-keyed state.
            mcs = [cb for cb in callbacks if isinstance(cb, _model_checkpoint_class())]
            kw["checkpoint_callback"] = mcs[0]
            kw["callbacks"] = [cb for cb in callbacks if cb is not mcs[0]]
    if "devices" in params and "accelerator" in params and _version_tuple(pl.__version__) >= (1, 6, 0):
        kw["accelerator"] = accelerator
        kw["devices"] = 1
    elif accelerator == "gpu":
        kw["gpus"] = 1
    if precision is not None:
        kw["precision"] = precision
    if scenario in ACCUMULATE:
        kw["accumulate_grad_batches"] = ACCUMULATE[scenario]
    if scenario == "amp_16_mixed_cpu":  # saving and resuming alike: the scaler state is restored into it
        kw["plugins"] = [_cpu_amp_plugin()]
    unknown = [k for k in kw if k not in params]
    has_var_kw = any(p.kind == p.VAR_KEYWORD for p in params.values())
    if unknown and not has_var_kw:
        raise RuntimeError("Trainer does not accept %s" % unknown)
    return kw


def _model_checkpoint(cls, build_dir, scenario, sub, **kwargs):
    params = inspect.signature(cls.__init__).parameters
    dirpath = os.path.join(build_dir, scenario, sub)
    if "dirpath" in params:
        kwargs["dirpath"] = dirpath
    else:  # 0.10 era
        kwargs["filepath"] = os.path.join(dirpath, "{epoch}")
    return cls(**kwargs)


def _callbacks(TopKCheckpoint, build_dir, scenario):
    mc_cls = TopKCheckpoint if scenario == "ckpt_subclass" else _model_checkpoint_class()
    mc = _model_checkpoint(mc_cls, build_dir, scenario, "checkpoints", monitor="val_loss", save_top_k=2, save_last=True)
    es = pl.callbacks.EarlyStopping(monitor="val_loss", patience=3)
    callbacks = [mc, es]
    if scenario == "weight_averaging":
        callbacks.append(_swa())
    if scenario == "ema_averaging":
        callbacks.append(pl.callbacks.EMAWeightAveraging(decay=0.9))
    if scenario == "two_checkpoints":
        callbacks.append(
            _model_checkpoint(
                _model_checkpoint_class(), build_dir, scenario, "checkpoints-train", monitor="train_loss", save_top_k=1
            )
        )
    return callbacks


def _swa():
    """SWA from the first epoch with its own SWALR (the 1.2 - 1.x signature takes the same arguments)."""
    cls = pl.callbacks.StochasticWeightAveraging
    params = inspect.signature(cls.__init__).parameters
    kwargs = {"swa_lrs": 0.02, "swa_epoch_start": 1, "annealing_epochs": 1}
    return cls(**dict((k, v) for k, v in kwargs.items() if k in params))


# ---------------------------------------------------------------------------------------- truth
def _weights(module):
    digest = hashlib.sha256()
    values = []
    for tensor in module.state_dict().values():
        flat = [float(v) for v in tensor.detach().cpu().to(torch.float32).reshape(-1).tolist()]
        digest.update(struct.pack("<%df" % len(flat), *flat))
        values.extend(flat)
    return digest.hexdigest(), math.fsum(values)


def _rel(path, build_dir):
    if not path:
        return path
    path = str(path)
    if path.startswith(build_dir.rstrip("/") + "/"):
        return os.path.relpath(path, build_dir)
    return os.path.basename(path)


def _callback_truth(trainer, build_dir):
    out = {}
    mc_cls = _model_checkpoint_class()
    es_cls = pl.callbacks.EarlyStopping
    for cb in trainer.callbacks:
        if isinstance(cb, mc_cls):
            entry = {"class": type(cb).__qualname__}
            for name in ("monitor", "mode", "save_top_k"):
                if hasattr(cb, name):
                    entry[name] = jsonable(getattr(cb, name))
            for name in ("best_model_score", "kth_value", "current_score"):
                if hasattr(cb, name):
                    entry[name] = jsonable(getattr(cb, name))
            if hasattr(cb, "best_k_models"):
                scores = [jsonable(v) for v in cb.best_k_models.values()]
                entry["best_k_models"] = sorted(scores, key=lambda v: float(v))
            for name in ("best_model_path", "last_model_path", "kth_best_model_path"):
                if hasattr(cb, name):
                    entry[name] = _rel(getattr(cb, name), build_dir)
        elif isinstance(cb, es_cls):
            entry = {"class": type(cb).__qualname__}
            for name in ("wait_count", "stopped_epoch", "best_score", "patience", "monitor", "mode"):
                if hasattr(cb, name):
                    entry[name] = jsonable(getattr(cb, name))
        else:
            continue
        try:
            state_key = cb.state_key
        except Exception:
            state_key = None
        entry["state_key"] = state_key if isinstance(state_key, str) else None
        label = "EarlyStopping" if isinstance(cb, es_cls) else "ModelCheckpoint"
        if label in out:
            n = 2
            while "%s#%d" % (label, n) in out:
                n += 1
            label = "%s#%d" % (label, n)
        out[label] = entry
    return out


def _find_scaler(trainer):
    candidates = [trainer]
    for path in ("precision_plugin", "strategy.precision_plugin", "accelerator.precision_plugin",
                 "accelerator_backend.precision_plugin", "precision_connector.precision_plugin"):
        obj = trainer
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except Exception:
            continue
        candidates.append(obj)
    for obj in candidates:
        scaler = getattr(obj, "scaler", None)
        if scaler is not None and hasattr(scaler, "state_dict"):
            return jsonable(scaler.state_dict())
    return None


def _relativize(value, build_dir):
    """Absolute paths under the build folder become relative (keys too): no machine path in truth."""
    if isinstance(value, str):
        return _rel(value, build_dir) if value.startswith(build_dir.rstrip("/") + "/") else value
    if isinstance(value, dict):
        return {_relativize(str(k), build_dir): _relativize(v, build_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_relativize(v, build_dir) for v in value]
    return value


def _callback_states(trainer, build_dir):
    """Every callback's full ``state_dict()`` (1.5+ API), keyed like ``_callback_truth``."""
    out = {}
    for cb in trainer.callbacks:
        if not hasattr(cb, "state_dict"):
            continue
        try:
            state = cb.state_dict()
        except Exception:
            continue
        if not state:
            continue
        label = type(cb).__name__
        if isinstance(cb, _model_checkpoint_class()):
            label = "ModelCheckpoint"
        if label in out:
            n = 2
            while "%s#%d" % (label, n) in out:
                n += 1
            label = "%s#%d" % (label, n)
        out[label] = _relativize(jsonable(state), build_dir)
    return out


def _loop_truth(trainer):
    """Live loop state: the logger step and the validation loop's progress, where the release has them."""
    out = {}
    fit_loop = getattr(trainer, "fit_loop", None)
    epoch_loop = getattr(fit_loop, "epoch_loop", None)
    if epoch_loop is not None and hasattr(epoch_loop, "_batches_that_stepped"):
        out["batches_that_stepped"] = int(epoch_loop._batches_that_stepped)
    val_loop = getattr(epoch_loop, "val_loop", None)
    if val_loop is not None and hasattr(val_loop, "state_dict"):
        try:
            out["val_loop_state"] = jsonable(val_loop.state_dict())
        except Exception:
            pass
    if fit_loop is not None and hasattr(fit_loop, "state_dict"):
        try:
            out["fit_loop_state"] = jsonable(fit_loop.state_dict())
        except Exception:
            pass
    return out


def record_truth(trainer, module, datamodule, build_dir, steps_per_epoch=STEPS_PER_EPOCH):
    """Everything read from live objects in the saving process.

    ``module`` is this recipe's module or any object with the same live records (``batches_seen``,
    ``step_counts``, ``live_optimizers``, ``live_schedulers``, ``hparams``, ``state_dict``): the
    team recorder (``pytest_ckpt_compat/goldens/recorder.py``) reads them off any LightningModule.
    """
    epochs = module.batches_seen
    completed = sum(1 for n in epochs.values() if n >= steps_per_epoch)
    current = 0
    if epochs:
        last = max(epochs)
        if epochs[last] < steps_per_epoch:
            current = epochs[last]
    optimizer_state = []
    for opt in module.live_optimizers:
        steps = []
        for group in opt.param_groups:
            for p in group["params"]:
                st = opt.state.get(p, {})
                if "step" in st:
                    steps.append(_as_count(st["step"]))
        entry = {"step": steps, "lr": [jsonable(g["lr"]) for g in opt.param_groups]}
        # every hyperparameter of every group (betas, momentum, ...): cycling schedulers change them
        entry["param_groups"] = [{k: jsonable(v) for k, v in g.items() if k != "params"} for g in opt.param_groups]
        optimizer_state.append(entry)
    schedulers = []
    for sched in module.live_schedulers:
        sd = sched.state_dict()
        schedulers.append({k: jsonable(sd[k]) for k in ("last_epoch", "_step_count", "_last_lr") if k in sd})
    dm_hparams = None
    if datamodule is not None and hasattr(type(datamodule), "CHECKPOINT_HYPER_PARAMS_KEY"):
        dm_hparams = jsonable(dict(datamodule.hparams))
    sha, total = _weights(module)
    truth = {
        "completed_epochs": completed,
        "optimizer_steps": list(module.step_counts),
        "batches_in_current_epoch": current,
        "steps_per_epoch": steps_per_epoch,
        "max_epochs": int(trainer.max_epochs),
        "hparams": jsonable(dict(module.hparams)),
        "datamodule_hparams": dm_hparams,
        "optimizer_state": optimizer_state,
        "schedulers": schedulers,
        "callbacks": _callback_truth(trainer, build_dir),
        "scaler": _find_scaler(trainer),
        "weights_sha256": sha,
        "weights_sum": total,
        "trainer": {"current_epoch": int(trainer.current_epoch), "global_step": int(trainer.global_step)},
        "scheduler_state": [_relativize(jsonable(s.state_dict()), build_dir) for s in module.live_schedulers],
        "callback_state": _callback_states(trainer, build_dir),
        "loops": _loop_truth(trainer),
        "accumulate_grad_batches": jsonable(getattr(trainer, "accumulate_grad_batches", None)),
    }
    averaged = _averaged_truth(trainer)
    if averaged:  # only where a WeightAveraging callback runs: every other truth stays as it was
        truth["averaged"] = averaged
    return truth


def _averaged_truth(trainer):
    """2.6's WeightAveraging callbacks keep their AveragedModel outside their state_dict(): its digest
    (n_averaged included) and its module's, which the file's state_dict holds while training goes on."""
    base = getattr(pl.callbacks, "WeightAveraging", None)
    out = {}
    for cb in trainer.callbacks:
        if base is not None and isinstance(cb, base) and cb._average_model is not None:
            model_sha, model_sum = _weights(cb._average_model)
            module_sha, module_sum = _weights(cb._average_model.module)
            out[type(cb).__name__] = {
                "model_sha256": model_sha,
                "model_sum": model_sum,
                "module_sha256": module_sha,
                "module_sum": module_sum,
            }
    return out


def _load_saved(path):
    kwargs = {"map_location": "cpu"}
    if "weights_only" in inspect.signature(torch.load).parameters:
        kwargs["weights_only"] = False
    ckpt = torch.load(path, **kwargs)
    return {
        "version": ckpt.get("pytorch-lightning_version"),
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        "keys": sorted(str(k) for k in ckpt.keys()),
        "callback_keys": sorted(str(k) for k in (ckpt.get("callbacks") or {}).keys()),
    }


# ------------------------------------------------------------------------------------ scenarios
def supported(scenario, accelerator):
    """Return None when this release can make the scenario, else the reason it cannot."""
    v = _version_tuple(pl.__version__)
    if scenario == "amp_16_mixed":
        return None if accelerator == "gpu" else "needs a GPU (--accelerator gpu)"
    if scenario == "amp_16_mixed_cpu":
        return _cpu_amp_unsupported()
    if scenario == "manual_opt" and v < (1, 1, 0):
        return "manual optimization with several optimizers needs Lightning >= 1.1"
    if scenario == "two_checkpoints" and v < (1, 5, 0):
        return "two ModelCheckpoint states need string state keys (Lightning >= 1.5)"
    if scenario == "fault_tolerant" and not ((1, 4, 0) <= v < (1, 6, 0)):
        return "fault-tolerant loop layouts are recorded for Lightning 1.4 and 1.5 only"
    if scenario == "onecycle_lr" and not hasattr(torch.optim.lr_scheduler, "OneCycleLR"):
        return "this torch has no OneCycleLR (torch >= 1.3)"
    if scenario == "cyclic_lr":
        return _cyclic_lr_unpicklable()
    if scenario == "argparse_hparams" and not hasattr(pl.Trainer, "add_argparse_args"):
        return "Trainer.add_argparse_args was removed in Lightning 2.0"
    if scenario == "ema_averaging" and not hasattr(pl.callbacks, "EMAWeightAveraging"):
        return "WeightAveraging / EMAWeightAveraging exist from Lightning 2.6"
    if scenario == "weight_averaging" and not hasattr(pl.callbacks, "StochasticWeightAveraging"):
        return "StochasticWeightAveraging exists from Lightning 1.2"
    if scenario == "stateful_loader" and v < (2, 2, 0):
        return "Lightning saves a stateful dataloader's state_dict (the fit loop's combined_loader) from 2.2"
    if scenario == "cli_saved":
        return _cli_unsupported()
    return None


def _cli_module():
    """The module of LightningCLI: ``cli`` from 1.7, ``utilities.cli`` in 1.3 - 1.6."""
    import importlib

    for name in ("cli", "utilities.cli"):
        try:
            mod = importlib.import_module(pl.__name__ + "." + name)
        except ImportError:
            continue
        if hasattr(mod, "LightningCLI"):
            return mod
    return None


def _cli_unsupported():
    import importlib.util

    if importlib.util.find_spec("jsonargparse") is None:
        return "jsonargparse is not installed (record it with --with 'jsonargparse[signatures]')"
    if _cli_module() is None:
        return "LightningCLI exists from Lightning 1.3"
    return None


def run_cli(build_dir):
    """``fit`` through LightningCLI from a config file (class_path/init_args where the release has
    subclass mode, 1.4+) with ``data.batch_size`` linked to the model's; returns trainer, model, datamodule."""
    recipe = _SELF
    base = _cli_module().LightningCLI
    params = inspect.signature(base.__init__).parameters
    subclass = "subclass_mode_model" in params

    class GoldenCLI(base):
        def add_arguments_to_parser(self, parser):
            parser.link_arguments("data.batch_size", "model.init_args.batch_size" if subclass else "model.batch_size")

    model_args = dict((k, v) for k, v in CLI_CONFIG.items() if k != "batch_size")
    if subclass:
        model_args = {"class_path": MODULE_NAME + ".CliModule", "init_args": model_args}
    folder = os.path.join(build_dir, "cli_saved")
    os.makedirs(folder, exist_ok=True)
    config = os.path.join(folder, "config.yaml")
    with open(config, "w") as fh:  # JSON is YAML
        json.dump({"model": model_args, "data": {"batch_size": CLI_CONFIG["batch_size"]}}, fh, indent=1)
    callbacks = _callbacks(_classes()[3], build_dir, "cli_saved")
    kwargs = {"trainer_defaults": _trainer_kwargs(build_dir, "cli_saved", "cpu", callbacks), "save_config_callback": None}
    if subclass:
        kwargs["subclass_mode_model"] = True
    if "seed_everything_default" in params:
        kwargs["seed_everything_default"] = 1234
    argv = (["fit"] if "run" in params else []) + ["--config", config]
    if "args" in params:
        kwargs["args"] = argv
    model_cls = recipe.GoldenModule if subclass else recipe.CliModule
    old_argv = sys.argv
    # 1.3 - 1.4 parse the command line only; 1.8 - 1.9 refuse ``args`` next to command-line arguments
    sys.argv = ["recipe.py"] + ([] if "args" in params else argv)
    try:
        cli = GoldenCLI(model_cls, recipe.CliDataModule, **kwargs)
    finally:
        sys.argv = old_argv
    return cli.trainer, cli.model, cli.datamodule


def _loader_truth(trainer, module, datamodule):
    """stateful_loader: the samples the interrupted epoch consumed, the batch a resume must yield next
    (the loader's fixed order), and the loader states the fit loop saves."""
    epoch = int(trainer.current_epoch)
    consumed = [idx for e, idx in module.batch_indices if e == epoch]
    order = [[int(i) for i in batch[2]] for batch in datamodule.train_dataloader()]
    combined = getattr(trainer.fit_loop, "_combined_loader", None)
    return {
        "epoch": epoch,
        "consumed_batches": consumed,
        "next_batch": order[len(consumed)] if len(consumed) < len(order) else None,
        "loader_states": jsonable(combined._state_dicts()) if combined is not None else None,
    }


def _cyclic_lr_unpicklable():
    """torch 1.13 keeps a ``weakref.WeakMethod`` in CyclicLR's state: no checkpoint can hold it."""
    import pickle

    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.01, momentum=0.9)
    try:
        pickle.dumps(torch.optim.lr_scheduler.CyclicLR(opt, base_lr=0.001, max_lr=0.01).state_dict())
    except Exception as exc:
        return (
            "this torch's CyclicLR state cannot be pickled (%s: %s), so Lightning cannot save it "
            "(Lightning #15901; fixed in torch 2.0, pytorch PR #91400)" % (type(exc).__name__, exc)
        )
    return None


def _cpu_amp_unsupported():
    """Why this environment cannot run 16-mixed on the CPU with a GradScaler, or None.

    torch >= 2.3 has a CPU GradScaler (``torch.amp.GradScaler("cpu")``) and Lightning >= 2.0 takes it
    in its mixed-precision plugin: the scaler state (scale, growth tracker) of a real run without a GPU.
    """
    if _version_tuple(pl.__version__) < (2, 0, 0):
        return "the 16-mixed plugin with a CPU GradScaler needs Lightning >= 2.0"
    try:
        torch.amp.GradScaler("cpu")
        with torch.autocast("cpu", dtype=torch.float16):
            torch.nn.Linear(2, 2)(torch.ones(1, 2))
    except Exception as exc:  # torch < 2.3: no torch.amp.GradScaler, or no float16 CPU autocast
        return "this torch has no CPU GradScaler / float16 CPU autocast (%s: %s)" % (type(exc).__name__, exc)
    return None


def _cpu_amp_plugin():
    precision = pl.plugins.precision
    cls = getattr(precision, "MixedPrecision", None) or precision.MixedPrecisionPlugin  # the 2.0 - 2.1.0 name
    return cls("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))


def run_scenario(scenario, classes, build_dir, out_dir, accelerator):
    if scenario != "manual_opt":
        return _run_scenario(scenario, classes, module_class(scenario), build_dir, out_dir, accelerator)
    errors = []
    for variant in classes[2]:
        try:
            return _run_scenario(scenario, classes, variant, build_dir, out_dir, accelerator)
        except Exception as exc:  # the signature this release rejects says so in the message
            if "optimizer_idx" not in str(exc):
                raise
            errors.append(exc)
    raise errors[-1]


def _run_scenario(scenario, classes, module_cls, build_dir, out_dir, accelerator):
    GoldenDataModule, _, _, TopKCheckpoint = classes
    shutil.rmtree(os.path.join(build_dir, scenario), ignore_errors=True)
    seed = 1234
    random.seed(seed)
    torch.manual_seed(seed)
    if hasattr(pl, "seed_everything"):
        pl.seed_everything(seed)
    if scenario == "fault_tolerant":
        os.environ["PL_FAULT_TOLERANT_TRAINING"] = "1"
    else:
        os.environ.pop("PL_FAULT_TOLERANT_TRAINING", None)
    if scenario == "cli_saved":
        return _run_cli_scenario(build_dir, out_dir)
    datamodule = make_datamodule(scenario)
    if scenario == "argparse_hparams":
        module = module_cls(_argparse_namespace())
    else:
        module = module_cls(**module_hparams(scenario))
    precision = None
    if scenario == "amp_16_mixed":
        precision = "16-mixed" if _version_tuple(pl.__version__) >= (2, 0, 0) else 16
    # Only the AMP scenario needs the GPU; every other golden stays a portable CPU save.
    trainer_acc = "gpu" if scenario == "amp_16_mixed" else "cpu"
    trainer = pl.Trainer(**_trainer_kwargs(build_dir, scenario, trainer_acc, _callbacks(TopKCheckpoint, build_dir, scenario), precision))
    path = os.path.join(out_dir, scenario + ".ckpt")
    result = {}

    def save_now():
        if scenario == "save_weights_only":
            trainer.save_checkpoint(path, weights_only=True)
        else:
            trainer.save_checkpoint(path)
        result["truth"] = record_truth(trainer, module, datamodule, build_dir)
        if scenario == "stateful_loader":
            result["truth"]["stateful_loader"] = _loader_truth(trainer, module, datamodule)

    mid = scenario in MID_EPOCH_SCENARIOS
    if mid:
        def hook(mod, epoch, batch_idx):
            if (epoch, batch_idx) == MID_EPOCH_AT:
                save_now()
                raise StopRecipe()

        module.save_hook = hook
    try:
        trainer.fit(module, datamodule=datamodule)
    except StopRecipe:
        pass
    except BaseException as exc:  # Lightning may wrap the hook exception
        if "truth" not in result or not _caused_by_stop(exc):
            raise
    if not mid:
        save_now()
    if "truth" not in result:
        raise RuntimeError("scenario %s never reached its save point" % scenario)
    return _result(scenario, path, result["truth"])


def _result(scenario, path, truth):
    saved = _load_saved(path)
    return {
        "file": scenario + ".ckpt",
        "requires": "gpu" if scenario == "amp_16_mixed" else None,
        "saved_version": saved.pop("version"),
        "saved": saved,
        "truth": truth,
    }


def _run_cli_scenario(build_dir, out_dir):
    """cli_saved: LightningCLI trains to the end, then the file is saved as end_of_fit's is."""
    trainer, module, datamodule = run_cli(build_dir)
    path = os.path.join(out_dir, "cli_saved.ckpt")
    trainer.save_checkpoint(path)
    return _result("cli_saved", path, record_truth(trainer, module, datamodule, build_dir))


def _caused_by_stop(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, StopRecipe):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def main(argv=None):
    global pl, torch
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="pytorch-lightning", choices=["pytorch-lightning", "lightning"])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--scenario", action="append", default=None)
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    args = parser.parse_args(argv)

    import torch as _torch

    torch = _torch
    if args.package == "lightning":
        import lightning.pytorch as _pl
    else:
        import pytorch_lightning as _pl
    pl = _pl

    build_dir = os.path.abspath(args.build_dir)
    os.makedirs(build_dir, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    os.chdir(build_dir)
    explicit = args.scenario is not None
    wanted = args.scenario or list(ALL_SCENARIOS)
    for name in wanted:
        if name not in ALL_SCENARIOS:
            parser.error("unknown scenario %r (known: %s)" % (name, ", ".join(ALL_SCENARIOS)))
    classes = _build_classes()
    report = {
        "lightning_version": pl.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "scenarios": {},
        "skipped": {},
        "failed": {},
    }
    for name in wanted:
        reason = supported(name, args.accelerator)
        if reason:
            report["skipped"][name] = reason
            continue
        try:
            report["scenarios"][name] = run_scenario(name, classes, build_dir, args.out, args.accelerator)
            print("recipe: made %s" % name, flush=True)
        except BaseException as exc:  # noqa: BLE001 - report every failure with its traceback
            traceback.print_exc()
            report["failed"][name] = "%s: %s" % (type(exc).__name__, exc)
            partial = os.path.join(args.out, name + ".ckpt")
            if os.path.exists(partial):
                os.remove(partial)
    with open(os.path.join(args.out, "recipe-result.json"), "w") as fh:
        json.dump(report, fh, indent=1, sort_keys=True)
    fatal = [n for n in report["failed"] if explicit or n in CORE_SCENARIOS]
    if fatal:
        print("recipe: FAILED %s" % ", ".join("%s (%s)" % (n, report["failed"][n]) for n in fatal), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
