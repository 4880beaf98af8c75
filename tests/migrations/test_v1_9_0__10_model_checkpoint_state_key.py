"""pl-1.9.0-model-checkpoint-state-key: ModelCheckpoint keys lose 'save_on_train_epoch_end'."""

from __future__ import annotations

import warnings

import pytest
import torch

from pytest_ckpt_compat import upgrade
from pytest_ckpt_compat.files.loading import legacy_class_ref
from tests.migrations.helpers_pre16 import lightning_migrations_off, same, snapshot, tensors, unit

UNIT = unit("pl-1.9.0-model-checkpoint-state-key")
ID = "pl-1.9.0-model-checkpoint-state-key"

# Lightning's defaults of the fields that a ModelCheckpoint state key names after monitor and mode
DEFAULTS = "'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}"
NEW = "ModelCheckpoint{'monitor': None, 'mode': 'min', " + DEFAULTS


def old_key(flag, name="ModelCheckpoint", monitor="None"):
    return (
        f"{name}{{'monitor': {monitor}, 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, "
        f"'train_time_interval': None, 'save_on_train_epoch_end': {flag}}}"
    )


@pytest.mark.parametrize("flag", [None, True, False])
def test_lightning_case_5_save_on_train_epoch_end_default(flag):
    """Lightning's test_migrate_model_checkpoint_save_on_train_epoch_end_default, through our engine."""
    old = {
        "global_step": 0,
        "epoch": 1,
        "pytorch-lightning_version": "1.8.9",
        "callbacks": {old_key(flag): {"dummy": 0}},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        upgrade(old, target_version="1.9.0")
    assert old["callbacks"] == {NEW: {"dummy": 0}}
    assert old["global_step"] == 0 and old["epoch"] == 1
    assert old["pytorch-lightning_version"] == "1.9.0"
    assert old["legacy_pytorch-lightning_version"] == "1.8.9"


def test_lightning_case_6_collision_keeps_both_states():
    """Lightning warns and changes nothing (neither state is restored); we keep the first and move the other."""
    first, second = old_key(True), old_key(False)
    old = {
        "global_step": 0,
        "epoch": 1,
        "pytorch-lightning_version": "1.8.9",
        "callbacks": {first: {"dummy": 0}, second: {"dummy": 1}},
    }
    with pytest.warns(UserWarning, match="collides with another one") as record:
        upgrade(old, target_version="1.9.0")
    assert len(record) == 1
    assert old["callbacks"] == {NEW: {"dummy": 0}}
    assert old["ckpt_compat"]["dropped"] == {f"callbacks/{second}": {"dummy": 1}}
    assert second in old["ckpt_compat"]["notes"][ID]


def test_subclass_key_is_recognised_by_shape():
    key = old_key(True, name="TopKCheckpoint", monitor="'val_loss'")
    ckpt = {
        "callbacks": {
            key: {"best_model_score": 1.5},
            "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}": {"wait_count": 0},
        }
    }
    UNIT.upgrade(ckpt)
    assert list(ckpt["callbacks"]) == [
        "TopKCheckpoint{'monitor': 'val_loss', 'mode': 'min', " + DEFAULTS,
        "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}",
    ]
    nested = old_key(False, name="test_fn.<locals>.MyCheckpoint")
    assert list(UNIT.upgrade({"callbacks": {nested: {}}})["callbacks"]) == [
        "test_fn.<locals>.MyCheckpoint{'monitor': None, 'mode': 'min', " + DEFAULTS
    ]


def test_monitor_text_is_not_touched():
    tricky = "\"a, 'save_on_train_epoch_end': True\""
    ckpt = {"callbacks": {old_key(True, monitor=tricky): {}}}
    UNIT.upgrade(ckpt)
    assert list(ckpt["callbacks"]) == [f"ModelCheckpoint{{'monitor': {tricky}, 'mode': 'min', " + DEFAULTS]


def test_legacy_and_other_keys_untouched_without_warning():
    cls_key = legacy_class_ref("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")
    ckpt = {
        "callbacks": {
            cls_key: {"best_model_path": "a"},
            "ModelCheckpoint": {"best_model_path": "b"},
            old_key(True): {"best_model_path": "c"},
            NEW + "x": {},
        }
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        UNIT.upgrade(ckpt)
    assert list(ckpt["callbacks"]) == [cls_key, "ModelCheckpoint", NEW, NEW + "x"]
    assert "ckpt_compat" not in ckpt


def test_idempotent_and_optional_state():
    ckpt = {"callbacks": {old_key(True): {"best_model_score": torch.tensor(0.5)}}}
    once = snapshot(UNIT.upgrade(ckpt))
    assert same(UNIT.upgrade(ckpt), once)
    assert UNIT.upgrade({}) == {}
    assert UNIT.upgrade({"callbacks": {}}) == {"callbacks": {}}


def test_no_tensor_copied():
    score = torch.tensor(0.25)
    ckpt = {"callbacks": {old_key(True): {"best_model_score": score}}}
    callbacks = ckpt["callbacks"]
    UNIT.upgrade(ckpt)
    assert ckpt["callbacks"] is callbacks
    assert tensors(ckpt)[0] is score


def test_resume_restores_model_checkpoint_state(tmp_path, monkeypatch):
    """A 1.8-shaped key (hand-made from a 2.6 save) is restored after upgrade; without it, it is not."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.demos.boring_classes import BoringModel

    kwargs = dict(
        limit_train_batches=2,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    pl.Trainer(max_epochs=1, callbacks=[ModelCheckpoint(dirpath=tmp_path)], **kwargs).fit(BoringModel())
    path = next(tmp_path.glob("*.ckpt"))
    ckpt = torch.load(path, weights_only=True)
    ((key, state),) = ckpt["callbacks"].items()
    ckpt["callbacks"] = {key[:-1] + ", 'save_on_train_epoch_end': True}": state}
    ckpt["pytorch-lightning_version"] = "1.8.6"
    upgrade(ckpt)
    torch.save(ckpt, tmp_path / "up.ckpt")
    mc = ModelCheckpoint(dirpath=tmp_path)
    with lightning_migrations_off(monkeypatch):
        pl.Trainer(max_epochs=1, callbacks=[mc], **kwargs).fit(BoringModel(), ckpt_path=tmp_path / "up.ckpt")
    assert mc.best_model_path == state["best_model_path"]
    assert mc.last_model_path == state["last_model_path"]
