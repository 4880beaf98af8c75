"""pl-2.0.0-several-optimizers-steps-to-manual: a 1.x GAN's step count survives the switch to manual."""

from __future__ import annotations

import torch

from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-2.0.0-several-optimizers-steps-to-manual")
AUTO = "epoch_loop.automatic_optimization.optim_progress"
MANUAL = "epoch_loop.manual_optimization.optim_step_progress"


def rc(n):
    return {"total": {"ready": n, "completed": n}, "current": {"ready": n // 2, "completed": n // 2}}


def ckpt_after_2_0_renames(optimizers=2, auto=16, manual=0):
    """A 1.9 automatic-optimization file after the 2.0.0 loop renames (the unit this one requires)."""
    return {
        "optimizer_states": [{"state": {}, "param_groups": []} for _ in range(optimizers)],
        "state_dict": {"w": torch.ones(1)},
        "loops": {
            "fit_loop": {
                AUTO: {"optimizer": {"step": rc(auto), "zero_grad": {"total": {}, "current": {}}}},
                MANUAL: rc(manual),
            }
        },
    }


def test_two_optimizers_automatic_steps_become_manual_steps():
    ckpt = ckpt_after_2_0_renames()
    UNIT.upgrade(ckpt)
    loop = ckpt["loops"]["fit_loop"]
    assert loop[MANUAL] == rc(16)
    assert loop[AUTO]["optimizer"]["step"] == rc(16)  # kept
    assert loop[MANUAL] is not loop[AUTO]["optimizer"]["step"]
    assert "2 optimizers" in ckpt["ckpt_compat"]["notes"][UNIT.id]


def test_global_step_restored_under_manual_optimization(tmp_path):
    """End to end: Lightning 2.x's manual loop reads the copied counter as global_step."""
    import lightning.pytorch as pl

    ckpt = ckpt_after_2_0_renames()
    UNIT.upgrade(ckpt)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    loop = trainer.fit_loop.epoch_loop.manual_optimization
    loop.optim_step_progress.load_state_dict(ckpt["loops"]["fit_loop"][MANUAL])
    assert loop.optim_step_progress.total.completed == 16


def test_left_alone_one_optimizer_manual_steps_or_nothing_stepped():
    for ckpt in (
        ckpt_after_2_0_renames(optimizers=1),
        ckpt_after_2_0_renames(manual=8),  # a 1.x manual_opt file: its own counter is right
        ckpt_after_2_0_renames(auto=0),
        {"optimizer_states": [{}, {}]},
        {},
    ):
        before = snapshot(ckpt)
        UNIT.upgrade(ckpt)
        assert same(ckpt, before)
    ckpt = ckpt_after_2_0_renames()
    once = snapshot(UNIT.upgrade(ckpt))
    assert same(UNIT.upgrade(ckpt), once)
