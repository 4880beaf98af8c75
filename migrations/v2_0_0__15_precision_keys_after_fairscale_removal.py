"""Precision state keys of the sharded/FSDP AMP plugins follow the 2.0 classes.

Why: 2.0 removed FairScale and renamed the native FSDP plugin, so these 1.6 – 1.9 keys no longer
match any plugin and the GradScaler state is silently not restored:
  * ``FullyShardedNativeNativeMixedPrecisionPlugin`` (native FSDP) → ``FSDPMixedPrecisionPlugin``
    (a pure rename, "Native suffix removal");
  * ``FullyShardedNativeMixedPrecisionPlugin`` (FairScale FSDP, removed; native FSDP replaces it)
    → ``FSDPMixedPrecisionPlugin``;
  * ``ShardedNativeMixedPrecisionPlugin`` (FairScale sharded DDP, removed; plain DDP replaces it)
    and a leftover ``NativeMixedPrecisionPlugin`` (the deprecated 1.9 alias, removed)
    → ``MixedPrecisionPlugin``.
All of them hold a GradScaler / ShardedGradScaler ``state_dict()``, which has the same format.
A key that already exists is never overwritten (the old state goes to ``ckpt_compat.dropped``).
When: Lightning 2.0.0, PR #16490 (rename) and #16400 (FairScale removal); checked against the
1.9.0 and 2.0.0 wheels (class names and the accelerator connector).
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-2.0.0-precision-keys-after-fairscale-removal"
VERSION = "2.0.0"
ORDER = 15
CHANGES_TENSORS = False

RENAMES = {
    "FullyShardedNativeNativeMixedPrecisionPlugin": "FSDPMixedPrecisionPlugin",
    "FullyShardedNativeMixedPrecisionPlugin": "FSDPMixedPrecisionPlugin",
    "ShardedNativeMixedPrecisionPlugin": "MixedPrecisionPlugin",
    "NativeMixedPrecisionPlugin": "MixedPrecisionPlugin",
}


def upgrade(checkpoint: dict) -> dict:
    ops.rename_keys(checkpoint, RENAMES, checkpoint)  # a present new key wins; the old state is dropped
    return checkpoint
