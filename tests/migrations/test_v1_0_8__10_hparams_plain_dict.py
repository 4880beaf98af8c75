"""pl-1.0.8-hparams-plain-dict: AttributeDict hyperparameters become plain dicts."""

from __future__ import annotations

import collections

import pytest
import torch
from lightning.pytorch.utilities.parsing import AttributeDict

from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-1.0.8-hparams-plain-dict")


def test_attribute_dict_becomes_dict_and_loads_weights_only(tmp_path):
    weight = torch.ones(2)
    # hand-made: what a trusted load of a 0.8 – 1.0.7 file gives
    ckpt = {
        "pytorch-lightning_version": "1.0.7",
        "hyper_parameters": AttributeDict(lr=0.1, nested=AttributeDict(a=1, t=weight), layers=[AttributeDict(n=4)]),
        "hparams_name": "hparams",
    }
    path = tmp_path / "a.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(Exception, match="AttributeDict"):
        torch.load(path, weights_only=True)

    UNIT.upgrade(ckpt)
    hp = ckpt["hyper_parameters"]
    assert type(hp) is dict and type(hp["nested"]) is dict and type(hp["layers"][0]) is dict
    assert hp == {"lr": 0.1, "nested": {"a": 1, "t": weight}, "layers": [{"n": 4}]}
    assert hp["nested"]["t"] is weight
    torch.save(ckpt, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded["hyper_parameters"]["lr"] == 0.1 and torch.equal(loaded["hyper_parameters"]["nested"]["t"], weight)


def test_datamodule_and_0_7_keys():
    ckpt = {
        "datamodule_hyper_parameters": AttributeDict(bs=8),
        "hparams": AttributeDict(x=1),
        "module_arguments": {"y": 2},
    }
    UNIT.upgrade(ckpt)
    assert type(ckpt["datamodule_hyper_parameters"]) is dict and ckpt["datamodule_hyper_parameters"] == {"bs": 8}
    assert type(ckpt["hparams"]) is dict and ckpt["module_arguments"] == {"y": 2}


def test_plain_values_are_untouched_and_not_copied():
    inner = collections.OrderedDict(a=1)  # a dict subclass torch's weights_only loader accepts: kept
    hp = {"lr": 0.1, "inner": inner, "tags": ("a", "b")}
    ckpt = {"hyper_parameters": hp}
    UNIT.upgrade(ckpt)
    assert ckpt["hyper_parameters"] is hp and hp["inner"] is inner and type(inner) is collections.OrderedDict


def test_idempotent_and_no_key_error():
    ckpt = {"hyper_parameters": AttributeDict(lr=0.1)}
    UNIT.upgrade(ckpt)
    once = snapshot(ckpt)
    UNIT.upgrade(ckpt)
    assert same(ckpt, once)
    empty = {}
    UNIT.upgrade(empty)
    assert empty == {}
