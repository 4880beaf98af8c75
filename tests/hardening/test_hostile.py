"""Hostile input, special files, signals and races (issue 9): each class of failure ends in a named
error with its documented exit code, never a hang, a traceback, or a replaced or lost file."""

from __future__ import annotations

import os
import pickle
import signal
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat import commands, load_checkpoint, save_checkpoint
from pytest_ckpt_compat.core import errors
from pytest_ckpt_compat.files.loading import legacy_class_ref
from tests.hardening.hardening_support import (
    fork_cli_held,
    lightning_checkpoint,
    listing,
    run_cli,
    run_cli_bounded,
    temp_files,
    wait_exit_code,
    zip_with_pickle,
)

VERSION = "pytorch-lightning_version"


def _str(s: str) -> bytes:  # BINUNICODE
    data = s.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def _lightning_dict_pickle(extra: bytes = b"") -> bytes:
    """Protocol-2 opcodes of ``{"pytorch-lightning_version": "1.5.10", ...extra}``; ``extra`` pushes key, value
    pairs."""
    return b"\x80\x02}" + _str(VERSION) + _str("1.5.10") + b"s" + extra + b"."


@pytest.fixture
def good(tmp_path) -> Path:
    path = tmp_path / "good.ckpt"
    torch.save(lightning_checkpoint(0.05), path)
    return path


def upgraded(path: Path) -> bool:
    return load_checkpoint(path)[VERSION] != "1.5.10"


# --------------------------------------------------------------------------------------------
# Special files: only regular files are read or replaced
# --------------------------------------------------------------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("mode", [["--in-place"], ["-o", "OUT"], ["--dry-run"]], ids=["in-place", "output", "dry-run"])
def test_fifo_as_input_fails_at_once(tmp_path, mode):
    fifo = _fifo(tmp_path / "pipe.ckpt")
    argv = [str(tmp_path / "out.ckpt") if a == "OUT" else a for a in mode]
    assert run_cli_bounded("upgrade", fifo, *argv, timeout=60) == errors.NotARegularFile.exit_code == 2
    assert run_cli_bounded("inspect", fifo, timeout=60) == 2
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and listing(tmp_path) == ["pipe.ckpt"]


def test_fifo_inside_a_folder_is_reported_and_the_others_upgraded(tmp_path, good, capsys):
    _fifo(tmp_path / "a_pipe.ckpt")
    os.symlink(tmp_path / "a_pipe.ckpt", tmp_path / "link_to_pipe.ckpt")
    assert run_cli_bounded("upgrade", tmp_path, "--in-place", timeout=120) == 2
    assert upgraded(good)
    assert stat.S_ISFIFO(os.stat(tmp_path / "a_pipe.ckpt").st_mode)
    assert listing(tmp_path) == ["a_pipe.ckpt", "good.ckpt", "good.ckpt.bak", "link_to_pipe.ckpt"]


def test_fifo_as_existing_backup_is_refused_not_read(tmp_path, good):
    before = good.read_bytes()
    _fifo(tmp_path / "good.ckpt.bak")
    assert run_cli_bounded("upgrade", good, "--in-place", timeout=60) == 2
    assert good.read_bytes() == before and stat.S_ISFIFO(os.lstat(tmp_path / "good.ckpt.bak").st_mode)
    assert temp_files(tmp_path) == []


def test_output_onto_a_fifo_is_an_error_and_the_fifo_stays(tmp_path, good, capsys):
    fifo = _fifo(tmp_path / "out.ckpt")
    assert run_cli("upgrade", good, "-o", fifo) == 2
    assert "is a FIFO" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and temp_files(tmp_path) == []


def test_output_onto_a_character_device_is_an_error_and_the_device_stays(tmp_path, good, capsys):
    """A node made here with the numbers of /dev/null (never the real one): it must not be replaced."""
    dev = tmp_path / "null"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD")
    assert run_cli("upgrade", good, "-o", dev) == 2
    assert "character device" in capsys.readouterr().err
    st = os.lstat(dev)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    with pytest.raises(errors.NotARegularFile):
        save_checkpoint(load_checkpoint(good), dev, source=good)
    assert stat.S_ISCHR(os.lstat(dev).st_mode) and temp_files(tmp_path) == []


# --------------------------------------------------------------------------------------------
# One bad file does not stop the run: every failure is named and has its exit code
# --------------------------------------------------------------------------------------------

BAD_PICKLES = {  # data.pkl bytes -> the error they must end in
    "index_error": (b"\x80\x02.", errors.CorruptCheckpoint),  # STOP on an empty stack
    "struct_error": (b"\x80\x02J\x01", errors.CorruptCheckpoint),  # BININT cut short
    "key_error": (b"\x80\x02h\x05.", errors.CorruptCheckpoint),  # BINGET of an empty memo
    "unknown_codec": (b"\x80\x02c_codecs\nencode\n" + _str("a") + _str("bogus") + b"\x86R.", errors.CorruptCheckpoint),
    "huge_bytearray": (
        b"\x80\x02cbuiltins\nbytearray\n\x8a\x08" + (1 << 60).to_bytes(8, "little") + b"\x85R.",
        errors.CorruptCheckpoint,
    ),
    "memo_bomb": (
        b"\x80\x02K\x01r" + (1 << 30).to_bytes(4, "little") + b".",
        errors.CorruptCheckpoint,
    ),  # found by the fuzzer
    "bytearray_2_gib": (b"\x80\x02cbuiltins\nbytearray\n\x8a\x05\x00\x00\x00\x80\x00\x85R.", errors.CorruptCheckpoint),
    "os_global": (b"\x80\x02cos\nsystem\n" + _str("true") + b"\x85R.", errors.UnsafeCheckpoint),
    "posix_global": (b"\x80\x02cposix\nsystem\n" + _str("true") + b"\x85R.", errors.UnsafeCheckpoint),
    "inst_opcode": (b"(" + _str("true") + b"ios\nsystem\n.", errors.UnsafeCheckpoint),
    "protocol4_stack_global": (pickle.dumps(os.system, protocol=4), errors.UnsafeCheckpoint),
    "ledger_a_string": (_lightning_dict_pickle(_str("ckpt_compat") + _str("oops") + b"s"), errors.InvalidLedger),
    "ledger_applied_a_list": (
        _lightning_dict_pickle(_str("ckpt_compat") + b"}" + _str("applied") + b"]K\x01as" + b"s"),
        errors.InvalidLedger,
    ),
    "version_none": (b"\x80\x02}" + _str(VERSION) + b"Ns.", errors.InvalidVersion),
    "version_an_int": (b"\x80\x02}" + _str(VERSION) + b"K\x05s.", errors.InvalidVersion),
}


@pytest.mark.parametrize("kind", sorted(BAD_PICKLES))
def test_bad_file_is_named_and_the_run_goes_on(kind, tmp_path, capsys):
    folder = tmp_path / "runs"
    folder.mkdir()
    pkl, error = BAD_PICKLES[kind]
    bad = zip_with_pickle(folder / f"{kind}.ckpt", pkl)
    torch.save(lightning_checkpoint(0.05), folder / "zz_good.ckpt")
    before = bad.read_bytes()
    assert run_cli("upgrade", folder, "--in-place") == error.exit_code
    err = capsys.readouterr().err
    assert f"FAILED {bad}: {error.__name__}" in err and "1 of 2 checkpoint(s) failed" in err
    assert bad.read_bytes() == before and upgraded(folder / "zz_good.ckpt")
    assert listing(folder) == sorted([bad.name, "zz_good.ckpt", "zz_good.ckpt.bak"])
    with pytest.raises(error):
        from pytest_ckpt_compat import upgrade

        upgrade(load_checkpoint(bad))


def test_unsafe_names_are_listed_and_nothing_runs(tmp_path):
    for kind in ("os_global", "posix_global", "inst_opcode", "protocol4_stack_global"):
        path = zip_with_pickle(tmp_path / f"{kind}.ckpt", BAD_PICKLES[kind][0])
        with pytest.raises(errors.UnsafeCheckpoint) as info:
            load_checkpoint(path)
        assert info.value.globals in (["os.system"], ["posix.system"]), kind


def test_text_file_starting_with_c_is_not_a_checkpoint_not_unsafe(tmp_path):
    path = tmp_path / "notes.ckpt"
    path.write_text("cat and mouse\nnot a pickle\n")
    with pytest.raises(errors.CorruptCheckpoint, match="no torch magic number"):
        load_checkpoint(path)
    assert run_cli("upgrade", path, "--in-place") == 5 and listing(tmp_path) == ["notes.ckpt"]


@pytest.mark.parametrize("protocol", [4, 5])
@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_protocol_4_and_5_checkpoints_load_safely_and_upgrade(tmp_path, protocol, zipped):
    ckpt = lightning_checkpoint(0.05)
    path = tmp_path / "p.ckpt"
    torch.save(ckpt, path, pickle_protocol=protocol, _use_new_zipfile_serialization=zipped)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["state_dict"]["layer0.weight"], ckpt["state_dict"]["layer0.weight"])
    assert run_cli("upgrade", path, "--in-place") == 0 and upgraded(path)


def test_protocol_4_pickle_that_runs_code_is_refused(tmp_path):
    class Marker:
        def __reduce__(self):
            return (open, (str(tmp_path / "MARKER"), "w"))

    path = tmp_path / "p4.ckpt"
    torch.save({VERSION: "1.5.10", "x": Marker()}, path, pickle_protocol=4)
    with pytest.raises(errors.UnsafeCheckpoint) as info:
        load_checkpoint(path)
    assert info.value.globals == ["io.open"]
    assert not (tmp_path / "MARKER").exists()


def test_non_utf8_file_name(tmp_path, capsysbinary):
    name = os.fsdecode(b"caf\xe9-\xff.ckpt")
    path = tmp_path / name
    torch.save(lightning_checkpoint(0.05), path)
    assert run_cli("upgrade", path, "--in-place") == 0
    assert upgraded(path) and (tmp_path / (name + ".bak")).exists()
    assert b"caf\\xe9-\\xff.ckpt: 1.5.10 -> " in capsysbinary.readouterr().out  # the bytes, escaped


def test_local_version_label_is_not_newer(tmp_path, capsys):
    path = tmp_path / "local.ckpt"
    torch.save(lightning_checkpoint(0.05, version="2.6.6+local"), path)
    assert run_cli("upgrade", path, "--in-place", "--target", "2.6.6") == 0
    assert "already at 2.6.6+local" in capsys.readouterr().out


def test_too_long_names_fail_named_and_the_run_goes_on(tmp_path, good, capsys):
    too_long = tmp_path / ("x" * 300 + ".ckpt")
    assert run_cli("upgrade", too_long, good, "--in-place") == errors.CheckpointIOError.exit_code == 1
    assert "FAILED" in capsys.readouterr().err and upgraded(good)
    torch.save(lightning_checkpoint(0.05), good)
    assert run_cli("upgrade", good, "-o", too_long) == 1
    assert "CheckpointIOError" in capsys.readouterr().err and temp_files(tmp_path) == []


def test_deeply_nested_value_fails_at_write_named(tmp_path, capsys):
    depth = 5000
    nested = _str("deep") + b"]" * depth + b"a" * (depth - 1) + b"s"
    path = zip_with_pickle(tmp_path / "deep.ckpt", _lightning_dict_pickle(nested))
    before = path.read_bytes()
    assert run_cli("upgrade", path, "--in-place") == errors.CheckpointWriteError.exit_code
    assert "CheckpointWriteError" in capsys.readouterr().err
    assert path.read_bytes() == before and temp_files(tmp_path) == []


def test_unpicklable_value_fails_at_write_named(tmp_path, capsys):
    """A trusted file may load objects that cannot be pickled again (here a lock)."""
    path = zip_with_pickle(
        tmp_path / "lock.ckpt", _lightning_dict_pickle(_str("lock") + b"c_thread\nallocate_lock\n)Rs")
    )
    assert run_cli("upgrade", path, "-o", tmp_path / "out.ckpt", "--trust") == 1
    err = capsys.readouterr().err
    assert "CheckpointWriteError" in err and "cannot pickle '_thread.lock' object" in err
    assert listing(tmp_path) == ["lock.ckpt"]


def test_unforeseen_exception_is_named_and_the_run_goes_on(tmp_path, good, monkeypatch, capsys):
    other = tmp_path / "other.ckpt"
    torch.save(lightning_checkpoint(0.05), other)
    real = commands.upgrade_with_result

    def flaky(checkpoint, *args, **kwargs):
        if checkpoint["epoch"] == 2 and not flaky.failed:
            flaky.failed = True
            raise ZeroDivisionError("boom")
        return real(checkpoint, *args, **kwargs)

    flaky.failed = False
    monkeypatch.setattr(commands, "upgrade_with_result", flaky)
    assert run_cli("upgrade", good, other, "--in-place") == errors.UnexpectedError.exit_code
    err = capsys.readouterr().err
    assert "UnexpectedError: unexpected ZeroDivisionError: boom" in err and "Traceback" not in err
    assert upgraded(other) and not upgraded(good)


# --------------------------------------------------------------------------------------------
# Nothing named in a file is imported
# --------------------------------------------------------------------------------------------


def _plant(folder: Path) -> Path:
    """``lightning/`` and ``pytorch_lightning/`` packages whose import writes MARKER."""
    marker = folder / "MARKER"
    for package in ("lightning", "pytorch_lightning"):
        (folder / package).mkdir()
        (folder / package / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write({package!r})\n")
    return marker


def test_class_stored_as_a_value_is_refused_and_nothing_is_imported(tmp_path):
    """The file pickles an allow-listed callback class by name as a hyperparameter value."""
    import io

    ref = legacy_class_ref("pytorch_lightning.callbacks.early_stopping", "EarlyStopping")
    work = tmp_path / "work"
    work.mkdir()
    marker = _plant(work)
    path = work / "cls.ckpt"
    buffer = io.BytesIO()
    torch.save({**lightning_checkpoint(0.05), "hyper_parameters": {"callback_cls": "PLACEHOLDER"}}, buffer)
    raw = buffer.getvalue()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data.pkl"):
                data = data.replace(
                    b"X\x0b\x00\x00\x00PLACEHOLDER", b"cpytorch_lightning.callbacks.early_stopping\nEarlyStopping\n"
                )
            out.writestr(info, data)
    assert isinstance(load_checkpoint(path)["hyper_parameters"]["callback_cls"], type(ref))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pytest_ckpt_compat.cli", "upgrade", "cls.ckpt", "-o", "out.ckpt"]
    result = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == errors.NotPlainData.exit_code, result.stderr
    assert "NotPlainData" in result.stderr and "plain data only" in result.stderr
    assert not marker.exists(), marker.read_text()
    assert not (work / "out.ckpt").exists()
    with pytest.raises(errors.NotPlainData):
        save_checkpoint(load_checkpoint(path), work / "out.ckpt", source=path)
    # positive control: the planted package does write the marker once something imports it
    subprocess.run([sys.executable, "-c", "import pytorch_lightning"], cwd=work, check=True, timeout=60)
    assert marker.read_text() == "pytorch_lightning"


# --------------------------------------------------------------------------------------------
# Memory bombs
# --------------------------------------------------------------------------------------------

_PEAK = """
import resource, sys
from pytest_ckpt_compat import cli
code = cli.main(sys.argv[1:])
print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
sys.exit(code)
"""


def _peak_rss(*argv) -> tuple[int, int, str]:
    result = subprocess.run(
        [sys.executable, "-c", _PEAK, *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    peak = int(result.stdout.rsplit("PEAK", 1)[1])
    return result.returncode, peak, result.stderr


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    "record", ["byteorder", "data.pkl", "extra"], ids=["dup-byteorder", "dup-data.pkl", "new-record"]
)
def test_compressed_record_bomb_costs_no_memory(tmp_path, good, record):
    """1 GiB of zeros compressed into ~1 MiB, as a duplicate or an extra record: refused before it is inflated."""
    bomb = tmp_path / "bomb.ckpt"
    bomb.write_bytes(good.read_bytes())
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(f"good/{record}", "w", force_zip64=True) as fh:
            block = bytes(1 << 20)
            for _ in range(1024):
                fh.write(block)
    assert bomb.stat().st_size < 8 << 20
    code, baseline, _ = _peak_rss("upgrade", good, "-o", tmp_path / "ok.ckpt")
    assert code == 0
    code, peak, err = _peak_rss("upgrade", bomb, "-o", tmp_path / "out.ckpt")
    assert code == errors.CorruptCheckpoint.exit_code, err
    assert "twice" in err or "inflate" in err
    assert peak < baseline + (100 << 20), (peak, baseline)
    assert not (tmp_path / "out.ckpt").exists()


# --------------------------------------------------------------------------------------------
# Metadata and hard links
# --------------------------------------------------------------------------------------------


def test_in_place_keeps_mode_owner_group_and_xattrs(tmp_path, good):
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    os.chown(good, 12345, 23456)
    os.chmod(good, 0o640)
    try:
        os.setxattr(good, "user.origin", b"run-7")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    assert run_cli("upgrade", good, "--in-place") == 0 and upgraded(good)
    for path in (good, tmp_path / "good.ckpt.bak"):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (12345, 23456, 0o640), path
        assert os.getxattr(path, "user.origin") == b"run-7"


def test_hard_linked_file_is_refused_without_the_flag(tmp_path, good, capsys):
    other = tmp_path / "other_name.ckpt"
    os.link(good, other)
    before = good.read_bytes()
    assert run_cli("upgrade", good, "--in-place") == errors.HardLinked.exit_code == 2
    assert "hard links" in capsys.readouterr().err
    assert good.read_bytes() == before and os.stat(good).st_nlink == 2
    assert run_cli("upgrade", good, "--in-place", "--break-hardlinks") == 0
    assert upgraded(good) and other.read_bytes() == before  # documented: the other name keeps the old bytes


# --------------------------------------------------------------------------------------------
# Signals and races
# --------------------------------------------------------------------------------------------


def test_sigint_prints_what_was_done_without_traceback(tmp_path, monkeypatch, capsys):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"c{i}.ckpt")
        torch.save(lightning_checkpoint(0.05), paths[-1])
    real = commands.upgrade_one

    def interrupted_on_second(path, options):
        if path == paths[1]:
            raise KeyboardInterrupt
        return real(path, options)

    monkeypatch.setattr(commands, "upgrade_one", interrupted_on_second)
    assert run_cli("upgrade", *paths, "--in-place") == 130
    err = capsys.readouterr().err
    assert f"interrupted while upgrading {paths[1]} (left as it was): 1 done, 0 failed, 1 not started" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_write_leaves_no_temp_file(tmp_path, sig):
    """A real signal to a real writer, sent while it is held mid-write (no timing: any load passes)."""
    source = tmp_path / "old.ckpt"
    torch.save(lightning_checkpoint(4), source, _use_new_zipfile_serialization=False)
    before = os.stat(source)
    pid, ready, go = fork_cli_held("upgrade", source, "-o", tmp_path / "out.ckpt")
    assert os.read(ready, 1) == b"w"
    seen = temp_files(tmp_path)
    os.kill(pid, sig)
    os.write(go, b"g")
    code = wait_exit_code(pid)
    os.close(ready)
    os.close(go)
    assert len(seen) == 1 and seen[0].startswith(".out.ckpt.ckpt-compat-tmp-")
    assert code == 128 + sig
    assert temp_files(tmp_path) == [] and not (tmp_path / "out.ckpt").exists()
    assert os.stat(source).st_mtime_ns == before.st_mtime_ns


def _in_child(fn) -> int:
    """Run ``fn`` in a forked child; its exit code, or -signal if it died (SIGBUS must not reach pytest)."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = fn()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("change", ["truncated", "replaced"])
def test_source_changed_between_load_and_save(tmp_path, good, change):
    out = tmp_path / "out.ckpt"

    def scenario() -> int:
        ckpt = load_checkpoint(good)
        if change == "truncated":  # a training job rewriting the file in place
            os.truncate(good, good.stat().st_size // 3)
        else:  # ... or saving a new file over it
            torch.save(lightning_checkpoint(0.05, version="2.0.0"), tmp_path / "new.ckpt")
            os.replace(tmp_path / "new.ckpt", good)
        try:
            save_checkpoint(ckpt, out, source=good)
        except errors.SourceChanged:
            return 0
        return 1

    assert _in_child(scenario) == 0  # not -SIGBUS, not written
    assert not out.exists() and temp_files(tmp_path) == []


def test_source_changed_during_an_in_place_run(tmp_path, good, monkeypatch, capsys):
    real = commands.upgrade_with_result

    def training_job_writes_meanwhile(checkpoint, *args, **kwargs):
        result = real(checkpoint, *args, **kwargs)
        torch.save(lightning_checkpoint(0.05, version="2.0.0"), tmp_path / "new.ckpt")
        os.replace(tmp_path / "new.ckpt", good)
        return result

    monkeypatch.setattr(commands, "upgrade_with_result", training_job_writes_meanwhile)
    assert run_cli("upgrade", good, "--in-place") == errors.SourceChanged.exit_code
    assert "SourceChanged" in capsys.readouterr().err
    assert load_checkpoint(good)[VERSION] == "2.0.0"  # the new checkpoint is not overwritten
    assert listing(tmp_path) == ["good.ckpt"]  # nor backed up as if it were the old one
