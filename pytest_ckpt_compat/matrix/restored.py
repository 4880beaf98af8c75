"""What a resume must have restored, read right after ``fit(ckpt_path=...)`` and before any step.

Why a room of its own: the ``resume`` check (:mod:`.checks`) drives the Trainer; this module only
compares the restored live state with the golden's truth and file: weights, counters, loop
progress (logger step, validation loop), optimizers, schedulers and every callback's state.
"""

from __future__ import annotations

from typing import Any

from packaging.version import Version

from ..core import versions
from ..goldens.store import Golden
from .compare import Mismatches

_FORMAT_1_6 = Version("1.6.0")


def check_restored(
    trainer,
    golden: Golden,
    truth: dict,
    expected: dict,
    golden_file: dict,
    upgraded: dict,
    recipe,
    module=None,
    *,
    exact_keys: bool = False,
) -> None:
    """Everything the Trainer restored, compared with the truth and the golden file's tensors."""
    m = Mismatches(f"{golden.id} state right after restoring")
    if module is not None:
        _check_weights(m, module, upgraded, truth, recipe, golden_file)
    _check_loops(m, trainer, truth, upgraded, golden)
    m.eq("current_epoch", int(trainer.current_epoch), expected["epoch"])
    m.eq("global_step", int(trainer.global_step), expected["global_step"])
    progress = trainer.fit_loop.epoch_loop.batch_progress
    if expected["mid_epoch"]:
        m.eq(
            "batches done in the unfinished epoch (batch_progress.current.processed)",
            int(progress.current.processed),
            expected["mid_epoch"],
        )
    if versions.parse(golden.saved_version) >= _FORMAT_1_6:
        saved = ((upgraded.get("loops") or {}).get("fit_loop") or {}).get("epoch_loop.batch_progress")
        if saved is not None:
            m.eq("restored batch progress", progress.state_dict(), saved)

    _check_optimizers(m, trainer, truth, golden_file, recipe)
    _check_schedulers(m, trainer, truth, upgraded, recipe)

    _check_callbacks(m, trainer, truth, upgraded, recipe, exact_keys=exact_keys)
    _check_callback_states(m, trainer, truth, upgraded, recipe, golden)
    _check_averaged_models(m, trainer, truth, recipe)
    if truth.get("scaler") is not None:
        m.eq("GradScaler state", recipe.find_scaler(trainer), truth["scaler"])
    m.raise_if_any()


def _check_optimizers(m: Mismatches, trainer, truth: dict, golden_file: dict, recipe) -> None:
    """Per optimizer: step counts, lr and every recorded param-group hyperparameter, and the file's state tensors."""
    import torch

    jsonable = recipe.jsonable
    saved_opts = golden_file.get("optimizer_states") or []
    m.eq("number of optimizers", len(trainer.optimizers), len(truth["optimizer_state"]))
    for i, (opt, want) in enumerate(zip(trainer.optimizers, truth["optimizer_state"])):
        live = opt.state_dict()
        steps = [
            recipe.as_count(live["state"][p]["step"])
            for g in live["param_groups"]
            for p in g["params"]
            if "step" in live["state"].get(p, {})
        ]
        m.eq(f"optimizer {i} per-parameter step", steps, want["step"])
        m.eq(f"optimizer {i} lr", [jsonable(g["lr"]) for g in live["param_groups"]], want["lr"])
        if "param_groups" in want:  # betas, momentum, ...: what cycling schedulers change besides lr
            got = [{k: jsonable(g.get(k)) for k in w} for g, w in zip(live["param_groups"], want["param_groups"])]
            m.eq(f"optimizer {i} param-group hyperparameters", got, want["param_groups"])
        if i < len(saved_opts):
            for pid, per_param in (saved_opts[i].get("state") or {}).items():
                for key, tensor in per_param.items():
                    if key == "step" or not isinstance(tensor, torch.Tensor):
                        continue
                    got = live["state"].get(pid, {}).get(key)
                    if not isinstance(got, torch.Tensor) or not torch.equal(got.cpu(), tensor):
                        m.add(f"optimizer {i} state[{pid}][{key!r}] differs from the golden file")


def _check_schedulers(m: Mismatches, trainer, truth: dict, upgraded: dict, recipe) -> None:
    """Per scheduler: the recorded state, every key the file has, and the full recorded state (code aside)."""
    jsonable = recipe.jsonable
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
        want = {k: v for k, v in want.items() if not _is_callable_record(v)}
        m.eq(f"scheduler {i} full state vs truth", {k: live.get(k) for k in want}, want)


def _is_callable_record(value: Any) -> bool:
    """A function or bound method that older torch pickled in a scheduler's state, as the recipe records it.

    It is code, not state: the catalogue replaces it by the data newer torch stores in its place
    (compared with the file above), so the truth's record of the function is not compared.
    """
    return isinstance(value, dict) and list(value) == ["callable"]


def _check_weights(m: Mismatches, module, upgraded: dict, truth: dict, recipe, golden_file: dict) -> None:
    """Before any training step the module holds exactly the file's weights (strict, every key).

    The digest recorded live is compared too, unless a team's unit added or dropped tensors (a new
    buffer): then the upgraded file's own tensors are the whole comparison.
    """
    import torch

    # a WeightAveraging file (2.6) trains on from current_model_state; its state_dict is the average
    saved = upgraded.get("current_model_state") or upgraded.get("state_dict") or {}
    live = module.state_dict()
    if sorted(live) != sorted(saved):
        m.add(f"restored module keys differ from the file: {sorted(set(live) ^ set(saved))}")
    differ = [k for k, t in saved.items() if k in live and not torch.equal(live[k].cpu(), t.cpu())]
    if differ:
        m.add(f"restored weights differ from the file before any training step: {differ}")
    if not (recipe.team and len(saved) != len(golden_file.get("state_dict") or {})):
        m.eq("restored weights_sha256", recipe.weights(module)[0], truth["weights_sha256"])


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
            m.eq(f"restored validation loop {key[len(prefix) :]}", live_val.get(key), value)


# Fields a callback saves that Lightning does not restore by design (configuration, or the
# value of the last evaluation), so comparing them after a restore proves nothing.
NOT_RESTORED = {"ModelCheckpoint": ("current_score", "monitor", "dirpath")}


def _check_callback_states(m: Mismatches, trainer, truth: dict, upgraded: dict, recipe, golden: Golden) -> None:
    """Every callback's full ``state_dict()`` right after the restore equals the state in the file."""
    from ..lightning import match_callback_states

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
        live = recipe.jsonable(_restored_state(cb))
        skip = NOT_RESTORED.get(kind, ())
        for name, value in saved.items():
            if name in skip:
                continue
            m.eq(f"{label} restored state {name!r} vs the file", live.get(name), recipe.jsonable(value))
        if label in recorded and build_dir:
            rel = recipe.relativize(live, build_dir)
            for name, value in recorded[label].items():
                if name in skip:
                    continue
                got = rel.get(name)
                if name == "scheduler_state" and isinstance(value, dict) and isinstance(got, dict):
                    value = {k: v for k, v in value.items() if not _is_callable_record(v)}  # as _check_schedulers
                    got = {k: got.get(k) for k in value}
                m.eq(f"{label} restored state {name!r} vs truth", got, value)
    for label in recorded:
        if label.partition("#")[0] in AVERAGING and label not in _labels(seen):
            m.add(f"{label}: its averaged weights were recorded at saving, but the file restored no state of it")


def _check_averaged_models(m: Mismatches, trainer, truth: dict, recipe) -> None:
    """2.6's WeightAveraging callbacks: the AveragedModel (its module and ``n_averaged``) as recorded at saving."""
    for name, want in (truth.get("averaged") or {}).items():
        live = [cb for cb in trainer.callbacks if type(cb).__name__ == name]
        averaged = getattr(live[0], "_average_model", None) if live else None
        if averaged is None:
            m.add(f"{name}: its averaged model was recorded at saving, but no live {name} holds one after the restore")
            continue
        m.eq(f"{name} averaged model (n_averaged included) sha256", recipe.weights(averaged)[0], want["model_sha256"])
        m.eq(f"{name} averaged module sha256", recipe.weights(averaged.module)[0], want["module_sha256"])


# Callbacks that keep averaged weights of their own: their state must be restored, not only the live weights.
AVERAGING = ("StochasticWeightAveraging", "WeightAveraging", "EMAWeightAveraging")


def _labels(seen: dict) -> set:
    return {kind if n == 1 else f"{kind}#{n}" for kind, count in seen.items() for n in range(1, count + 1)}


def _restored_state(cb) -> dict:
    """A callback's state as restored. SWA keeps the count and SWALR state it loaded aside until its
    next epoch starts (``_init_n_averaged``, ``_scheduler_state``): its ``state_dict()`` reads 0 and
    ``None`` right after a restore, so the values that epoch will use are what is compared."""
    state = dict(cb.state_dict())
    if type(cb).__name__ == "StochasticWeightAveraging":
        if getattr(cb, "n_averaged", None) is None and hasattr(cb, "_init_n_averaged"):
            state["n_averaged"] = cb._init_n_averaged
        if getattr(cb, "_swa_scheduler", None) is None and hasattr(cb, "_scheduler_state"):
            state["scheduler_state"] = cb._scheduler_state
    return state


_RESTORED = {
    "ModelCheckpoint": (
        "best_model_score",
        "kth_value",
        "best_k_models",
        "best_model_path",
        "last_model_path",
        "kth_best_model_path",
    ),
    "EarlyStopping": ("wait_count", "stopped_epoch", "best_score", "patience"),
}
_PATHS = ("best_model_path", "last_model_path", "kth_best_model_path")


def _check_callbacks(m: Mismatches, trainer, truth: dict, upgraded: dict, recipe, *, exact_keys: bool = False) -> None:
    """Each recorded callback: its upgraded state (all recorded fields) and its live restored attributes."""
    pl = recipe.pl
    kinds = {"ModelCheckpoint": pl.callbacks.ModelCheckpoint, "EarlyStopping": pl.callbacks.EarlyStopping}
    from ..lightning import match_callback_states

    # what the Trainer saw: CheckpointUpgrade re-keys bare class-name keys to the live callbacks;
    # plain Lightning looks each live state_key up exactly
    states = dict(upgraded.get("callbacks") or {})
    if not exact_keys:
        states = match_callback_states({"callbacks": states}, trainer.callbacks)["callbacks"]
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
