"""The golden matrix: what "this old checkpoint still works" means, check by check.

Lightning's own legacy tests only assert "loads and runs" (Lightning-AI/pytorch-lightning#5491);
here every check compares against the ``truth`` the recipe read from the live objects at saving
time, exactly (no tolerances): counters, optimizer moments and steps, schedulers, callback states.

Checks, in the order a user meets them: ``fetch`` → ``upgrade`` → ``load`` → ``resume`` →
``weights_only``. Each is runnable alone; shared work (fetch, load, upgrade, write) is cached per
process in a :class:`~.workspace.Workspace`.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from packaging.version import Version

from . import versions
from .compare import CheckFailed, Mismatches
from .goldens import Golden
from .workspace import Workspace

CHECKS = ("fetch", "upgrade", "load", "resume", "weights_only")
_FORMAT_1_6 = Version("1.6.0")


# ------------------------------------------------------------------------------------ skipping
def skip_reason(golden: Golden, check: str = "fetch") -> str | None:
    """Why a cell cannot run here (never for ``fetch``: a golden is always fetchable)."""
    if check == "fetch":
        return None
    installed = versions.parse(versions.installed_lightning_version())
    saved = versions.parse(golden.saved_version)
    if saved > installed:
        return f"golden {golden.id} was saved by Lightning {saved}, newer than the installed {installed}"
    if golden.requires == "gpu" and check in ("load", "resume"):
        import torch

        if not torch.cuda.is_available():
            return f"golden {golden.id} requires a GPU (requires: gpu) and none is available"
    return None


def run(ws: Workspace, golden: Golden, check: str, tmp_path: Path) -> None:
    """Entry point used by the plugin's test: one matrix cell."""
    __tracebackhide__ = True
    {"fetch": check_fetch, "upgrade": check_upgrade, "load": check_load, "weights_only": check_weights_only}.get(
        check, lambda ws, g: check_resume(ws, g, tmp_path)
    )(ws, golden)


# ------------------------------------------------------------------------------------ checks
def check_fetch(ws: Workspace, golden: Golden) -> None:
    """Fetched from the configured source and identical (sha256) to what the registry pins."""
    path = ws.fetch(golden)
    if not path.is_file() or path.stat().st_size == 0:
        raise CheckFailed(f"{golden.name}: fetched file {path} is missing or empty")


def check_upgrade(ws: Workspace, golden: Golden) -> None:
    """Upgraded by our catalogue alone: ledger written, version stamped, origin kept."""
    from .engine import LEDGER_KEY

    checkpoint, _ = ws.upgraded(golden)
    installed = versions.installed_lightning_version()
    m = Mismatches(f"{golden.id} upgrade")
    ledger = checkpoint.get(LEDGER_KEY)
    current = versions.parse(golden.saved_version) == versions.parse(installed)
    if ledger is None and current:
        pass  # nothing to apply to a golden of the installed release: the engine leaves it untouched
    elif not isinstance(ledger, dict) or not isinstance(ledger.get("applied"), dict) or "lightning" not in ledger["applied"]:
        m.add(f"no ledger: checkpoint[{LEDGER_KEY!r}] = {ledger!r}")
    m.eq(f"checkpoint[{versions.VERSION_KEY!r}]", checkpoint.get(versions.VERSION_KEY), installed)
    if versions.parse(golden.saved_version) != versions.parse(installed):
        m.eq(f"checkpoint[{versions.LEGACY_VERSION_KEY!r}]", checkpoint.get(versions.LEGACY_VERSION_KEY), golden.saved_version)
    elif versions.LEGACY_VERSION_KEY in checkpoint:
        m.add(f"{versions.LEGACY_VERSION_KEY!r} written although the golden is already at {installed}")
    m.raise_if_any()


def check_load(ws: Workspace, golden: Golden) -> None:
    """``load_from_checkpoint`` through our integration: hparams and weights exactly as saved."""
    import torch

    from .lightning import lightning_migration_disabled, load_from_checkpoint

    recipe, truth = ws.recipe, golden.truth
    datamodule_cls, _, _, _ = recipe.CLASSES
    m = Mismatches(f"{golden.id} load_from_checkpoint")
    path = ws.fetch(golden)
    trust = golden.name in ws.trusted or _needs_trust(ws, golden)
    with lightning_migration_disabled():
        model = load_from_checkpoint(_module_class(recipe, golden), path, trust=trust)
    m.eq("hparams", recipe.jsonable(dict(model.hparams)), truth["hparams"])
    sha, total = recipe._weights(model)
    m.eq("weights_sha256", sha, truth["weights_sha256"])
    m.eq("weights_sum", total, truth["weights_sum"])
    saved = ws.load(golden).get("state_dict", {})
    live = model.state_dict()
    if list(live) != list(saved):
        m.add(f"state_dict keys differ: loaded {sorted(set(live) ^ set(saved))} are not in both the model and the file")
    for key, tensor in saved.items():
        if key in live and not torch.equal(live[key], tensor):
            m.add(f"state_dict[{key!r}] differs from the golden file")
    if truth.get("datamodule_hparams") is not None:
        with lightning_migration_disabled():
            dm = load_from_checkpoint(datamodule_cls, path, trust=trust)
        m.eq("datamodule hparams", recipe.jsonable(dict(dm.hparams)), truth["datamodule_hparams"])
    m.raise_if_any()


def check_weights_only(ws: Workspace, golden: Golden) -> None:
    """The upgraded file needs no allowlist: plain ``torch.load(weights_only=True)`` reads it."""
    import torch

    _, path = ws.upgraded(golden)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckFailed(f"{golden.id}: upgraded file does not load with weights_only=True: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    installed = versions.installed_lightning_version()
    if loaded.get(versions.VERSION_KEY) != installed:
        raise CheckFailed(f"{golden.id}: weights_only load gave version {loaded.get(versions.VERSION_KEY)!r}, expected {installed!r}")


def check_resume(ws: Workspace, golden: Golden, tmp_path: Path) -> None:
    """``fit(ckpt_path=upgraded)`` restores exactly what was saved, then trains one more epoch.

    Where Lightning must refuse (a weights-only file; on ``end_of_fit`` also a copy missing one
    weight or the scheduler state), the check passes only if ``fit`` raises.
    """
    __tracebackhide__ = True
    recipe, truth = ws.recipe, golden.truth
    pl = recipe.pl
    upgraded, path = ws.upgraded(golden)
    golden_file = ws.load(golden)
    expected = _expected_counters(golden, upgraded, golden_file)
    if golden.scenario in REFUSED_SCENARIOS:
        _check_refused(ws, golden, path, tmp_path, REFUSED_SCENARIOS[golden.scenario])
        return
    probe = _make_probe(pl)(golden, truth, expected, golden_file, upgraded, recipe, tmp_path)
    trainer, model, datamodule = _fit(ws, golden, path, tmp_path, upgraded, max_epochs=expected["epoch"] + 1, extra=[probe])
    m = Mismatches(f"{golden.id} after the extra epoch")
    _check_datamodule(m, datamodule, truth, upgraded, recipe)
    if not probe.restored:
        m.add("the probe never ran: training did not start")
    m.eq("batches trained after resuming", len(probe.losses), expected["batches"])
    bad = [i for i, loss in enumerate(probe.losses) if loss is None or not math.isfinite(loss)]
    if bad:
        m.add(f"non-finite or missing train_loss at batches {bad}: {probe.losses}")
    m.eq("final global_step", int(trainer.global_step), expected["global_step"] + sum(model.step_counts))
    m.raise_if_any()
    if golden.scenario in STRICT_PROBE_SCENARIOS:
        _check_refuses_broken_copies(ws, golden, upgraded, path, tmp_path)


# ------------------------------------------------------------------------------------ refusals
# A resume must fail loudly where Lightning has to refuse: a weights-only file has no training
# state, so ``fit(ckpt_path=...)`` must raise instead of silently starting from scratch.
REFUSED_SCENARIOS = {"save_weights_only": (KeyError, "optimizer")}
# On these goldens the resume check also feeds Lightning two broken copies of the upgraded file
# (made at test time, never stored): one weight missing (strict loading must refuse) and no
# scheduler state (must raise, not be skipped).
STRICT_PROBE_SCENARIOS = ("end_of_fit",)


def _fit(ws: Workspace, golden: Golden, path: Path, tmp_path: Path, upgraded: dict, *, max_epochs: int, extra: list = ()):
    """One ``fit(ckpt_path=path)`` with the recipe's model, datamodule, callbacks and Trainer arguments."""
    import torch

    from .lightning import CheckpointUpgrade, lightning_migration_disabled, match_callback_states

    recipe = ws.recipe
    _, _, _, topk_cls = recipe.CLASSES
    torch.manual_seed(1234)
    model = _module_class(recipe, golden)(**golden.truth["hparams"])
    callbacks = recipe._callbacks(topk_cls, str(tmp_path), golden.scenario)
    _align_checkpoint_dirs(callbacks, upgraded, match_callback_states, tmp_path)
    kwargs = recipe._trainer_kwargs(str(tmp_path), golden.scenario, "cpu", callbacks + list(extra) + [CheckpointUpgrade()])
    kwargs.update(max_epochs=max_epochs, deterministic=True)
    datamodule = _make_datamodule(recipe, golden.scenario)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = recipe.pl.Trainer(**kwargs)
        with lightning_migration_disabled():
            trainer.fit(model, datamodule=datamodule, ckpt_path=str(path))
    return trainer, model, datamodule


def _make_datamodule(recipe, scenario: str):
    if hasattr(recipe, "make_datamodule"):
        return recipe.make_datamodule(scenario)
    return recipe.CLASSES[0]()


def _check_refused(ws: Workspace, golden: Golden, path: Path, tmp_path: Path, expect: tuple, what: str = "") -> None:
    """``fit(ckpt_path=path)`` must raise ``expect[0]`` naming ``expect[1]`` before any batch trains."""
    __tracebackhide__ = True
    error_cls, needle = expect
    upgraded, _ = ws.upgraded(golden)
    try:
        _fit(ws, golden, path, tmp_path, upgraded, max_epochs=int(golden.truth["completed_epochs"]) + 1)
    except error_cls as exc:
        if needle.lower() not in str(exc).lower():
            raise CheckFailed(f"{golden.id}: resuming {what or 'it'} raised {type(exc).__name__} without naming {needle!r}: {exc}") from None
        return
    except Exception as exc:
        raise CheckFailed(f"{golden.id}: resuming {what or 'it'} raised {type(exc).__name__}: {exc}, expected {error_cls.__name__}") from None
    raise CheckFailed(f"{golden.id}: resuming {what or 'it'} succeeded; Lightning must refuse it ({error_cls.__name__} naming {needle!r})")


def _check_refuses_broken_copies(ws: Workspace, golden: Golden, upgraded: dict, path: Path, tmp_path: Path) -> None:
    import torch

    from .compare import copy_checkpoint

    broken = copy_checkpoint(upgraded)
    first = next(iter(broken["state_dict"]))
    del broken["state_dict"][first]
    dest = tmp_path / "broken-missing-weight.ckpt"
    torch.save(broken, dest)
    _check_refused(ws, golden, dest, tmp_path / "strict", (RuntimeError, first), f"a copy without state_dict[{first!r}]")
    broken = copy_checkpoint(upgraded)
    del broken["lr_schedulers"]
    dest = tmp_path / "broken-no-schedulers.ckpt"
    torch.save(broken, dest)
    _check_refused(ws, golden, dest, tmp_path / "no-sched", (KeyError, "scheduler"), "a copy without lr_schedulers")


def _check_datamodule(m: Mismatches, datamodule, truth: dict, upgraded: dict, recipe) -> None:
    """The datamodule a resume rebuilds has the hparams that were saved (and recorded live)."""
    if truth.get("datamodule_hparams") is None or not hasattr(datamodule, "hparams"):
        return
    live = recipe.jsonable(dict(datamodule.hparams))
    m.eq("datamodule hparams", live, truth["datamodule_hparams"])
    saved = upgraded.get("datamodule_hyper_parameters")
    if saved is not None:
        m.eq("saved datamodule_hyper_parameters", recipe.jsonable(dict(saved)), truth["datamodule_hparams"])


# ------------------------------------------------------------------------------------ resume helpers
def _module_class(recipe, golden: Golden):
    """The recipe's LightningModule for the scenario (manual: the 2.x ``training_step`` signature first)."""
    _, module_cls, manual_cls, _ = recipe.CLASSES
    if golden.scenario != "manual_opt":
        return module_cls
    return manual_cls[0] if isinstance(manual_cls, (tuple, list)) else manual_cls


def _needs_trust(ws: Workspace, golden: Golden) -> bool:
    ws.load(golden)
    return golden.name in ws.trusted


def _expected_counters(golden: Golden, upgraded: dict, golden_file: dict) -> dict:
    """Where a resume must start, per the documented counter decision.

    Files without loop state (before 1.6, unless saved fault-tolerant) resume at their saved
    ``epoch`` with ``global_step`` = the optimizer steps the file proves: optimizers that keep no
    ``step`` count (SGD) cannot be counted. Files with loop state resume exactly where they stopped.
    """
    truth = golden.truth
    steps = sum(truth["optimizer_steps"])
    if versions.parse(golden.saved_version) < _FORMAT_1_6 and "loops" not in golden_file:
        provable = sum(n for n, opt in zip(truth["optimizer_steps"], truth["optimizer_state"]) if opt.get("step"))
        original = (upgraded.get("ckpt_compat") or {}).get("original_counters") or {}
        epoch = int(original.get("epoch", golden_file.get("epoch", 0)))
        return {"epoch": epoch, "global_step": provable, "batches": truth["steps_per_epoch"], "mid_epoch": 0}
    mid = int(truth.get("batches_in_current_epoch") or 0)
    return {
        "epoch": int(truth["completed_epochs"]),
        "global_step": steps,
        "batches": truth["steps_per_epoch"] - mid,
        "mid_epoch": mid,
    }


def _align_checkpoint_dirs(callbacks: list, upgraded: dict, match_callback_states, tmp_path: Path) -> None:
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


def _make_probe(pl):
    class RestoreProbe(pl.Callback):
        """Asserts the restored state on ``on_train_start``; records the loss of every later batch."""

        def __init__(self, golden, truth, expected, golden_file, upgraded, recipe, tmp_path):
            self.golden, self.truth, self.expected = golden, truth, expected
            self.golden_file, self.upgraded, self.recipe = golden_file, upgraded, recipe
            self.restored, self.losses = False, []

        def on_train_start(self, trainer, pl_module):
            self.restored = True
            check_restored(trainer, self.golden, self.truth, self.expected, self.golden_file, self.upgraded, self.recipe, pl_module)
            for cb in trainer.callbacks:
                if hasattr(cb, "_ckpt_compat_dirpath"):
                    cb.dirpath = cb._ckpt_compat_dirpath

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args):
            value = trainer.callback_metrics.get("train_loss")
            self.losses.append(None if value is None else float(value))

    return RestoreProbe


def check_restored(trainer, golden: Golden, truth: dict, expected: dict, golden_file: dict, upgraded: dict, recipe, module=None) -> None:
    """Everything the Trainer restored, compared with the truth and the golden file's tensors."""
    import torch

    jsonable = recipe.jsonable
    m = Mismatches(f"{golden.id} state right after restoring")
    if module is not None:
        _check_weights(m, module, upgraded, truth, recipe)
    _check_loops(m, trainer, truth, upgraded, golden)
    m.eq("current_epoch", int(trainer.current_epoch), expected["epoch"])
    m.eq("global_step", int(trainer.global_step), expected["global_step"])
    progress = trainer.fit_loop.epoch_loop.batch_progress
    if expected["mid_epoch"]:
        m.eq("batches done in the unfinished epoch (batch_progress.current.processed)", int(progress.current.processed), expected["mid_epoch"])
    if versions.parse(golden.saved_version) >= _FORMAT_1_6:
        saved = ((upgraded.get("loops") or {}).get("fit_loop") or {}).get("epoch_loop.batch_progress")
        if saved is not None:
            m.eq("restored batch progress", progress.state_dict(), saved)

    saved_opts = golden_file.get("optimizer_states") or []
    m.eq("number of optimizers", len(trainer.optimizers), len(truth["optimizer_state"]))
    for i, (opt, want) in enumerate(zip(trainer.optimizers, truth["optimizer_state"])):
        live = opt.state_dict()
        steps = [recipe._as_count(live["state"][p]["step"]) for g in live["param_groups"] for p in g["params"] if "step" in live["state"].get(p, {})]
        m.eq(f"optimizer {i} per-parameter step", steps, want["step"])
        m.eq(f"optimizer {i} lr", [jsonable(g["lr"]) for g in live["param_groups"]], want["lr"])
        if i < len(saved_opts):
            for pid, per_param in (saved_opts[i].get("state") or {}).items():
                for key, tensor in per_param.items():
                    if key == "step" or not isinstance(tensor, torch.Tensor):
                        continue
                    got = live["state"].get(pid, {}).get(key)
                    if not isinstance(got, torch.Tensor) or not torch.equal(got.cpu(), tensor):
                        m.add(f"optimizer {i} state[{pid}][{key!r}] differs from the golden file")
    configs = trainer.lr_scheduler_configs
    m.eq("number of schedulers", len(configs), len(truth["schedulers"]))
    for i, (config, want) in enumerate(zip(configs, truth["schedulers"])):
        sd = config.scheduler.state_dict()
        m.eq(f"scheduler {i} state", {k: jsonable(sd.get(k)) for k in want}, want)
    # every key the file (or the saving process) has: newer torch adds keys of its own (``_is_initial``)
    saved_scheds = upgraded.get("lr_schedulers") or []
    for i, config in enumerate(configs[: len(saved_scheds)]):
        live, want = jsonable(config.scheduler.state_dict()), jsonable(saved_scheds[i])
        m.eq(f"scheduler {i} full state vs the file", {k: live.get(k) for k in want}, want)
    for i, (config, want) in enumerate(zip(configs, truth.get("scheduler_state") or [])):
        live = jsonable(config.scheduler.state_dict())
        m.eq(f"scheduler {i} full state vs truth", {k: live.get(k) for k in want}, want)

    _check_callbacks(m, trainer, truth, upgraded, recipe)
    _check_callback_states(m, trainer, truth, upgraded, recipe, golden)
    if truth.get("scaler") is not None:
        m.eq("GradScaler state", recipe._find_scaler(trainer), truth["scaler"])
    m.raise_if_any()


def _check_weights(m: Mismatches, module, upgraded: dict, truth: dict, recipe) -> None:
    """Before any training step the module holds exactly the file's weights (strict, every key)."""
    import torch

    saved = upgraded.get("state_dict") or {}
    live = module.state_dict()
    if sorted(live) != sorted(saved):
        m.add(f"restored module keys differ from the file: {sorted(set(live) ^ set(saved))}")
    differ = [k for k, t in saved.items() if k in live and not torch.equal(live[k].cpu(), t.cpu())]
    if differ:
        m.add(f"restored weights differ from the file before any training step: {differ}")
    m.eq("restored weights_sha256", recipe._weights(module)[0], truth["weights_sha256"])


def _fit_loop_saved(upgraded: dict) -> dict:
    return ((upgraded.get("loops") or {}).get("fit_loop")) or {}


def _check_loops(m: Mismatches, trainer, truth: dict, upgraded: dict, golden: Golden) -> None:
    """The logger step (``_batches_that_stepped``) and the validation loop's progress as saved."""
    epoch_loop = trainer.fit_loop.epoch_loop
    saved = _fit_loop_saved(upgraded)
    live_bts = getattr(epoch_loop, "_batches_that_stepped", None)
    saved_bts = (saved.get("epoch_loop.state_dict") or {}).get("_batches_that_stepped")
    if saved_bts is not None:
        m.eq("restored _batches_that_stepped (logger step) vs the file", live_bts, saved_bts)
    recorded = (truth.get("loops") or {}).get("batches_that_stepped")
    if recorded is not None and versions.parse(golden.saved_version) >= _FORMAT_1_6:
        m.eq("restored _batches_that_stepped vs truth", live_bts, recorded)
    val_loop = getattr(epoch_loop, "val_loop", None)
    if val_loop is None or not saved:
        return
    prefix = "epoch_loop.val_loop."
    live_val = {prefix + k: v for k, v in val_loop.state_dict().items()}
    for key, value in saved.items():
        if key.startswith(prefix) and key.endswith("progress"):
            m.eq(f"restored validation loop {key[len(prefix):]}", live_val.get(key), value)


# Fields a callback saves that Lightning does not restore by design (configuration, or the
# value of the last evaluation), so comparing them after a restore proves nothing.
NOT_RESTORED = {"ModelCheckpoint": ("current_score", "monitor", "dirpath")}


def _check_callback_states(m: Mismatches, trainer, truth: dict, upgraded: dict, recipe, golden: Golden) -> None:
    """Every callback's full ``state_dict()`` right after the restore equals the state in the file."""
    from .lightning import match_callback_states

    states = match_callback_states({"callbacks": dict(upgraded.get("callbacks") or {})}, trainer.callbacks)["callbacks"]
    mc_cls = recipe.pl.callbacks.ModelCheckpoint
    build_dir = str((golden.release_meta or {}).get("build_dir") or "")
    recorded = truth.get("callback_state") or {}
    seen: dict = {}
    for cb in trainer.callbacks:
        key = getattr(cb, "state_key", None)
        saved = states.get(key)
        if not isinstance(saved, dict) or not saved:
            continue
        kind = "ModelCheckpoint" if isinstance(cb, mc_cls) else type(cb).__name__
        seen[kind] = seen.get(kind, 0) + 1
        label = kind if seen[kind] == 1 else f"{kind}#{seen[kind]}"
        live = recipe.jsonable(cb.state_dict())
        skip = NOT_RESTORED.get(kind, ())
        for name, value in saved.items():
            if name in skip:
                continue
            m.eq(f"{label} restored state {name!r} vs the file", live.get(name), recipe.jsonable(value))
        if label in recorded and build_dir:
            rel = recipe._relativize(live, build_dir)
            for name, value in recorded[label].items():
                if name not in skip:
                    m.eq(f"{label} restored state {name!r} vs truth", rel.get(name), value)


_RESTORED = {"ModelCheckpoint": ("best_model_score", "kth_value", "best_k_models", "best_model_path", "last_model_path", "kth_best_model_path"),
             "EarlyStopping": ("wait_count", "stopped_epoch", "best_score", "patience")}
_PATHS = ("best_model_path", "last_model_path", "kth_best_model_path")


def _check_callbacks(m: Mismatches, trainer, truth: dict, upgraded: dict, recipe) -> None:
    """Each recorded callback: its upgraded state (all recorded fields) and its live restored attributes."""
    pl = recipe.pl
    kinds = {"ModelCheckpoint": pl.callbacks.ModelCheckpoint, "EarlyStopping": pl.callbacks.EarlyStopping}
    from .lightning import match_callback_states

    # what the Trainer saw: CheckpointUpgrade re-keys bare class-name keys to the live callbacks
    states = match_callback_states({"callbacks": dict(upgraded.get("callbacks") or {})}, trainer.callbacks)["callbacks"]
    for label, want in (truth.get("callbacks") or {}).items():
        kind, _, nth = label.partition("#")
        live = [cb for cb in trainer.callbacks if isinstance(cb, kinds[kind])]
        index = int(nth or 1) - 1
        if index >= len(live):
            m.add(f"callback {label}: no live {kind} number {index + 1}")
            continue
        cb = live[index]
        state = states.get(cb.state_key)
        if not isinstance(state, dict):
            m.add(f"callback {label}: no state under the live key {cb.state_key!r} (keys: {sorted(map(str, states))})")
            continue
        for name, value in want.items():
            if name in ("class", "state_key", "monitor", "mode", "save_top_k"):
                continue
            if name in state:
                _compare_field(m, f"{label} saved state {name}", state[name], value, recipe)
            if name in _RESTORED.get(kind, ()) and name in state:
                _compare_field(m, f"{label} restored {name}", getattr(cb, name, None), value, recipe)


def _compare_field(m: Mismatches, what: str, got: Any, want: Any, recipe) -> None:
    if isinstance(got, dict) and isinstance(want, list):  # best_k_models: {path: score} vs sorted scores
        got = sorted((recipe.jsonable(v) for v in got.values()), key=float)
    elif got is not None and not isinstance(got, (str, int, float, bool)):
        got = recipe.jsonable(got)
    if what.rsplit(" ", 1)[-1] in _PATHS and isinstance(got, str) and isinstance(want, str) and want:
        if not (got == want or got.replace("\\", "/").endswith("/" + want)):
            m.add(f"{what}: got {got!r}, expected a path ending in {want!r}")
        return
    m.eq(what, got, want)
