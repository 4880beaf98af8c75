"""pl-1.2.8-argparse-gpus-default-none: the argparse default function in old hparams becomes None."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat.files.loading import load_checkpoint
from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-1.2.8-argparse-gpus-default-none")


def _gpus_arg_default(x):  # the name Lightning < 1.2.8 pickled as --gpus/--tpu_cores default
    return x


def test_function_values_become_none():
    ckpt = {
        "hyper_parameters": {"gpus": _gpus_arg_default, "tpu_cores": _gpus_arg_default, "lr": 0.02, "max_epochs": None},
        "datamodule_hyper_parameters": {"args": {"gpus": _gpus_arg_default}},
        "state_dict": {"w": torch.ones(1)},
    }
    UNIT.upgrade(ckpt)
    assert ckpt["hyper_parameters"] == {"gpus": None, "tpu_cores": None, "lr": 0.02, "max_epochs": None}
    assert ckpt["datamodule_hyper_parameters"] == {"args": {"gpus": None}}
    note = ckpt["ckpt_compat"]["notes"][UNIT.id]
    assert "hyper_parameters.gpus" in note and "datamodule_hyper_parameters.args.gpus" in note
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["hyper_parameters"]["gpus"] is None


def test_real_golden_1_1_8_argparse_hparams_loads_weights_only(tmp_path):
    """The 1.1.8 golden pickles pytorch_lightning.utilities.argparse_utils._gpus_arg_default."""
    path = Path(__file__).resolve().parents[2] / "golden" / "1.1.8" / "argparse_hparams.ckpt"
    if not path.is_file():
        pytest.skip("golden 1.1.8/argparse_hparams.ckpt not in this checkout")
    ckpt = load_checkpoint(path, trust=True)
    assert getattr(ckpt["hyper_parameters"]["gpus"], "__name__", None) == "_gpus_arg_default"
    UNIT.upgrade(ckpt)
    assert ckpt["hyper_parameters"]["gpus"] is None and ckpt["hyper_parameters"]["tpu_cores"] is None


def test_other_values_untouched_idempotent():
    def gpus(x):
        return x

    ckpt = {"hyper_parameters": {"parse": gpus, "nested": {"deep": {"gpus": _gpus_arg_default}}}}
    before = snapshot(ckpt)
    UNIT.upgrade(ckpt)
    assert same(ckpt, before)
    ckpt = {"hyper_parameters": {"gpus": _gpus_arg_default}}
    once = snapshot(UNIT.upgrade(ckpt))
    assert same(UNIT.upgrade(ckpt), once)
    assert UNIT.upgrade({}) == {} and UNIT.upgrade({"hyper_parameters": None}) == {"hyper_parameters": None}
