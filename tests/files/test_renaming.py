"""Whole pickled objects (``torch.save(model)``) whose classes moved: ``ckpt-compat upgrade`` rewrites their names.

The darts story (darts#1443) on a library written to a temporary folder: release 1 pickles a
model holding two encoders of ``objlib.enc``; release 2 moved them to ``objlib.encoding`` and
reads a new attribute (``shift``) that release 1's objects lack. Nothing is mocked: the files are
written by ``torch.save`` and read back by ``torch.load`` under release 2.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

from pytest_ckpt_compat.cli import main
from pytest_ckpt_compat.core.catalogue import Catalogue, register_catalogue, unregister_catalogue
from pytest_ckpt_compat.core.errors import ObjectPickleUnsupported
from pytest_ckpt_compat.files.renaming import is_object_file, set_object_state
from tests.files.test_loading_redirects import _release

MODELS = """
import torch


class Forecaster(torch.nn.Module):
    def __init__(self, encoders):
        super().__init__()
        self.net = torch.nn.Linear(2, 1)
        self.encoders = encoders
"""
OLD_ENC = """
class Encoder:
    def __init__(self, name):
        self.name = name
"""
NEW_ENC = """
class Encoder:
    def __init__(self, name, shift=0):
        self.name, self.shift = name, shift

    def describe(self):
        return f"{self.name}+{self.shift}"
"""
MOVED = {"objlib.enc.Encoder": "objlib.encoding.Encoder"}


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def lib(tmp_path, monkeypatch):
    folder = tmp_path / "lib"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    _release(folder, "objlib", {})


def _save(lib, path, **kwargs):
    """Release 1 saves a whole model (two encoders of the class that moves); then release 2 is installed."""
    _release(lib, "objlib", {"models": MODELS, "enc": OLD_ENC})
    from objlib.enc import Encoder  # type: ignore[import-not-found]
    from objlib.models import Forecaster  # type: ignore[import-not-found]

    torch.manual_seed(0)
    model = Forecaster([Encoder("month"), Encoder("position")])
    torch.save(model, path, **kwargs)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    _release(lib, "objlib", {"models": MODELS, "encoding": NEW_ENC})
    return weights


@pytest.fixture
def old_file(lib, tmp_path):
    path = tmp_path / "model.pt"
    weights = _save(lib, path)
    return path, weights


def _catalogue(tmp_path, body: str) -> None:
    folder = tmp_path / "objlib_migrations"
    folder.mkdir(exist_ok=True)
    (folder / "v2_0_0__10_encoders_moved.py").write_text(
        '"""objlib 2 moved its encoders to objlib.encoding."""\nID = "objlib-2.0-encoders-moved"\nVERSION = "2.0.0"\n'
        + body
        + "\n\ndef upgrade(checkpoint):\n    return checkpoint\n"
    )
    register_catalogue(Catalogue(name="objlib", path=folder, version_key="objlib_version", target_version="2.0.0"))


@pytest.fixture
def moved(tmp_path):
    _catalogue(tmp_path, 'REDIRECTS = {"objlib.enc.*": "objlib.encoding.*"}\n')
    yield
    unregister_catalogue("objlib")


@pytest.fixture
def moved_with_state(tmp_path):
    _catalogue(
        tmp_path,
        'REDIRECTS = {"objlib.enc.*": "objlib.encoding.*"}\n\n\n'
        "def OBJECT_STATE(root, pickle):\n"
        '    return {"objlib.encoding.Encoder": {"shift": 0}} if root == "objlib.models.Forecaster" else {}\n',
    )
    yield
    unregister_catalogue("objlib")


def test_release_2_alone_cannot_load_the_file(old_file):
    with pytest.raises(ModuleNotFoundError, match="objlib.enc"):
        torch.load(old_file[0], weights_only=False)


def test_upgrade_writes_the_new_names_and_the_new_release_loads_the_same_object(old_file, moved, tmp_path, capsys):
    path, weights = old_file
    before = _sha(path)
    out = tmp_path / "upgraded.pt"
    assert main(["upgrade", str(path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "a whole pickled object, 1 class name(s) redirected" in printed
    assert "redirect objlib.enc.Encoder -> objlib.encoding.Encoder" in printed
    assert _sha(path) == before  # the source is never touched
    from objlib.encoding import Encoder  # type: ignore[import-not-found]

    model = torch.load(out, weights_only=False)
    assert [type(e) for e in model.encoders] == [Encoder, Encoder]
    assert [e.name for e in model.encoders] == ["month", "position"]
    assert model.state_dict().keys() == weights.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    assert "objlib.enc.Encoder" not in torch.serialization.get_unsafe_globals_in_checkpoint(out)


def test_object_state_gives_every_object_of_the_class_what_the_new_release_reads(old_file, moved_with_state, tmp_path):
    out = tmp_path / "upgraded.pt"
    assert main(["upgrade", str(old_file[0]), "-o", str(out)]) == 0
    model = torch.load(out, weights_only=False)
    assert [e.describe() for e in model.encoders] == ["month+0", "position+0"]  # the second: its class from the memo
    assert not hasattr(model, "shift")


def test_object_state_without_the_redirects_output_fails_on_the_new_release(old_file, moved, tmp_path):
    out = tmp_path / "upgraded.pt"
    assert main(["upgrade", str(old_file[0]), "-o", str(out)]) == 0
    with pytest.raises(AttributeError, match="shift"):
        torch.load(out, weights_only=False).encoders[0].describe()


def test_in_place_keeps_the_original_and_dry_run_writes_nothing(old_file, moved, capsys):
    path, _ = old_file
    before = _sha(path)
    assert main(["upgrade", str(path), "--dry-run"]) == 0
    assert "redirect objlib.enc.Encoder -> objlib.encoding.Encoder" in capsys.readouterr().out
    assert _sha(path) == before
    assert main(["upgrade", str(path), "--in-place"]) == 0
    backup = path.with_name(path.name + ".bak")
    assert _sha(backup) == before
    assert type(torch.load(path, weights_only=False).encoders[0]).__module__ == "objlib.encoding"


def test_a_file_whose_names_a_catalogue_vouches_for_and_none_moved_is_left_alone(lib, tmp_path, capsys):
    path = tmp_path / "model.pt"
    _save(lib, path)
    _catalogue(tmp_path, 'REDIRECTS = {"objlib.*": "objlib.*"}\n')
    try:
        before = _sha(path)
        assert main(["upgrade", str(path), "--in-place"]) == 0
        assert "no class name to redirect: nothing to do" in capsys.readouterr().out
        assert _sha(path) == before and not path.with_name("model.pt.bak").exists()
    finally:
        unregister_catalogue("objlib")


def test_without_a_redirect_the_file_is_refused_by_name(old_file, tmp_path, capsys):
    out = tmp_path / "upgraded.pt"
    assert main(["upgrade", str(old_file[0]), "-o", str(out)]) == 6
    assert "UnsafeCheckpoint" in capsys.readouterr().err
    assert not out.exists()


def test_trust_names_a_redirect_target_that_still_does_not_import(old_file, tmp_path, capsys):
    _catalogue(tmp_path, 'REDIRECTS = {"objlib.enc.*": "objlib.nowhere.*"}\n')
    try:
        out = tmp_path / "upgraded.pt"
        assert main(["upgrade", str(old_file[0]), "-o", str(out), "--trust"]) == 10
        assert "MissingGlobal" in capsys.readouterr().err
        assert not out.exists()
    finally:
        unregister_catalogue("objlib")


def test_a_protocol_4_pickle_is_refused_by_name_not_half_rewritten(lib, moved, tmp_path, capsys):
    path = tmp_path / "model4.pt"
    _save(lib, path, pickle_protocol=4)
    out = tmp_path / "upgraded.pt"
    assert main(["upgrade", str(path), "-o", str(out)]) == ObjectPickleUnsupported.exit_code == 3
    assert "protocol 4 pickle" in capsys.readouterr().err
    assert not out.exists()


def test_a_checkpoint_dict_is_not_an_object_file(tmp_path):
    path = tmp_path / "dict.ckpt"
    torch.save({"pytorch-lightning_version": "2.6.6", "state_dict": {}}, path)
    assert not is_object_file(path)
    torch.save(torch.nn.Linear(1, 1), tmp_path / "module.pt")
    assert is_object_file(tmp_path / "module.pt")


def test_set_object_state_refuses_a_value_that_is_not_a_literal():
    import pickle

    data = pickle.dumps(torch.nn.Linear(1, 1), protocol=2)
    with pytest.raises(ObjectPickleUnsupported, match="not a str, int, bool or None"):
        set_object_state(data, {"torch.nn.modules.linear.Linear": {"x": [1]}})
    new, applied = set_object_state(data, {"torch.nn.modules.linear.Linear": {"x": 7}})
    assert applied == {"torch.nn.modules.linear.Linear": {"x": 7}}
    assert pickle.loads(new).x == 7


def test_a_truncated_object_pickle_is_a_named_corrupt_file(old_file, moved, tmp_path, capsys):
    import zipfile

    path = tmp_path / "cut.pt"
    with zipfile.ZipFile(old_file[0]) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data[: len(data) // 2] if info.filename.endswith("data.pkl") else data)
    assert main(["upgrade", str(path), "-o", str(tmp_path / "out.pt")]) == 5
    assert "CorruptCheckpoint" in capsys.readouterr().err
