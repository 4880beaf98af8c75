"""pl-2.0.0-loops-after-optimizer-loop-removal: automatic_optimization / manual_optimization keys."""

from __future__ import annotations

from pytest_ckpt_compat import upgrade
from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-2.0.0-loops-after-optimizer-loop-removal")


def test_lightning_case_9_optimizer_loop_removal():
    """Lightning's test_migrate_loop_structure_after_optimizer_loop_removal (1.9.0 → 2.0.0)."""
    optimizer = {"step": {"opaque": 1}}
    state_auto, state_manual, manual_progress = {"a": 1}, {"m": 1}, {"opaque": "manual"}
    old = {
        "pytorch-lightning_version": "1.9.0",
        "loops": {
            "fit_loop": {
                "epoch_loop.state_dict": {"any": "state"},
                "epoch_loop.batch_loop.state_dict": {"opaque": "batch"},
                "epoch_loop.batch_loop.optimizer_loop.state_dict": state_auto,
                "epoch_loop.batch_loop.optimizer_loop.optim_progress": {
                    "optimizer": optimizer,
                    "optimizer_position": 33,
                },
                "epoch_loop.batch_loop.manual_loop.state_dict": state_manual,
                "epoch_loop.batch_loop.manual_loop.optim_step_progress": manual_progress,
            }
        },
    }
    upgrade(old, target_version="2.0.0")
    fit = old["loops"]["fit_loop"]
    assert sorted(fit) == sorted(
        [
            "epoch_loop.state_dict",
            "epoch_loop.automatic_optimization.state_dict",
            "epoch_loop.automatic_optimization.optim_progress",
            "epoch_loop.manual_optimization.state_dict",
            "epoch_loop.manual_optimization.optim_step_progress",
        ]
    )
    assert fit["epoch_loop.automatic_optimization.state_dict"] is state_auto
    assert fit["epoch_loop.automatic_optimization.optim_progress"] == {"optimizer": optimizer}
    assert fit["epoch_loop.manual_optimization.state_dict"] is state_manual
    assert fit["epoch_loop.manual_optimization.optim_step_progress"] is manual_progress


def test_partial_keys_do_not_raise():
    """Lightning pops the progress when the state_dict is present and raises KeyError if it is missing."""
    only_state = {
        "loops": {"fit_loop": {"epoch_loop.optimizer_loop.state_dict": {}, "epoch_loop.manual_loop.state_dict": {}}}
    }
    assert UNIT.upgrade(only_state)["loops"]["fit_loop"] == {
        "epoch_loop.automatic_optimization.state_dict": {},
        "epoch_loop.manual_optimization.state_dict": {},
    }
    only_progress = {
        "loops": {"fit_loop": {"epoch_loop.optimizer_loop.optim_progress": {"optimizer": {}, "optimizer_position": 1}}}
    }
    assert UNIT.upgrade(only_progress)["loops"]["fit_loop"] == {
        "epoch_loop.automatic_optimization.optim_progress": {"optimizer": {}}
    }


def test_missing_loops_and_idempotence():
    for plain in ({}, {"loops": {}}, {"loops": {"fit_loop": {}}}):
        expected = snapshot(plain)
        assert UNIT.upgrade(plain) == expected
    ckpt = {
        "loops": {
            "fit_loop": {
                "epoch_loop.optimizer_loop.optim_progress": {"optimizer": {}, "optimizer_position": 0},
                "epoch_loop.optimizer_loop.state_dict": {},
            }
        }
    }
    once = snapshot(UNIT.upgrade(ckpt))
    assert same(UNIT.upgrade(ckpt), once)
