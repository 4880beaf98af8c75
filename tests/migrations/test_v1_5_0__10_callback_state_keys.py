"""pl-1.5.0-callback-state-keys: class-object callback keys -> state-key strings."""

from __future__ import annotations

import warnings

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities.migration.migration import _migrate_model_checkpoint_save_on_train_epoch_end_default

from pytest_ckpt_compat.files.loading import legacy_class_ref
from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-1.5.0-callback-state-keys")
MC_REF = legacy_class_ref("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")
ES_REF = legacy_class_ref("pytorch_lightning.callbacks.early_stopping", "EarlyStopping")
USER_REF = legacy_class_ref("my_project.callbacks", "MyCallback")
MC_KEY = (
    "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', "
    "'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}"
)
ES_KEY = "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}"


def _legacy(mc_key=MC_REF, es_key=ES_REF):
    # hand-made: a 1.4-style callbacks dict (ModelCheckpoint state of 1.1.3+ carries monitor)
    return {
        "pytorch-lightning_version": "1.4.9",
        "callbacks": {
            es_key: {"wait_count": 0, "stopped_epoch": 0, "best_score": torch.tensor(0.5), "patience": 3},
            mc_key: {
                "monitor": "val_loss",
                "best_model_score": torch.tensor(0.5),
                "best_model_path": "p",
                "current_score": None,
                "dirpath": "d",
            },
            USER_REF: {"count": 3},
        },
    }


@pytest.mark.parametrize("real_classes", [False, True], ids=["markers", "real-classes"])
def test_rekeyed_to_strings(real_classes):
    ckpt = _legacy(ModelCheckpoint, EarlyStopping) if real_classes else _legacy()
    states = list(ckpt["callbacks"].values())
    UNIT.upgrade(ckpt)
    assert list(ckpt["callbacks"]) == [ES_KEY, MC_KEY, "MyCallback"]
    assert [ckpt["callbacks"][k] for k in ckpt["callbacks"]] == states  # same objects, same order
    assert all(a is b for a, b in zip(ckpt["callbacks"].values(), states))


def test_model_checkpoint_key_is_the_installed_lightnings_state_key():
    assert ModelCheckpoint(monitor="val_loss").state_key == MC_KEY
    assert EarlyStopping(monitor="val_loss").state_key == ES_KEY
    ckpt = {"callbacks": {MC_REF: {"monitor": None, "best_model_path": ""}}}
    UNIT.upgrade(ckpt)
    assert list(ckpt["callbacks"]) == [ModelCheckpoint().state_key]


def test_model_checkpoint_without_monitor_1_0_gets_bare_key():
    ckpt = {"callbacks": {MC_REF: {"best_model_score": 0.1, "best_model_path": "p"}}}  # 0.10 – 1.0 state
    UNIT.upgrade(ckpt)
    assert list(ckpt["callbacks"]) == ["ModelCheckpoint"]


def test_subclass_gets_its_bare_qualname():
    ckpt = {"callbacks": {legacy_class_ref("ckpt_compat_recipe", "TopKCheckpoint"): {"monitor": "val_loss"}}}
    UNIT.upgrade(ckpt)
    assert list(ckpt["callbacks"]) == ["TopKCheckpoint"]


def test_collision_keeps_first_and_moves_the_other():
    other = legacy_class_ref("my_project.callbacks", "EarlyStopping")
    first, second = {"wait_count": 1}, {"wait_count": 7}
    ckpt = {"callbacks": {ES_REF: first, other: second}}
    UNIT.upgrade(ckpt)
    assert ckpt["callbacks"] == {"EarlyStopping": first}
    assert ckpt["ckpt_compat"]["dropped"] == {"callbacks/my_project.callbacks.EarlyStopping": second}
    assert ckpt["ckpt_compat"]["dropped"]["callbacks/my_project.callbacks.EarlyStopping"] is second
    note = ckpt["ckpt_compat"]["notes"]["pl-1.5.0-callback-state-keys"]
    assert "my_project.callbacks.EarlyStopping" in note and "'EarlyStopping'" in note


def test_no_spurious_lightning_collision_warning():
    """Lightning's 1.9.0 migration warns on class keys (issue #19097); not after our re-keying."""
    legacy = _legacy()
    with pytest.warns(UserWarning, match="colliding with each other"):
        _migrate_model_checkpoint_save_on_train_epoch_end_default(legacy)
    ckpt = _legacy()
    UNIT.upgrade(ckpt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _migrate_model_checkpoint_save_on_train_epoch_end_default(ckpt)


def test_weights_only_load_after(tmp_path):
    ckpt = _legacy(ModelCheckpoint, EarlyStopping)
    UNIT.upgrade(ckpt)
    torch.save(ckpt, tmp_path / "c.ckpt")
    loaded = torch.load(tmp_path / "c.ckpt", weights_only=True)
    assert list(loaded["callbacks"]) == [ES_KEY, MC_KEY, "MyCallback"]


def test_idempotent_and_no_key_error():
    ckpt = _legacy()
    UNIT.upgrade(ckpt)
    once = snapshot(ckpt)
    UNIT.upgrade(ckpt)
    assert same(ckpt, once)
    for empty in ({}, {"callbacks": {}}, {"callbacks": None}):
        before = dict(empty)
        UNIT.upgrade(empty)
        assert empty == before


def test_how_each_key_was_resolved_is_in_the_ledger():
    ckpt = _legacy()
    UNIT.upgrade(ckpt)
    recs = ckpt["ckpt_compat"]["callback_keys"]
    assert recs[MC_KEY]["from"] == "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"
    assert recs[MC_KEY]["how"].startswith("monitor recorded in the state; mode: Lightning's default")
    assert recs[ES_KEY] == {
        "from": "pytorch_lightning.callbacks.early_stopping.EarlyStopping",
        "how": (
            "monitor of the ModelCheckpoint state with the same best score; "
            "mode: Lightning's default (not saved before 1.5)"
        ),
    }
    assert "MyCallback" not in recs  # its state_key is its class name: nothing to resolve


def test_early_stopping_without_a_matching_best_score_stays_bare_and_unresolved():
    from pytest_ckpt_compat.core.callback_keys import unresolved

    ckpt = _legacy()
    ckpt["callbacks"][ES_REF]["best_score"] = torch.tensor(0.25)  # not the ModelCheckpoint's 0.5
    UNIT.upgrade(ckpt)
    assert list(ckpt["callbacks"]) == ["EarlyStopping", MC_KEY, "MyCallback"]
    assert list(unresolved(ckpt)) == ["EarlyStopping"]
    assert unresolved(ckpt)["EarlyStopping"].startswith("unresolved: EarlyStopping never saved its monitor")


def test_bare_names_from_0x_keys_are_resolved_too():
    ckpt = {
        "callbacks": {
            "ModelCheckpoint": {"monitor": "loss", "best_model_score": 1.0},
            "EarlyStopping": {"best_score": torch.tensor(1.0)},
        }
    }
    UNIT.upgrade(ckpt)
    assert list(ckpt["callbacks"]) == [
        ModelCheckpoint(monitor="loss").state_key,
        EarlyStopping(monitor="loss").state_key,
    ]
