"""Safe loads of pickled ``pathlib`` paths: real goldens with a path in hparams, and paths of the other system."""

from __future__ import annotations

import os
import pathlib
import pickle
import sys
import types
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
import torch

from pytest_ckpt_compat import CorruptCheckpoint, load_checkpoint, save_checkpoint, upgrade

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
SAVED_DIR = "/golden-build/data/path_hparams"  # the recipe's MODULE_ARGS["path_hparams"]
POSIX = os.name != "nt"


class _Pickled:
    """Pickles as ``cls(*parts)``, as a path does, whether or not this system can make ``cls``."""

    def __init__(self, cls, *parts):
        self.cls, self.parts = cls, parts

    def __reduce__(self):
        return (self.cls, self.parts)


def _saved(tmp_path, value) -> Path:
    path = tmp_path / "paths.ckpt"
    torch.save({"pytorch-lightning_version": "1.9.0", "hyper_parameters": {"p": value}}, path)
    return path


@pytest.mark.parametrize("release", ["0.10.0", "1.9.0", "2.6.6", "lightning-2.0.9"])
def test_path_hparams_goldens_load_safely_and_upgrade_to_weights_only_data(tmp_path, release):
    golden = GOLDEN / release / "path_hparams.ckpt"
    checkpoint = load_checkpoint(golden)  # no trust
    data_dir = checkpoint["hyper_parameters"]["data_dir"]
    assert type(data_dir) is (pathlib.PosixPath if POSIX else PurePosixPath)
    assert str(data_dir) == SAVED_DIR
    upgrade(checkpoint, "2.6.6")
    save_checkpoint(checkpoint, tmp_path / "up.ckpt", source=golden)
    if release == "2.6.6":  # saved by 2.6 itself: no unit runs (the known defect path-hparams-weights-only)
        with pytest.raises(pickle.UnpicklingError, match="pathlib.PosixPath"):
            torch.load(tmp_path / "up.ckpt", weights_only=True)
        assert load_checkpoint(tmp_path / "up.ckpt")["hyper_parameters"]["data_dir"] == data_dir
    else:
        reread = torch.load(tmp_path / "up.ckpt", weights_only=True)
        assert reread["hyper_parameters"]["data_dir"] == SAVED_DIR


@pytest.mark.parametrize(
    ("cls", "parts", "expected"),
    [
        (pathlib.PurePosixPath, ("/", "data", "run"), PurePosixPath("/data/run")),
        (pathlib.PureWindowsPath, ("C:\\", "x", "y"), PureWindowsPath("C:/x/y")),
        (pathlib.PosixPath, ("/", "data"), pathlib.PosixPath("/data") if POSIX else PurePosixPath("/data")),
        (pathlib.WindowsPath, ("C:\\", "x"), PureWindowsPath("C:/x") if POSIX else pathlib.WindowsPath("C:/x")),
    ],
)
def test_each_path_class_loads_as_itself_or_its_pure_flavour(tmp_path, cls, parts, expected):
    """A path saved on the other system loads as that system's pure path (its concrete class cannot be made here)."""
    loaded = load_checkpoint(_saved(tmp_path, _Pickled(cls, *parts)))["hyper_parameters"]["p"]
    assert type(loaded) is type(expected)
    assert loaded == expected


def test_python_3_13_spelling_pathlib_local_loads(tmp_path, monkeypatch):
    """Python 3.13 pickles ``pathlib._local.PosixPath``; older Pythons have no such module to import."""
    fake = types.ModuleType("pathlib._local")
    fake.PosixPath = type("PosixPath", (), {"__module__": "pathlib._local", "__qualname__": "PosixPath"})
    monkeypatch.setitem(sys.modules, "pathlib._local", fake)
    path = _saved(tmp_path, _Pickled(fake.PosixPath, "/", "data"))
    monkeypatch.delitem(sys.modules, "pathlib._local")
    loaded = load_checkpoint(path)["hyper_parameters"]["p"]
    assert str(loaded) == "/data"
    assert isinstance(loaded, PurePosixPath)


def test_a_path_made_of_anything_but_strings_is_corrupt(tmp_path):
    with pytest.raises(CorruptCheckpoint, match="PosixPath must be made of strings, not int"):
        load_checkpoint(_saved(tmp_path, _Pickled(pathlib.PurePosixPath, "/", 3)))
