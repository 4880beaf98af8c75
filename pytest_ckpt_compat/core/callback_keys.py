"""Lightning 2.x ``state_key`` strings for the callback states of pre-1.5 files, and how each was found.

Why: 0.10 – 1.4 keyed ``checkpoint["callbacks"]`` by the callback *class*; Lightning 2.x restores a
state only under the live callback's ``state_key``, e.g. ``EarlyStopping{'monitor': 'val_loss',
'mode': 'min'}`` (the text of ``Callback._generate_state_key``: qualname + ``repr`` of the kwargs in
the order the callback passes them). A key that is only the class name restores nothing under plain
Lightning: ``best_score``/``wait_count``/``best_model_score`` silently come back fresh.

The key is resolved from evidence in the file where the file decides it, stated by the user where
it does not, and otherwise kept and reported, never guessed silently:

* ``ModelCheckpoint`` whose state records ``monitor`` (1.1 – 1.4): that monitor; ``mode`` from its
  best vs current score when they differ (with ``min`` the best is never above the current); the
  fields no pre-1.5 release saved (``every_n_train_steps``, ``every_n_epochs``,
  ``train_time_interval``, and ``mode`` when the scores are equal) take Lightning's defaults, and
  the ledger says so;
* ``EarlyStopping`` (which never recorded its monitor): the monitor of the one ModelCheckpoint state
  whose ``best_model_score`` equals its ``best_score`` exactly, ``mode`` Lightning's default;
* anything else (0.10/1.0 ModelCheckpoint states without ``monitor``, an EarlyStopping with no
  matching best score) keeps the bare class name, listed by ``unresolved`` (shown by ``ckpt-compat
  upgrade`` and ``inspect``) until the configuration is stated: ``upgrade(callbacks=[...])``, the CLI's
  ``--callback 'EarlyStopping{"monitor": "val_loss", "mode": "max"}'``, or the Trainer's live
  callbacks through ``CheckpointUpgrade``.

``ckpt_compat["callback_keys"][key] = {"from": <pickled class or old key>, "how": <text>}`` records
every resolution. Plain dict code: migration units use it, so it never imports Lightning.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable
from typing import Any

from . import ledger

# The kwargs each callback's ``state_key`` passes to ``_generate_state_key``, in order, with the
# values a callback constructed with defaults has (Lightning 2.0 – 2.6 alike).
FIELDS = {
    "EarlyStopping": (("monitor", None), ("mode", "min")),
    "ModelCheckpoint": (
        ("monitor", None),
        ("mode", "min"),
        ("every_n_train_steps", 0),
        ("every_n_epochs", 1),
        ("train_time_interval", None),
    ),
}
_UNRESOLVED = "unresolved"


def state_key(qualname: str, kind: str, config: dict) -> str:
    """The exact ``state_key`` text of a ``kind`` callback (class ``qualname``) configured by ``config``."""
    kwargs = {name: config.get(name, default) for name, default in FIELDS[kind]}
    return f"{qualname}{kwargs!r}"


def kind_of(key: Any) -> tuple[str, str | None]:
    """``(qualname, kind)`` of a callbacks key: kind is ``EarlyStopping``/``ModelCheckpoint`` or ``None``.

    Classes are read only through ``__qualname__`` and their MRO's names (real classes or the safe
    loader's markers), so a user subclass of ModelCheckpoint counts as one when its class is loaded.
    """
    qualname = class_name(key)
    if isinstance(key, str):
        return qualname, qualname if qualname in FIELDS else None
    for base in getattr(key, "__mro__", ())[:-1] or (key,):
        name = getattr(base, "__qualname__", "")
        if name in FIELDS:
            return qualname, name
    return qualname, None


def class_name(key: Any) -> str:
    """The class a ``checkpoint["callbacks"]`` key names: the text before ``{`` of a state key
    (``"EarlyStopping{'monitor': ...}"``, a bare ``"EarlyStopping"``), the ``__qualname__`` of a
    pickled class (pre-1.5 files) or of the safe loader's stand-in for one."""
    if isinstance(key, str):
        return key.split("{", 1)[0]
    return getattr(key, "__qualname__", None) or str(key)


def records(checkpoint: dict) -> dict:
    """The ledger's ``callback_keys`` section (created on first use)."""
    return ledger.section(checkpoint, ledger.CALLBACK_KEYS)


def _describe(key: Any) -> str:
    if isinstance(key, str):
        return key
    module = getattr(key, "__module__", "") or ""
    return f"{module}.{getattr(key, '__qualname__', key)}".lstrip(".")


def _score(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def from_evidence(key: Any, state: Any, states: dict) -> tuple[str, str]:
    """``(new key, how)`` for one pre-1.5 entry of ``states`` (``how`` starts with "unresolved" if not keyed)."""
    qualname, kind = kind_of(key)
    if kind is None:  # a callback whose state_key is its class name (the default Callback.state_key)
        return qualname, "class name: the default Callback.state_key"
    state = state if isinstance(state, dict) else {}
    if kind == "ModelCheckpoint":
        if "monitor" in state:
            mode, mode_how = _mode_of(state)
            how = (
                f"monitor recorded in the state; mode: {mode_how}; every_n_train_steps, every_n_epochs, "
                "train_time_interval: Lightning's defaults (not saved before 1.5)"
            )
            return state_key(qualname, kind, {"monitor": state["monitor"], "mode": mode}), how
        return qualname, f"{_UNRESOLVED}: the state records no monitor (Lightning < 1.1)"
    best = _score(state.get("best_score"))
    matches = []
    for other_key, other in states.items():
        other_name, other_kind = kind_of(other_key)
        if other_kind == "ModelCheckpoint" and isinstance(other, dict) and "monitor" in other:
            if best is not None and _score(other.get("best_model_score")) == best:
                matches.append((other["monitor"], _mode_of(other)))
    if len(matches) == 1:
        monitor, (mode, mode_how) = matches[0]
        if mode_how.startswith("Lightning's default"):
            how = (
                "monitor of the ModelCheckpoint state with the same best score; "
                "mode: Lightning's default (not saved before 1.5)"
            )
        else:  # the same best value as a ModelCheckpoint of proven mode: the same direction
            how = f"monitor and mode of the ModelCheckpoint state with the same best score ({mode_how})"
        return state_key(qualname, kind, {"monitor": monitor, "mode": mode}), how
    return (
        qualname,
        f"{_UNRESOLVED}: EarlyStopping never saved its monitor and no ModelCheckpoint state with a recorded monitor "
        "has the same best score",
    )


def _mode_of(state: dict) -> tuple[str, str]:
    """A ModelCheckpoint's mode: with ``min`` its best score is never above the current one, with ``max``
    never below."""
    best, current = _score(state.get("best_model_score")), _score(state.get("current_score"))
    if best is not None and current is not None and best != current:
        mode = "min" if best < current else "max"
        return (
            mode,
            f"{mode!r}, proven by best_model_score {best:g} {'<' if mode == 'min' else '>'} current_score {current:g}",
        )
    return "min", "Lightning's default (not saved before 1.5; best and current scores do not decide it)"


def record(checkpoint: dict, new_key: str, old_key: Any, how: str) -> None:
    records(checkpoint)[new_key] = {"from": _describe(old_key), "how": how}


def unresolved(checkpoint: dict) -> dict:
    """``{kept key: why}`` for callback states no ``state_key`` could be given to (see the module doc).

    Bare ``"EarlyStopping"``/``"ModelCheckpoint"`` keys count even without a record (files upgraded
    before resolution was recorded): Lightning 2.x itself never writes them.
    """
    states = checkpoint.get("callbacks") if isinstance(checkpoint, dict) else None
    if not isinstance(states, dict):
        return {}
    recs = ledger.get(checkpoint, ledger.CALLBACK_KEYS) or {}
    out = {}
    for key in states:
        how = str((recs.get(key) or {}).get("how", ""))
        if how.startswith(_UNRESOLVED):
            out[key] = how
        elif key in FIELDS and not how:
            out[key] = f"{_UNRESOLVED}: keyed by class name only"
    return out


def parse_spec(text: str) -> tuple[str, dict]:
    """``'EarlyStopping{"monitor": "val_loss", "mode": "max"}'`` (JSON or Python literal) → (qualname, config)."""
    name, brace, rest = text.strip().partition("{")
    if not name or not brace:
        raise ValueError(
            f'callback spec {text!r}: expected NAME{{...}}, e.g. EarlyStopping{{"monitor": "val_loss", "mode": "min"}}'
        )
    body = "{" + rest
    try:
        config = json.loads(body)
    except RecursionError:
        raise ValueError(f"callback spec {text[:60]!r}...: the configuration is nested too deeply") from None
    except ValueError:
        try:
            config = ast.literal_eval(body)
        except (ValueError, SyntaxError, RecursionError, MemoryError) as exc:
            raise ValueError(
                f"callback spec {text!r}: the configuration is neither JSON nor a Python literal ({exc})"
            ) from None
    if not isinstance(config, dict):
        raise ValueError(f"callback spec {text!r}: the configuration must be a mapping")
    return name.strip(), config


def _candidates(callbacks: Iterable[Any]) -> list[tuple[str, str, dict | None]]:
    """``(qualname, state key, config or None)`` of stated configurations and live callbacks."""
    out: list[tuple[str, str, dict | None]] = []
    config: dict | None
    for cb in callbacks:
        if isinstance(cb, str):
            qualname, config = parse_spec(cb)
            _, kind = kind_of(qualname)
            key = state_key(qualname, kind, config) if kind else qualname
            out.append((qualname, key, config))
        elif isinstance(getattr(cb, "state_key", None), str):
            config = {"monitor": cb.monitor} if hasattr(cb, "monitor") else None
            out.append((type(cb).__qualname__, cb.state_key, config))
    return out


def _saved_monitor(key: Any, state: Any) -> Any:
    """The metric a saved state was watching: its key's ``monitor`` (1.5+ keys, and keys resolved from
    evidence), else the one its state records (1.1 - 1.4 ModelCheckpoint); ``...`` when unknown."""
    if isinstance(key, str) and "{" in key:
        try:
            config = parse_spec(key)[1]
        except ValueError:
            config = {}
        if "monitor" in config:
            return config["monitor"]
    return state.get("monitor", ...) if isinstance(state, dict) else ...


def rekey(
    checkpoint: dict, callbacks: Iterable[Any], *, how: str = "stated by the user", saved_keys: bool = False
) -> list[tuple[str, str]]:
    """Move callback states to the keys of the given configurations; ``[(old, new)]``, recorded in the ledger.

    ``callbacks``: specs (``'EarlyStopping{"monitor": "val_loss"}'``) or callback objects (their
    ``state_key``). A state moves to a callback only when the match is unique both ways: the
    callback is the one given callback of the state's class still without a state whose ``monitor``
    does not contradict the saved one (a changed ``monitor`` starts fresh, as in plain Lightning:
    Lightning#1463, #19097), and the state is the only such state for that callback. States
    keyed by the saving release itself (1.5+) are left alone unless ``saved_keys`` (the Trainer's
    live callbacks: Lightning restores only under their keys).
    """
    states = checkpoint.get("callbacks")
    if not isinstance(states, dict):
        return []
    recs = ledger.get(checkpoint, ledger.CALLBACK_KEYS) or {}
    given = _candidates(callbacks)
    claimed = {key for _, key, _ in given}
    open_ = [c for c in given if c[1] not in states]
    choices = {}
    for key in states:
        if key in claimed or not (saved_keys or (isinstance(key, str) and ("{" not in key or key in recs))):
            continue
        same = [c for c in open_ if c[0] == class_name(key)]
        monitor = _saved_monitor(key, states[key])
        if monitor is not ...:  # best scores of one metric never go to a callback watching another
            same = [c for c in same if c[2] is None or c[2].get("monitor", monitor) == monitor]
        choices[key] = same
    moved = []
    for key, same in choices.items():
        if len(same) != 1 or sum(same[0] in other for other in choices.values()) != 1:
            continue
        new = same[0][1]
        states[new] = states.pop(key)
        old_rec = records(checkpoint).pop(key, None) if isinstance(key, str) else None
        record(checkpoint, new, old_rec["from"] if old_rec else key, f"explicit: {how}")
        moved.append((key if isinstance(key, str) else _describe(key), new))
    return moved
