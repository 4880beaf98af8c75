"""pl-1.6.0-precision-state-keys: AMP scaler state under the precision plugin's class name."""

from __future__ import annotations

import torch

from pytest_ckpt_compat import upgrade
from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-1.6.0-precision-state-keys")


def _scaler_state():
    return {
        "scale": 1024.0,
        "growth_factor": 2.0,
        "backoff_factor": 0.5,
        "growth_interval": 2000,
        "_growth_tracker": 37,
    }


def test_native_and_apex_keys_move_unchanged():
    native, apex = _scaler_state(), {"loss_scaler0": {"loss_scale": 65536.0, "unskipped": 0}}
    ckpt = {"native_amp_scaling_state": native, "amp_scaling_state": apex}  # hand-made 1.5 keys
    UNIT.upgrade(ckpt)
    assert ckpt == {"NativeMixedPrecisionPlugin": native, "ApexMixedPrecisionPlugin": apex}
    assert ckpt["NativeMixedPrecisionPlugin"] is native and ckpt["ApexMixedPrecisionPlugin"] is apex


def test_existing_new_key_wins_old_value_kept():
    kept, old = _scaler_state(), {"scale": 1.0}
    ckpt = {"native_amp_scaling_state": old, "NativeMixedPrecisionPlugin": kept}
    UNIT.upgrade(ckpt)
    assert ckpt["NativeMixedPrecisionPlugin"] is kept
    assert ckpt["ckpt_compat"]["dropped"] == {"native_amp_scaling_state": old}


def test_scale_reaches_the_current_plugin_through_the_chain():
    """After the whole chain the 2.x MixedPrecision plugin restores the loss scale and growth tracker."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    ckpt = {
        "pytorch-lightning_version": "1.5.10",
        "epoch": 1,
        "global_step": 5,
        "native_amp_scaling_state": _scaler_state(),
    }
    upgrade(ckpt, "2.6.6")
    assert "native_amp_scaling_state" not in ckpt and "NativeMixedPrecisionPlugin" not in ckpt
    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    plugin.load_state_dict(ckpt[type(plugin).__qualname__])
    restored = plugin.scaler.state_dict()
    assert (restored["scale"], restored["_growth_tracker"]) == (1024.0, 37)


def test_idempotent_and_no_key_error():
    ckpt = {"native_amp_scaling_state": _scaler_state()}
    UNIT.upgrade(ckpt)
    once = snapshot(ckpt)
    UNIT.upgrade(ckpt)
    assert same(ckpt, once)
    empty = {}
    UNIT.upgrade(empty)
    assert empty == {}
