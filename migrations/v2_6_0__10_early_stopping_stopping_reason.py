"""EarlyStopping state gains ``stopping_reason`` and ``stopping_reason_message``.

Why: 2.6 saves why training stopped (``EarlyStoppingReason`` value, 0 = NOT_STOPPED, and a text).
Its loader reads both with ``.get`` defaults (0 and ``None``), so an old state still loads; the
unit writes exactly those defaults so that an upgraded file has the same structure as a fresh 2.6
save (the golden comparison then needs no exception) and behaves the same as Lightning's loader.
No reason is inferred: a state with ``stopped_epoch > 0`` says that it stopped but not why
(patience, threshold, divergence or a non-finite metric), and a guessed message would be invented
data. States are recognised by shape (``wait_count``, ``stopped_epoch``, ``best_score``,
``patience``), so subclasses and bare ``"EarlyStopping"`` keys are covered; present values are
never changed.
When: Lightning 2.6.0, PR #21188.
"""

from __future__ import annotations

ID = "pl-2.6.0-early-stopping-stopping-reason"
VERSION = "2.6.0"
ORDER = 10
CHANGES_TENSORS = False

SHAPE = ("wait_count", "stopped_epoch", "best_score", "patience")
NOT_STOPPED = 0  # lightning.pytorch.callbacks.early_stopping.EarlyStoppingReason.NOT_STOPPED.value


def upgrade(checkpoint: dict) -> dict:
    callbacks = checkpoint.get("callbacks")
    if not isinstance(callbacks, dict):
        return checkpoint
    for state in callbacks.values():
        if isinstance(state, dict) and all(field in state for field in SHAPE):
            state.setdefault("stopping_reason", NOT_STOPPED)
            state.setdefault("stopping_reason_message", None)
    return checkpoint
