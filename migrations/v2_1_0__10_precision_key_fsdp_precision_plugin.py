"""The FSDP precision state key is ``FSDPPrecisionPlugin`` (was ``FSDPMixedPrecisionPlugin``).

Why: 2.1.0 added ``FSDPPrecisionPlugin`` (for every FSDP precision, not only mixed) and the FSDP
strategy instantiates it; ``FSDPMixedPrecisionPlugin`` became a deprecated subclass. The state is
looked up by class ``__qualname__``, so a 2.0 FSDP ``16-mixed`` checkpoint resumes with a fresh
ShardedGradScaler. An existing ``FSDPPrecisionPlugin`` state is never overwritten (the old one is
kept in ``ckpt_compat.dropped``).
When: Lightning 2.1.0 (no CHANGELOG entry names it; checked in the 2.0.0 and 2.1.0 wheels: the class
and the FSDP strategy default).
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-2.1.0-precision-key-fsdp-precision-plugin"
VERSION = "2.1.0"
ORDER = 10
CHANGES_TENSORS = False

RENAMES = {"FSDPMixedPrecisionPlugin": "FSDPPrecisionPlugin"}


def upgrade(checkpoint: dict) -> dict:
    ops.rename_keys(checkpoint, RENAMES, checkpoint)  # a present new key wins; the old state is dropped
    return checkpoint
