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
