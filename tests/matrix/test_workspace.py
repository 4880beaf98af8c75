"""The matrix workspace loads with trust only bytes it has just verified against the registry hash.

A golden whose safe load fails is loaded with ``trust`` (pickled code runs). The cache may be
shared and changed after it was verified (same size, same mtime: the cheap re-use check cannot
tell); such a swapped file must never be unpickled with trust.
"""

from __future__ import annotations

import fractions
import hashlib
import os
from pathlib import Path

import pytest

from pytest_ckpt_compat.goldens.store import GoldenStore
from pytest_ckpt_compat.matrix.workspace import Workspace

NAME = "1.0.0/end_of_fit.ckpt"


class _RunsCode:
    """Unpickling it creates a folder: proof that the file's code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _save(obj: dict, path: Path) -> bytes:
    import torch

    torch.save(obj, path, _use_new_zipfile_serialization=False)  # legacy format: size grows byte by byte
    return path.read_bytes()


def _same_size_pair(tmp_path: Path, marker: Path) -> tuple[bytes, bytes]:
    """A genuine golden that needs trust (a ``Fraction``) and a hostile file of exactly its size."""
    base = {"pytorch-lightning_version": "1.0.0", "state_dict": {}}
    genuine = _save({**base, "x": fractions.Fraction(1, 3), "pad": "a" * 400}, tmp_path / "genuine")
    for pad in range(0, 800):
        hostile = _save({**base, "x": _RunsCode(str(marker)), "pad": "a" * pad}, tmp_path / "hostile")
        if len(hostile) == len(genuine):
            return genuine, hostile
    raise AssertionError("no padding gives the same size")


@pytest.fixture
def golden_folder(tmp_path) -> tuple[Path, bytes, bytes, Path]:
    marker = tmp_path / "code-ran"
    genuine, hostile = _same_size_pair(tmp_path, marker)
    root = tmp_path / "golden"
    (root / "1.0.0").mkdir(parents=True)
    (root / NAME).write_bytes(genuine)
    (root / "registry.txt").write_text(f"{NAME} sha256:{hashlib.sha256(genuine).hexdigest()}\n")
    return root, genuine, hostile, marker


def _swap(cached: Path, data: bytes) -> None:
    """Replace the cached file's bytes keeping its size and mtime (what the re-use check compares)."""
    st = cached.stat()
    cached.write_bytes(data)
    os.utime(cached, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (cached.stat().st_size, cached.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_a_cached_golden_swapped_after_verification_never_runs_its_code(golden_folder, tmp_path):
    root, _, hostile, marker = golden_folder
    store = GoldenStore(root, tmp_path / "cache", progressbar=False)
    golden = store.get(NAME)
    ws = Workspace(store, tmp_path / "ws")
    assert ws.load(golden)["x"] == fractions.Fraction(1, 3)  # needed trust: the safe loader refuses Fraction
    assert NAME in ws.trusted
    _swap(tmp_path / "cache" / NAME, hostile)

    assert ws.load(golden)["x"] == fractions.Fraction(1, 3)  # the same process: its verified private copy
    fresh = Workspace(store, tmp_path / "ws2")  # another worker's workspace on the same store and cache
    assert fresh.load(golden)["x"] == fractions.Fraction(1, 3)  # re-hashed, fetched again from the source
    assert not marker.exists()
    assert (tmp_path / "cache" / NAME).read_bytes() != hostile  # pooch replaced the swapped cache entry


class OldScale:
    """A team's class as its old release pickled it."""

    def __init__(self, factor: float):
        self.factor = factor


class NewScale(OldScale):
    """The same class under its new name (the catalogue redirects OldScale here)."""


@pytest.fixture
def renamed_class_catalogue(tmp_path):
    from pytest_ckpt_compat.core.catalogue import Catalogue, register_catalogue, unregister_catalogue

    (tmp_path / "units").mkdir()
    old, new = f"{__name__}.OldScale", f"{__name__}.NewScale"
    register_catalogue(
        Catalogue(name="team", path=tmp_path / "units", version_key="team_version", redirects={old: new})
    )
    yield
    unregister_catalogue("team")


def test_a_golden_whose_safe_load_keeps_redirected_stand_ins_is_loaded_with_trust(renamed_class_catalogue, tmp_path):
    """The safe loader reads it (the catalogue redirects the class), but a stand-in can be neither written
    nor handed to the team's code: the workspace loads the verified copy with trust, and upgrades it."""
    import torch

    root = tmp_path / "golden"
    (root / "1.0.0").mkdir(parents=True)
    torch.save({"pytorch-lightning_version": "1.0.0", "state_dict": {}, "x": [OldScale(3.0)]}, root / NAME)
    digest = hashlib.sha256((root / NAME).read_bytes()).hexdigest()
    (root / "registry.txt").write_text(f"{NAME} sha256:{digest}\n")
    store = GoldenStore(root, tmp_path / "cache", progressbar=False)
    golden = store.get(NAME)
    ws = Workspace(store, tmp_path / "ws")

    loaded = ws.load(golden)
    assert (type(loaded["x"][0]), loaded["x"][0].factor, NAME in ws.trusted) == (NewScale, 3.0, True)
    upgraded, path = ws.upgraded(golden)
    assert type(torch.load(path, weights_only=False)["x"][0]) is NewScale


def test_a_golden_is_read_once_and_each_load_is_a_private_copy(tmp_path, monkeypatch):
    """The checks of a golden load it about five times: one read of the file, then deep copies a caller may change."""
    import torch

    from pytest_ckpt_compat.files import loading

    root = tmp_path / "golden"
    (root / "2.0.0").mkdir(parents=True)
    torch.save({"pytorch-lightning_version": "2.0.0", "state_dict": {"w": torch.zeros(2)}}, root / "2.0.0/a.ckpt")
    digest = hashlib.sha256((root / "2.0.0/a.ckpt").read_bytes()).hexdigest()
    (root / "registry.txt").write_text(f"2.0.0/a.ckpt sha256:{digest}\n")
    ws = Workspace(GoldenStore(root, tmp_path / "cache"), tmp_path / "ws")
    golden = ws.store.goldens[0]
    reads = []
    real = loading.load_checkpoint
    monkeypatch.setattr(loading, "load_checkpoint", lambda *a, **k: reads.append(a) or real(*a, **k))

    first = ws.load(golden)
    first["state_dict"]["w"].add_(1)
    first["pytorch-lightning_version"] = "changed"
    second = ws.load(golden)

    assert len(reads) == 1
    assert second["pytorch-lightning_version"] == "2.0.0"
    assert torch.equal(second["state_dict"]["w"], torch.zeros(2))
