"""The darts 0.22 -> 0.23 real break (darts#1443) on the files darts 0.22.0 wrote.

``examples/realbreaks/darts/data/`` was saved by darts 0.22.0 from PyPI in its own environment
(``build.py``; versions and the live truth in ``meta.json``): ``model.save()``'s ``model.pt`` (the
whole model, pickled) with its Lightning ``model.pt.ckpt``, and the run folder's ``_model.pth.tar``
(the whole model again) with the Lightning checkpoint darts' ModelCheckpoint kept. The whole-model
files pickle the encoders darts 0.23 moved. darts is not installed in the test environment, so these
tests prove the upgrade on the bytes: without the team catalogue the files are refused by name; with
it the moved names and the attributes 0.23 reads are written in, the tensors are copied bit for bit
and the committed files are never touched; the files darts 0.23.0 wrote (``data-0.23/``, after the
move) are left alone. Loading and resuming under darts 0.23 with exact state is
``build.py`` (opt in with ``-m slow``).
"""

from __future__ import annotations

import hashlib
import json
import pickletools
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat.cli import main
from tests.realbreaks.catalogues import registered_example_catalogue

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "realbreaks" / "darts"
DATA = FOLDER / "data"
AFTER = FOLDER / "data-0.23"
BUILD = "/golden-build/realbreaks-darts"  # build.py's working directory: the goldens' neutral build folder
WHOLE = ["model.pt", "darts022/_model.pth.tar"]
LIGHTNING = ["model.pt.ckpt", "darts022/checkpoints/last-epoch=1.ckpt"]
ENC, NEW = "darts.utils.data", "darts.dataprocessing.encoders"
MOVED = {
    f"{ENC}.encoders.SequentialEncoder": f"{NEW}.encoders.SequentialEncoder",
    f"{ENC}.encoders.PastCyclicEncoder": f"{NEW}.encoders.PastCyclicEncoder",
    f"{ENC}.encoder_base.PastCovariateIndexGenerator": f"{NEW}.encoder_base.PastCovariatesIndexGenerator",
    f"{ENC}.encoders.PastIntegerIndexEncoder": f"{NEW}.encoders.PastIntegerIndexEncoder",
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folders(path: Path) -> set[str]:
    """The absolute paths a file's pickle names."""
    strings = [arg for _, arg, _ in pickletools.genops(_records(path)["data.pkl"]) if isinstance(arg, str)]
    return {s for s in strings if s.startswith("/")}


def _records(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename.partition("/")[2]: archive.read(info) for info in archive.infolist()}


@pytest.fixture
def darts_catalogue():
    with registered_example_catalogue(FOLDER, "darts") as registered:
        yield registered


@pytest.fixture
def copy(tmp_path):
    shutil.copytree(DATA, tmp_path / "data")
    return tmp_path / "data"


def test_the_files_are_what_darts_0_22_wrote():
    meta = json.loads((DATA / "meta.json").read_text())
    assert meta["versions"]["u8darts"] == "0.22.0"
    assert meta["truth"]["encoders"] == f"{ENC}.encoders.SequentialEncoder"
    for name in WHOLE:
        assert set(MOVED) <= set(torch.serialization.get_unsafe_globals_in_checkpoint(DATA / name))
    for name in LIGHTNING:  # darts' Lightning checkpoints pickle no darts class: 0.23 reads them as they are
        assert not [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(DATA / name) if "darts" in g]


def test_the_files_name_no_folder_but_the_neutral_build_folder():
    """darts' ModelCheckpoint pickles its real folder: build.py runs in the goldens' neutral folder."""
    for path in [*DATA.rglob("*"), *AFTER.rglob("*")]:
        raw = path.read_bytes() if path.is_file() else b""
        assert not [p for p in (b"/tmp/", b"/work/", b"/root/", b"/home/") if p in raw], path
    for folder, name in ((DATA, "darts022"), (AFTER, "darts023")):
        kept = f"{BUILD}/{folder.name}/{name}/checkpoints"  # the ModelCheckpoint's dirpath, then its last file
        lightning = {kept, f"{kept}/last-epoch=1.ckpt"}
        assert _folders(folder / "model.pt") == {BUILD, *lightning}  # and the working directory itself
        assert _folders(folder / name / "_model.pth.tar") == {kept}  # pickled at the start of training
        assert _folders(folder / "model.pt.ckpt") == _folders(folder / name / "checkpoints/last-epoch=1.ckpt")
        assert _folders(folder / "model.pt.ckpt") == lightning


def test_without_the_catalogue_the_whole_model_files_are_refused_by_name(copy, capsys):
    before = {name: _sha(copy / name) for name in WHOLE}
    assert main(["upgrade", "--in-place", *(str(copy / n) for n in WHOLE)]) == 6
    err = capsys.readouterr().err
    assert err.count("UnsafeCheckpoint") == 2 and f"{ENC}.encoders.SequentialEncoder" in err
    assert main(["upgrade", "--in-place", "--trust", str(copy / "model.pt")]) == 10  # darts is not installed here
    assert "MissingGlobal" in capsys.readouterr().err
    assert {name: _sha(copy / name) for name in WHOLE} == before


def test_dry_run_shows_the_redirects_and_the_attributes_and_writes_nothing(copy, darts_catalogue, capsys):
    before = _sha(copy / "model.pt")
    assert main(["upgrade", "--dry-run", str(copy / "model.pt")]) == 0
    out = capsys.readouterr().out
    assert "a whole pickled object, 4 class name(s) redirected" in out
    assert all(f"redirect {old} -> {new}" in out for old, new in MOVED.items())
    assert "_module_name='_BlockRNNModule'" in out and "shift_start=None" in out
    assert _sha(copy / "model.pt") == before


def test_the_catalogue_rewrites_the_names_sets_the_attributes_and_copies_the_tensors(copy, darts_catalogue):
    assert main(["upgrade", "--in-place", "--no-backup", *(str(copy / n) for n in WHOLE)]) == 0
    upgraded = _sha(copy / "model.pt")
    for name in WHOLE:
        names = set(torch.serialization.get_unsafe_globals_in_checkpoint(copy / name))
        assert set(MOVED.values()) <= names and not set(MOVED) & names, name
        old, new = _records(DATA / name), _records(copy / name)
        assert old.keys() == new.keys()
        assert all(new[k] == v for k, v in old.items() if k.startswith("data/")), "tensor records copied"
        strings = [arg for op, arg, _ in pickletools.genops(new["data.pkl"]) if isinstance(arg, str)]
        for attribute, value in [("_module_path", "darts.models.forecasting.block_rnn_model")]:
            assert strings[strings.index(attribute) + 1] == value
        # two encoders, each with its index generator; one SequentialEncoder; one model
        assert strings.count("shift_start") == 2 and strings.count("lags_past_covariates") == 1
        assert strings.count("_module_name") == 1
    for name in LIGHTNING:  # left alone: copied as they were
        assert _sha(copy / name) == _sha(DATA / name)
    assert main(["upgrade", "--in-place", str(copy / "model.pt")]) == 0  # upgraded: nothing left to redirect
    assert _sha(copy / "model.pt") == upgraded


def test_the_files_darts_0_23_wrote_are_left_alone(tmp_path, darts_catalogue, capsys):
    shutil.copytree(AFTER, tmp_path / "after")
    meta = json.loads((AFTER / "meta.json").read_text())
    assert meta["versions"]["u8darts"] == "0.23.0"
    # the same seed and data under 0.23: the same weights as 0.22 trained
    assert meta["truth"]["weights_sha256"] == json.loads((DATA / "meta.json").read_text())["truth"]["weights_sha256"]
    files = [tmp_path / "after" / n for n in ("model.pt", "darts023/_model.pth.tar")]
    for path in files:
        names = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        assert f"{NEW}.encoders.SequentialEncoder" in names and not [
            n for n in names if n.startswith((f"{ENC}.encoders.", f"{ENC}.encoder_base."))
        ]
    before = [_sha(p) for p in files]
    assert main(["upgrade", "--in-place", *(str(p) for p in files)]) == 0
    assert capsys.readouterr().out.count("no class name to redirect: nothing to do") == 2
    assert [_sha(p) for p in files] == before
    assert not list((tmp_path / "after").rglob("*.bak"))


@pytest.mark.slow
def test_build_from_pypi_then_load_and_resume_under_darts_0_23(tmp_path, request):
    """The whole proof: both releases from PyPI (minutes, network), a pyenv Python 3.10 and uv."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("opt in with -m slow (builds two darts environments from PyPI)")
    if shutil.which("uv") is None and subprocess.run([sys.executable, "-m", "uv", "--version"]).returncode:
        pytest.skip("needs uv")
    done = subprocess.run(
        [sys.executable, str(FOLDER / "build.py"), "--out", str(tmp_path / "out"), "--envs", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
