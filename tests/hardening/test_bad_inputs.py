"""Bad inputs, generated here (never downloaded): each fails with its own error class and CLI exit
code, runs no pickled code, and leaves the input byte-identical with nothing written beside it."""

from __future__ import annotations

import builtins
import errno
import random
import resource
import signal
import zipfile
from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat import (
    CheckpointNotFound,
    CheckpointTooNew,
    CorruptCheckpoint,
    InvalidVersion,
    NotALightningCheckpoint,
    UnsafeCheckpoint,
    load_checkpoint,
    upgrade,
)
from pytest_ckpt_compat.core.errors import NotARegularFile
from pytest_ckpt_compat.files import writing
from tests.hardening.hardening_support import lightning_checkpoint, listing, run_cli, run_cli_subprocess, temp_files


class RunsCodeOnLoad:
    """Unpickling this calls ``open(marker, "w")``: the file appearing proves the code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


def zip_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(lightning_checkpoint(0.05), buffer)
    return buffer.getvalue()


def legacy_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(lightning_checkpoint(0.05), buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


def flip(data: bytes, start: int, count: int = 16) -> bytes:
    out = bytearray(data)
    for i in range(start, start + count):
        out[i] ^= 0xFF
    return bytes(out)


def make_bad(kind: str, folder: Path) -> Path:
    """Write the bad input ``kind`` into ``folder``."""
    path = folder / f"{kind}.ckpt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(random.Random(0).randbytes(4096))
    elif kind == "truncated_zip":
        data = zip_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated_zip_tail":  # only the end-of-archive records are missing
        path.write_bytes(zip_bytes()[:-30])
    elif kind == "truncated_legacy":
        data = legacy_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated_legacy_header":
        path.write_bytes(legacy_bytes()[:200])
    elif kind == "flipped_pickle_bytes":  # data.pkl's data starts at byte 64 of a torch archive
        path.write_bytes(flip(zip_bytes(), 64))
    elif kind == "flipped_directory_bytes":
        data = zip_bytes()
        path.write_bytes(flip(data, data.rfind(b"PK\x01\x02"), 8))
    elif kind == "legacy_magic_destroyed":  # a damaged torch file must not pass for another format
        path.write_bytes(flip(legacy_bytes(), 0, 12))
    elif kind == "zip_magic_destroyed":
        path.write_bytes(flip(zip_bytes(), 0, 4))
    elif kind == "deflated_pickle_damaged":  # found by the fuzzer: a compressed data.pkl whose stream is broken
        import io
        import zipfile

        rebuilt = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(zip_bytes())) as src, zipfile.ZipFile(rebuilt, "w") as dst:
            for info in src.infolist():
                dst.writestr(
                    info.filename,
                    src.read(info),
                    zipfile.ZIP_DEFLATED if info.filename.endswith("/data.pkl") else zipfile.ZIP_STORED,
                )
        data = rebuilt.getvalue()
        start = data.index(b"data.pkl") + len("data.pkl")  # the local header's name, then the deflate stream
        path.write_bytes(flip(data, start, 2))
    elif kind == "numpy_array":
        import numpy

        with open(path, "wb") as fh:
            numpy.save(fh, numpy.arange(6.0).reshape(2, 3))
    elif kind == "git_lfs_pointer":  # what a clone without git-lfs holds in place of the checkpoint
        import hashlib

        data = zip_bytes()
        path.write_text(
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\nsize "
            f"{len(data)}\n"
        )
    elif kind == "runs_code_on_load":
        torch.save({"pytorch-lightning_version": "1.5.10", "x": RunsCodeOnLoad(folder / "MARKER")}, path)
    elif kind == "runs_code_on_load_legacy":
        obj = {"pytorch-lightning_version": "1.5.10", "x": RunsCodeOnLoad(folder / "MARKER")}
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    elif kind == "non_dict_payload":
        torch.save([torch.ones(2), 3], path)
    elif kind == "state_dict_without_version":
        torch.save({"weight": torch.ones(2, 2), "bias": torch.zeros(2)}, path)
    elif kind == "unparsable_version":
        torch.save({**lightning_checkpoint(0.01), "pytorch-lightning_version": "1.5.banana!"}, path)
    elif kind == "newer_than_target":
        torch.save(lightning_checkpoint(0.01, version="99.1.0"), path)
    else:  # pragma: no cover
        raise ValueError(kind)
    return path


CASES = {
    "empty": CorruptCheckpoint,
    "random_bytes": CorruptCheckpoint,
    "truncated_zip": CorruptCheckpoint,
    "truncated_zip_tail": CorruptCheckpoint,
    "truncated_legacy": CorruptCheckpoint,
    "truncated_legacy_header": CorruptCheckpoint,
    "flipped_pickle_bytes": CorruptCheckpoint,
    "flipped_directory_bytes": CorruptCheckpoint,
    "legacy_magic_destroyed": CorruptCheckpoint,
    "zip_magic_destroyed": CorruptCheckpoint,
    "deflated_pickle_damaged": CorruptCheckpoint,
    "numpy_array": NotALightningCheckpoint,
    "git_lfs_pointer": NotALightningCheckpoint,
    "runs_code_on_load": UnsafeCheckpoint,
    "runs_code_on_load_legacy": UnsafeCheckpoint,
    "non_dict_payload": NotALightningCheckpoint,
    "state_dict_without_version": NotALightningCheckpoint,
    "unparsable_version": InvalidVersion,
    "newer_than_target": CheckpointTooNew,
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_input_fails_with_its_error_and_changes_nothing(kind, tmp_path):
    path = make_bad(kind, tmp_path)
    before, files = path.read_bytes(), listing(tmp_path)
    error = CASES[kind]

    with pytest.raises(error):
        upgrade(load_checkpoint(path))
    assert run_cli("upgrade", path, "--in-place") == error.exit_code
    assert run_cli("upgrade", path, "-o", tmp_path / "out.ckpt") == error.exit_code
    assert run_cli("inspect", path) == error.exit_code

    assert path.read_bytes() == before
    assert listing(tmp_path) == files  # no output, no backup, no temp file, no MARKER


@pytest.mark.parametrize(
    ("kind", "named"), [("numpy_array", "a NumPy .npy array"), ("git_lfs_pointer", "a Git LFS pointer")]
)
def test_a_file_of_another_format_is_named_not_called_corrupt(kind, named, tmp_path):
    path = make_bad(kind, tmp_path)
    with pytest.raises(NotALightningCheckpoint, match=f"is not a torch file but {named}"):
        load_checkpoint(path)
    with pytest.raises(NotALightningCheckpoint, match=named):
        load_checkpoint(path, trust=True)


def test_the_exit_codes_tell_the_failures_apart():
    codes = {cls.__name__: cls.exit_code for cls in set(CASES.values())}
    assert codes == {
        "CorruptCheckpoint": 5,
        "UnsafeCheckpoint": 6,
        "NotALightningCheckpoint": 3,
        "InvalidVersion": 3,
        "CheckpointTooNew": 4,
    }


@pytest.mark.parametrize("kind", ["runs_code_on_load", "runs_code_on_load_legacy"])
def test_pickled_code_is_named_and_runs_only_with_trust(kind, tmp_path):
    path = make_bad(kind, tmp_path)
    with pytest.raises(UnsafeCheckpoint) as info:
        load_checkpoint(path)
    assert "io.open" in info.value.globals
    assert not (tmp_path / "MARKER").exists()
    load_checkpoint(path, trust=True)  # the positive control: the marker does prove execution
    assert (tmp_path / "MARKER").exists()


def test_pickled_code_is_refused_by_the_real_command(tmp_path):
    path = make_bad("runs_code_on_load", tmp_path)
    before = path.read_bytes()
    result = run_cli_subprocess("upgrade", path, "--in-place")
    assert result.returncode == UnsafeCheckpoint.exit_code, result.stderr
    assert "io.open" in result.stderr and "--trust" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "MARKER").exists()
    assert path.read_bytes() == before and listing(tmp_path) == [path.name]


def test_directory_without_meta_pt(tmp_path):
    folder = tmp_path / "not_sharded"
    folder.mkdir()
    (folder / "__0_0.distcp").write_bytes(b"shard bytes")
    with pytest.raises(CorruptCheckpoint, match="meta.pt"):
        load_checkpoint(folder)
    assert run_cli("inspect", folder) == NotARegularFile.exit_code == 2  # as `upgrade` says of such a folder
    assert run_cli("upgrade", folder, "--in-place") != 0
    assert listing(folder) == ["__0_0.distcp"]


def test_missing_path(tmp_path):
    missing = tmp_path / "missing.ckpt"
    with pytest.raises(CheckpointNotFound) as info:
        load_checkpoint(missing)
    assert isinstance(info.value, FileNotFoundError)  # for callers that expect the builtin
    assert run_cli("upgrade", missing, "--in-place") == CheckpointNotFound.exit_code == 2
    assert run_cli("upgrade", missing, "-o", tmp_path / "out.ckpt") == 2
    assert run_cli("inspect", missing) == 2
    assert listing(tmp_path) == []


@pytest.fixture
def good(tmp_path) -> Path:
    path = tmp_path / "good.ckpt"
    torch.save(lightning_checkpoint(0.5), path)
    return path


def test_unwritable_output_folder(good, tmp_path):
    """A path under a regular file fails for root too (permissions would not)."""
    before = good.read_bytes()
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"")
    assert run_cli("upgrade", good, "-o", blocker / "out.ckpt") != 0
    with pytest.raises(NotADirectoryError):
        writing.save_checkpoint(load_checkpoint(good), blocker / "out.ckpt", source=good)
    assert good.read_bytes() == before
    assert listing(tmp_path) == ["a_file", "good.ckpt"]


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["_write_all", "_copy_range"])
def test_disk_full_during_write_to_output(good, tmp_path, monkeypatch, where):
    before = good.read_bytes()
    monkeypatch.setattr(writing.sink, where, _disk_full)
    assert run_cli("upgrade", good, "-o", tmp_path / "out.ckpt") != 0
    assert good.read_bytes() == before
    assert listing(tmp_path) == ["good.ckpt"]


def test_disk_full_during_in_place_write(good, tmp_path, monkeypatch):
    """The backup (copied in the kernel) succeeds, the checkpoint write fails: the file is untouched."""
    before = good.read_bytes()
    monkeypatch.setattr(writing.sink, "_write_all", _disk_full)
    assert run_cli("upgrade", good, "--in-place") != 0
    assert good.read_bytes() == before
    assert (tmp_path / "good.ckpt.bak").read_bytes() == before
    assert temp_files(tmp_path) == []
    monkeypatch.undo()
    assert run_cli("upgrade", good, "--in-place") == 0  # the same command, once there is space again
    assert load_checkpoint(good)["pytorch-lightning_version"] != "1.5.10"
    assert (tmp_path / "good.ckpt.bak").read_bytes() == before


def test_disk_full_during_backup(good, tmp_path, monkeypatch):
    before = good.read_bytes()
    monkeypatch.setattr(writing.sink, "_copy_range", _disk_full)
    assert run_cli("upgrade", good, "--in-place") != 0
    assert good.read_bytes() == before
    assert listing(tmp_path) == ["good.ckpt"]


def test_file_size_limit_in_a_real_process(good, tmp_path):
    """No monkeypatching: the kernel refuses the write (EFBIG under RLIMIT_FSIZE, as ENOSPC would)."""
    before = good.read_bytes()
    limit = len(before) // 2

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = run_cli_subprocess("upgrade", good, "-o", tmp_path / "out.ckpt", preexec_fn=limit_file_size)
    assert result.returncode != 0
    assert "File too large" in result.stderr, result.stderr
    assert good.read_bytes() == before
    assert listing(tmp_path) == ["good.ckpt"]


def test_corrupt_tensor_bytes_are_carried_not_laundered(good, tmp_path):
    """Flipped bytes inside a tensor record load fine (torch does not check CRCs on mmap); the
    carry-over copies record and stored CRC together, so the damage stays detectable afterwards."""
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo("good/data/0")
    raw = good.read_bytes()
    extra_len = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    data_start = info.header_offset + 30 + len(info.filename) + extra_len
    good.write_bytes(flip(raw, data_start + 100, 4))
    with zipfile.ZipFile(good) as archive:
        assert archive.testzip() == "good/data/0"
    assert run_cli("upgrade", good, "-o", tmp_path / "out.ckpt") == 0
    with zipfile.ZipFile(tmp_path / "out.ckpt") as archive:
        bad = archive.testzip()
    assert bad is not None and bad.endswith("/data/0")
