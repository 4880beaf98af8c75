"""Several optimizers: the automatic loop's step progress also becomes the manual loop's.

Why: 2.0 removed automatic optimization with several optimizers, so a 1.x module with two
optimizers (a GAN) resumes in 2.x only under manual optimization, and there ``global_step`` is
the manual loop's step counter (``epoch_loop.manual_optimization.optim_step_progress``). A 1.x
file has every step in the automatic loop's ``optim_progress.optimizer.step`` and zeros in the
manual one, so without this its ``global_step`` restarts from 0 (measured on the 1.9.5
``two_optimizers`` golden; Lightning's own migration does the same). Applies only where the file
has two or more optimizer states, the manual counter is all zeros and the automatic one is not;
the automatic progress is kept as it was (a 2.x module with one optimizer still reads it).
When: Lightning 2.0.0, PR #16539 (automatic optimization with several optimizers removed).
"""

from __future__ import annotations

import copy

from pytest_ckpt_compat import ops

ID = "pl-2.0.0-several-optimizers-steps-to-manual"
VERSION = "2.0.0"
ORDER = 45
CHANGES_TENSORS = False
REQUIRES = ("pl-2.0.0-loops-after-optimizer-loop-removal",)

AUTOMATIC = "epoch_loop.automatic_optimization.optim_progress"
MANUAL = "epoch_loop.manual_optimization.optim_step_progress"


def _all_zero(progress) -> bool:
    return isinstance(progress, dict) and all(
        isinstance(t, dict) and not any(t.values()) for t in (progress.get("current"), progress.get("total"))
    )


def upgrade(checkpoint: dict) -> dict:
    fit_loop = ops.fit_loop(checkpoint)
    optimizers = checkpoint.get("optimizer_states")
    if fit_loop is None or not isinstance(optimizers, list) or len(optimizers) < 2:
        return checkpoint
    steps = ops.get_in(fit_loop, AUTOMATIC, "optimizer", "step")
    if not _all_zero(fit_loop.get(MANUAL)) or not isinstance(steps, dict) or _all_zero(steps):
        return checkpoint
    fit_loop[MANUAL] = copy.deepcopy(steps)
    ops.note(checkpoint, ID, f"{MANUAL} = {AUTOMATIC}.optimizer.step ({len(optimizers)} optimizers)")
    return checkpoint
