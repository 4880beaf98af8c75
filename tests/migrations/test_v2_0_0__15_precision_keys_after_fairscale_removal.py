"""pl-2.0.0-precision-keys-after-fairscale-removal: sharded/FSDP AMP keys follow the 2.0 classes."""

from __future__ import annotations

import pytest

from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-2.0.0-precision-keys-after-fairscale-removal")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("FullyShardedNativeNativeMixedPrecisionPlugin", "FSDPMixedPrecisionPlugin"),
        ("FullyShardedNativeMixedPrecisionPlugin", "FSDPMixedPrecisionPlugin"),
        ("ShardedNativeMixedPrecisionPlugin", "MixedPrecisionPlugin"),
        ("NativeMixedPrecisionPlugin", "MixedPrecisionPlugin"),
    ],
)
def test_rename(old, new):
    state = {"scale": 2048.0, "_growth_tracker": 3}
    ckpt = {"global_step": 5, old: state}
    UNIT.upgrade(ckpt)
    assert ckpt == {"global_step": 5, new: {"scale": 2048.0, "_growth_tracker": 3}}
    assert ckpt[new] is state


def test_existing_target_wins_and_old_is_kept():
    ckpt = {"MixedPrecisionPlugin": {"scale": 1.0}, "ShardedNativeMixedPrecisionPlugin": {"scale": 2.0}}
    UNIT.upgrade(ckpt)
    assert ckpt == {
        "MixedPrecisionPlugin": {"scale": 1.0},
        "ckpt_compat": {"dropped": {"ShardedNativeMixedPrecisionPlugin": {"scale": 2.0}}},
    }


def test_idempotent_and_optional():
    ckpt = {"FullyShardedNativeNativeMixedPrecisionPlugin": {"scale": 4.0}}
    once = snapshot(UNIT.upgrade(ckpt))
    assert same(UNIT.upgrade(ckpt), once)
    assert UNIT.upgrade({}) == {}
