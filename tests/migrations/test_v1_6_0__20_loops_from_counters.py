"""pl-1.6.0-loops-from-counters: loop progress from the pre-1.6 ``epoch``/``global_step``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat import load_checkpoint, save_checkpoint, upgrade
from tests.migrations.helpers_pre16 import lightning_migrations_off, same, snapshot, tiny_fit, unit

UNIT = unit("pl-1.6.0-loops-from-counters")
OPTIM = "epoch_loop.batch_loop.optimizer_loop.optim_progress"
MANUAL = "epoch_loop.batch_loop.manual_loop.optim_step_progress"

# Lightning's _get_fit_loop_initial_state_1_6_0, verbatim (research §1.3 e)
SKELETON_1_6_0 = {
    "epoch_loop.batch_loop.manual_loop.optim_step_progress": {
        "current": {"completed": 0, "ready": 0},
        "total": {"completed": 0, "ready": 0},
    },
    "epoch_loop.batch_loop.manual_loop.state_dict": {},
    "epoch_loop.batch_loop.optimizer_loop.optim_progress": {
        "optimizer": {
            "step": {"current": {"completed": 0, "ready": 0}, "total": {"completed": 0, "ready": 0}},
            "zero_grad": {
                "current": {"completed": 0, "ready": 0, "started": 0},
                "total": {"completed": 0, "ready": 0, "started": 0},
            },
        },
        "optimizer_position": 0,
    },
    "epoch_loop.batch_loop.optimizer_loop.state_dict": {},
    "epoch_loop.batch_loop.state_dict": {},
    "epoch_loop.batch_progress": {
        "current": {"completed": 0, "processed": 0, "ready": 0, "started": 0},
        "is_last_batch": False,
        "total": {"completed": 0, "processed": 0, "ready": 0, "started": 0},
    },
    "epoch_loop.scheduler_progress": {"current": {"completed": 0, "ready": 0}, "total": {"completed": 0, "ready": 0}},
    "epoch_loop.state_dict": {"_batches_that_stepped": 0},
    "epoch_loop.val_loop.dataloader_progress": {
        "current": {"completed": 0, "ready": 0},
        "total": {"completed": 0, "ready": 0},
    },
    "epoch_loop.val_loop.epoch_loop.batch_progress": {
        "current": {"completed": 0, "processed": 0, "ready": 0, "started": 0},
        "is_last_batch": False,
        "total": {"completed": 0, "processed": 0, "ready": 0, "started": 0},
    },
    "epoch_loop.val_loop.epoch_loop.state_dict": {},
    "epoch_loop.val_loop.state_dict": {},
    "epoch_progress": {
        "current": {"completed": 0, "processed": 0, "ready": 0, "started": 0},
        "total": {"completed": 0, "processed": 0, "ready": 0, "started": 0},
    },
    "state_dict": {},
}


def _epoch(n):
    return {
        "current": dict.fromkeys(("ready", "started", "processed", "completed"), n),
        "total": dict.fromkeys(("ready", "started", "processed", "completed"), n),
    }


def test_skeleton_is_lightnings_1_6_0_layout_with_counters():
    ckpt = {"pytorch-lightning_version": "1.5.9", "global_step": 15, "epoch": 2}  # hand-made, Lightning's input
    UNIT.upgrade(ckpt)
    expected = snapshot(SKELETON_1_6_0)
    expected["epoch_progress"] = _epoch(2)
    for key, path in ((OPTIM, ("optimizer", "step", "total")), (MANUAL, ("total",))):
        node = expected[key]
        for p in path:
            node = node[p]
        node.update(ready=14, completed=14)
    expected["epoch_loop.state_dict"] = {"_batches_that_stepped": 14}
    assert ckpt["loops"] == {"fit_loop": expected, **EVALUATION_LOOPS_1_6_5}
    assert (ckpt["epoch"], ckpt["global_step"]) == (2, 14)
    assert ckpt["ckpt_compat"]["original_counters"] == {"epoch": 2, "global_step": 15}


def _zero_eval(last_batch: bool) -> dict:
    batch = {
        "total": {"ready": 0, "completed": 0, "started": 0, "processed": 0},
        "current": {"ready": 0, "completed": 0, "started": 0, "processed": 0},
    }
    if last_batch:
        batch["is_last_batch"] = False
    return {
        "state_dict": {},
        "dataloader_progress": {"total": {"ready": 0, "completed": 0}, "current": {"ready": 0, "completed": 0}},
        "epoch_loop.state_dict": {},
        "epoch_loop.batch_progress": batch,
    }


# written out from the real golden/1.6.5/end_of_fit.ckpt (a save made during fit)
EVALUATION_LOOPS_1_6_5 = {
    "validate_loop": _zero_eval(True),
    "test_loop": _zero_eval(True),
    "predict_loop": _zero_eval(False),
}


GOLDEN = Path(__file__).parents[2] / "golden"


def test_evaluation_loops_equal_a_real_1_6_5_save_made_during_fit():
    real = torch.load(GOLDEN / "1.6.5" / "end_of_fit.ckpt", map_location="cpu", weights_only=False)["loops"]
    assert {k: real[k] for k in EVALUATION_LOOPS_1_6_5} == EVALUATION_LOOPS_1_6_5
    ckpt = {"pytorch-lightning_version": "1.2.10", "global_step": 9, "epoch": 1}
    UNIT.upgrade(ckpt)
    assert {k: ckpt["loops"][k] for k in EVALUATION_LOOPS_1_6_5} == EVALUATION_LOOPS_1_6_5
    kept = {"pytorch-lightning_version": "1.5.9", "global_step": 9, "epoch": 1, "loops": {"validate_loop": {"mine": 1}}}
    UNIT.upgrade(kept)
    assert kept["loops"]["validate_loop"] == {"mine": 1}  # present states are never replaced


def test_lightning_cases_2_and_3_with_the_off_by_one_fixed():
    # §3.6 cases 2/3: {"global_step": 15, "epoch": 2} @1.5.9 -> Lightning writes 15; the file held 14 steps
    ckpt = {"pytorch-lightning_version": "1.5.9", "global_step": 15, "epoch": 2}
    upgrade(ckpt, "1.6.0")
    fit = ckpt["loops"]["fit_loop"]
    assert fit[OPTIM]["optimizer"]["step"]["total"]["completed"] == 14
    assert fit[MANUAL]["total"]["completed"] == 14
    assert fit["epoch_progress"]["current"]["completed"] == 2
    assert fit["epoch_progress"] == _epoch(2)  # all four, or _FitLoop resets the epoch to 0


def test_global_step_from_optimizer_state_evidence():
    steps_a = [torch.tensor(12.0), torch.tensor(12.0), torch.tensor(11.0)]
    ckpt = {  # hand-made: Adam-like (step tensors) + SGD with momentum (no step) + Adam (int steps)
        "epoch": 3,
        "global_step": 99,
        "optimizer_states": [
            {"state": {i: {"step": s, "exp_avg": torch.zeros(1)} for i, s in enumerate(steps_a)}, "param_groups": []},
            {"state": {0: {"momentum_buffer": torch.zeros(1)}}, "param_groups": []},
            {"state": {0: {"step": 5}}, "param_groups": []},
        ],
    }
    step_tensors = [s for s in steps_a]
    UNIT.upgrade(ckpt)
    assert ckpt["global_step"] == 17
    assert ckpt["loops"]["fit_loop"][OPTIM]["optimizer"]["step"]["total"]["completed"] == 17
    assert all(
        a is b for a, b in zip([ckpt["optimizer_states"][0]["state"][i]["step"] for i in range(3)], step_tensors)
    )


def test_fresh_skeleton_every_call():
    a, b = {"epoch": 1, "global_step": 5}, {"epoch": 3, "global_step": 9}
    UNIT.upgrade(a)
    UNIT.upgrade(b)
    assert a["loops"]["fit_loop"]["epoch_progress"] == _epoch(1)
    assert b["loops"]["fit_loop"]["epoch_progress"] == _epoch(3)
    assert a["loops"]["fit_loop"]["epoch_progress"] is not b["loops"]["fit_loop"]["epoch_progress"]


@pytest.mark.parametrize("ckpt", [{}, {"epoch": 2}, {"global_step": 7}, {"loops": {}}])
def test_no_key_error_without_counters(ckpt):
    UNIT.upgrade(ckpt)
    fit = ckpt["loops"]["fit_loop"]
    assert fit["epoch_progress"] == _epoch(ckpt.get("epoch", 0))
    assert fit[OPTIM]["optimizer"]["step"]["total"]["completed"] == (6 if "global_step" in ckpt else 0)
    originals = {k: ckpt[k] for k in ("epoch",) if k in ckpt}
    assert ckpt.get("ckpt_compat", {}).get("original_counters", {}).get("epoch") == originals.get("epoch")


def test_lightning_test_utils_case_9_version_0_0_1():
    ckpt = {"pytorch-lightning_version": "0.0.1", "global_step": 2, "epoch": 0}
    upgrade(ckpt, "1.6.0")
    assert ckpt["callbacks"] == {} and "loops" in ckpt and ckpt["legacy_pytorch-lightning_version"] == "0.0.1"
    assert (ckpt["global_step"], ckpt["epoch"]) == (1, 0)


def test_fault_tolerant_progress_is_kept():
    # hand-made 1.5 FT file after the layout unit: mid-epoch, 6 optimizer steps recorded
    from tests.migrations.test_v1_6_0__10_fault_tolerant_loop_layouts import _ckpt, fit_loop_1_5

    ckpt = _ckpt(fit_loop_1_5(), "1.5.10")
    upgrade(ckpt, "1.6.0")
    fit = ckpt["loops"]["fit_loop"]
    assert fit["epoch_progress"]["current"] == {"ready": 2, "started": 2, "processed": 1, "completed": 1}
    assert fit["epoch_loop.batch_progress"]["total"]["ready"] == 6
    assert (ckpt["global_step"], ckpt["epoch"]) == (6, 1)
    assert fit[MANUAL]["total"]["completed"] == 6
    assert fit["epoch_loop.state_dict"] == {"dataloader_state_dict": {"x": 1}, "_batches_that_stepped": 6}


def test_idempotent():
    ckpt = {"epoch": 2, "global_step": 9, "optimizer_states": [{"state": {0: {"step": torch.tensor(8.0)}}}]}
    UNIT.upgrade(ckpt)
    once = snapshot(ckpt)
    UNIT.upgrade(ckpt)
    assert same(ckpt, once)
    assert (ckpt["epoch"], ckpt["global_step"]) == (2, 8)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_under_installed_lightning(tmp_path, monkeypatch, optimizer):
    """A pre-1.6-shaped file resumes at the saved epoch and the true step count, weights_only=True."""
    trainer, _ = tiny_fit(tmp_path / "a", max_epochs=2, optimizer=optimizer)
    assert trainer.global_step == 8
    path = tmp_path / "new.ckpt"
    trainer.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    # hand-made from a real 2.6 save: what 1.2.10 wrote after fit (no loops, "+1" counters)
    del ckpt["loops"]
    ckpt["pytorch-lightning_version"] = "1.2.10"
    ckpt["epoch"], ckpt["global_step"] = 2, 9
    upgrade(ckpt)
    assert (ckpt["epoch"], ckpt["global_step"]) == (2, 8)
    old = tmp_path / "old.ckpt"
    save_checkpoint(ckpt, old)
    assert load_checkpoint(old)["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] == 2

    probe = {}
    with lightning_migrations_off(monkeypatch):
        resumed, _ = tiny_fit(
            tmp_path / "b", max_epochs=4, ckpt_path=old, weights_only=True, optimizer=optimizer, probe=probe
        )
    assert probe["start"] == (2, 8)
    assert probe["epochs"] == [2, 3]
    assert resumed.global_step == 16
    assert resumed.current_epoch == 4


def test_loops_saved_by_lightning_1_6_itself_are_left_alone():
    """Hand-made: a 1.6.0rc-style file already has real loops; the unit must not rewrite them."""
    from pytest_ckpt_compat.core.ops import fit_loop_skeleton_1_6_0

    fit = fit_loop_skeleton_1_6_0()
    fit["epoch_loop.batch_loop.optimizer_loop.optim_progress"]["optimizer"]["step"]["total"]["completed"] = 8
    ckpt = {"pytorch-lightning_version": "1.6.0rc1", "epoch": 2, "global_step": 8, "loops": {"fit_loop": fit}}
    before = repr(ckpt)
    assert UNIT.upgrade(ckpt) is ckpt and repr(ckpt) == before
