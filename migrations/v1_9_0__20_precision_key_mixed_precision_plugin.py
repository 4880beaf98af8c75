"""The native AMP precision plugin's state key is ``MixedPrecisionPlugin`` (was ``NativeMixedPrecisionPlugin``).

Why: the precision state (the GradScaler: scale, growth tracker, ...) is saved and looked up under
the plugin's class ``__qualname__``. From 1.9 the Trainer builds ``MixedPrecisionPlugin``, so a
1.6 – 1.8 ``16``-precision checkpoint resumes with a fresh GradScaler (scale 65536 again, no error).
Only this key changed in 1.9.0: ``ShardedNativeMixedPrecisionPlugin``,
``FullyShardedNativeMixedPrecisionPlugin`` and ``FullyShardedNativeNativeMixedPrecisionPlugin``
keep their names in the 1.9.0 wheel (they are renamed or removed in 2.0.0, see the 2.0.0 unit).
If a ``MixedPrecisionPlugin`` state is already present, it is kept and the old one is moved to
``ckpt_compat.dropped``.
When: Lightning 1.9.0, PR #16039 (the accelerator connector instantiates ``MixedPrecisionPlugin``;
checked in the 1.8.6 and 1.9.0 wheels).
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-1.9.0-precision-key-mixed-precision-plugin"
VERSION = "1.9.0"
ORDER = 20
CHANGES_TENSORS = False

RENAMES = {"NativeMixedPrecisionPlugin": "MixedPrecisionPlugin"}


def upgrade(checkpoint: dict) -> dict:
    ops.rename_keys(checkpoint, RENAMES, checkpoint)  # a present new key wins; the old state is dropped
    return checkpoint
