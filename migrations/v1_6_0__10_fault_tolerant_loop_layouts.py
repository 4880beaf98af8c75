"""Fault-tolerant loop states of 1.4 and 1.5 brought to the 1.6.0 layout.

Why: with ``PL_FAULT_TOLERANT_TRAINING=1`` Lightning 1.4 and 1.5 saved ``loops`` in layouts that
1.6 changed. Lightning's 1.6.0 counter migration writes into an existing ``loops.fit_loop`` and
raises ``KeyError: 'epoch_loop.batch_loop.manual_loop.optim_step_progress'`` (1.5) or
``KeyError: 'epoch_loop.batch_loop.optimizer_loop.optim_progress'`` (1.4); and even past that,
current progress classes reject the old trackers (``_BatchProgress.load_state_dict`` needs
``is_last_batch``; 1.4 trackers hold ``None`` for unused fields).
When: Lightning 1.6.0 (the layout of ``_get_fit_loop_initial_state_1_6_0``); the old layouts are
those of tests/loops/test_loop_state_dict.py at 1.4.9 (batch loop with ``optim_progress``) and 1.5.10
(optimizer loop, no manual-loop step progress, ``_results``).

Changes, all in place and keeping the recorded progress values:
1.4 ``epoch_loop.batch_loop.optim_progress`` (``optimizer_idx``) ->
``epoch_loop.batch_loop.optimizer_loop.optim_progress`` (``optimizer_position``); trackers reduced
to the fields of their 1.6 type (``None`` fields removed, missing ones set to ``completed``); batch
progress of fit/validate/test gains ``is_last_batch=False``; missing 1.6 keys (e.g. the 1.5-missing
``epoch_loop.batch_loop.manual_loop.optim_step_progress``) are added with zero progress. The 1.5
``_results`` blocks (logged-metric ResultCollections, unused since 1.6 and holding pickled
``torch`` functions that ``weights_only`` loading rejects) move to
``ckpt_compat.dropped["loops/<loop>/<key>"]``, with functions and other non-plain objects
replaced by their dotted names. Must run before ``pl-1.6.0-loops-from-counters``.
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-1.6.0-fault-tolerant-loop-layouts"
VERSION = "1.6.0"
ORDER = 10
CHANGES_TENSORS = False

# key -> (tracker fields, has is_last_batch), per loop, as in Lightning 1.6.0
_FIT_PROGRESS = {
    "epoch_progress": (ops.PROCESSED, False),
    "epoch_loop.batch_progress": (ops.PROCESSED, True),
    "epoch_loop.scheduler_progress": (ops.RC, False),
    "epoch_loop.batch_loop.manual_loop.optim_step_progress": (ops.RC, False),
    "epoch_loop.val_loop.dataloader_progress": (ops.RC, False),
    "epoch_loop.val_loop.epoch_loop.batch_progress": (ops.PROCESSED, True),
}
_EVAL_PROGRESS = {"dataloader_progress": (ops.RC, False), "epoch_loop.batch_progress": (ops.PROCESSED, True)}
_PREDICT_PROGRESS = {"dataloader_progress": (ops.RC, False), "epoch_loop.batch_progress": (ops.PROCESSED, False)}
_OPTIM = "epoch_loop.batch_loop.optimizer_loop.optim_progress"
_OPTIM_1_4 = "epoch_loop.batch_loop.optim_progress"


def _fix_tracker(tracker, fields) -> dict:
    if not isinstance(tracker, dict):
        return ops.tracker(fields)
    for key in [k for k, v in tracker.items() if v is None]:
        del tracker[key]
    fallback = tracker.get("completed", 0)
    for field in fields:
        if tracker.get(field) is None:
            tracker[field] = fallback
    return tracker


def _fix_progress(progress, fields, last_batch) -> dict:
    if not isinstance(progress, dict):
        return ops.progress(fields, last_batch)
    for part in ("current", "total"):
        progress[part] = _fix_tracker(progress.get(part), fields)
    if last_batch:
        progress.setdefault("is_last_batch", False)
    return progress


def _move_results(checkpoint: dict, loop_name: str, loop: dict) -> None:
    for key in [k for k in loop if isinstance(k, str) and k.split(".")[-1] == "_results"]:
        ops.drop(checkpoint, f"loops/{loop_name}/{key}", ops.to_plain(loop.pop(key)))


def _fix_optim(fit: dict) -> None:
    old = fit.pop(_OPTIM_1_4, None)
    if isinstance(old, dict) and _OPTIM not in fit:
        fit[_OPTIM] = {"optimizer": old.get("optimizer"), "optimizer_position": old.get("optimizer_idx", 0) or 0}
    optim = fit.get(_OPTIM)
    if not isinstance(optim, dict):
        fit[_OPTIM] = ops.fit_loop_skeleton_1_6_0()[_OPTIM]
        return
    optimizer = optim.get("optimizer")
    if not isinstance(optimizer, dict):
        optimizer = optim["optimizer"] = {}
    optimizer["step"] = _fix_progress(optimizer.get("step"), ops.RC, False)
    optimizer["zero_grad"] = _fix_progress(optimizer.get("zero_grad"), ops.STARTED, False)
    optim.setdefault("optimizer_position", optim.pop("optimizer_idx", 0) or 0)


def upgrade(checkpoint: dict) -> dict:
    loops = checkpoint.get("loops")
    if not isinstance(loops, dict):
        return checkpoint
    fit = loops.get("fit_loop")
    if isinstance(fit, dict):
        if _OPTIM_1_4 in fit or "epoch_loop.batch_loop.manual_loop.optim_step_progress" not in fit:
            # the counters unit reads this mark: these loops hold real progress, in a pre-1.6 layout
            ops.note(checkpoint, ID, "fault-tolerant loop layout of Lightning 1.4/1.5 brought to the 1.6.0 layout")
        _move_results(checkpoint, "fit_loop", fit)
        _fix_optim(fit)
        for key, (fields, last_batch) in _FIT_PROGRESS.items():
            fit[key] = _fix_progress(fit.get(key), fields, last_batch)
        for key, value in ops.fit_loop_skeleton_1_6_0().items():
            fit.setdefault(key, value)
    for name, spec, last_batch in (
        ("validate_loop", _EVAL_PROGRESS, True),
        ("test_loop", _EVAL_PROGRESS, True),
        ("predict_loop", _PREDICT_PROGRESS, False),
    ):
        loop = loops.get(name)
        if not isinstance(loop, dict):
            continue
        _move_results(checkpoint, name, loop)
        for key, (fields, lb) in spec.items():
            loop[key] = _fix_progress(loop.get(key), fields, lb)
        for key, value in ops.evaluation_loop_skeleton_1_6_0(last_batch).items():
            loop.setdefault(key, value)
    return checkpoint
