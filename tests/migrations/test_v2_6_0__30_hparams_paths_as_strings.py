"""pl-2.6.0-hparams-paths-as-strings: pathlib paths in hyperparameters become plain strings."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
import torch

from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-2.6.0-hparams-paths-as-strings")


def _weights_only_round_trip(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_paths_become_strings_everywhere_in_hparams():
    weight = torch.ones(2)
    ckpt = {
        "state_dict": {"w": weight},
        "hyper_parameters": {
            "data_dir": Path("/data/run"),
            "nested": {"files": [PurePosixPath("/a/b"), "keep"], "pair": (PureWindowsPath("C:/x/y"), 3)},
            "lr": 0.1,
        },
        "datamodule_hyper_parameters": {"root": PurePosixPath("/golden-build/data")},
    }
    with pytest.raises(Exception, match="weights_only|Unsupported|pathlib"):
        _weights_only_round_trip(ckpt)  # torch refuses pathlib classes
    UNIT.upgrade(ckpt)
    assert ckpt["hyper_parameters"] == {
        "data_dir": "/data/run",
        "nested": {"files": ["/a/b", "keep"], "pair": ("C:\\x\\y", 3)},
        "lr": 0.1,
    }
    assert ckpt["datamodule_hyper_parameters"] == {"root": "/golden-build/data"}
    assert ckpt["state_dict"]["w"] is weight
    assert _weights_only_round_trip(ckpt)["hyper_parameters"]["data_dir"] == "/data/run"
    assert "hyper_parameters.data_dir" in ckpt["ckpt_compat"]["notes"][UNIT.id]


def test_no_paths_no_change_idempotent():
    ckpt = {"hyper_parameters": {"lr": 0.1, "tags": ["a"]}, "callbacks": {"x": Path("/not/hparams")}}
    before = snapshot(ckpt)
    UNIT.upgrade(ckpt)
    assert same(ckpt, before)
    ckpt = {"hyper_parameters": {"p": Path("/x")}}
    once = snapshot(UNIT.upgrade(ckpt))
    assert same(UNIT.upgrade(ckpt), once)
    assert UNIT.upgrade({}) == {}
