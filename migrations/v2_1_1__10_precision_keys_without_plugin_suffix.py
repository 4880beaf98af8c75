"""Precision plugins lost the ``Plugin`` suffix: state keys ``MixedPrecision`` and ``FSDPPrecision``.

Why: the precision state (GradScaler) is saved and looked up under the plugin's class
``__qualname__``. From 2.1.1 the Trainer builds ``MixedPrecision`` / ``FSDPPrecision``, so a
1.9 – 2.1.0 ``16-mixed`` checkpoint (key ``MixedPrecisionPlugin``) resumes under 2.6 with a fresh
GradScaler (scale back to 65536, growth tracker 0) without any message. Renamed:
``MixedPrecisionPlugin`` → ``MixedPrecision``; ``FSDPPrecisionPlugin`` and the deprecated
``FSDPMixedPrecisionPlugin`` (still usable in 2.1.0) → ``FSDPPrecision``. These are the only
stateful precision plugins renamed then (the others' ``state_dict()`` is empty, so nothing is
saved for them). An existing new-name state is never overwritten (the old one goes to
``ckpt_compat.dropped``). Caveat: 2.6 still offers deprecated alias classes named
``MixedPrecisionPlugin`` etc.; a run that resumes with such an alias explicitly looks for the old
key, so use the current class names when resuming upgraded files.
When: Lightning 2.1.1 (tag; the CHANGELOG lists it under 2.2.0), PR #18840; checked in the 2.1.0
and 2.1.1 wheels (``class MixedPrecision`` first appears in 2.1.1).
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-2.1.1-precision-keys-without-plugin-suffix"
VERSION = "2.1.1"
ORDER = 10
CHANGES_TENSORS = False

RENAMES = {
    "MixedPrecisionPlugin": "MixedPrecision",
    "FSDPPrecisionPlugin": "FSDPPrecision",
    "FSDPMixedPrecisionPlugin": "FSDPPrecision",
}


def upgrade(checkpoint: dict) -> dict:
    ops.rename_keys(checkpoint, RENAMES, checkpoint)  # a present new key wins; the old state is dropped
    return checkpoint
