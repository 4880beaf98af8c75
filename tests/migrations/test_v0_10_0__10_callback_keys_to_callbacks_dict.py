"""pl-0.10.0-callbacks-dict: 0.x top-level callback keys -> ``callbacks`` with string keys."""

from __future__ import annotations

import pytest
import torch

from pytest_ckpt_compat import upgrade
from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-0.10.0-callbacks-dict")


# Lightning's test_migrate_model_checkpoint_early_stopping cases (§3.6 case 1), with string keys
# instead of class keys (contract). Hand-made dicts.
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            {"epoch": 1, "global_step": 23, "checkpoint_callback_best": 0.34},
            {"epoch": 1, "global_step": 23, "callbacks": {"ModelCheckpoint": {"best_model_score": 0.34}}},
        ),
        (
            {"epoch": 1, "global_step": 23, "checkpoint_callback_best_model_score": 0.99},
            {"epoch": 1, "global_step": 23, "callbacks": {"ModelCheckpoint": {"best_model_score": 0.99}}},
        ),
        (
            {"epoch": 1, "global_step": 23, "checkpoint_callback_best_model_path": "path"},
            {"epoch": 1, "global_step": 23, "callbacks": {"ModelCheckpoint": {"best_model_path": "path"}}},
        ),
        (
            {"epoch": 1, "global_step": 23, "early_stop_callback_wait": 2, "early_stop_callback_patience": 4},
            {"epoch": 1, "global_step": 23, "callbacks": {"EarlyStopping": {"wait_count": 2, "patience": 4}}},
        ),
    ],
)
def test_lightning_cases(old, new):
    old["pytorch-lightning_version"] = new["pytorch-lightning_version"] = "0.9.0"
    result = UNIT.upgrade(old)
    assert result is old
    assert old == new


def test_lightning_case_through_engine_with_completion():
    # hand-made 0.9.0 dict, Lightning's case 1, upgraded to 1.0.0 (both 0.10.0 units run)
    ckpt = {"pytorch-lightning_version": "0.9.0", "epoch": 1, "global_step": 23, "checkpoint_callback_best": 0.34}
    upgrade(ckpt, "1.0.0")
    assert ckpt["callbacks"] == {"ModelCheckpoint": {"best_model_score": 0.34, "best_model_path": ""}}
    assert ckpt["pytorch-lightning_version"] == "1.0.0"
    assert ckpt["legacy_pytorch-lightning_version"] == "0.9.0"
    assert ckpt["ckpt_compat"]["applied"]["lightning"] == [
        "pl-0.10.0-callbacks-dict",
        "pl-0.10.0-complete-callback-states",
        "pl-2.6.0-scheduler-functions-as-data",  # reader-side: whatever the target (nothing to do here)
        "pl-2.6.0-hparams-paths-as-strings",
    ]


def test_best_wins_over_best_model_score_like_lightning():
    ckpt = {"checkpoint_callback_best_model_score": 0.5, "checkpoint_callback_best": 0.1}  # hand-made
    UNIT.upgrade(ckpt)
    assert ckpt == {"callbacks": {"ModelCheckpoint": {"best_model_score": 0.1}}}


def test_early_stop_state_dict_of_0_8_2_to_0_9_is_moved_not_lost():
    # hand-made 0.9.0 file: what 0.8.2 - 0.9.x wrote (Lightning's migration leaves it behind)
    best = torch.tensor(0.25)
    score = torch.tensor(0.3)
    es_state = {"wait_count": 1, "stopped_epoch": 0, "best_score": best, "patience": 3}
    ckpt = {
        "pytorch-lightning_version": "0.9.0",
        "epoch": 3,
        "global_step": 40,
        "checkpoint_callback_best_model_score": score,
        "checkpoint_callback_best_model_path": "/ckpts/epoch=2.ckpt",
        "early_stop_callback_state_dict": es_state,
    }
    UNIT.upgrade(ckpt)
    assert sorted(ckpt) == ["callbacks", "epoch", "global_step", "pytorch-lightning_version"]
    assert ckpt["callbacks"] == {
        "EarlyStopping": {"wait_count": 1, "stopped_epoch": 0, "best_score": best, "patience": 3},
        "ModelCheckpoint": {"best_model_score": score, "best_model_path": "/ckpts/epoch=2.ckpt"},
    }
    assert ckpt["callbacks"]["EarlyStopping"] is es_state  # moved, not copied
    assert ckpt["callbacks"]["EarlyStopping"]["best_score"] is best
    assert ckpt["callbacks"]["ModelCheckpoint"]["best_model_score"] is score


def test_idempotent():
    ckpt = {"early_stop_callback_wait": 2, "early_stop_callback_patience": 4, "checkpoint_callback_best": 0.3}
    UNIT.upgrade(ckpt)
    once = snapshot(ckpt)
    UNIT.upgrade(ckpt)
    assert same(ckpt, once)


def test_no_optional_state_gives_empty_callbacks_like_lightning():
    ckpt = {"pytorch-lightning_version": "0.9.0"}
    UNIT.upgrade(ckpt)
    assert ckpt == {"pytorch-lightning_version": "0.9.0", "callbacks": {}}


def test_existing_callbacks_dict_is_kept_and_merged():
    ckpt = {"callbacks": {"MyCallback": {"x": 1}}, "early_stop_callback_wait": 0}
    callbacks = ckpt["callbacks"]
    UNIT.upgrade(ckpt)
    assert ckpt["callbacks"] is callbacks
    assert ckpt["callbacks"] == {"MyCallback": {"x": 1}, "EarlyStopping": {"wait_count": 0}}
