"""Hyperparameter helpers: rename and drop saved hyperparameters, and check them against a constructor.

Why: ``load_from_checkpoint`` calls the module's constructor with the saved hyperparameters. After
a constructor argument is renamed or removed, old files fail with ``__init__() got an unexpected
keyword argument`` where the class takes ``**kwargs`` and passes them on (NVIDIA-NeMo#15658,
neuralforecast#1206, darts#1773), or, where it does not, Lightning drops the unknown name without a
word and the constructor's current default silently replaces the trained value. A new required
argument fails with ``missing 1 required positional argument``. ``check`` says all of that before
any load; ``rename`` / ``drop`` / ``set_default`` are what a team's unit does about it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .ops import drop as _drop_to_ledger
from .ops import rename_keys

HPARAMS_KEY = "hyper_parameters"  # LightningModule.CHECKPOINT_HYPER_PARAMS_KEY
DATAMODULE_KEY = "datamodule_hyper_parameters"  # LightningDataModule's (1.7+)
# the argument name the hparams were saved from when they were one argument (``def __init__(self, hparams)``)
_NAME_KEYS = {HPARAMS_KEY: "hparams_name", DATAMODULE_KEY: "datamodule_hparams_name"}  # CHECKPOINT_HYPER_PARAMS_NAME
_LIGHTNING_CLI_KEYS = ("_instantiator", "_class_path")  # popped by Lightning before the constructor runs

_POSITIONAL_OR_KEYWORD, _KEYWORD_ONLY = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY

__all__ = [
    "DATAMODULE_KEY",
    "HPARAMS_KEY",
    "HparamsCheck",
    "check",
    "check_checkpoint",
    "drop",
    "loaded_kwargs",
    "rename",
    "set_default",
]


def rename(checkpoint: dict, renames: Mapping[str, str], *, key: str = HPARAMS_KEY) -> list[str]:
    """Rename saved hyperparameters ``old -> new``; where ``new`` is saved already it wins.

    Returns the old names whose value was kept under ``ckpt_compat.dropped`` because ``new`` won.
    """
    hparams = checkpoint.get(key)
    if not isinstance(hparams, dict):
        return []
    return rename_keys(hparams, dict(renames), checkpoint, dropped_prefix=f"{key}.")


def drop(checkpoint: dict, names: Iterable[str], *, key: str = HPARAMS_KEY) -> list[str]:
    """Remove saved hyperparameters the constructor no longer takes; each value is kept under
    ``ckpt_compat.dropped["<key>.<name>"]``, not destroyed. Returns the names that were present."""
    hparams = checkpoint.get(key)
    if not isinstance(hparams, dict):
        return []
    done = [name for name in names if name in hparams]
    for name in done:
        _drop_to_ledger(checkpoint, f"{key}.{name}", hparams.pop(name), unique=True)
    return done


def set_default(checkpoint: dict, values: Mapping[str, Any], *, key: str = HPARAMS_KEY) -> list[str]:
    """Save a value for a new constructor argument where the file has none (files written before it
    existed trained without it: give the value that reproduces that). Returns the names set."""
    hparams = checkpoint.get(key)
    if not isinstance(hparams, dict):
        return []
    done = [name for name in values if name not in hparams]
    for name in done:
        hparams[name] = values[name]
    return done


@dataclass(frozen=True)
class HparamsCheck:
    """What the constructor will do with the saved hyperparameters (names only, sorted)."""

    dropped: tuple[str, ...] = ()  # saved, no such argument: Lightning leaves them out without a word
    to_kwargs: tuple[str, ...] = ()  # saved, no such named argument: passed in ``**kwargs`` (may be rejected there)
    missing: tuple[str, ...] = ()  # required arguments not saved (nor given): the load fails
    defaulted: tuple[str, ...] = ()  # arguments with a default, not saved: today's default applies

    @property
    def ok(self) -> bool:
        """Nothing is lost and nothing fails (``to_kwargs`` and ``defaulted`` are worth reading, not errors)."""
        return not self.dropped and not self.missing

    def problems(self) -> list[str]:
        """One line per finding, for a report."""
        lines = [
            f"saved hyperparameter {n!r} is not a constructor argument: load_from_checkpoint drops it"
            for n in self.dropped
        ]
        lines += [
            f"saved hyperparameter {n!r} goes to **kwargs: whatever receives it may reject it" for n in self.to_kwargs
        ]
        lines += [
            f"constructor argument {n!r} is required but not saved: load_from_checkpoint fails" for n in self.missing
        ]
        lines += [f"constructor argument {n!r} is not saved: its current default applies" for n in self.defaulted]
        return lines


def check(hparams: Mapping[str, Any], cls: Any, *, given: Iterable[str] = ()) -> HparamsCheck:
    """Compare saved ``hparams`` with ``cls``'s constructor, as ``load_from_checkpoint`` will call it.

    ``given``: names the caller passes to ``load_from_checkpoint`` as keyword arguments (they win).
    """
    params = list(inspect.signature(cls).parameters.values())  # a class: its constructor's, without self
    named = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    saved = {str(k) for k in hparams if str(k) not in _LIGHTNING_CLI_KEYS} | set(given)
    unknown = sorted(saved - set(named))
    return HparamsCheck(
        dropped=() if takes_kwargs else tuple(unknown),
        to_kwargs=tuple(unknown) if takes_kwargs else (),
        missing=tuple(sorted(n for n, p in named.items() if p.default is p.empty and n not in saved)),
        defaulted=tuple(sorted(n for n, p in named.items() if p.default is not p.empty and n not in saved)),
    )


def check_checkpoint(
    checkpoint: Mapping[str, Any], cls: Any, *, key: str = HPARAMS_KEY, given: Iterable[str] = ()
) -> HparamsCheck:
    """``check`` on a checkpoint's saved hyperparameters as ``load_from_checkpoint`` passes them
    (see ``loaded_kwargs``)."""
    return check(loaded_kwargs(checkpoint, cls, key=key), cls, given=given)


def loaded_kwargs(checkpoint: Mapping[str, Any], cls: Any, *, key: str = HPARAMS_KEY) -> dict:
    """The keyword arguments ``load_from_checkpoint`` builds from the saved hyperparameters, before it
    leaves out names the constructor does not take: the one-argument form (``def __init__(self, hparams)``,
    ``hparams_name`` saved) when the constructor still has that argument, else each saved name."""
    hparams = checkpoint.get(key) or {}
    name = checkpoint.get(_NAME_KEYS.get(key, ""))
    params = inspect.signature(cls).parameters
    if isinstance(name, str) and name in params and params[name].kind in (_POSITIONAL_OR_KEYWORD, _KEYWORD_ONLY):
        return {name: hparams}
    if isinstance(hparams, Mapping):  # a dict or an OmegaConf DictConfig
        return dict(hparams)
    return dict(vars(hparams)) if hasattr(hparams, "__dict__") else {}  # a Namespace
