"""pl-2.0.0-drop-apex-amp-state: apex state moved to ckpt_compat.dropped, with a note and no warning."""

from __future__ import annotations

import warnings

import torch

from pytest_ckpt_compat import upgrade
from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-2.0.0-drop-apex-amp-state")


def test_lightning_case_7_dropped_apex_amp_state():
    """Lightning's test_migrate_dropped_apex_amp_state (version 1.9.0 → 2.0.0): gone from the top level, kept aside."""
    old = {"pytorch-lightning_version": "1.9.0", "amp_scaling_state": {"scale": 1.23}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        upgrade(old, target_version="2.0.0")
    assert "amp_scaling_state" not in old
    assert old["ckpt_compat"]["dropped"] == {"amp_scaling_state": {"scale": 1.23}}
    assert "apex" in old["ckpt_compat"]["notes"]["pl-2.0.0-drop-apex-amp-state"]


def test_apex_plugin_key():
    state = {"loss_scaler0": {"loss_scale": 65536.0, "unskipped": 3}}
    ckpt = {"epoch": 3, "ApexMixedPrecisionPlugin": state}
    UNIT.upgrade(ckpt)
    assert ckpt["epoch"] == 3 and "ApexMixedPrecisionPlugin" not in ckpt
    assert ckpt["ckpt_compat"]["dropped"]["ApexMixedPrecisionPlugin"] is state
    assert ckpt["ckpt_compat"]["notes"] == {
        "pl-2.0.0-drop-apex-amp-state": "apex AMP state (ApexMixedPrecisionPlugin) moved to ckpt_compat.dropped: "
        "apex support was removed in Lightning 2.0"
    }


def test_idempotent_optional_and_tensors_kept():
    t = torch.ones(1)
    ckpt = {"amp_scaling_state": {"t": t}}
    once = snapshot(UNIT.upgrade(ckpt))
    assert same(UNIT.upgrade(ckpt), once)
    assert ckpt["ckpt_compat"]["dropped"]["amp_scaling_state"]["t"] is t
    assert UNIT.upgrade({"MixedPrecisionPlugin": {}}) == {"MixedPrecisionPlugin": {}}
