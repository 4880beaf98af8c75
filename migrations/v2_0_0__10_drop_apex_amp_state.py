"""Apex AMP support was removed: its state is moved out of the way, not deleted.

Why: 2.0+ has no apex plugin, so ``ApexMixedPrecisionPlugin`` (1.6 – 1.9) and
``amp_scaling_state`` (0.9 – 1.5, normally already renamed by the 1.6.0 unit) can never be
restored; left in place they are dead weight that looks like live precision state. Lightning's
migration deletes ``amp_scaling_state`` with a warning on every load and leaves
``ApexMixedPrecisionPlugin`` behind. Here both are moved, unchanged, to
``ckpt_compat.dropped[<key>]`` and a note is recorded in ``ckpt_compat.notes[<this id>]``
instead of a warning (the upgrade is deliberate; nothing is lost).
When: Lightning 2.0.0, PR #16149 (commit e544676).
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-2.0.0-drop-apex-amp-state"
VERSION = "2.0.0"
ORDER = 10
CHANGES_TENSORS = False

KEYS = ("amp_scaling_state", "ApexMixedPrecisionPlugin")


def upgrade(checkpoint: dict) -> dict:
    found = [key for key in KEYS if key in checkpoint]
    if not found:
        return checkpoint
    for key in found:
        ops.drop(checkpoint, key, checkpoint.pop(key))
    ops.note(
        checkpoint,
        ID,
        f"apex AMP state ({', '.join(found)}) moved to ckpt_compat.dropped: apex support was removed in Lightning 2.0",
    )
    return checkpoint
