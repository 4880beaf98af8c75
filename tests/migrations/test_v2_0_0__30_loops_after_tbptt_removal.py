"""pl-2.0.0-loops-after-tbptt-removal: optimizer/manual loops move from the batch loop to the epoch loop."""

from __future__ import annotations

import torch

from pytest_ckpt_compat import upgrade
from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-2.0.0-loops-after-tbptt-removal")


def opaque(name):
    """Stand-ins for Lightning's MagicMock values: distinct objects we can check by identity."""
    return {"opaque": name}


def test_lightning_case_8_tbptt_removal():
    """Lightning's test_migrate_loop_structure_after_tbptt_removal (1.8.0 → 2.0.0, with the optimizer-loop step)."""
    values = {n: opaque(n) for n in ("batch", "auto_state", "auto_progress", "manual_state", "manual_progress")}
    old = {
        "pytorch-lightning_version": "1.8.0",
        "loops": {
            "fit_loop": {
                "epoch_loop.state_dict": {"any": "state"},
                "epoch_loop.batch_loop.state_dict": values["batch"],
                "epoch_loop.batch_loop.optimizer_loop.state_dict": values["auto_state"],
                "epoch_loop.batch_loop.optimizer_loop.optim_progress": values["auto_progress"],
                "epoch_loop.batch_loop.manual_loop.state_dict": values["manual_state"],
                "epoch_loop.batch_loop.manual_loop.optim_step_progress": values["manual_progress"],
            }
        },
    }
    upgrade(old, target_version="2.0.0")
    assert old["loops"] == {
        "fit_loop": {
            "epoch_loop.state_dict": {"any": "state", "old_batch_loop_state_dict": values["batch"]},
            "epoch_loop.automatic_optimization.state_dict": values["auto_state"],
            "epoch_loop.automatic_optimization.optim_progress": values["auto_progress"],
            "epoch_loop.manual_optimization.state_dict": values["manual_state"],
            "epoch_loop.manual_optimization.optim_step_progress": values["manual_progress"],
        }
    }
    fit = old["loops"]["fit_loop"]
    assert fit["epoch_loop.automatic_optimization.optim_progress"] is values["auto_progress"]


def test_unit_alone_and_empty_batch_loop_state():
    progress = {"optimizer": {"step": {"total": {"ready": 3, "completed": 3}}}, "optimizer_position": 0}
    ckpt = {
        "loops": {
            "fit_loop": {
                "epoch_loop.state_dict": {"_batches_that_stepped": 3},
                "epoch_loop.batch_loop.state_dict": {},
                "epoch_loop.batch_loop.optimizer_loop.optim_progress": progress,
                "epoch_loop.batch_loop.optimizer_loop.state_dict": {},
            }
        }
    }
    UNIT.upgrade(ckpt)
    assert ckpt["loops"]["fit_loop"] == {
        "epoch_loop.state_dict": {"_batches_that_stepped": 3},
        "epoch_loop.optimizer_loop.optim_progress": progress,
        "epoch_loop.optimizer_loop.state_dict": {},
    }


def test_missing_keys_and_idempotence():
    for plain in ({}, {"loops": {}}, {"loops": {"validate_loop": {}}}, {"loops": {"fit_loop": {}}}):
        expected = snapshot(plain)
        assert UNIT.upgrade(plain) == expected
    ckpt = {
        "loops": {
            "fit_loop": {
                "epoch_loop.batch_loop.state_dict": {"x": torch.ones(1)},
                "epoch_loop.batch_loop.manual_loop.state_dict": {},
            }
        }
    }
    once = snapshot(UNIT.upgrade(ckpt))
    assert same(UNIT.upgrade(ckpt), once)
    assert ckpt["loops"]["fit_loop"]["epoch_loop.state_dict"]["old_batch_loop_state_dict"]["x"].sum().item() == 1.0
