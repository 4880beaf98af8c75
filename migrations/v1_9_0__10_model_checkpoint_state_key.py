"""ModelCheckpoint's callback state key no longer contains ``'save_on_train_epoch_end': X``.

Why: 1.5 – 1.8 wrote ``ModelCheckpoint{'monitor': ..., ..., 'train_time_interval': ...,
'save_on_train_epoch_end': True}``; 1.9+ look the state up without the last item, so best score,
best/last paths and top-k are silently not restored. Lightning's own migration only rewrites keys
that start with "ModelCheckpoint", so subclasses (which reuse ``ModelCheckpoint.state_key`` with
their own qualname, e.g. ``MyCheckpoint{...}``) stay unmatched; and it counts non-string (pre-1.5
class) keys as collisions and warns spuriously. Here a key is recognised by the shape of
ModelCheckpoint's state key, whatever the class name; any other key (including a class key, which
the 1.5.0 unit has already turned into a string) is left as it is, without a warning.
Real collisions (two states whose keys differ only in ``save_on_train_epoch_end``, which 1.9+ can
no longer tell apart): the first one in the file's order (the Trainer's callback order) takes the
new key; each other one is moved, unchanged, to ``ckpt_compat.dropped["callbacks/<old key>"]`` and
a warning of the upgrade's report (``ops.warn``: ``ckpt_compat.notes[<this id>]`` and
``ckpt_compat.warnings``; ``upgrade()`` raises it as a UserWarning) names it. Nothing is deleted. (Lightning
warns and leaves all keys stale, so none of them is restored.)
When: Lightning 1.9.0, PR #15300 / #15606 (commit f4ca56).
"""

from __future__ import annotations

import re

from pytest_ckpt_compat import ops

ID = "pl-1.9.0-model-checkpoint-state-key"
VERSION = "1.9.0"
ORDER = 10
CHANGES_TENSORS = False

# ModelCheckpoint.state_key (1.5 - 1.8): f"{qualname}{repr(dict(monitor=..., mode=..., every_n_train_steps=...,
# every_n_epochs=..., train_time_interval=..., save_on_train_epoch_end=...))}"; the flag is always the last item.
_SHAPE = re.compile(
    r"^(?P<head>[^{]+\{'monitor': .*, 'mode': .*, 'every_n_train_steps': .*, 'every_n_epochs': .*, "
    r"'train_time_interval': .*), 'save_on_train_epoch_end': (?:None|True|False)\}$",
    re.DOTALL,
)


def new_key(key):
    """The 1.9 key for a 1.5 – 1.8 ModelCheckpoint-shaped key; ``None`` for any other key."""
    if not isinstance(key, str):
        return None
    match = _SHAPE.match(key)
    return match.group("head") + "}" if match else None


def upgrade(checkpoint: dict) -> dict:
    callbacks = checkpoint.get("callbacks")
    if not isinstance(callbacks, dict) or not any(new_key(k) for k in callbacks):
        return checkpoint
    rebuilt: dict = {}
    moved: list = []
    for key, state in callbacks.items():
        target = new_key(key) or key
        if target in rebuilt:
            moved.append((key, state))
        else:
            rebuilt[target] = state
    for key, state in moved:
        ops.drop(checkpoint, f"callbacks/{key}", state)
        text = (
            f"ModelCheckpoint state {key!r} collides with another one once 'save_on_train_epoch_end' is removed from "
            f"its key (Lightning >= 1.9 cannot tell them apart): the first keeps the key, this one was moved to "
            f"ckpt_compat.dropped['callbacks/{key}']"
        )
        ops.warn(checkpoint, ID, text)  # a line of the upgrade's report (a UserWarning from upgrade())
    callbacks.clear()  # keep the same dict object, in the original order
    callbacks.update(rebuilt)
    return checkpoint
