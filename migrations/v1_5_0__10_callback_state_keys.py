"""Callback states keyed by class objects (0.10 – 1.4) are re-keyed by state-key strings.

Why: 0.10 – 1.4 used ``type(callback)`` as the key of ``checkpoint["callbacks"]``. Such a file
cannot be read with ``torch.load(weights_only=True)`` (``Unsupported global``: torch's default since
2.6, Lightning's since 2.6), a renamed or moved user callback class makes it unloadable, and current
Lightning emits two spurious warnings on it: "...callback states ... colliding with each other"
(the 1.9.0 migration counts class keys as collisions, issue #19097) and "Be aware that when using
``ckpt_path``, callbacks used to create the checkpoint need to be provided" (after the version stamp
moves past 1.5 the class keys no longer match any ``state_key``).
When: Lightning 1.5.0, PR #6886 (``Callback.state_key``).

Rule (contract): a ``ModelCheckpoint`` whose state holds ``monitor`` (saved since 1.1.0) gets its
full current state key with Lightning's defaults for the rest,
``ModelCheckpoint{'monitor': ..., 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}``;
every other class key becomes its bare ``__qualname__`` (``"EarlyStopping"``, ``"MyCallback"``), which
the Lightning integration matches to the live callback by class name. Keys are read only through
``__qualname__``/``__module__`` (real classes or the safe loader's markers); nothing is imported.
Collisions (two keys that map to the same string, e.g. a user class also named ``ModelCheckpoint``,
or a class key next to an existing string key): the first in dict order keeps the key; the other
state is moved to ``ckpt_compat.dropped["callbacks/<module>.<qualname>"]`` with a note in
``ckpt_compat.notes[ID]``, because a state under a key no live callback owns would never be restored.
"""
from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-1.5.0-callback-state-keys"
VERSION = "1.5.0"
ORDER = 10
CHANGES_TENSORS = False


def _model_checkpoint_key(monitor) -> str:
    # the same text as Callback._generate_state_key: f"{qualname}{repr(kwargs)}"
    kwargs = {
        "monitor": monitor,
        "mode": "min",
        "every_n_train_steps": 0,
        "every_n_epochs": 1,
        "train_time_interval": None,
    }
    return f"ModelCheckpoint{kwargs!r}"


def state_key(key, state) -> str:
    """The string key for a pre-1.5 class key (strings are returned unchanged)."""
    if isinstance(key, str):
        return key
    qualname = getattr(key, "__qualname__", None)
    if not isinstance(qualname, str):
        return str(key)
    if qualname == "ModelCheckpoint" and isinstance(state, dict) and "monitor" in state:
        return _model_checkpoint_key(state["monitor"])
    return qualname


def _full_name(key) -> str:
    if isinstance(key, str):
        return key
    module = getattr(key, "__module__", "") or ""
    qualname = getattr(key, "__qualname__", None) or str(key)
    return f"{module}.{qualname}" if module else qualname


def upgrade(checkpoint: dict) -> dict:
    callbacks = checkpoint.get("callbacks")
    if not isinstance(callbacks, dict) or all(isinstance(k, str) for k in callbacks):
        return checkpoint
    rekeyed: dict = {}
    for key, state in callbacks.items():
        new_key = state_key(key, state)
        if new_key not in rekeyed:
            rekeyed[new_key] = state
            continue
        path = ops.drop(checkpoint, f"callbacks/{_full_name(key)}", state, unique=True)
        text = (
            f"callbacks: the state of {_full_name(key)} would collide with the state already kept under "
            f"{new_key!r}; moved to ckpt_compat.dropped[{path!r}]"
        )
        ops.note(checkpoint, ID, text)
    callbacks.clear()  # keep the identity of the callbacks dict
    callbacks.update(rekeyed)
    return checkpoint
