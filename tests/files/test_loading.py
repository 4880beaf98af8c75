"""Safe loading: allowlisted Lightning globals load inertly, everything else needs trust."""

from __future__ import annotations

import argparse
import pickle
import sys

import pytest
import torch

from pytest_ckpt_compat import CorruptCheckpoint, UnsafeCheckpoint, load_checkpoint
from pytest_ckpt_compat.files.loading import LegacyClassRef, checkpoint_file

pl = pytest.importorskip("pytorch_lightning")
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint  # noqa: E402
from pytorch_lightning.utilities.parsing import AttributeDict  # noqa: E402


def old_style_checkpoint():
    """Hand-made: the shape of a 1.2-era file (class-keyed callbacks, AttributeDict hparams)."""
    return {
        "pytorch-lightning_version": "1.2.10",
        "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(0.5)}, EarlyStopping: {"wait_count": 1}},
        "hyper_parameters": AttributeDict(lr=0.1, net={"width": 4}),
        "state_dict": {"w": torch.arange(4.0)},
    }


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_lightning_globals_load_as_inert_stand_ins(tmp_path, zipped):
    path = tmp_path / "old.ckpt"
    torch.save(old_style_checkpoint(), path, _use_new_zipfile_serialization=zipped)
    ckpt = load_checkpoint(path)
    keys = list(ckpt["callbacks"])
    assert [type(k) for k in keys] == [LegacyClassRef, LegacyClassRef]
    assert [(k.__module__, k.__qualname__) for k in keys] == [
        ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint"),
        ("pytorch_lightning.callbacks.early_stopping", "EarlyStopping"),
    ]
    assert type(ckpt["hyper_parameters"]) is dict and ckpt["hyper_parameters"] == {"lr": 0.1, "net": {"width": 4}}
    assert torch.equal(ckpt["state_dict"]["w"], torch.arange(4.0))


def test_unified_namespace_names_are_allowlisted_too(tmp_path):
    lightning = pytest.importorskip("lightning.pytorch")
    path = tmp_path / "unified.ckpt"
    torch.save({"pytorch-lightning_version": "1.9.0", "callbacks": {lightning.callbacks.EarlyStopping: {}}}, path)
    (key,) = load_checkpoint(path)["callbacks"]
    assert key.__module__ == "lightning.pytorch.callbacks.early_stopping"


def test_other_globals_need_trust_and_are_listed(tmp_path):
    path = tmp_path / "ns.ckpt"
    torch.save({"pytorch-lightning_version": "1.0.0", "hparams": argparse.Namespace(a=1), "opt": torch.optim.SGD}, path)
    with pytest.raises(UnsafeCheckpoint) as info:
        load_checkpoint(path)
    assert info.value.globals == ["argparse.Namespace", "torch.optim.sgd.SGD"]
    assert "trust=True" in str(info.value)
    assert load_checkpoint(path, trust=True)["hparams"] == argparse.Namespace(a=1)


def test_code_in_a_pickle_does_not_run_without_trust(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as fh:
        pickle.dump({"pytorch-lightning_version": "1.0.0", "x": Exploit()}, fh, protocol=2)
    with pytest.raises((UnsafeCheckpoint, CorruptCheckpoint)):
        load_checkpoint(path)
    assert not marker.exists()


def test_trusted_load_redirects_to_the_installed_namespace(tmp_path, monkeypatch):
    lightning = pytest.importorskip("lightning.pytorch")
    path = tmp_path / "old.ckpt"
    torch.save(old_style_checkpoint(), path)  # pickles pytorch_lightning.* names
    for name in [n for n in sys.modules if n == "pytorch_lightning" or n.startswith("pytorch_lightning.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if only `lightning` were installed
    ckpt = load_checkpoint(path, trust=True)
    assert list(ckpt["callbacks"]) == [lightning.callbacks.ModelCheckpoint, lightning.callbacks.EarlyStopping]
    assert isinstance(ckpt["hyper_parameters"], lightning.utilities.parsing.AttributeDict)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"\x00garbage" * 10, "not a readable torch checkpoint|cannot be unpickled"),
        (b"PK\x03\x04broken", "not a readable"),
    ],
    ids=["empty", "garbage", "bad-zip"],
)
def test_unreadable_files_raise_corrupt(tmp_path, content, message):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(CorruptCheckpoint, match=message):
        load_checkpoint(path)
    assert path.read_bytes() == content


def test_truncated_zip_is_corrupt(tmp_path):
    path = tmp_path / "cut.ckpt"
    torch.save(old_style_checkpoint(), path)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(CorruptCheckpoint):
        load_checkpoint(path)


def test_sharded_directories_read_only_their_metadata(tmp_path):
    fsdp = tmp_path / "fsdp.ckpt"
    fsdp.mkdir()
    torch.save({"pytorch-lightning_version": "2.1.0", "loops": {}}, fsdp / "meta.pt")
    (fsdp / "__0_0.distcp").write_bytes(b"not a pickle: must never be read")
    assert checkpoint_file(fsdp) == fsdp / "meta.pt"
    assert load_checkpoint(fsdp) == {"pytorch-lightning_version": "2.1.0", "loops": {}}
    ds = tmp_path / "ds.ckpt"
    (ds / "checkpoint").mkdir(parents=True)
    torch.save({"pytorch-lightning_version": "1.9.0"}, ds / "checkpoint" / "mp_rank_00_model_states.pt")
    assert load_checkpoint(ds)["pytorch-lightning_version"] == "1.9.0"
    (tmp_path / "plain").mkdir()
    with pytest.raises(CorruptCheckpoint, match="no meta.pt"):
        load_checkpoint(tmp_path / "plain")


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.ckpt")
