"""pl-2.6.0-early-stopping-stopping-reason: the loader's defaults written into old EarlyStopping states."""

from __future__ import annotations

import torch

from tests.migrations.helpers_pre16 import same, snapshot, tensors, unit

UNIT = unit("pl-2.6.0-early-stopping-stopping-reason")


def es_state(**extra):  # hand-made 2.5 EarlyStopping.state_dict()
    return {"wait_count": 1, "stopped_epoch": 0, "best_score": torch.tensor(0.5), "patience": 3, **extra}


def test_defaults_added_by_shape():
    ckpt = {
        "callbacks": {
            "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}": es_state(),
            "EarlyStopping": es_state(),  # a bare key (0.x / 1.x class keys after the 1.5.0 unit)
            "MyStopper{'monitor': 'acc', 'mode': 'max'}": es_state(),
            "ModelCheckpoint{'monitor': None}": {"best_model_path": ""},
        }
    }
    UNIT.upgrade(ckpt)
    for key in (
        "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}",
        "EarlyStopping",
        "MyStopper{'monitor': 'acc', 'mode': 'max'}",
    ):
        state = ckpt["callbacks"][key]
        assert list(state)[-2:] == ["stopping_reason", "stopping_reason_message"]
        assert state["stopping_reason"] == 0 and state["stopping_reason_message"] is None
    assert ckpt["callbacks"]["ModelCheckpoint{'monitor': None}"] == {"best_model_path": ""}


def test_present_values_kept_idempotent_optional():
    ckpt = {"callbacks": {"EarlyStopping": es_state(stopping_reason=3, stopping_reason_message="patience")}}
    UNIT.upgrade(ckpt)
    assert ckpt["callbacks"]["EarlyStopping"]["stopping_reason"] == 3
    assert ckpt["callbacks"]["EarlyStopping"]["stopping_reason_message"] == "patience"
    once = snapshot(ckpt)
    assert same(UNIT.upgrade(ckpt), once)
    assert UNIT.upgrade({}) == {} and UNIT.upgrade({"callbacks": {}}) == {"callbacks": {}}


def test_matches_what_lightning_loads_and_saves():
    from lightning.pytorch.callbacks import EarlyStopping

    ckpt = {"callbacks": {"EarlyStopping": es_state()}}
    score = ckpt["callbacks"]["EarlyStopping"]["best_score"]
    UNIT.upgrade(ckpt)
    assert tensors(ckpt)[0] is score
    callback = EarlyStopping(monitor="val_loss")
    callback.load_state_dict(ckpt["callbacks"]["EarlyStopping"])
    assert callback.state_dict().keys() == ckpt["callbacks"]["EarlyStopping"].keys()
    assert callback.state_dict()["stopping_reason"] == ckpt["callbacks"]["EarlyStopping"]["stopping_reason"]
