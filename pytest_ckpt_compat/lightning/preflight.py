"""Preflight: what a load or resume of a checkpoint into *your* module would not restore, or fail on.

Why: a lenient load drops weights without a word (Lightning#14879, #19281), a changed ``monitor``
starts EarlyStopping fresh (#1463, #19097), a renamed hyperparameter fails ``load_from_checkpoint``
or is silently replaced by today's default, and a changed ``configure_optimizers`` fails the resume
after the model is built. Each is knowable from the file and the live classes, without training:
the file is loaded and upgraded as a resume would see it (safe loader, catalogue; pre-1.5 callback
states keyed by class get the live callbacks' keys; every other state must match a live callback's
``state_key`` exactly, as plain Lightning restores them), the module is built from the saved
hyperparameters as ``load_from_checkpoint`` builds it, and each part is compared.
``ckpt-compat check`` is the command-line front.

Severities: ``fail`` (the load or resume raises), ``lost`` (it runs but state is dropped or replaced),
``note`` (worth knowing, nothing lost). ``PreflightReport.ok`` is ``False`` on any fail or lost.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core import hparams as _hparams
from ..core.callback_keys import parse_spec
from ..core.engine import upgrade
from ..core.errors import PreflightFailed
from ..core.renames import COMPILED_SEGMENT
from ..files.loading import load_checkpoint
from . import trainer_module

_SCALER_KEYS = ("MixedPrecision", "MixedPrecisionPlugin", "native_amp_scaling_state")  # GradScaler state, by era


@dataclass(frozen=True)
class Finding:
    severity: str  # "fail" | "lost" | "note"
    area: str  # hyperparameters, state_dict, callbacks, optimizers, lr_schedulers, precision, datamodule
    message: str
    hint: str = ""


@dataclass
class PreflightReport:
    path: str
    model: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity in ("fail", "lost") for f in self.findings)

    def to_dict(self) -> dict:
        return {"path": self.path, "model": self.model, "ok": self.ok, "findings": [asdict(f) for f in self.findings]}

    def lines(self) -> list[str]:
        out = [f"{self.path} -> {self.model}: " + ("nothing would be lost" if self.ok else "PROBLEMS")]
        for f in self.findings:
            out.append(f"  {f.severity.upper():<4} [{f.area}] {f.message}" + (f" (hint: {f.hint})" if f.hint else ""))
        return out

    def raise_for_problems(self) -> None:
        """``PreflightFailed`` (exit 12) when a load or resume would lose state or fail."""
        if not self.ok:
            raise PreflightFailed("\n".join(self.lines()))


def preflight(
    path: Any,
    model: type,
    *,
    datamodule: type | None = None,
    callbacks: Iterable[Any] = (),
    precision: str | None = None,
    trust: bool = False,
    model_kwargs: Mapping[str, Any] | None = None,
    assume_version: str | None = None,
) -> PreflightReport:
    """Check ``path`` against ``model`` (a LightningModule class) and the live ``callbacks``, without training.

    ``precision``: the Trainer's precision (``"16-mixed"``, ...; ``None``: ``32-true``);
    ``model_kwargs``: what you would pass to ``load_from_checkpoint``; ``assume_version``: the release
    that wrote a file with no version key (Lightning before 0.8.2), as ``CheckpointUpgrade`` takes it.
    """
    callbacks = list(callbacks)
    checkpoint = load_checkpoint(path, trust=trust)
    # pre-1.5 class-name keys get the live callbacks' keys
    upgrade(checkpoint, assume_version=assume_version, callbacks=callbacks or None)
    report = PreflightReport(str(path), f"{model.__module__}.{model.__qualname__}")
    add = report.findings.extend
    add(_hparam_findings(checkpoint, model, "hyperparameters", _hparams.HPARAMS_KEY, model_kwargs or {}))
    module, failure = _construct(model, checkpoint, _hparams.HPARAMS_KEY, model_kwargs or {})
    if failure:
        add([Finding("fail", "hyperparameters", failure)])
    if datamodule is not None:
        add(_hparam_findings(checkpoint, datamodule, "datamodule", _hparams.DATAMODULE_KEY, {}))
    if module is not None:
        add(_state_dict_findings(checkpoint, module))
        add(_optimizer_findings(checkpoint, module, callbacks))
    add(_callback_findings(checkpoint, callbacks))
    add(_precision_findings(checkpoint, precision))
    return report


def preflight_specs(
    path: Any,
    model: str,
    *,
    datamodule: str | None = None,
    callbacks: Iterable[str] = (),
    precision: str | None = None,
    trust: bool = False,
    assume_version: str | None = None,
) -> PreflightReport:
    """``preflight`` with classes named ``pkg.module:Class`` and callbacks as specs (what the CLI takes):
    ``'EarlyStopping{"monitor": "val_loss"}'`` (a Lightning callback) or ``'pkg.module:MyCallback{...}'``.

    A name that does not import raises ``ImportError``/``AttributeError`` before the file is read.
    """
    built = [_live_callback(spec) for spec in callbacks]
    return preflight(
        path,
        _import_object(model),
        datamodule=_import_object(datamodule) if datamodule else None,
        callbacks=built,
        precision=precision,
        trust=trust,
        assume_version=assume_version,
    )


def _import_object(spec: str) -> Any:
    module, _, name = spec.partition(":")
    obj = importlib.import_module(module)
    for part in name.split(".") if name else ():
        obj = getattr(obj, part)
    return obj


def _live_callback(spec: str) -> Any:
    name, config = parse_spec(spec)
    cls = _import_object(name) if ":" in name else getattr(trainer_module().callbacks, name)
    return cls(**config)


# ------------------------------------------------------------------------------ hyperparameters
def _hparam_findings(checkpoint: dict, cls: type, area: str, key: str, given: Mapping) -> list[Finding]:
    check = _hparams.check_checkpoint(checkpoint, cls, key=key, given=given)
    name = cls.__qualname__
    out = [Finding("lost", area, f"saved {n!r} is not an argument of {name}: the load drops it") for n in check.dropped]
    out += [
        Finding("note", area, f"saved {n!r} goes to {name}'s **kwargs", "a removed argument: toolkit.hparams.drop")
        for n in check.to_kwargs
    ]
    out += [
        Finding(
            "fail", area, f"{name} requires {n!r}, which the file does not save", "toolkit.hparams.rename/set_default"
        )
        for n in check.missing
    ]
    out += [Finding("note", area, f"{name}'s {n!r} is not saved: today's default applies") for n in check.defaulted]
    return out


def _construct(cls: type, checkpoint: dict, key: str, given: Mapping) -> tuple[Any, str]:
    """Build ``cls`` as Lightning's ``_load_state`` does (saved hparams, filtered unless ``**kwargs``)."""
    saved = _hparams.loaded_kwargs(checkpoint, cls, key=key)
    params = inspect.signature(cls).parameters
    kwargs = {k: v for k, v in {**saved, **given}.items() if k not in ("_instantiator", "_class_path")}
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    try:
        return cls(**kwargs), ""
    except Exception as exc:  # what load_from_checkpoint would raise
        return None, f"building {cls.__qualname__} from the saved hyperparameters fails: {type(exc).__name__}: {exc}"


# ----------------------------------------------------------------------------------- state_dict
def _state_dict_findings(checkpoint: dict, module: Any) -> list[Finding]:
    saved = checkpoint.get("state_dict")
    if not isinstance(saved, Mapping):
        return [Finding("fail", "state_dict", "the file has no state_dict")]
    live = module.state_dict()
    mismatched = [
        k for k in live if k in saved and hasattr(saved[k], "shape") and tuple(saved[k].shape) != tuple(live[k].shape)
    ]
    shapes = [f"{k}: saved {tuple(saved[k].shape)}, module {tuple(live[k].shape)}" for k in mismatched]
    missing, unexpected = _key_differences(module, saved, live, mismatched)
    hint = _prefix_hint([k for k in live if k not in saved], [k for k in saved if k not in live])
    out = []
    if missing:
        out.append(Finding("fail", "state_dict", f"{len(missing)} missing key(s): {_few(missing)}", hint))
    if unexpected:
        out.append(Finding("fail", "state_dict", f"{len(unexpected)} unexpected key(s): {_few(unexpected)}", hint))
    if shapes:
        out.append(Finding("fail", "state_dict", f"{len(shapes)} shape mismatch(es): {_few(shapes)}"))
    return out


def _key_differences(module: Any, saved: Mapping, live: Mapping, mismatched: list[str]) -> tuple[list, list]:
    """Missing and unexpected keys as torch's ``load_state_dict`` counts them (modules' own load hooks
    included: a BatchNorm takes a file without ``num_batches_tracked``), on the throwaway module
    preflight built; the plain key difference where that load raises for another reason."""
    loadable = {k: v for k, v in saved.items() if k not in mismatched}
    try:
        result = module.load_state_dict(loadable, strict=False)
    except Exception:  # a module's own load hook that fails: keep to the names
        return [k for k in live if k not in saved], [k for k in saved if k not in live]
    return [k for k in result.missing_keys if k not in mismatched], list(result.unexpected_keys)


def _prefix_hint(missing: list[str], unexpected: list[str]) -> str:
    """A rename that explains every missing key by an unexpected one, as a toolkit call."""
    if not missing or len(missing) != len(unexpected):
        return ""
    if {re.sub(COMPILED_SEGMENT, "", k) for k in unexpected} == set(missing):
        return "the file was saved from a torch.compile'd module: toolkit.strip_compiled_prefix"
    compiled = [k for k in missing if re.search(COMPILED_SEGMENT, k)]
    if compiled and {re.sub(COMPILED_SEGMENT, "", k) for k in missing} == set(unexpected):
        head = compiled[0][: re.search(COMPILED_SEGMENT, compiled[0]).start()].rstrip(".")  # type: ignore[union-attr]
        return f"the module is torch.compile'd now: toolkit.add_compiled_prefix(checkpoint, {head!r})"
    found = _renamed_prefix(unexpected, missing)
    if found is None:
        return ""
    old, new = found
    call = f"toolkit.rename_state_keys(checkpoint, [prefix({old!r}, {new!r})])"
    return f"the file's keys start with {old!r} where the module's start with {new!r}: {call}"


def _renamed_prefix(saved: list[str], wanted: list[str]) -> tuple[str, str] | None:
    """``(old, new)`` such that replacing the leading ``old`` by ``new`` turns ``saved`` into ``wanted``."""
    first, target = saved[0], set(wanted)
    cuts = [0] + [i + 1 for i, c in enumerate(first) if c == "."]
    for cut in sorted(cuts):  # the shortest prefix that explains everything
        old, tail = first[:cut], first[cut:]
        for key in wanted:
            if key.endswith(tail) and key != first:
                new = key[: len(key) - len(tail)]
                if all(s.startswith(old) for s in saved) and {new + s[len(old) :] for s in saved} == target:
                    return old, new
    return None


def _few(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f", ... ({len(items) - n} more)" if len(items) > n else "")


# -------------------------------------------------------------------------- optimizers, schedulers
def _optimizer_findings(checkpoint: dict, module: Any, callbacks: list) -> list[Finding]:
    if "optimizer_states" not in checkpoint:
        return [
            Finding(
                "fail",
                "optimizers",
                "the file has no optimizer state (saved with weights only)",
                "resume raises; load_from_checkpoint works",
            )
        ]
    try:
        optimizers, schedulers = _configured(module.configure_optimizers())
    except Exception as exc:  # configure_optimizers that needs a Trainer (estimated_stepping_batches, ...)
        return [
            Finding(
                "note",
                "optimizers",
                f"configure_optimizers could not run without a Trainer: {type(exc).__name__}: {exc}",
            )
        ]
    saved = checkpoint.get("optimizer_states") or []
    optimizers = optimizers or [None]  # configure_optimizers returns None: Lightning runs a mock optimizer
    out = _count_findings("optimizers", "optimizer", len(saved), len(optimizers))
    if getattr(module, "automatic_optimization", True) and len(optimizers) > 1:
        message = f"{len(optimizers)} optimizers under automatic optimization: Lightning 2 refuses to train them"
        out.insert(0, Finding("fail", "optimizers", message, "set self.automatic_optimization = False"))
    for i, (state, optimizer) in enumerate(zip(saved, optimizers)):
        out.extend(_optimizer_match(i, state, optimizer))
    saved_schedulers = len(checkpoint.get("lr_schedulers") or [])
    if saved_schedulers == 1 and not schedulers and _averaging(callbacks):
        return out + _swalr_findings(checkpoint)
    return out + _count_findings("lr_schedulers", "scheduler", saved_schedulers, len(schedulers))


def _averaging(callbacks: list) -> bool:
    return any(type(cb).__name__ == "StochasticWeightAveraging" for cb in callbacks)


def _swalr_findings(checkpoint: dict) -> list[Finding]:
    """A scheduler state that ``configure_optimizers`` does not account for is SWALR's: the live
    ``StochasticWeightAveraging`` installs it at its start epoch. From the release that saves the
    callback's own state (with ``scheduler_state``) the callback restores it; an older file's is dropped."""
    states = checkpoint.get("callbacks") or {}
    swa = next((v for k, v in states.items() if str(k).startswith("StochasticWeightAveraging")), None)
    if isinstance(swa, dict) and swa.get("scheduler_state") is not None:
        return []
    message = (
        "the file's one scheduler state is SWALR's (StochasticWeightAveraging installed it), and it saved no "
        "StochasticWeightAveraging state: the live callback starts a fresh SWALR and a fresh average"
    )
    return [Finding("note", "lr_schedulers", message)]


def _count_findings(area: str, what: str, saved: int, configured: int) -> list[Finding]:
    """Lightning restores saved states in order, pairing them with what ``configure_optimizers`` returns
    (``zip``): the states left over are dropped, the objects left over start fresh; neither raises."""
    counts = f"the file has {saved} {what} state(s), configure_optimizers returns {configured}"
    if saved > configured:
        return [Finding("lost", area, f"{counts}: the last {saved - configured} are not restored")]
    if saved < configured:
        return [Finding("note", area, f"{counts}: the last {configured - saved} start fresh")]
    return []


def _optimizer_match(index: int, state: Any, optimizer: Any) -> list[Finding]:
    groups = state.get("param_groups", []) if isinstance(state, dict) else []
    if optimizer is None:  # the mock optimizer's load_state_dict ignores what it gets; it saved ``{}``
        message = f"optimizer {index}: configure_optimizers returns none; the saved state is not restored"
        return [Finding("lost", "optimizers", message)] if groups else []
    sizes = [len(g.get("params", [])) for g in groups]
    live = [len(g["params"]) for g in optimizer.param_groups]
    if sizes != live:
        return [Finding("fail", "optimizers", f"optimizer {index}: saved param group sizes {sizes}, configured {live}")]
    params = [p for g in optimizer.param_groups for p in g["params"]]
    bad = []
    for position, values in (state.get("state") or {}).items():
        if isinstance(position, int) and position < len(params):
            for name, value in values.items() if isinstance(values, dict) else ():
                if getattr(value, "dim", lambda: 0)() > 0 and tuple(value.shape) != tuple(params[position].shape):
                    bad.append(f"param {position} {name} {tuple(value.shape)} vs {tuple(params[position].shape)}")
    if bad:
        return [Finding("fail", "optimizers", f"optimizer {index}: state does not match its parameters: {_few(bad)}")]
    return []


def _configured(conf: Any) -> tuple[list, list]:
    """``(optimizers, schedulers)`` from every shape ``configure_optimizers`` may return."""
    if conf is None:
        return [], []
    if isinstance(conf, dict):
        scheduler = conf.get("lr_scheduler")
        scheduler = scheduler.get("scheduler") if isinstance(scheduler, dict) else scheduler
        return [conf["optimizer"]], [scheduler] if scheduler is not None else []
    if isinstance(conf, (list, tuple)):
        if len(conf) == 2 and isinstance(conf[0], (list, tuple)):
            return list(conf[0]), [s.get("scheduler") if isinstance(s, dict) else s for s in conf[1]]
        if conf and all(isinstance(c, dict) for c in conf):
            pairs = [_configured(c) for c in conf]
            return [o for p in pairs for o in p[0]], [s for p in pairs for s in p[1]]
        return list(conf), []
    return [conf], []


# ----------------------------------------------------------------------------- callbacks, precision
def _callback_findings(checkpoint: dict, callbacks: list) -> list[Finding]:
    states = checkpoint.get("callbacks")
    states = states if isinstance(states, dict) else {}
    live = {cb.state_key: cb for cb in callbacks}
    out = []
    for key in states:
        if key in live:
            continue
        name = str(key).split("{", 1)[0]
        same = [k for k, cb in live.items() if type(cb).__qualname__ == name]
        if same:
            hint = f"your {name} has state_key {same[0]}; it would need {key}"
        elif "{" in str(key):
            hint = f"add a {name} whose state_key is {key}"
        else:  # no release wrote its configuration (0.10/1.0): a live one of the class gets it
            hint = f"the file records no configuration for it: a live {name} would receive it"
        out.append(Finding("lost", "callbacks", f"the state saved under {key} reaches no live callback", hint))
    for key, callback in live.items():
        if key not in states and type(callback).__qualname__ in ("ModelCheckpoint", "EarlyStopping"):
            out.append(Finding("note", "callbacks", f"{key} has no saved state: it starts fresh"))
    return out


def _precision_findings(checkpoint: dict, precision: str | None) -> list[Finding]:
    saved = [k for k in _SCALER_KEYS if k in checkpoint]
    mixed = precision is not None and str(precision).startswith("16")
    if saved and not mixed:
        return [
            Finding(
                "lost",
                "precision",
                f"the file has GradScaler state ({saved[0]}); precision {precision or '32-true'} does not restore it",
            )
        ]
    if mixed and not saved:
        return [
            Finding(
                "note", "precision", f"precision {precision}: the file has no GradScaler state, the scaler starts fresh"
            )
        ]
    return []
