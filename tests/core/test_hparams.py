"""Hyperparameter helpers on plain dicts: rename, drop (kept in the ledger), set_default, check."""

from __future__ import annotations

from pytest_ckpt_compat.core import hparams


def test_rename_keeps_order_free_values_and_a_present_new_name_wins():
    checkpoint = {"hyper_parameters": {"width": 4, "lr": 0.1, "depth": 2, "layers": 3}}
    assert hparams.rename(checkpoint, {"width": "size", "depth": "layers"}) == ["depth"]
    assert checkpoint["hyper_parameters"] == {"lr": 0.1, "layers": 3, "size": 4}
    assert checkpoint["ckpt_compat"]["dropped"] == {"hyper_parameters.depth": 2}
    datamodule = {"datamodule_hyper_parameters": {"bs": 8}}
    hparams.rename(datamodule, {"bs": "batch_size"}, key=hparams.DATAMODULE_KEY)
    assert datamodule == {"datamodule_hyper_parameters": {"batch_size": 8}}
    assert hparams.rename({"hyper_parameters": None}, {"a": "b"}) == []


def test_drop_moves_values_to_the_ledger_and_set_default_fills_only_absent_names():
    checkpoint = {"hyper_parameters": {"width": 4, "dropout": 0.5}}
    assert hparams.drop(checkpoint, ["dropout", "absent"]) == ["dropout"]
    assert hparams.drop({"hyper_parameters": {"dropout": 0.1}, "ckpt_compat": {"dropped": {}}}, ["dropout"]) == [
        "dropout"
    ]
    assert checkpoint["hyper_parameters"] == {"width": 4}
    assert checkpoint["ckpt_compat"]["dropped"] == {"hyper_parameters.dropout": 0.5}
    assert hparams.set_default(checkpoint, {"width": 9, "norm": "batch"}) == ["norm"]
    assert checkpoint["hyper_parameters"] == {"width": 4, "norm": "batch"}


class Renamed:
    def __init__(self, size, lr=0.1, *, act="relu"):
        pass


class WithKwargs:
    def __init__(self, lr=0.1, **kwargs):
        pass


def test_check_names_what_is_dropped_missing_defaulted_or_sent_to_kwargs():
    report = hparams.check({"width": 4, "lr": 0.2, "_instantiator": "x"}, Renamed)
    assert report == hparams.HparamsCheck(dropped=("width",), missing=("size",), defaulted=("act",))
    assert not report.ok
    assert report.problems() == [
        "saved hyperparameter 'width' is not a constructor argument: load_from_checkpoint drops it",
        "constructor argument 'size' is required but not saved: load_from_checkpoint fails",
        "constructor argument 'act' is not saved: its current default applies",
    ]
    assert hparams.check({"width": 4, "lr": 0.2}, Renamed, given=["size"]).missing == ()
    assert hparams.check({"width": 4}, WithKwargs) == hparams.HparamsCheck(to_kwargs=("width",), defaulted=("lr",))
    assert hparams.check({"size": 1, "lr": 0.1, "act": "gelu"}, Renamed).ok


def test_check_checkpoint_reads_the_one_argument_form():
    class OneArgument:
        def __init__(self, hparams):
            pass

    class Kwargs:
        def __init__(self, **kwargs):
            pass

    checkpoint = {
        "hyper_parameters": {"a": 1},
        "hparams_name": "hparams",
    }  # LightningModule.CHECKPOINT_HYPER_PARAMS_NAME
    assert hparams.check_checkpoint(checkpoint, OneArgument).ok
    assert hparams.check_checkpoint({"hyper_parameters": {"a": 1}}, OneArgument).dropped == ("a",)
    # Lightning wraps only where the constructor has that argument: darts saves hparams_name "kwargs"
    assert hparams.check_checkpoint({**checkpoint, "hparams_name": "kwargs"}, Kwargs).to_kwargs == ("a",)
    data = {"datamodule_hyper_parameters": {"a": 1}, "datamodule_hparams_name": "hparams"}
    assert hparams.check_checkpoint(data, OneArgument, key=hparams.DATAMODULE_KEY).ok
