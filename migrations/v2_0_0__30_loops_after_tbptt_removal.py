"""The optimizer and manual loops moved from the batch loop to the training epoch loop.

Why: truncated backprop (TBPTT) and with it the training batch loop were removed, so 2.0+ look for
``epoch_loop.{optimizer,manual}_loop.*`` instead of ``epoch_loop.batch_loop.{...}_loop.*``;
without this the optimizer step progress restarts from zero on resume (global_step 0).
Renames ``epoch_loop.batch_loop.manual_loop.{optim_step_progress,state_dict}`` and
``epoch_loop.batch_loop.optimizer_loop.{optim_progress,state_dict}``; a non-empty
``epoch_loop.batch_loop.state_dict`` is kept as ``epoch_loop.state_dict["old_batch_loop_state_dict"]``
(as Lightning does), an empty one is removed. Only present keys are touched; an existing target
key is never overwritten.
When: Lightning 2.0.0, PR #16337 / #16172 (commit 7807454).
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-2.0.0-loops-after-tbptt-removal"
VERSION = "2.0.0"
ORDER = 30
CHANGES_TENSORS = False

RENAMES = {
    "epoch_loop.batch_loop.manual_loop.optim_step_progress": "epoch_loop.manual_loop.optim_step_progress",
    "epoch_loop.batch_loop.manual_loop.state_dict": "epoch_loop.manual_loop.state_dict",
    "epoch_loop.batch_loop.optimizer_loop.optim_progress": "epoch_loop.optimizer_loop.optim_progress",
    "epoch_loop.batch_loop.optimizer_loop.state_dict": "epoch_loop.optimizer_loop.state_dict",
}


def upgrade(checkpoint: dict) -> dict:
    fit_loop = ops.fit_loop(checkpoint)
    if fit_loop is None:
        return checkpoint
    for old, new in RENAMES.items():
        if old in fit_loop and new not in fit_loop:
            fit_loop[new] = fit_loop.pop(old)
    if "epoch_loop.batch_loop.state_dict" in fit_loop:
        old_state = fit_loop.pop("epoch_loop.batch_loop.state_dict")
        if old_state:
            fit_loop.setdefault("epoch_loop.state_dict", {})["old_batch_loop_state_dict"] = old_state
    return checkpoint
