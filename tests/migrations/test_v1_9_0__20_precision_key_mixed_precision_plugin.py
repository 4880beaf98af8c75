"""pl-1.9.0-precision-key-mixed-precision-plugin: NativeMixedPrecisionPlugin → MixedPrecisionPlugin."""

from __future__ import annotations

import torch

from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-1.9.0-precision-key-mixed-precision-plugin")


def scaler_state(scale=1024.0):  # hand-made GradScaler.state_dict()
    return {"scale": scale, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 7}


def test_rename():
    state = scaler_state()
    ckpt = {"epoch": 1, "NativeMixedPrecisionPlugin": state}
    assert UNIT.upgrade(ckpt) == {"epoch": 1, "MixedPrecisionPlugin": scaler_state()}
    assert ckpt["MixedPrecisionPlugin"] is state


def test_sharded_and_fsdp_keep_their_1_9_names():
    ckpt = {
        k: scaler_state()
        for k in (
            "ShardedNativeMixedPrecisionPlugin",
            "FullyShardedNativeMixedPrecisionPlugin",
            "FullyShardedNativeNativeMixedPrecisionPlugin",
            "ApexMixedPrecisionPlugin",
        )
    }
    expected = snapshot(ckpt)
    assert UNIT.upgrade(ckpt) == expected


def test_existing_target_is_not_overwritten():
    ckpt = {"NativeMixedPrecisionPlugin": scaler_state(1.0), "MixedPrecisionPlugin": scaler_state(2.0)}
    UNIT.upgrade(ckpt)
    assert ckpt == {
        "MixedPrecisionPlugin": scaler_state(2.0),
        "ckpt_compat": {"dropped": {"NativeMixedPrecisionPlugin": scaler_state(1.0)}},
    }


def test_idempotent_optional_and_tensors_kept():
    scale = torch.tensor(512.0)
    ckpt = {"NativeMixedPrecisionPlugin": {"scale": scale}}
    once = snapshot(UNIT.upgrade(ckpt))
    assert same(UNIT.upgrade(ckpt), once)
    assert ckpt["MixedPrecisionPlugin"]["scale"] is scale
    assert UNIT.upgrade({}) == {}
