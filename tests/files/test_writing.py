"""pytest_ckpt_compat.files.writing on real files: atomic replace, tensor-record carry-over, backups, stale temp files.

The carry-over output is compared with ``torch.save``'s output for the same object, byte for byte
(only the 40-digit serialization id, which torch merely logs, may differ), so any drift from torch's
archive layout fails here rather than in a user's ``torch.load``.
"""

from __future__ import annotations

import collections
import errno
import io
import os
import struct
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat.files import writing
from pytest_ckpt_compat.files.writing import TEMP_MARKER, backup, clean_stale_temp_files, save_checkpoint
from pytest_ckpt_compat.files.writing import sink as _sink  # noqa: F401 - loaded for writing.<room>

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="carry-over relies on /proc (Linux)")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def make_checkpoint() -> dict:
    """A small Lightning-like checkpoint that exercises every storage-sharing corner."""
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(6, 4, generator=gen)
    sd = collections.OrderedDict()
    sd["layer.weight"] = weight
    sd["layer.weight_t"] = weight.t()  # non-contiguous view, same storage
    sd["layer.row"] = weight[2]  # view with storage offset
    sd["layer.bias"] = torch.randn(4, generator=gen)
    sd["half"] = torch.randn(3, generator=gen).half()
    sd["bf16"] = torch.randn(5, generator=gen).to(torch.bfloat16)
    sd["int8"] = torch.randint(-128, 127, (7,), dtype=torch.int8, generator=gen)
    sd["uint8"] = torch.randint(0, 255, (3, 3), dtype=torch.uint8, generator=gen)
    sd["mask"] = torch.tensor([True, False, True])
    sd["steps"] = torch.tensor(12345678901, dtype=torch.int64)
    sd["double"] = torch.randn(2, 2, generator=gen, dtype=torch.float64)
    sd["complex"] = torch.randn(2, dtype=torch.complex64, generator=gen)
    sd["empty"] = torch.zeros(0)
    sd["empty2d"] = torch.zeros(0, 3, dtype=torch.int32)
    sd["strided"] = torch.arange(24.0).reshape(4, 6)[:, ::2]  # non-contiguous slice
    sd._metadata = collections.OrderedDict({"": {"version": 1}, "layer": {"version": 2}})
    return {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "1.5.10",
        "state_dict": sd,
        "optimizer_states": [
            {
                "state": {
                    0: {
                        "step": 120,
                        "exp_avg": torch.randn(6, 4, generator=gen),
                        "exp_avg_sq": torch.rand(6, 4, generator=gen),
                    }
                },
                "param_groups": [{"lr": 0.001, "params": [0]}],
            }
        ],
        "lr_schedulers": [{"last_epoch": 3, "_step_count": 4}],
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss'}": {
                "best_model_score": torch.tensor(0.25),
                "kth_value": torch.tensor(float("inf")),
            }
        },
        "hyper_parameters": {"lr": 0.001, "hidden": 4},
    }


def migrate(ckpt: dict) -> dict:
    """What a migration might do: edit dicts, add a tensor, drop one, rename a key."""
    ckpt["pytorch-lightning_version"] = "2.6.6"
    ckpt["legacy_pytorch-lightning_version"] = "1.5.10"
    ckpt["loops"] = {"fit_loop": {"epoch_progress": {"current": {"completed": 3}}}}
    ckpt["state_dict"]["added"] = torch.arange(5, dtype=torch.float32) * 0.5
    del ckpt["state_dict"]["half"]
    ckpt["state_dict"]["renamed_bias"] = ckpt["state_dict"].pop("layer.bias")
    ckpt["callbacks"]["ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}"] = ckpt["callbacks"].pop(
        "ModelCheckpoint{'monitor': 'val_loss'}"
    )
    return ckpt


def torch_save_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def mask_serialization_id(data: bytes) -> bytes:
    """Zero the serialization id record's bytes and its two CRC copies."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        (info,) = [i for i in infos if i.filename.endswith("/.data/serialization_id")]
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    out[start : start + info.file_size] = bytes(info.file_size)
    out[start + info.file_size + 4 : start + info.file_size + 8] = bytes(4)  # data descriptor CRC
    central = data.rfind(b"PK\x01\x02", 0, data.rfind(info.filename.encode()))
    out[central + 16 : central + 20] = bytes(4)  # central directory CRC
    return bytes(out)


def assert_same_object(a, b, path="root"):
    """Exact structural equality, including dtype, shape, stride, offset and storage sharing."""
    assert type(a) is type(b), path
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert a.stride() == b.stride() and a.storage_offset() == b.storage_offset(), path
        assert torch.equal(a, b) or (a.numel() == b.numel() and bool(torch.isnan(a).eq(torch.isnan(b)).all())), path
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), path
        assert getattr(a, "_metadata", None) == getattr(b, "_metadata", None), path
        for key in a:
            assert_same_object(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_object(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def storage_groups(obj) -> list[list[str]]:
    """Which tensors share a storage, as sorted groups of tensor paths."""
    groups: dict[int, list[str]] = {}

    def walk(x, path):
        if isinstance(x, torch.Tensor):
            groups.setdefault(x.untyped_storage().data_ptr() if x.untyped_storage().nbytes() else id(x), []).append(
                path
            )
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}/{k}")
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, f"{path}/{i}")

    walk(obj, "")
    return sorted(sorted(g) for g in groups.values())


def temp_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMP_MARKER in p.name)


def load_mmap(path) -> dict:
    return torch.load(path, mmap=True, weights_only=True, map_location="cpu")


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "model.ckpt"
    torch.save(make_checkpoint(), path)
    return path


# --------------------------------------------------------------------------------------------
# carry-over
# --------------------------------------------------------------------------------------------


def test_carry_over_matches_torch_save_byte_for_byte(source, tmp_path):
    ckpt = migrate(load_mmap(source))
    report = writing._save_checkpoint(ckpt, tmp_path / "out.ckpt", source=source)
    # 17 storages in the source, "half" dropped: 14 copied; "added" and the two empty ones written fresh.
    assert report == writing._WriteReport("carry-over", 14, 3, "")
    written = (tmp_path / "out.ckpt").read_bytes()
    expected = torch_save_bytes(ckpt)
    assert len(written) == len(expected)
    assert mask_serialization_id(written) == mask_serialization_id(expected)
    with zipfile.ZipFile(tmp_path / "out.ckpt") as archive:
        assert archive.testzip() is None  # every CRC (copied or computed) is right
        serial = archive.read("archive/.data/serialization_id")
    assert len(serial) == 40 and serial.isdigit()


@pytest.mark.parametrize("reload_mmap", [False, True])
def test_carry_over_loads_like_the_plain_path(source, tmp_path, reload_mmap):
    ckpt = migrate(load_mmap(source))
    save_checkpoint(ckpt, tmp_path / "fast.ckpt", source=source)
    save_checkpoint(ckpt, tmp_path / "plain.ckpt")
    load = load_mmap if reload_mmap else (lambda p: torch.load(p, weights_only=True))
    fast, plain = load(tmp_path / "fast.ckpt"), load(tmp_path / "plain.ckpt")
    assert_same_object(fast, plain)
    assert_same_object(fast, ckpt)
    assert storage_groups(fast) == storage_groups(plain)
    sd = fast["state_dict"]
    assert "half" not in sd and torch.equal(sd["added"], torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0]))
    assert sd["layer.weight_t"].untyped_storage().data_ptr() == sd["layer.weight"].untyped_storage().data_ptr()
    assert sd["layer.row"].storage_offset() == 8
    assert sd["bf16"].dtype == torch.bfloat16 and sd["int8"].dtype == torch.int8 and sd["mask"].dtype == torch.bool
    assert sd["empty2d"].shape == (0, 3) and sd["empty2d"].dtype == torch.int32
    assert sd._metadata == {"": {"version": 1}, "layer": {"version": 2}}
    assert fast["optimizer_states"][0]["state"][0]["step"] == 120


def test_torch_offset_arithmetic_loads_the_output(source, tmp_path):
    """torch can compute storage offsets from miniz's layout instead of reading headers: ours must match."""
    ckpt = migrate(load_mmap(source))
    save_checkpoint(ckpt, tmp_path / "out.ckpt", source=source)
    from torch.utils.serialization import config

    old = config.load.calculate_storage_offsets
    config.load.calculate_storage_offsets = True
    try:
        again = load_mmap(tmp_path / "out.ckpt")
    finally:
        config.load.calculate_storage_offsets = old
    assert_same_object(again, ckpt)


def test_mmap_storages_sit_at_their_record_offsets(source):
    """The premise of carry-over, checked on this torch: storage address - mapping start = record offset."""
    ckpt = load_mmap(source)
    segments = writing.carryover._mapped_segments(os.stat(source), os.path.realpath(source))
    assert len(segments) == 1 and segments[0][1] - segments[0][0] >= source.stat().st_size
    reader = torch._C.PyTorchFileReader(str(source))
    weight = ckpt["state_dict"]["layer.weight"].untyped_storage()
    offsets = {reader.get_record_offset(name) for name in reader.get_all_records() if name.startswith("data/")}
    assert writing.carryover._file_offset(segments, weight.data_ptr(), weight.nbytes()) in offsets


def test_upgrade_in_place_carries_over(source):
    before = torch.load(source, weights_only=True)
    ckpt = migrate(load_mmap(source))
    report = writing._save_checkpoint(ckpt, source, source=source)
    assert report.mode == "carry-over"
    after = torch.load(source, weights_only=True)
    assert after["pytorch-lightning_version"] == "2.6.6"
    assert torch.equal(after["state_dict"]["layer.weight"], before["state_dict"]["layer.weight"])
    assert temp_leftovers(source.parent) == []


def test_tensor_edited_in_place_is_written_from_memory(source, tmp_path):
    """A migration that edits a mapped tensor in place dirties its pages: that record must not be copied."""
    ckpt = migrate(load_mmap(source))
    ckpt["state_dict"]["layer.bias" if "layer.bias" in ckpt["state_dict"] else "renamed_bias"].mul_(2)
    report = writing._save_checkpoint(ckpt, tmp_path / "out.ckpt", source=source)
    assert report.mode == "carry-over"
    assert report.new_records >= 4  # the edited record (and any record sharing its page) plus the 3 new ones
    assert_same_object(torch.load(tmp_path / "out.ckpt", weights_only=True), ckpt)
    original = torch.load(source, weights_only=True)["state_dict"]["layer.bias"]
    assert torch.equal(torch.load(tmp_path / "out.ckpt", weights_only=True)["state_dict"]["renamed_bias"], original * 2)


def test_only_the_records_on_written_pages_are_rewritten(tmp_path):
    """Records spanning several pages: an in-place edit in the middle of one dirties that one only."""
    path = tmp_path / "big.ckpt"
    torch.save({name: torch.full((4 * 4096,), float(i)) for i, name in enumerate("abc")}, path)
    ckpt = load_mmap(path)
    ckpt["b"][8192] = -1.0
    report = writing._save_checkpoint(ckpt, tmp_path / "out.ckpt", source=path)
    assert report == writing._WriteReport("carry-over", 2, 1, "")
    out = torch.load(tmp_path / "out.ckpt", weights_only=True)
    assert out["b"][8192].item() == -1.0 and out["b"][8191].item() == 1.0 and float(out["b"].sum()) == 4 * 4096 - 2
    assert torch.equal(out["c"], torch.full((4 * 4096,), 2.0))


def test_replaced_tensor_is_new_and_removed_tensor_is_gone(source, tmp_path):
    ckpt = load_mmap(source)
    ckpt["state_dict"]["layer.weight"] = torch.ones(6, 4)  # views still share the old storage
    del ckpt["optimizer_states"]
    report = writing._save_checkpoint(ckpt, tmp_path / "out.ckpt", source=source)
    assert report.mode == "carry-over"
    out = torch.load(tmp_path / "out.ckpt", weights_only=True)
    assert "optimizer_states" not in out
    assert torch.equal(out["state_dict"]["layer.weight"], torch.ones(6, 4))
    assert not torch.equal(out["state_dict"]["layer.weight_t"], torch.ones(4, 6))
    assert mask_serialization_id((tmp_path / "out.ckpt").read_bytes()) == mask_serialization_id(torch_save_bytes(ckpt))


# --------------------------------------------------------------------------------------------
# plain path
# --------------------------------------------------------------------------------------------


def test_in_memory_checkpoint_takes_the_plain_path(tmp_path):
    ckpt = migrate(make_checkpoint())
    report = writing._save_checkpoint(ckpt, tmp_path / "out.ckpt")
    assert report == writing._WriteReport("plain", 0, 0, "no source given")
    assert (tmp_path / "out.ckpt").read_bytes()[:4] == b"PK\x03\x04"
    assert_same_object(torch.load(tmp_path / "out.ckpt", weights_only=True), ckpt)


def test_legacy_source_takes_the_plain_path_and_becomes_zip(tmp_path):
    legacy = tmp_path / "old.ckpt"
    torch.save(make_checkpoint(), legacy, _use_new_zipfile_serialization=False)
    assert legacy.read_bytes()[:4] != b"PK\x03\x04"
    ckpt = migrate(torch.load(legacy, weights_only=True))
    report = writing._save_checkpoint(ckpt, tmp_path / "new.ckpt", source=legacy)
    assert report.mode == "plain" and "legacy" in report.reason
    assert_same_object(load_mmap(tmp_path / "new.ckpt"), ckpt)


def test_checkpoint_loaded_without_mmap_takes_the_plain_path(source, tmp_path):
    ckpt = torch.load(source, weights_only=True)
    report = writing._save_checkpoint(ckpt, tmp_path / "out.ckpt", source=source)
    assert report.mode == "plain" and "memory-mapped" in report.reason
    assert_same_object(torch.load(tmp_path / "out.ckpt", weights_only=True), ckpt)


def test_source_that_is_not_where_the_tensors_came_from(source, tmp_path):
    copy = tmp_path / "copy.ckpt"
    copy.write_bytes(source.read_bytes())
    ckpt = load_mmap(source)
    report = writing._save_checkpoint(ckpt, tmp_path / "out.ckpt", source=copy)
    assert report.mode == "plain"
    assert_same_object(torch.load(tmp_path / "out.ckpt", weights_only=True), ckpt)


# --------------------------------------------------------------------------------------------
# atomicity
# --------------------------------------------------------------------------------------------


def _failing_writer(monkeypatch, after_bytes: int, exc: BaseException):
    real = writing.sink._write_all
    budget = {"left": after_bytes}

    def write_all(fd, data):
        n = memoryview(data).nbytes
        if n > budget["left"]:
            real(fd, memoryview(data).cast("B")[: budget["left"]])
            raise exc
        budget["left"] -= n
        real(fd, data)

    monkeypatch.setattr(writing.sink, "_write_all", write_all)


@pytest.mark.parametrize("with_source", [True, False], ids=["carry-over", "plain"])
@pytest.mark.parametrize(
    "exc", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()], ids=["ENOSPC", "KeyboardInterrupt"]
)
def test_failure_leaves_destination_untouched_and_no_temp_file(source, tmp_path, monkeypatch, with_source, exc):
    dest = tmp_path / "out.ckpt"
    dest.write_bytes(b"previous contents")
    ckpt = migrate(load_mmap(source))
    _failing_writer(monkeypatch, 700, exc)
    with pytest.raises(type(exc)):
        save_checkpoint(ckpt, dest, source=source if with_source else None)
    assert dest.read_bytes() == b"previous contents"
    assert temp_leftovers(tmp_path) == []


def test_failure_while_copying_records(source, tmp_path, monkeypatch):
    before = source.read_bytes()
    ckpt = migrate(load_mmap(source))

    def disk_full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writing.sink, "_copy_range", disk_full)
    with pytest.raises(OSError) as info:
        save_checkpoint(ckpt, source, source=source)
    assert info.value.errno == errno.ENOSPC
    assert source.read_bytes() == before
    assert temp_leftovers(tmp_path) == []


def test_missing_output_folder_raises_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        save_checkpoint({"a": 1}, tmp_path / "nope" / "out.ckpt")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NotADirectoryError):
        save_checkpoint({"a": 1}, blocker / "out.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_replace_keeps_permission_bits(tmp_path):
    dest = tmp_path / "out.ckpt"
    dest.write_bytes(b"old")
    os.chmod(dest, 0o640)
    save_checkpoint({"a": torch.ones(2)}, dest)
    assert (dest.stat().st_mode & 0o777) == 0o640


def test_new_file_gets_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        save_checkpoint({"a": 1}, tmp_path / "out.ckpt")
    finally:
        os.umask(old)
    assert ((tmp_path / "out.ckpt").stat().st_mode & 0o777) == 0o644


def test_symlinked_destination_is_written_through(tmp_path):
    target = tmp_path / "epoch=3.ckpt"
    target.write_bytes(b"old")
    link = tmp_path / "last.ckpt"
    link.symlink_to(target.name)
    save_checkpoint({"a": 1}, link)
    assert link.is_symlink()
    assert torch.load(target, weights_only=True) == {"a": 1}


# --------------------------------------------------------------------------------------------
# stale temp files
# --------------------------------------------------------------------------------------------


def test_stale_temp_files_are_removed_and_live_ones_kept(tmp_path):
    stale = tmp_path / f".model.ckpt{TEMP_MARKER}0123456789abcdef"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / f".other.ckpt{TEMP_MARKER}fedcba9876543210"
    other.write_bytes(b"half another")
    live = tmp_path / f".model.ckpt{TEMP_MARKER}00000000000000aa"
    live.write_bytes(b"being written")
    unrelated = tmp_path / ".model.ckpt.swp"
    unrelated.write_bytes(b"editor")
    import fcntl

    with open(live, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # what a live writer holds until its rename
        assert clean_stale_temp_files(tmp_path, name="model.ckpt") == [stale]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, live.name, unrelated.name])
        assert clean_stale_temp_files(tmp_path) == [other]
    assert clean_stale_temp_files(tmp_path) == [live]
    assert [p.name for p in tmp_path.iterdir()] == [unrelated.name]


def test_save_sweeps_its_own_stale_temp_files(tmp_path):
    stale = tmp_path / f".out.ckpt{TEMP_MARKER}0123456789abcdef"
    stale.write_bytes(b"left by a killed run")
    save_checkpoint({"a": 1}, tmp_path / "out.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ckpt"]


def test_clean_stale_temp_files_on_missing_folder(tmp_path):
    assert clean_stale_temp_files(tmp_path / "missing") == []


# --------------------------------------------------------------------------------------------
# backup
# --------------------------------------------------------------------------------------------


def test_backup_appends_suffix_and_keeps_bytes_mode_and_mtime(source):
    os.chmod(source, 0o600)
    os.utime(source, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    bak = backup(source)
    assert bak == source.parent / "model.ckpt.bak"
    assert bak.read_bytes() == source.read_bytes()
    assert (bak.stat().st_mode & 0o777) == 0o600
    assert bak.stat().st_mtime_ns == 1_600_000_000_123_456_789
    assert temp_leftovers(source.parent) == []


def test_backup_refuses_to_overwrite_a_different_backup_unless_told(source):
    bak = source.parent / "model.ckpt.bak"
    bak.write_bytes(b"the first backup")
    with pytest.raises(FileExistsError):
        backup(source)
    assert bak.read_bytes() == b"the first backup"
    bak.write_bytes(source.read_bytes()[:-1] + b"?")  # same size, different bytes
    with pytest.raises(FileExistsError):
        backup(source)
    assert backup(source, overwrite=True) == bak
    assert bak.read_bytes() == source.read_bytes()
    assert temp_leftovers(source.parent) == []


def test_backup_that_already_holds_the_same_bytes_is_kept(source):
    """A run killed after its backup is simply run again: the identical backup is not an obstacle."""
    first = backup(source)
    os.utime(first, ns=(1, 1))
    assert backup(source) == first
    assert first.stat().st_mtime_ns == 1  # kept, not rewritten
    assert first.read_bytes() == source.read_bytes()


def test_backup_of_a_name_without_suffix(tmp_path):
    path = tmp_path / "weights"
    path.write_bytes(b"data")
    assert backup(path).name == "weights.bak"


def test_backup_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        backup(tmp_path / "missing.ckpt")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# one in-place update at a time
# --------------------------------------------------------------------------------------------


def test_exclusive_serialises_updates_and_follows_the_replaced_file(source):
    import fcntl
    import threading

    events = []
    holder_inside, waiter_inside = threading.Event(), threading.Event()

    def waiter():
        holder_inside.wait()
        with writing.exclusive(source) as path:
            events.append(("waiter", os.stat(path).st_ino))
            waiter_inside.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    with writing.exclusive(source):
        old_inode = os.stat(source).st_ino
        holder_inside.set()
        with open(source, "rb") as other:  # any other lock attempt is refused while held
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        time.sleep(0.2)
        assert not waiter_inside.is_set()
        save_checkpoint({"pytorch-lightning_version": "2.6.6"}, source)  # replaces the inode
        new_inode = os.stat(source).st_ino
        events.append(("holder", new_inode))
    thread.join(10)
    assert new_inode != old_inode
    assert events == [("holder", new_inode), ("waiter", new_inode)]  # the waiter locked the new file


def test_exclusive_on_a_missing_file_leaves_the_error_to_the_load(tmp_path):
    with writing.exclusive(tmp_path / "missing.ckpt") as path:
        assert path == tmp_path / "missing.ckpt"
