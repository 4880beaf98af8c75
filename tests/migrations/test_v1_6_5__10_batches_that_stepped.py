"""pl-1.6.5-batches-that-stepped: the logging step of 1.6.0 – 1.6.4 files, as 1.6.5 would have saved it."""

from __future__ import annotations

import torch

from pytest_ckpt_compat import upgrade
from tests.migrations.helpers_pre16 import lightning_migrations_off, same, snapshot, tensors, unit

UNIT = unit("pl-1.6.5-batches-that-stepped")


def progress(ready, started, processed, completed):
    return {"ready": ready, "started": started, "processed": processed, "completed": completed}


def ckpt_164(global_step, batch_total, batch_current, epoch_total, auto=None, manual=0, is_last_batch=False):
    """A hand-made 1.6.4 checkpoint: only the fit-loop keys the unit reads."""
    auto = global_step if auto is None else auto
    return {
        "pytorch-lightning_version": "1.6.4",
        "global_step": global_step,
        "epoch": epoch_total["completed"],
        "loops": {
            "fit_loop": {
                "epoch_loop.state_dict": {},
                "epoch_loop.batch_progress": {
                    "total": batch_total,
                    "current": batch_current,
                    "is_last_batch": is_last_batch,
                },
                "epoch_loop.batch_loop.optimizer_loop.optim_progress": {
                    "optimizer": {
                        "step": {"total": {"ready": auto, "completed": auto}, "current": {"ready": 0, "completed": 0}}
                    },
                    "optimizer_position": 1,
                },
                "epoch_loop.batch_loop.manual_loop.optim_step_progress": {
                    "total": {"ready": manual, "completed": manual}
                },
                "epoch_progress": {"total": epoch_total, "current": epoch_total},
            }
        },
    }


def bts(checkpoint):
    return checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"]


# The three save moments, with the counters real 1.6.4 / 1.6.5 files have (4 batches per epoch, SGD):
# after fit (1.6.5 stores 8), inside on_train_batch_end of epoch 1 batch 1 (1.6.5: 5), at validation
# end of epoch 0, i.e. ModelCheckpoint's moment (1.6.5: 3).
def test_after_fit_is_global_step():
    ckpt = ckpt_164(8, progress(8, 8, 8, 8), progress(4, 4, 4, 4), progress(2, 2, 2, 2))
    assert bts(UNIT.upgrade(ckpt)) == 8


def test_on_train_batch_end_save_is_one_behind():
    ckpt = ckpt_164(6, progress(6, 6, 6, 5), progress(2, 2, 2, 1), progress(2, 2, 1, 1))
    assert bts(UNIT.upgrade(ckpt)) == 5  # Lightning's migration writes 6


def test_validation_end_save_is_one_behind():
    ckpt = ckpt_164(4, progress(4, 4, 4, 4), progress(4, 4, 4, 4), progress(1, 1, 0, 0), is_last_batch=True)
    assert bts(UNIT.upgrade(ckpt)) == 3  # Lightning's migration writes 4


def test_epoch_end_and_epoch_start_saves_are_global_step():
    epoch_end = ckpt_164(4, progress(4, 4, 4, 4), progress(4, 4, 4, 4), progress(1, 1, 1, 0))
    assert bts(UNIT.upgrade(epoch_end)) == 4
    # on_train_epoch_start of epoch 1: the epoch runs but no batch has started in it yet
    epoch_start = ckpt_164(4, progress(4, 4, 4, 4), progress(0, 0, 0, 0), progress(2, 2, 1, 1))
    assert bts(UNIT.upgrade(epoch_start)) == 4
    # on_train_batch_start: the batch is ready but not processed: the previous one was counted
    batch_start = ckpt_164(5, progress(6, 6, 5, 5), progress(2, 2, 1, 1), progress(2, 2, 1, 1))
    assert bts(UNIT.upgrade(batch_start)) == 5


def test_several_optimizers_count_batches_not_steps():
    # two optimizers stepping every batch: global_step counts 2 per batch, the logging step 1
    ckpt = ckpt_164(12, progress(6, 6, 6, 5), progress(2, 2, 2, 1), progress(2, 2, 1, 1))
    assert bts(UNIT.upgrade(ckpt)) == 5


def test_manual_optimization_counts_batches():
    ckpt = ckpt_164(12, progress(8, 8, 8, 8), progress(4, 4, 4, 4), progress(2, 2, 2, 2), auto=0, manual=12)
    assert bts(UNIT.upgrade(ckpt)) == 8


def test_gradient_accumulation_keeps_global_step_unless_last_batch():
    # accumulate_grad_batches=2: 3 steps after 6 batches; a batch-end save mid-window may not have stepped
    mid = ckpt_164(3, progress(7, 7, 7, 6), progress(3, 3, 3, 2), progress(2, 2, 1, 1))
    assert bts(UNIT.upgrade(mid)) == 3
    last = ckpt_164(4, progress(8, 8, 8, 7), progress(4, 4, 4, 3), progress(2, 2, 1, 1), is_last_batch=True)
    assert bts(UNIT.upgrade(last)) == 3


def test_present_value_is_kept_and_idempotent():
    ckpt = ckpt_164(6, progress(6, 6, 6, 5), progress(2, 2, 2, 1), progress(2, 2, 1, 1))
    ckpt["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"] = 42
    assert bts(UNIT.upgrade(ckpt)) == 42
    fresh = ckpt_164(6, progress(6, 6, 6, 5), progress(2, 2, 2, 1), progress(2, 2, 1, 1))
    once = snapshot(UNIT.upgrade(fresh))
    assert same(UNIT.upgrade(fresh), once)


def test_optional_state_missing():
    assert UNIT.upgrade({"global_step": 3}) == {"global_step": 3}
    assert UNIT.upgrade({"loops": {}}) == {"loops": {}}
    ckpt = {"global_step": 3, "loops": {"fit_loop": {}}}
    assert UNIT.upgrade(ckpt)["loops"]["fit_loop"] == {"epoch_loop.state_dict": {"_batches_that_stepped": 3}}
    assert bts(UNIT.upgrade({"loops": {"fit_loop": {"epoch_loop.state_dict": {}}}})) == 0


def test_no_tensor_copied():
    ckpt = ckpt_164(8, progress(8, 8, 8, 8), progress(4, 4, 4, 4), progress(2, 2, 2, 2))
    ckpt["state_dict"] = {"w": torch.ones(2)}
    before = tensors(ckpt)
    after = tensors(UNIT.upgrade(ckpt))
    assert len(after) == 1 and after[0] is before[0]


# ----------------------------------------------------------------------------- end to end (CPU)
def _boring(manual=False):
    import lightning.pytorch as pl
    from lightning.pytorch.demos.boring_classes import BoringModel, ManualOptimBoringModel

    return pl, (ManualOptimBoringModel if manual else BoringModel)


def test_lightning_case_4_batches_that_stepped(tmp_path, monkeypatch):
    """Lightning's test_migrate_loop_batches_that_stepped (BoringModel and ManualOptimBoringModel), with our engine."""
    for manual in (False, True):
        pl, Model = _boring(manual)
        trainer = pl.Trainer(
            max_steps=1,
            limit_val_batches=0,
            default_root_dir=tmp_path,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
        )
        trainer.fit(Model())
        path = tmp_path / f"m{manual}.ckpt"
        trainer.save_checkpoint(path)
        ckpt = torch.load(path, weights_only=True)
        del ckpt["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"]
        ckpt["pytorch-lightning_version"] = "1.6.4"  # hand-made: a 1.6.4 stamp on a 2.6 layout
        upgrade(ckpt)
        torch.save(ckpt, path)

        seen = {}

        class Check(Model):
            def on_train_start(self, seen=seen):
                seen["start"] = (self.trainer.global_step, self.trainer.fit_loop.epoch_loop._batches_that_stepped)

        trainer = pl.Trainer(
            max_steps=2,
            limit_val_batches=0,
            default_root_dir=tmp_path,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
        )
        with lightning_migrations_off(monkeypatch):
            trainer.fit(Check(), ckpt_path=path)
        assert seen["start"] == (1, 1)
        assert trainer.fit_loop.epoch_loop.global_step == trainer.fit_loop.epoch_loop._batches_that_stepped == 2


def test_batch_end_save_resumes_with_logging_step_equal_to_global_step(tmp_path, monkeypatch):
    """A save inside on_train_batch_end, stripped of the key and stamped 1.6.4 (hand-made), resumes in step."""
    pl, Model = _boring()
    path = tmp_path / "batch_end.ckpt"

    class SaveAt(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 3:
                trainer.save_checkpoint(path)

    kwargs = dict(
        limit_train_batches=4,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    pl.Trainer(max_epochs=1, callbacks=[SaveAt()], **kwargs).fit(Model())
    ckpt = torch.load(path, weights_only=True)
    saved_by_26 = ckpt["loops"]["fit_loop"]["epoch_loop.state_dict"].pop("_batches_that_stepped")
    assert saved_by_26 == 2  # 2.6 (like 1.6.5) saves before the running batch's increment
    ckpt["pytorch-lightning_version"] = "1.6.4"
    upgrade(ckpt)
    assert bts(ckpt) == 2
    torch.save(ckpt, path)
    trainer = pl.Trainer(max_epochs=2, **kwargs)
    with lightning_migrations_off(monkeypatch):
        trainer.fit(Model(), ckpt_path=path)
    assert trainer.global_step == 8
    assert trainer.fit_loop.epoch_loop._batches_that_stepped == 8  # Lightning's default (3) ends at 9
