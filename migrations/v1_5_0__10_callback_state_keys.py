"""Callback states keyed by class objects (0.10 – 1.4) are re-keyed by state-key strings.

Why: 0.10 – 1.4 used ``type(callback)`` as the key of ``checkpoint["callbacks"]``. Such a file
cannot be read with ``torch.load(weights_only=True)`` (``Unsupported global``: torch's default since
2.6, Lightning's since 2.6), a renamed or moved user callback class makes it unloadable, and current
Lightning emits two spurious warnings on it: "...callback states ... colliding with each other"
(the 1.9.0 migration counts class keys as collisions, issue #19097) and "Be aware that when using
``ckpt_path``, callbacks used to create the checkpoint need to be provided" (after the version stamp
moves past 1.5 the class keys no longer match any ``state_key``).
When: Lightning 1.5.0, PR #6886 (``Callback.state_key``).

Rule: ``pytest_ckpt_compat.core.callback_keys.from_evidence`` gives each class key the Lightning 2.x
``state_key`` the file decides (a ``ModelCheckpoint``'s recorded ``monitor``; an ``EarlyStopping``
through the ModelCheckpoint state with the same best score; Lightning's defaults for the fields no
pre-1.5 release saved, e.g. ``ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0,
'every_n_epochs': 1, 'train_time_interval': None}``),
and records how in ``ckpt_compat.callback_keys``. A state the file cannot key keeps the bare
``__qualname__`` (``"EarlyStopping"``), recorded as unresolved, until the user states the
configuration (``upgrade(callbacks=...)``, ``--callback``, the live callbacks of ``CheckpointUpgrade``).
Other callbacks get their bare ``__qualname__``, the default ``Callback.state_key``. The bare
``"ModelCheckpoint"``/``"EarlyStopping"`` entries the 0.10.0 units make from 0.x keys are treated alike.
Keys are read only through ``__qualname__``/``__module__``/MRO names (real classes or the safe
loader's markers); nothing is imported.
Collisions (two keys that map to the same string, e.g. a user class also named ``ModelCheckpoint``,
or a class key next to an existing string key): the first in dict order keeps the key; the other
state is moved to ``ckpt_compat.dropped["callbacks/<module>.<qualname>"]`` with a note in
``ckpt_compat.notes[ID]``, because a state under a key no live callback owns would never be restored.
"""

from __future__ import annotations

from pytest_ckpt_compat import ops
from pytest_ckpt_compat.core import callback_keys

ID = "pl-1.5.0-callback-state-keys"
VERSION = "1.5.0"
ORDER = 10
CHANGES_TENSORS = False


def _needs_key(key) -> bool:
    """Class keys, and the bare class-name strings the 0.10.0 units create for 0.x states."""
    return not isinstance(key, str) or key in callback_keys.FIELDS


def state_key(key, state, states=None) -> str:
    """The string key for a pre-1.5 class key (strings other than bare kinds are returned unchanged)."""
    if not _needs_key(key):
        return key
    return callback_keys.from_evidence(key, state, states or {key: state})[0]


def _full_name(key) -> str:
    if isinstance(key, str):
        return key
    module = getattr(key, "__module__", "") or ""
    qualname = getattr(key, "__qualname__", None) or str(key)
    return f"{module}.{qualname}" if module else qualname


def upgrade(checkpoint: dict) -> dict:
    callbacks = checkpoint.get("callbacks")
    if not isinstance(callbacks, dict) or not any(_needs_key(k) for k in callbacks):
        return checkpoint
    rekeyed: dict = {}
    for key, state in callbacks.items():
        if _needs_key(key):
            new_key, how = callback_keys.from_evidence(key, state, callbacks)
        else:
            new_key, how = key, None
        if new_key not in rekeyed:
            rekeyed[new_key] = state
            if how is not None and callback_keys.kind_of(key)[1] is not None:
                callback_keys.record(checkpoint, new_key, key, how)
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
