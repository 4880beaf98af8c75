"""Loop progress synthesized from the pre-1.6 ``epoch``/``global_step`` counters.

Why: from 1.6 the Trainer restores ``current_epoch`` and ``global_step`` from ``loops.fit_loop``
only. Lightning's own 1.6.0 migrations get this wrong three ways: they set only
``epoch_progress.current.completed``, which ``_FitLoop`` overwrites with ``processed`` (0) on
resume, so a resumed pre-1.6 run restarts at epoch 0 (verified: a 1.2.10 file saved after 2 epochs
re-runs epochs 0 – 3 and ends at global step 25 instead of 17); they copy the saved ``global_step``,
which 0.7 – 1.5 stored as "+1", so every resumed run is one optimizer step ahead; and they raise
``KeyError`` when ``global_step`` or ``epoch`` is absent.
When: Lightning 1.6.0, PR #11805 (commits c67b075, aea96e4: ``_migrate_loop_global_step_to_progress_tracking``,
``_migrate_loop_current_epoch_to_progress_tracking``) and PR #10784 (loops always saved).

What it writes (contract "Counters"):
* ``loops.fit_loop``: the 1.6.0 skeleton (fresh dict) when absent; missing keys filled otherwise.
* epoch: ``epoch_progress`` ready/started/processed/completed, current and total, all = saved
  ``epoch``: a pre-1.6 release resumed at the saved ``epoch`` (skipping the rest of an unfinished
  epoch, and without the +1 when 1.0.4 – 1.5 stopped on ``max_steps``); so does the upgraded file.
* global_step: the optimizer steps taken. Evidence first: the sum over optimizers of the largest
  per-parameter ``step`` in ``optimizer_states[i]["state"]`` (Adam-like optimizers count steps;
  optimizers without a ``step`` counter add nothing); with no evidence at all, saved
  ``global_step - 1`` (the +1 convention of 0.7 – 1.5). Real 1.2.10 files show the +1 only for saves
  made after ``fit`` ended (saved 9 for 8 steps); saves from hooks during training (ModelCheckpoint,
  ``on_train_batch_end``) ran before the step counter moved, so there saved == steps (saved 6 for 6
  steps): the fallback can be one short for those. Written to the automatic and the manual
  optimization progress (``step.total``), as Lightning does.
* ``epoch_loop.state_dict._batches_that_stepped`` (the logger step, saved from 1.6.5): the same step
  count (exact for one optimizer; Lightning's skeleton leaves it at 0, restarting the logger step).
* ``loops.validate_loop``/``test_loop``/``predict_loop``: the 1.6.0 states with zero progress when
  absent. From 1.6 every checkpoint has all four loops and ``validate``/``test``/``predict(ckpt_path=...)``
  read theirs (``KeyError: 'validate_loop'`` without them, as after Lightning's own migration); zero
  is what a 1.6+ save made during ``fit`` records there.
* top-level ``epoch``/``global_step`` rewritten to these values; the originals are kept in
  ``ckpt_compat.original_counters``.
Fault-tolerant files (1.4/1.5 with real loop progress, brought to the 1.6 layout by
``pl-1.6.0-fault-tolerant-loop-layouts``) keep their recorded epoch and batch progress; only
missing step counts are filled in, and the top-level counters are taken from the loops.
Loops that Lightning itself saved in the 1.6 format (a ``1.6.0rc`` file sorts below 1.6.0) are
left exactly as they are.
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-1.6.0-loops-from-counters"
VERSION = "1.6.0"
ORDER = 20
CHANGES_TENSORS = False
# Reads the note that unit leaves on the fault-tolerant files it converted (their loops hold real
# progress to keep); the catalogue refuses to load if it is missing or does not sort before this one.
_FAULT_TOLERANT_UNIT = "pl-1.6.0-fault-tolerant-loop-layouts"
REQUIRES = (_FAULT_TOLERANT_UNIT,)

_OPTIM = "epoch_loop.batch_loop.optimizer_loop.optim_progress"
_MANUAL = "epoch_loop.batch_loop.manual_loop.optim_step_progress"
_TRACKER_FIELDS = ops.PROCESSED
_EVALUATION_LOOPS = {"validate_loop": True, "test_loop": True, "predict_loop": False}  # name: is_last_batch


def fit_loop_skeleton() -> dict:
    """Lightning 1.6.0's fit-loop state with zero progress (``_get_fit_loop_initial_state_1_6_0``)."""
    fit = ops.fit_loop_skeleton_1_6_0()
    fit["epoch_loop.state_dict"]["_batches_that_stepped"] = 0
    return fit


def _as_int(value):
    try:
        return int(value)  # ints, and 0-dim tensors (torch >= 1.12 Adam keeps ``step`` as a tensor)
    except (TypeError, ValueError, RuntimeError):
        return None


def optimizer_steps_from_states(checkpoint: dict):
    """Sum over optimizers of the max per-parameter ``step``; ``None`` when no optimizer records one."""
    states = checkpoint.get("optimizer_states")
    if not isinstance(states, (list, tuple)):
        return None
    total, found = 0, False
    for opt_state in states:
        per_param = opt_state.get("state") if isinstance(opt_state, dict) else None
        if not isinstance(per_param, dict):
            continue
        steps = [_as_int(s.get("step")) for s in per_param.values() if isinstance(s, dict) and "step" in s]
        steps = [s for s in steps if s is not None]
        if steps:
            total += max(steps)
            found = True
    return total if found else None


def upgrade(checkpoint: dict) -> dict:
    ledger_counters = ops.ledger_entry(checkpoint, ops.ORIGINAL_COUNTERS)
    has_fit_loop = isinstance(ops.get_in(checkpoint, "loops", "fit_loop"), dict)
    from_fault_tolerant = _FAULT_TOLERANT_UNIT in (ops.ledger_entry(checkpoint, ops.NOTES) or {})
    if has_fit_loop and not from_fault_tolerant and not isinstance(ledger_counters, dict):
        return checkpoint  # loops saved by Lightning itself in the 1.6 format (e.g. a 1.6.0rc file)
    if isinstance(ledger_counters, dict):  # already upgraded once: start from the saved values
        originals = ledger_counters
    else:
        originals = {k: checkpoint[k] for k in ("epoch", "global_step") if k in checkpoint}
        if originals:
            ops.keep_in_ledger(checkpoint, ops.ORIGINAL_COUNTERS, dict(originals))
    saved_epoch = _as_int(originals.get("epoch"))
    saved_step = _as_int(originals.get("global_step"))

    loops = checkpoint.get("loops")
    if not isinstance(loops, dict):
        loops = checkpoint["loops"] = {}
    recorded = isinstance(loops.get("fit_loop"), dict)  # fault-tolerant progress (or our own output)
    if not recorded:
        loops["fit_loop"] = fit_loop_skeleton()
    for name, last_batch in _EVALUATION_LOOPS.items():
        if not isinstance(loops.get(name), dict):
            loops[name] = ops.evaluation_loop_skeleton_1_6_0(last_batch)
    fit = loops["fit_loop"]
    for key, value in fit_loop_skeleton().items():
        if key != "epoch_loop.state_dict":
            fit.setdefault(key, value)
    if not isinstance(fit.get("epoch_loop.state_dict"), dict):
        fit["epoch_loop.state_dict"] = {}

    # optimizer steps: recorded loop progress > optimizer-state evidence > saved global_step - 1
    recorded_steps = _as_int(ops.get_in(fit, _OPTIM, "optimizer", "step", "total", "completed")) if recorded else None
    steps = recorded_steps if recorded_steps else optimizer_steps_from_states(checkpoint)
    if steps is None and saved_step is not None:
        steps = max(saved_step - 1, 0)
    if steps is not None:
        for total in (ops.get_in(fit, _OPTIM, "optimizer", "step", "total"), ops.get_in(fit, _MANUAL, "total")):
            total["ready"] = total["completed"] = steps
        checkpoint["global_step"] = steps
    if steps is not None:
        if recorded:
            fit["epoch_loop.state_dict"].setdefault("_batches_that_stepped", steps)
        else:
            fit["epoch_loop.state_dict"]["_batches_that_stepped"] = steps

    # epoch: resume where the saving release resumed, unless the loops recorded real progress
    epoch_progress = fit["epoch_progress"]
    if recorded:
        epoch = _as_int(ops.get_in(epoch_progress, "current", "completed"))
    else:
        epoch = saved_epoch
        if epoch is not None:
            for part in ("current", "total"):
                epoch_progress[part] = {f: epoch for f in _TRACKER_FIELDS}
    if epoch is not None and (recorded or "epoch" in originals):
        checkpoint["epoch"] = epoch
    return checkpoint
