"""pl-2.1.1-precision-keys-without-plugin-suffix: MixedPrecisionPlugin → MixedPrecision, FSDP* → FSDPPrecision."""

from __future__ import annotations

import pytest
import torch

from pytest_ckpt_compat import upgrade
from tests.migrations.helpers_pre16 import lightning_migrations_off, same, snapshot, unit

UNIT = unit("pl-2.1.1-precision-keys-without-plugin-suffix")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("MixedPrecisionPlugin", "MixedPrecision"),
        ("FSDPPrecisionPlugin", "FSDPPrecision"),
        ("FSDPMixedPrecisionPlugin", "FSDPPrecision"),
    ],
)
def test_rename(old, new):
    state = {"scale": 8.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 3, "_growth_tracker": 1}
    ckpt = {"epoch": 0, old: state}
    UNIT.upgrade(ckpt)
    assert list(ckpt) == ["epoch", new] and ckpt[new] is state


def test_existing_target_idempotent_optional():
    ckpt = {"MixedPrecisionPlugin": {"scale": 1.0}, "MixedPrecision": {"scale": 2.0}}
    UNIT.upgrade(ckpt)
    assert ckpt == {
        "MixedPrecision": {"scale": 2.0},
        "ckpt_compat": {"dropped": {"MixedPrecisionPlugin": {"scale": 1.0}}},
    }
    once = snapshot(ckpt)
    assert same(UNIT.upgrade(ckpt), once)
    assert UNIT.upgrade({"DoublePrecision": {}}) == {"DoublePrecision": {}}


def test_unit_does_not_run_on_2_1_1_files():
    ckpt = {"pytorch-lightning_version": "2.1.1", "MixedPrecisionPlugin": {"scale": 1.0}}  # a deprecated-alias save
    upgrade(ckpt, target_version="2.6.6")
    assert "MixedPrecisionPlugin" in ckpt and "MixedPrecision" not in ckpt


@pytest.mark.parametrize("stamp", ["1.9.5", "1.8.6"])
def test_resumed_16_mixed_restores_grad_scaler(tmp_path, monkeypatch, stamp):
    """End to end on CPU: a 1.9 (MixedPrecisionPlugin) / 1.8 (NativeMixedPrecisionPlugin) 16-mixed file keeps
    its GradScaler.

    Hand-made: a 2.6 save whose precision key is renamed to the old name and whose version is
    stamped old. Without the upgrade the resumed run silently starts a fresh scaler.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.demos.boring_classes import BoringModel
    from lightning.pytorch.plugins.precision import MixedPrecision

    def trainer(max_epochs):
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
        return pl.Trainer(
            max_epochs=max_epochs,
            limit_train_batches=4,
            limit_val_batches=0,
            accelerator="cpu",
            plugins=[MixedPrecision("16-mixed", device="cpu", scaler=scaler)],
            default_root_dir=tmp_path,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
        )

    first = trainer(1)
    first.fit(BoringModel())
    path = tmp_path / "amp.ckpt"
    first.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    saved = ckpt.pop("MixedPrecision")
    assert saved == {
        "scale": 2048.0,
        "growth_factor": 2.0,
        "backoff_factor": 0.5,
        "growth_interval": 3,
        "_growth_tracker": 1,
    }
    ckpt["MixedPrecisionPlugin" if stamp == "1.9.5" else "NativeMixedPrecisionPlugin"] = dict(saved)
    ckpt["pytorch-lightning_version"] = stamp
    upgrade(ckpt)
    assert ckpt["MixedPrecision"] == saved
    torch.save(ckpt, path)

    restored = {}

    class Grab(pl.Callback):
        def on_train_start(self, trainer, module):
            restored["scaler"] = trainer.precision_plugin.scaler.state_dict()

    second = trainer(2)
    second.callbacks.append(Grab())
    with lightning_migrations_off(monkeypatch):
        second.fit(BoringModel(), ckpt_path=path)
    assert restored["scaler"] == saved  # a fresh scaler would be {"scale": 1024.0, ..., "_growth_tracker": 0}
