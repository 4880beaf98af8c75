"""The submodule ``encoder`` was renamed ``backbone``.

Why: a release-1 ``state_dict`` holds ``encoder.weight`` / ``encoder.bias``; release 2's TeamNet has
``backbone.*``, so a strict load fails with ``Missing key(s) ... "backbone.weight"`` and
``Unexpected key(s) ... "encoder.weight"``. The rename keeps ``_metadata`` and any callback copy of
the weights aligned (the optimizer state is keyed by position and stays as it is).
When: teamnet 2.0.0.
"""

from pytest_ckpt_compat.toolkit import prefix, rename_state_keys

ID = "teamnet-2.0-encoder-renamed-backbone"
VERSION = "2.0.0"
ORDER = 20


def upgrade(checkpoint):
    rename_state_keys(checkpoint, [prefix("encoder.", "backbone.")])
    return checkpoint
