"""pl-1.6.0-fault-tolerant-loop-layouts: 1.4/1.5 fault-tolerant loops -> the 1.6.0 layout."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.utilities.migration.migration import _migrate_loop_global_step_to_progress_tracking

from pytest_ckpt_compat import upgrade
from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-1.6.0-fault-tolerant-loop-layouts")


def _t(*fields, **values):
    return {f: values.get(f, 0) for f in fields}


def _p(*fields, last=None, cur=None, tot=None):
    out = {"total": _t(*fields, **(tot or {})), "current": _t(*fields, **(cur or {}))}
    if last is not None:
        out["is_last_batch"] = last
    return out


P4 = ("ready", "started", "processed", "completed")


def fit_loop_1_5():
    """Hand-made 1.5.x fault-tolerant fit loop (mid-epoch save: epoch 1, 2 batches done, 6 steps)."""
    results = {
        "training": True,
        "_batch_size": torch.tensor(8),
        "device": torch.device("cpu"),
        "items": {
            "train_loss": {"meta": {"reduce_fx": torch.mean, "_sync": {"op": "mean"}}, "value": torch.tensor(1.0)}
        },
    }
    return {
        "state_dict": {},
        "epoch_progress": _p(
            *P4,
            tot=dict(ready=2, started=2, processed=1, completed=1),
            cur=dict(ready=2, started=2, processed=1, completed=1),
        ),
        "epoch_loop.state_dict": {"dataloader_state_dict": {"x": 1}},
        "epoch_loop.batch_progress": _p(
            *P4,
            last=False,
            tot=dict(ready=6, started=6, processed=6, completed=5),
            cur=dict(ready=2, started=2, processed=2, completed=1),
        ),
        "epoch_loop.scheduler_progress": _p("ready", "completed", tot=dict(ready=1, completed=1)),
        "epoch_loop.batch_loop.state_dict": {},
        "epoch_loop.batch_loop.optimizer_loop.state_dict": {},
        "epoch_loop.batch_loop.optimizer_loop.optim_progress": {
            "optimizer": {
                "step": _p("ready", "completed", tot=dict(ready=6, completed=6), cur=dict(ready=2, completed=2)),
                "zero_grad": _p("ready", "started", "completed", tot=dict(ready=6, started=6, completed=6)),
            },
            "optimizer_position": 1,
        },
        "epoch_loop.batch_loop.manual_loop.state_dict": {},
        "epoch_loop._results": results,
        "epoch_loop.val_loop.state_dict": {},
        "epoch_loop.val_loop.dataloader_progress": _p("ready", "completed", tot=dict(ready=1, completed=1)),
        "epoch_loop.val_loop.epoch_loop.state_dict": {},
        "epoch_loop.val_loop.epoch_loop.batch_progress": _p(*P4, last=False),
        "epoch_loop.val_loop._results": {
            "training": False,
            "_batch_size": torch.tensor(1),
            "device": None,
            "items": {},
        },
    }


def fit_loop_1_4():
    """Hand-made 1.4.x fault-tolerant fit loop: one Tracker type with None for unused fields."""
    none2 = dict(started=None, processed=None)

    def tracker(**kw):
        return {field: kw.get(field, 0) for field in ("ready", "started", "processed", "completed")}

    return {
        "state_dict": {},
        "epoch_progress": {
            "total": tracker(ready=2, started=2, processed=1, completed=1),
            "current": tracker(ready=2, started=2, processed=1, completed=1),
        },
        "epoch_loop.state_dict": {},
        "epoch_loop.batch_progress": {
            "total": tracker(ready=6, started=6, processed=6, completed=5),
            "current": tracker(ready=2, started=2, processed=2, completed=1),
        },
        "epoch_loop.scheduler_progress": {"total": tracker(ready=1, completed=1, **none2), "current": tracker(**none2)},
        "epoch_loop.batch_loop.optim_progress": {
            "optimizer": {
                "step": {
                    "total": tracker(ready=6, completed=6, **none2),
                    "current": tracker(ready=2, completed=2, **none2),
                },
                "zero_grad": {
                    "total": tracker(ready=6, started=6, completed=6, processed=None),
                    "current": tracker(ready=2, started=2, completed=2, processed=None),
                },
            },
            "optimizer_idx": 0,
        },
        "epoch_loop.batch_loop.state_dict": {},
        "epoch_loop.val_loop.state_dict": {},
        "epoch_loop.val_loop.dataloader_progress": {
            "total": tracker(ready=1, completed=1, **none2),
            "current": tracker(**none2),
        },
        "epoch_loop.val_loop.epoch_loop.state_dict": {},
        "epoch_loop.val_loop.epoch_loop.batch_progress": {
            "total": tracker(ready=2, started=2, processed=2, completed=2),
            "current": tracker(),
        },
    }


def eval_loop(last=True):
    bp = {"total": _t(*P4, ready=2, started=2, processed=2, completed=2), "current": _t(*P4)}
    loop = {
        "state_dict": {},
        "dataloader_progress": _p("ready", "completed"),
        "epoch_loop.state_dict": {},
        "epoch_loop.batch_progress": bp,
    }
    return loop


def _ckpt(fit_loop, version):
    return {
        "pytorch-lightning_version": version,
        "epoch": 2,
        "global_step": 7,
        "loops": {
            "fit_loop": fit_loop,
            "validate_loop": eval_loop(),
            "test_loop": eval_loop(),
            "predict_loop": eval_loop(),
        },
    }


@pytest.mark.parametrize(
    ("make", "missing"),
    [
        (fit_loop_1_5, "epoch_loop.batch_loop.manual_loop.optim_step_progress"),
        (fit_loop_1_4, "epoch_loop.batch_loop.optimizer_loop.optim_progress"),
    ],
)
def test_lightning_1_6_migration_raises_before_and_not_after(make, missing):
    with pytest.raises(KeyError, match=missing):
        _migrate_loop_global_step_to_progress_tracking(_ckpt(make(), "1.5.10"))
    ckpt = _ckpt(make(), "1.5.10")
    UNIT.upgrade(ckpt)
    _migrate_loop_global_step_to_progress_tracking(ckpt)


def test_1_5_layout():
    ckpt = _ckpt(fit_loop_1_5(), "1.5.10")
    fit = ckpt["loops"]["fit_loop"]
    step_total = fit["epoch_loop.batch_loop.optimizer_loop.optim_progress"]["optimizer"]["step"]["total"]
    batch_tensor = fit["epoch_loop._results"]["_batch_size"]
    UNIT.upgrade(ckpt)
    assert fit is ckpt["loops"]["fit_loop"]
    assert "epoch_loop._results" not in fit and "epoch_loop.val_loop._results" not in fit
    assert fit["epoch_loop.batch_loop.manual_loop.optim_step_progress"] == _p("ready", "completed")
    optim = fit["epoch_loop.batch_loop.optimizer_loop.optim_progress"]
    assert optim["optimizer"]["step"]["total"] is step_total and step_total == {"ready": 6, "completed": 6}
    assert optim["optimizer_position"] == 1
    assert fit["epoch_progress"]["current"] == {"ready": 2, "started": 2, "processed": 1, "completed": 1}
    assert fit["epoch_loop.state_dict"] == {"dataloader_state_dict": {"x": 1}}
    dropped = ckpt["ckpt_compat"]["dropped"]
    assert sorted(dropped) == ["loops/fit_loop/epoch_loop._results", "loops/fit_loop/epoch_loop.val_loop._results"]
    moved = dropped["loops/fit_loop/epoch_loop._results"]
    assert moved["_batch_size"] is batch_tensor
    assert moved["items"]["train_loss"]["meta"]["reduce_fx"] == "torch.mean"


def test_1_4_layout():
    ckpt = _ckpt(fit_loop_1_4(), "1.4.9")
    UNIT.upgrade(ckpt)
    fit = ckpt["loops"]["fit_loop"]
    assert "epoch_loop.batch_loop.optim_progress" not in fit
    optim = fit["epoch_loop.batch_loop.optimizer_loop.optim_progress"]
    assert optim == {
        "optimizer": {
            "step": {"total": {"ready": 6, "completed": 6}, "current": {"ready": 2, "completed": 2}},
            "zero_grad": {
                "total": {"ready": 6, "started": 6, "completed": 6},
                "current": {"ready": 2, "started": 2, "completed": 2},
            },
        },
        "optimizer_position": 0,
    }
    assert fit["epoch_loop.batch_progress"]["is_last_batch"] is False
    assert fit["epoch_loop.batch_progress"]["total"] == {"ready": 6, "started": 6, "processed": 6, "completed": 5}
    assert fit["epoch_loop.scheduler_progress"] == {
        "total": {"ready": 1, "completed": 1},
        "current": {"ready": 0, "completed": 0},
    }
    assert fit["epoch_loop.val_loop.epoch_loop.batch_progress"]["is_last_batch"] is False
    for name in ("validate_loop", "test_loop"):
        assert ckpt["loops"][name]["epoch_loop.batch_progress"]["is_last_batch"] is False
    assert "is_last_batch" not in ckpt["loops"]["predict_loop"]["epoch_loop.batch_progress"]
    assert "dropped" not in ckpt["ckpt_compat"]  # nothing dropped; only the layout note
    assert list(ckpt["ckpt_compat"]["notes"]) == ["pl-1.6.0-fault-tolerant-loop-layouts"]


@pytest.mark.parametrize("make", [fit_loop_1_4, fit_loop_1_5])
def test_full_chain_loads_into_a_current_fit_loop(make, tmp_path):
    ckpt = _ckpt(make(), "1.5.10")
    upgrade(ckpt, "2.6.6")
    torch.save(ckpt, tmp_path / "c.ckpt")
    ckpt = torch.load(tmp_path / "c.ckpt", weights_only=True)  # _results were made plain
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit_loop.load_state_dict(ckpt["loops"]["fit_loop"])
    assert trainer.fit_loop.epoch_loop.automatic_optimization.optim_progress.optimizer_steps == 6
    assert trainer.fit_loop.epoch_loop.batch_progress.total.ready == 6
    trainer.validate_loop.load_state_dict(ckpt["loops"]["validate_loop"])


def test_idempotent_and_no_key_error():
    ckpt = _ckpt(fit_loop_1_4(), "1.4.9")
    UNIT.upgrade(ckpt)
    once = snapshot(ckpt)
    UNIT.upgrade(ckpt)
    assert same(ckpt, once)
    for other in ({}, {"loops": None}, {"loops": {}}, {"loops": {"fit_loop": {}}}):
        UNIT.upgrade(other)
    partial = {"loops": {"fit_loop": {}}}
    UNIT.upgrade(partial)
    assert partial["loops"]["fit_loop"]["epoch_progress"] == _p(*P4)
