"""The loops over optimizers became ``automatic_optimization`` / ``manual_optimization``.

Why: automatic optimization with several optimizers was removed, so there is no optimizer loop
and no ``optimizer_position`` to resume; 2.0+ look for
``epoch_loop.automatic_optimization.{optim_progress,state_dict}`` and
``epoch_loop.manual_optimization.{optim_step_progress,state_dict}``. Without this the step
progress (hence ``global_step``) restarts from zero. Unlike Lightning's migration, each key is
moved on its own when present, so a file that has a loop's ``state_dict`` but not its progress
(or the reverse) does not raise ``KeyError``.
When: Lightning 2.0.0, PR #16539 / #16598 (commit 6a56586).
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-2.0.0-loops-after-optimizer-loop-removal"
VERSION = "2.0.0"
ORDER = 40
CHANGES_TENSORS = False

RENAMES = {
    "epoch_loop.optimizer_loop.state_dict": "epoch_loop.automatic_optimization.state_dict",
    "epoch_loop.optimizer_loop.optim_progress": "epoch_loop.automatic_optimization.optim_progress",
    "epoch_loop.manual_loop.state_dict": "epoch_loop.manual_optimization.state_dict",
    "epoch_loop.manual_loop.optim_step_progress": "epoch_loop.manual_optimization.optim_step_progress",
}


def upgrade(checkpoint: dict) -> dict:
    fit_loop = ops.fit_loop(checkpoint)
    if fit_loop is None:
        return checkpoint
    progress = fit_loop.get("epoch_loop.optimizer_loop.optim_progress")
    if isinstance(progress, dict):
        progress.pop("optimizer_position", None)
    for old, new in RENAMES.items():
        if old in fit_loop and new not in fit_loop:
            fit_loop[new] = fit_loop.pop(old)
    return checkpoint
