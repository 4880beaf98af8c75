"""pl-2.1.0-precision-key-fsdp-precision-plugin: FSDPMixedPrecisionPlugin → FSDPPrecisionPlugin."""

from __future__ import annotations

from pytest_ckpt_compat import upgrade
from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-2.1.0-precision-key-fsdp-precision-plugin")


def test_rename_and_chain_from_1_8():
    state = {"scale": 256.0, "_growth_tracker": 11}  # hand-made ShardedGradScaler state
    ckpt = {"FSDPMixedPrecisionPlugin": state}
    assert UNIT.upgrade(ckpt) == {"FSDPPrecisionPlugin": {"scale": 256.0, "_growth_tracker": 11}}
    # a native-FSDP 1.8 file reaches the 2.6 key through 2.0.0, 2.1.0 and 2.1.1
    old = {"pytorch-lightning_version": "1.8.6", "FullyShardedNativeNativeMixedPrecisionPlugin": state}
    upgrade(old, target_version="2.6.6")
    assert old["FSDPPrecision"] is state
    assert not any("Plugin" in str(k) for k in old)


def test_existing_target_idempotent_optional():
    ckpt = {"FSDPMixedPrecisionPlugin": {"scale": 1.0}, "FSDPPrecisionPlugin": {"scale": 2.0}}
    UNIT.upgrade(ckpt)
    assert ckpt == {
        "FSDPPrecisionPlugin": {"scale": 2.0},
        "ckpt_compat": {"dropped": {"FSDPMixedPrecisionPlugin": {"scale": 1.0}}},
    }
    once = snapshot(ckpt)
    assert same(UNIT.upgrade(ckpt), once)
    assert UNIT.upgrade({}) == {}
