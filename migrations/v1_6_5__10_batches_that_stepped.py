"""The fit loop saves ``_batches_that_stepped`` (the logging step) in ``epoch_loop.state_dict``.

Why: without the key a resumed run logs from step 0 (``.get(..., 0)`` on load). Lightning's own
migration sets it to ``global_step``, which is right only for a save at an epoch boundary with one
optimizer. 1.6.5+ write the counter *before* the running batch's increment (that happens at the
very end of the batch, after ``on_train_batch_end`` and after an in-epoch validation), and the
loader of 2.x adds that increment back on restart. So a 1.6.0 – 1.6.4 file saved inside
``on_train_batch_end`` or at validation end (ModelCheckpoint's usual moment) resumes with a
logging step one ahead of ``global_step`` under Lightning's default. Verified by saving at those
moments with 1.6.4 / 1.6.5 and resuming under 2.6: 1.6.5 stores ``global_step - 1`` there and
``global_step`` at epoch end. Here the value is what 1.6.5 would have stored at the same moment:
  * batches that stepped: the processed batches when every batch steps (each step count is a
    multiple of the processed batches: several optimizers count one per batch, manual optimization
    allows no accumulation), else ``global_step`` (one optimizer with gradient accumulation);
  * minus one while the running batch's increment is still pending: the epoch is running
    (``epoch_progress`` processed == started - 1), a batch was started in it and has been processed.
With accumulation the pending batch may not have stepped; we then keep ``global_step`` unless it
is the epoch's last batch (which always steps). Pre-1.6 files (no batch progress) get
``global_step``, which the 1.6.0 unit has already made the optimizer-step count.
When: Lightning 1.6.5 (backport #13467 of PR #13645, commit c67b075).
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-1.6.5-batches-that-stepped"
VERSION = "1.6.5"
ORDER = 10
CHANGES_TENSORS = False

# 1.6 – 1.9 names first; the 2.x names serve files re-stamped by hand (as Lightning's own test does)
_AUTO = ("epoch_loop.batch_loop.optimizer_loop.optim_progress", "epoch_loop.automatic_optimization.optim_progress")
_MANUAL = (
    "epoch_loop.batch_loop.manual_loop.optim_step_progress",
    "epoch_loop.manual_optimization.optim_step_progress",
)


def _int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _first_count(fit_loop: dict, keys: tuple, *path) -> int:
    for key in keys:
        value = _int(ops.get_in(fit_loop, key, *path))
        if value is not None:
            return value
    return 0


def batches_that_stepped(checkpoint: dict, fit_loop: dict) -> int:
    """The value 1.6.5 would have saved at the moment this checkpoint was written."""
    auto = _first_count(fit_loop, _AUTO, "optimizer", "step", "total", "completed")
    manual = _first_count(fit_loop, _MANUAL, "total", "completed")
    global_step = _int(checkpoint.get("global_step"))
    if global_step is None:
        global_step = auto + manual
    batch = "epoch_loop.batch_progress"
    ready, processed, completed = (
        _int(ops.get_in(fit_loop, batch, "total", k)) for k in ("ready", "processed", "completed")
    )
    if processed is None or completed is None or processed <= 0:
        return global_step

    every_batch_steps = (manual > 0 and auto == 0) or (auto > 0 and auto % processed == 0)
    stepped = processed if every_batch_steps else global_step

    epoch_started = _int(ops.get_in(fit_loop, "epoch_progress", "total", "started"))
    epoch_processed = _int(ops.get_in(fit_loop, "epoch_progress", "total", "processed"))
    running = epoch_started is not None and epoch_processed == epoch_started - 1
    in_epoch = (_int(ops.get_in(fit_loop, batch, "current", "ready")) or 0) > 0
    pending = running and in_epoch and ready == processed and completed in (processed - 1, processed)
    if not pending:
        return stepped
    if every_batch_steps or ops.get_in(fit_loop, batch, "is_last_batch") is True:
        return max(stepped - 1, 0)
    return stepped


def upgrade(checkpoint: dict) -> dict:
    fit_loop = ops.fit_loop(checkpoint)
    if fit_loop is None:
        return checkpoint
    state = fit_loop.setdefault("epoch_loop.state_dict", {})
    if isinstance(state, dict) and "_batches_that_stepped" not in state:
        state["_batches_that_stepped"] = batches_that_stepped(checkpoint, fit_loop)
    return checkpoint
