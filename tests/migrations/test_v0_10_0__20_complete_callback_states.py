"""pl-0.10.0-complete-callback-states: partial 0.x callback states get a fresh callback's defaults."""

from __future__ import annotations

import math

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from pytest_ckpt_compat import upgrade
from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-0.10.0-complete-callback-states")


def _partial_0_7():
    # hand-made: what the 0.10.0 key move makes of a 0.7.6 file
    return {
        "callbacks": {
            "ModelCheckpoint": {"best_model_score": 0.34},
            "EarlyStopping": {"wait_count": 2, "patience": 4},
        }
    }


def test_partial_states_are_completed():
    ckpt = _partial_0_7()
    UNIT.upgrade(ckpt)
    mc, es = ckpt["callbacks"]["ModelCheckpoint"], ckpt["callbacks"]["EarlyStopping"]
    assert mc == {"best_model_score": 0.34, "best_model_path": ""}
    assert sorted(es) == ["best_score", "patience", "stopped_epoch", "wait_count"]
    assert (es["wait_count"], es["patience"], es["stopped_epoch"]) == (2, 4, 0)
    assert isinstance(es["best_score"], torch.Tensor) and es["best_score"].dim() == 0
    assert math.isinf(es["best_score"].item()) and es["best_score"].item() > 0
    notes = ckpt["ckpt_compat"]["notes"]["pl-0.10.0-complete-callback-states"]
    assert "callbacks['ModelCheckpoint']: best_model_path" in notes
    assert "callbacks['EarlyStopping']: stopped_epoch, best_score" in notes


def test_defaults_are_those_of_fresh_callbacks():
    ckpt = {"callbacks": {"ModelCheckpoint": {}, "EarlyStopping": {}}}
    UNIT.upgrade(ckpt)
    fresh_mc, fresh_es = ModelCheckpoint(), EarlyStopping(monitor="val_loss")  # mode "min"
    mc, es = ckpt["callbacks"]["ModelCheckpoint"], ckpt["callbacks"]["EarlyStopping"]
    assert mc == {"best_model_path": fresh_mc.best_model_path, "best_model_score": fresh_mc.best_model_score}
    assert (es["wait_count"], es["stopped_epoch"], es["patience"]) == (
        fresh_es.wait_count,
        fresh_es.stopped_epoch,
        fresh_es.patience,
    )
    assert torch.equal(es["best_score"], fresh_es.best_score)


def test_lightning_load_state_dict_raises_without_and_works_with():
    raw = _partial_0_7()["callbacks"]
    with pytest.raises(KeyError, match="best_model_path"):
        ModelCheckpoint().load_state_dict(dict(raw["ModelCheckpoint"]))
    with pytest.raises(KeyError, match="stopped_epoch"):
        EarlyStopping(monitor="val_loss").load_state_dict(dict(raw["EarlyStopping"]))

    ckpt = _partial_0_7()
    UNIT.upgrade(ckpt)
    mc, es = ModelCheckpoint(), EarlyStopping(monitor="val_loss", patience=9)
    mc.load_state_dict(ckpt["callbacks"]["ModelCheckpoint"])
    es.load_state_dict(ckpt["callbacks"]["EarlyStopping"])
    assert (mc.best_model_score, mc.best_model_path) == (0.34, "")
    assert (es.wait_count, es.patience, es.stopped_epoch) == (2, 4, 0)
    # the filled best score behaves like a fresh one: the first real value is an improvement
    should_stop, _ = es._evaluate_stopping_criteria(torch.tensor(1.5))
    assert not should_stop and es.wait_count == 0 and es.best_score.item() == 1.5


def test_complete_states_and_tensors_untouched():
    best = torch.tensor(0.25)
    state = {"wait_count": 1, "stopped_epoch": 0, "best_score": best, "patience": 3}
    ckpt = {
        "callbacks": {"EarlyStopping": state, "ModelCheckpoint": {"best_model_score": None, "best_model_path": "p"}}
    }
    before = snapshot(ckpt)
    UNIT.upgrade(ckpt)
    assert same(ckpt, before)
    assert ckpt["callbacks"]["EarlyStopping"]["best_score"] is best
    assert "ckpt_compat" not in ckpt


def test_idempotent():
    ckpt = _partial_0_7()
    UNIT.upgrade(ckpt)
    once = snapshot(ckpt)
    best = ckpt["callbacks"]["EarlyStopping"]["best_score"]
    UNIT.upgrade(ckpt)
    assert same(ckpt, once)
    assert ckpt["callbacks"]["EarlyStopping"]["best_score"] is best


@pytest.mark.parametrize("ckpt", [{}, {"callbacks": {}}, {"callbacks": None}, {"callbacks": {"Other": {"a": 1}}}])
def test_no_key_error_without_optional_state(ckpt):
    before = snapshot(ckpt)
    UNIT.upgrade(ckpt)
    assert ckpt == before


def test_engine_0_7_6_file_to_1_0_8():
    # hand-made 0.7.6 file (no version key in reality: the caller names it with assume_version)
    ckpt = {
        "epoch": 3,
        "global_step": 40,
        "checkpoint_callback_best": 0.5,
        "early_stop_callback_wait": 1,
        "early_stop_callback_patience": 3,
    }
    upgrade(ckpt, "1.0.8", assume_version="0.7.6")
    assert ckpt["callbacks"]["ModelCheckpoint"] == {"best_model_score": 0.5, "best_model_path": ""}
    assert ckpt["callbacks"]["EarlyStopping"]["stopped_epoch"] == 0
    assert ckpt["legacy_pytorch-lightning_version"] == "0.7.6"
