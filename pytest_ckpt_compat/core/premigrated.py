"""Files that Lightning's own ``migrate_checkpoint`` already migrated: recognise them, repair the damage.

Why: ``python -m lightning.pytorch.utilities.upgrade_checkpoint`` (or ``pytorch_lightning...``,
or any code that saved the result of ``migrate_checkpoint``) stamps the installed version and keeps
the original in ``legacy_pytorch-lightning_version``, as our engine does, but writes no ledger of
ours. Our catalogue then starts again from the legacy version and its units meet content that is
no longer in the format they were written for. Measured on every real golden older than 2.0,
under both namespaces' ``upgrade_checkpoint`` (``tests/test_premigrated.py``, ``-m slow`` for all of
them), Lightning's output differs from ours in two places, both in the loop state, and in nothing
else (callbacks, optimizers, schedulers, weights are equal; only our ledger's note of the class that
keyed a pre-1.5 callback state names Lightning's namespace, under which it re-pickled the class):

* before 1.6: Lightning synthesises ``loops.fit_loop`` from the ``epoch``/``global_step``
  counters, but only ``epoch_progress.current.completed`` (2.x resumes from ``processed``: the run
  restarts at epoch 0), the saved "+1" ``global_step`` as the step count (one step ahead) and a
  logger step (``_batches_that_stepped``) of 0. Re-run on it, our fault-tolerant layout unit takes
  the loop for a recorded 1.4/1.5 loop and adds the 1.6 names next to Lightning's 2.0 names: stale
  ``optimizer_loop``/``manual_loop`` keys survive next to the 2.x ones.
* 1.6.0 - 1.6.4: Lightning's 1.6.5 migration sets ``_batches_that_stepped`` to ``global_step``,
  wrong with several optimizers (12 for 8 batches) and for saves inside an epoch (one ahead).

The repair removes exactly what Lightning synthesised (after checking that it is that and nothing
else), so the catalogue then runs on the content the legacy release saved and rebuilds it from
the evidence in the file, as for the untouched original. Everything else Lightning changed is
left to the units, which are guarded on key presence: the 1.9 ``ModelCheckpoint`` state key and the
2.0 loop renames are what they write too, and the 0.10 callbacks keyed by class (ours by name) are
keyed for 2.x by the 1.5 unit either way.
Not repairable: apex state (``amp_scaling_state``), which Lightning's 2.0 migration deletes without
a trace; loop state that is not exactly Lightning's synthesis (edited after the migration) is kept
and reported, never guessed at. Lightning's migration raises ``KeyError`` on 1.4/1.5
fault-tolerant files, so it writes no migrated copy of them.
When: Lightning 1.9.0 (``migrate_checkpoint`` and the legacy key: PR #15237) to today; 2.0.0 added the
loop renames (so 1.9.x files keep the 1.6 loop names).
"""

from __future__ import annotations

from typing import Any

from . import ledger, ops, versions

RECORD_KEY = ledger.LIGHTNING_MIGRATED  # what we found and repaired, kept in the ledger
_FORMAT_1_6 = versions.parse("1.6.0")
_FORMAT_1_6_5 = versions.parse("1.6.5")

# Lightning 2.0's renames of the 1.6 fit-loop keys (``_migrate_loop_structure_after_*_removal``)
_RENAMES_2_0 = {
    "epoch_loop.batch_loop.manual_loop.optim_step_progress": "epoch_loop.manual_optimization.optim_step_progress",
    "epoch_loop.batch_loop.manual_loop.state_dict": "epoch_loop.manual_optimization.state_dict",
    "epoch_loop.batch_loop.optimizer_loop.optim_progress": "epoch_loop.automatic_optimization.optim_progress",
    "epoch_loop.batch_loop.optimizer_loop.state_dict": "epoch_loop.automatic_optimization.state_dict",
}


def detect(checkpoint: Any) -> dict | None:
    """``{"legacy_version", "by"}`` when Lightning migrated the content and we never did, else ``None``.

    The sign: the legacy version key without our ledger (only Lightning's ``migrate_checkpoint``
    and our engine write that key, and ours always writes the ledger). ``by`` is the version
    Lightning stamped, its own at the time. Pure.
    """
    if not isinstance(checkpoint, dict) or ledger.has_key(checkpoint):
        return None
    legacy, stamped = checkpoint.get(versions.LEGACY_VERSION_KEY), checkpoint.get(versions.VERSION_KEY)
    if not isinstance(legacy, str):
        return None
    return {"legacy_version": legacy, "by": stamped if isinstance(stamped, str) else None}


def repair(checkpoint: dict) -> dict | None:
    """Undo what Lightning's migration got wrong (see the module docstring); returns the record.

    The record (``ckpt_compat.lightning_migrated``): ``legacy_version``, ``by``, ``repaired`` (what
    was removed and why) and ``not_repaired`` (what could not be, with the reason).
    """
    found = detect(checkpoint)
    if found is None:
        return None
    origin = versions.parse(found["legacy_version"], what=versions.LEGACY_VERSION_KEY)
    record = {**found, "repaired": [], "not_repaired": []}
    if origin < _FORMAT_1_6:
        _drop_loop_synthesised_from_counters(checkpoint, record)
    elif origin < _FORMAT_1_6_5:
        _drop_default_batches_that_stepped(checkpoint, record)
    ledger.open_catalogue(checkpoint, "lightning")  # complete from the start: a file at the target runs no unit
    ledger.put(checkpoint, RECORD_KEY, record)
    return record


def summary(record: dict) -> str:
    """One line for ``inspect`` and ``upgrade``: where the file came from and what the repair did."""
    notes = [f"repaired: {r}" for r in record["repaired"]] + [f"NOT repaired: {r}" for r in record["not_repaired"]]
    return f"from {record['legacy_version']} by Lightning {record['by']}; " + ("; ".join(notes) or "nothing to repair")


def synthesised_fit_loop(epoch: Any, global_step: Any, *, layout_2_0: bool) -> dict:
    """The ``fit_loop`` Lightning's 1.6.0 / 1.6.5 migrations build for a pre-1.6 file.

    ``_get_fit_loop_initial_state_1_6_0`` with the saved ``global_step`` as both step totals and
    ``epoch`` as ``epoch_progress.current.completed``; ``layout_2_0``: after Lightning 2.0's loop
    renames (files migrated by 2.x; 1.9.x leaves the 1.6 names).
    """
    fit = ops.fit_loop_skeleton_1_6_0()
    fit["epoch_loop.state_dict"]["_batches_that_stepped"] = 0
    fit["epoch_loop.batch_loop.optimizer_loop.optim_progress"]["optimizer"]["step"]["total"]["completed"] = global_step
    fit["epoch_loop.batch_loop.manual_loop.optim_step_progress"]["total"]["completed"] = global_step
    fit["epoch_progress"]["current"]["completed"] = epoch
    if layout_2_0:
        for old, new in _RENAMES_2_0.items():
            fit[new] = fit.pop(old)
        del fit["epoch_loop.batch_loop.state_dict"]
        del fit["epoch_loop.automatic_optimization.optim_progress"]["optimizer_position"]
    return fit


def _drop_loop_synthesised_from_counters(checkpoint: dict, record: dict) -> None:
    """Pre-1.6 content: remove Lightning's synthesised fit loop when it holds nothing else.

    Why: it restarts the run at epoch 0, one step ahead, at logger step 0 (module docstring), and
    it was made from the top-level ``epoch``/``global_step``, which Lightning leaves as saved; so
    removing it loses nothing, and our 1.6.0 unit rebuilds the loop from the same counters and the
    optimizer states, as for the untouched original.
    """
    loops = checkpoint.get("loops")
    fit = ops.fit_loop(checkpoint)
    if fit is None:
        return
    epoch, step = checkpoint.get("epoch"), checkpoint.get("global_step")
    if not any(_equal(fit, synthesised_fit_loop(epoch, step, layout_2_0=l2)) for l2 in (True, False)):
        record["not_repaired"].append(
            "loops.fit_loop of this pre-1.6 file is not what Lightning synthesises from epoch/global_step "
            f"(epoch={epoch!r}, global_step={step!r}): kept as it is; its epoch and step progress may be Lightning's "
            "(wrong) ones"
        )
        return
    assert loops is not None  # ops.fit_loop found the fit loop in it
    del loops["fit_loop"]
    if not loops:
        del checkpoint["loops"]
    record["repaired"].append(
        f"removed loops.fit_loop that Lightning synthesised from epoch={epoch!r}, global_step={step!r} "
        "(epoch progress restarting at 0, the saved +1 global_step, logger step 0); rebuilt from the counters"
    )


def _drop_default_batches_that_stepped(checkpoint: dict, record: dict) -> None:
    """1.6.0 - 1.6.4 content: remove the ``_batches_that_stepped`` Lightning's 1.6.5 migration set.

    Why: those releases never saved the key, so a value equal to ``global_step`` is Lightning's
    default, wrong with several optimizers and inside an epoch; our 1.6.5 unit recomputes what 1.6.5
    would have saved from the loop progress.
    """
    state = ops.get_in(checkpoint, "loops", "fit_loop", "epoch_loop.state_dict")
    if not isinstance(state, dict) or "_batches_that_stepped" not in state:
        return
    value, step = state["_batches_that_stepped"], checkpoint.get("global_step")
    if not _equal(value, step):
        record["not_repaired"].append(
            f"_batches_that_stepped={value!r} is not Lightning's default (global_step={step!r}): kept as it is"
        )
        return
    del state["_batches_that_stepped"]
    record["repaired"].append(
        f"removed _batches_that_stepped={value!r} (Lightning's default: global_step); recomputed as 1.6.5 saves it"
    )


def _equal(a: Any, b: Any) -> bool:
    """Exact equality of plain data (ints, floats and bools are told apart): :func:`.ops.differences`."""
    return not ops.differences(a, b)
