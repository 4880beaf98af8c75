"""AMP scaler state moved from fixed keys to the precision plugin's class name.

Why: up to 1.5 the native AMP ``GradScaler`` state was saved as ``native_amp_scaling_state`` and
apex's ``amp.state_dict()`` as ``amp_scaling_state``. From 1.6 the precision plugin saves its
``state_dict()`` under ``checkpoint[type(plugin).__qualname__]`` (``NativeMixedPrecisionPlugin``,
``ApexMixedPrecisionPlugin``) and later renames follow that key (``MixedPrecisionPlugin`` at 1.9,
``MixedPrecision`` at 2.1.1), so the old keys would fall out of the chain: current Lightning reads
``native_amp_scaling_state`` only through an "old checkpoints compatibility" branch, and drops
``amp_scaling_state`` outright. Moving the value keeps the loss scale (and its growth tracker) on
resume through every later rename. The value is moved unchanged: both plugins' ``state_dict()`` is
exactly what the old keys held. Sharded/FSDP native AMP also saved under
``native_amp_scaling_state``; it is mapped to ``NativeMixedPrecisionPlugin`` (the Lightning
integration cannot tell the strategy from the file).
When: Lightning 1.6.0, PR #11638 (precision plugin ``state_dict``/``load_state_dict``).

If the new key already exists, it wins and the old value moves to ``ckpt_compat.dropped``.
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-1.6.0-precision-state-keys"
VERSION = "1.6.0"
ORDER = 30
CHANGES_TENSORS = False

_MOVES = (("native_amp_scaling_state", "NativeMixedPrecisionPlugin"), ("amp_scaling_state", "ApexMixedPrecisionPlugin"))


def upgrade(checkpoint: dict) -> dict:
    for old, new in _MOVES:
        if old not in checkpoint:
            continue
        value = checkpoint.pop(old)
        if new in checkpoint:
            ops.drop(checkpoint, old, value)
            ops.note(
                checkpoint, ID, f"{old}: {new} already present; the old value moved to ckpt_compat.dropped[{old!r}]"
            )
        elif value is not None:
            checkpoint[new] = value
    return checkpoint
