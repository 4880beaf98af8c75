"""pl-2.0.0-loops-after-dataloader-loop-removal: flattened evaluation loops, the fit loop's nested one included."""

from __future__ import annotations

import copy

import torch

from pytest_ckpt_compat import upgrade
from tests.migrations.helpers_pre16 import lightning_migrations_off, same, snapshot, unit

UNIT = unit("pl-2.0.0-loops-after-dataloader-loop-removal")

LEGACY_EVAL = {  # Lightning's case 10 input (1.9 layout of validate/test/predict loops)
    "state_dict": {},
    "dataloader_progress": {"total": {"ready": 0, "completed": 0}, "current": {"ready": 0, "completed": 0}},
    "epoch_loop.state_dict": {},
    "epoch_loop.batch_progress": {
        "total": {"ready": 123, "started": 0, "processed": 0, "completed": 0},
        "current": {"ready": 0, "started": 0, "processed": 0, "completed": 0},
        "is_last_batch": False,
    },
}
EXPECTED_EVAL = {
    "batch_progress": {
        "current": {"completed": 0, "processed": 0, "ready": 0, "started": 0},
        "is_last_batch": False,
        "total": {"completed": 0, "processed": 0, "ready": 123, "started": 0},
    },
    "state_dict": {},
}


def test_lightning_case_10_dataloader_loop_removal():
    """Lightning's test_migrate_loop_structure_after_dataloader_loop_removal (1.9.0 → 2.0.0)."""
    old = {
        "pytorch-lightning_version": "1.9.0",
        "loops": {name: copy.deepcopy(LEGACY_EVAL) for name in ("predict_loop", "validate_loop", "test_loop")},
    }
    upgrade(old, target_version="2.0.0")
    assert old["loops"] == {"predict_loop": EXPECTED_EVAL, "validate_loop": EXPECTED_EVAL, "test_loop": EXPECTED_EVAL}
    assert "dropped" not in old["ckpt_compat"]


def nested_fit_loop(val_progress):
    return {
        "epoch_loop.state_dict": {"_batches_that_stepped": 3},
        "epoch_loop.val_loop.state_dict": {},
        "epoch_loop.val_loop.dataloader_progress": {
            "total": {"ready": 1, "completed": 1},
            "current": {"ready": 1, "completed": 1},
        },
        "epoch_loop.val_loop.epoch_loop.state_dict": {},
        "epoch_loop.val_loop.epoch_loop.batch_progress": val_progress,
        "epoch_progress": {"total": {"ready": 1}},
    }


def test_fit_loop_nested_validation_loop():
    """Lightning leaves these three keys stale; 2.x reads epoch_loop.val_loop.batch_progress."""
    val_progress = {
        "total": {"ready": 2, "started": 2, "processed": 2, "completed": 2},
        "current": {"ready": 2, "started": 2, "processed": 2, "completed": 2},
        "is_last_batch": True,
    }
    ckpt = {"loops": {"fit_loop": nested_fit_loop(val_progress)}}
    UNIT.upgrade(ckpt)
    assert ckpt["loops"]["fit_loop"] == {
        "epoch_loop.state_dict": {"_batches_that_stepped": 3},
        "epoch_loop.val_loop.state_dict": {},
        "epoch_loop.val_loop.batch_progress": val_progress,
        "epoch_progress": {"total": {"ready": 1}},
    }
    assert ckpt["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"] is val_progress
    assert "ckpt_compat" not in ckpt


def test_non_empty_outer_state_is_kept():
    loop = copy.deepcopy(LEGACY_EVAL)
    loop["state_dict"] = {"custom": 1}
    loop["epoch_loop.state_dict"] = {"inner": 2}
    ckpt = {"loops": {"test_loop": loop}}
    UNIT.upgrade(ckpt)
    assert ckpt["loops"]["test_loop"]["state_dict"] == {"inner": 2}
    assert ckpt["ckpt_compat"]["dropped"] == {"loops/test_loop/state_dict": {"custom": 1}}


def test_missing_keys_and_idempotence():
    for plain in ({}, {"loops": {}}, {"loops": {"fit_loop": {}, "validate_loop": {}}}):
        expected = snapshot(plain)
        assert UNIT.upgrade(plain) == expected
    ckpt = {"loops": {"fit_loop": nested_fit_loop({"t": torch.zeros(1)}), "validate_loop": copy.deepcopy(LEGACY_EVAL)}}
    once = snapshot(UNIT.upgrade(ckpt))
    assert same(UNIT.upgrade(ckpt), once)


def test_resume_restores_fit_validation_progress(tmp_path, monkeypatch):
    """End to end: the nested 1.x keys (hand-made from a 2.6 save, stamped 1.9.5) restore val_loop.batch_progress."""
    import lightning.pytorch as pl
    from lightning.pytorch.demos.boring_classes import BoringModel

    path = tmp_path / "mid.ckpt"

    class SaveAt(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx == 2:
                trainer.save_checkpoint(path)

    kwargs = dict(
        limit_train_batches=4,
        limit_val_batches=2,
        val_check_interval=2,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    pl.Trainer(max_epochs=1, callbacks=[SaveAt()], **kwargs).fit(BoringModel())
    ckpt = torch.load(path, weights_only=True)
    fit = ckpt["loops"]["fit_loop"]
    saved = copy.deepcopy(fit["epoch_loop.val_loop.batch_progress"])
    assert saved["total"]["completed"] == 2
    fit["epoch_loop.val_loop.epoch_loop.batch_progress"] = fit.pop("epoch_loop.val_loop.batch_progress")
    fit["epoch_loop.val_loop.epoch_loop.state_dict"] = fit.pop("epoch_loop.val_loop.state_dict")
    fit["epoch_loop.val_loop.state_dict"] = {}
    fit["epoch_loop.val_loop.dataloader_progress"] = {
        "total": {"ready": 1, "completed": 1},
        "current": {"ready": 1, "completed": 1},
    }
    ckpt["pytorch-lightning_version"] = "1.9.5"
    upgrade(ckpt)
    torch.save(ckpt, path)

    restored = {}

    class Grab(pl.Callback):
        def on_train_start(self, trainer, module):
            restored["val"] = trainer.fit_loop.epoch_loop.val_loop.batch_progress.state_dict()

    with lightning_migrations_off(monkeypatch):
        pl.Trainer(max_epochs=1, callbacks=[Grab()], **kwargs).fit(BoringModel(), ckpt_path=path)
    assert restored["val"] == saved
