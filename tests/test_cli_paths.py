"""``ckpt-compat upgrade`` / ``inspect`` decide on what a path really is (issue 20, "Files and paths").

Links, ``..``, folders that cannot be searched, sharded folders with a FIFO for metadata, names with
control characters: each on real files, through the in-process CLI.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat.cli import main
from pytest_ckpt_compat.core.versions import installed_lightning_version
from pytest_ckpt_compat.files.writing import TEMP_MARKER
from tests.test_cli import old_checkpoint

CURRENT = installed_lightning_version()
VERSION = "pytorch-lightning_version"


def saved(path: Path, version: str = "1.9.5") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(old_checkpoint(version), path)
    return path


def version_of(path: Path) -> str:
    return torch.load(path, weights_only=True)[VERSION]


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --------------------------------------------------------------------------------------------
# Links and "..": the file itself decides, never its name
# --------------------------------------------------------------------------------------------


def test_a_backup_that_links_to_the_checkpoint_itself_is_refused(tmp_path, capsys):
    ckpt = saved(tmp_path / "model.ckpt")
    before = ckpt.read_bytes()
    (tmp_path / "model.ckpt.bak").symlink_to("model.ckpt")
    assert main(["upgrade", str(ckpt), "--in-place"]) == 2
    err = capsys.readouterr().err
    assert "NotARegularFile" in err and "model.ckpt.bak is a symbolic link (to model.ckpt), not a backup" in err
    assert ckpt.read_bytes() == before  # the only original is still there
    assert os.readlink(tmp_path / "model.ckpt.bak") == "model.ckpt"


@pytest.mark.parametrize("how", ["symlink", "dotdot", "linked_folder"])
def test_output_that_is_the_input_itself_is_refused(tmp_path, capsys, how):
    ckpt = saved(tmp_path / "runs" / "model.ckpt")
    before = ckpt.read_bytes()
    if how == "symlink":
        out = tmp_path / "out.ckpt"
        out.symlink_to(ckpt)
    elif how == "dotdot":
        (tmp_path / "runs" / "sub").mkdir()
        out = tmp_path / "runs" / "sub" / ".." / "model.ckpt"
    else:
        (tmp_path / "alias").symlink_to(tmp_path / "runs")
        out = tmp_path / "alias" / "model.ckpt"
    assert main(["upgrade", str(ckpt), "-o", str(out)]) == 2
    assert f"is the input {ckpt} itself" in capsys.readouterr().err
    assert ckpt.read_bytes() == before


def test_output_that_is_a_hard_link_of_the_input_gets_a_new_file(tmp_path):
    ckpt = saved(tmp_path / "model.ckpt")
    before = ckpt.read_bytes()
    os.link(ckpt, tmp_path / "other.ckpt")
    assert main(["upgrade", str(ckpt), "-o", str(tmp_path / "other.ckpt")]) == 0
    assert ckpt.read_bytes() == before and version_of(tmp_path / "other.ckpt") == CURRENT


def test_in_place_through_a_link_upgrades_the_target_and_backs_it_up_beside_it(tmp_path, capsys):
    target = saved(tmp_path / "runs" / "epoch=3.ckpt")
    before = target.read_bytes()
    link = tmp_path / "serving" / "last.ckpt"
    link.parent.mkdir()
    link.symlink_to("../runs/epoch=3.ckpt")
    assert main(["upgrade", str(link), "--in-place"]) == 0
    out = capsys.readouterr().out
    assert listing(tmp_path) == ["runs", "runs/epoch=3.ckpt", "runs/epoch=3.ckpt.bak", "serving", "serving/last.ckpt"]
    assert (tmp_path / "runs" / "epoch=3.ckpt.bak").read_bytes() == before
    assert link.is_symlink() and version_of(link) == CURRENT
    assert f"written to {target} (the file the link {link} points to); original kept as {target}.bak" in out, out


# --------------------------------------------------------------------------------------------
# Folder runs stay inside the folder unless asked
# --------------------------------------------------------------------------------------------


@pytest.fixture
def folder_with_links(tmp_path):
    """runs/: a.ckpt, last.ckpt -> a.ckpt, out.ckpt -> ../elsewhere/b.ckpt, shared -> ../elsewhere/more/."""
    runs = tmp_path / "runs"
    saved(runs / "a.ckpt")
    saved(tmp_path / "elsewhere" / "b.ckpt")
    saved(tmp_path / "elsewhere" / "more" / "c.ckpt")
    (runs / "last.ckpt").symlink_to("a.ckpt")
    (runs / "out.ckpt").symlink_to("../elsewhere/b.ckpt")
    (runs / "shared").symlink_to("../elsewhere/more")
    return tmp_path


def test_folder_run_does_not_follow_links_out_of_the_folder(folder_with_links, capsys):
    tmp_path = folder_with_links
    elsewhere = {p: p.read_bytes() for p in (tmp_path / "elsewhere").rglob("*.ckpt")}
    assert main(["upgrade", str(tmp_path / "runs"), "--in-place"]) == 0
    captured = capsys.readouterr()
    assert {p: p.read_bytes() for p in (tmp_path / "elsewhere").rglob("*.ckpt")} == elsewhere
    assert listing(tmp_path / "elsewhere") == ["b.ckpt", "more", "more/c.ckpt"]  # no .bak outside
    assert listing(tmp_path / "runs") == ["a.ckpt", "a.ckpt.bak", "last.ckpt", "out.ckpt", "shared"]
    assert version_of(tmp_path / "runs" / "a.ckpt") == CURRENT
    assert captured.out.count("written to") == 1  # a.ckpt once, though last.ckpt names it too
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped ")]
    assert skipped == [
        f"skipped {tmp_path}/runs/out.ckpt: a symbolic link to {tmp_path}/elsewhere/b.ckpt, outside "
        f"{tmp_path}/runs; not followed, so not upgraded (--follow-links follows links)",
        f"skipped {tmp_path}/runs/shared: a symbolic link to a folder outside it ({tmp_path}/elsewhere/more); "
        "not followed (--follow-links follows links)",
    ]


def test_follow_links_upgrades_what_links_point_to(folder_with_links):
    tmp_path = folder_with_links
    assert main(["upgrade", str(tmp_path / "runs"), "--in-place", "--follow-links"]) == 0
    for path in ("runs/a.ckpt", "elsewhere/b.ckpt", "elsewhere/more/c.ckpt"):
        assert version_of(tmp_path / path) == CURRENT, path
        assert (tmp_path / f"{path}.bak").is_file(), path  # each backup beside the file it keeps
    assert not (tmp_path / "runs" / "out.ckpt.bak").exists()


def test_a_loop_of_linked_folders_is_searched_once(tmp_path):
    saved(tmp_path / "runs" / "a.ckpt")
    (tmp_path / "runs" / "again").symlink_to("..")
    assert main(["upgrade", str(tmp_path / "runs"), "--dry-run", "--follow-links"]) == 0


# --------------------------------------------------------------------------------------------
# Discovery failures are per-entry failures
# --------------------------------------------------------------------------------------------


@pytest.fixture
def unprivileged(tmp_path):
    """A folder tree and a way to run the CLI as a user that permissions apply to (root ignores them)."""
    if os.geteuid() != 0:
        yield tmp_path, lambda argv: main(argv)
        return
    base = Path(tempfile.mkdtemp(prefix="ckpt-compat-perm-"))  # under /tmp: reachable by "nobody"
    os.chmod(base, 0o777)

    def run_as_nobody(argv) -> int:
        for path in [base, *base.rglob("*")]:
            os.chown(path, 65534, 65534, follow_symlinks=False)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 98
            try:
                os.setgid(65534)
                os.setuid(65534)
                sys.stderr = io.TextIOWrapper(os.fdopen(write, "wb"), errors="backslashreplace")
                code = main(argv)
                sys.stderr.flush()
            finally:
                os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as fh:
            err = fh.read().decode()
        _, status = os.waitpid(pid, 0)
        print(err, file=sys.stderr, end="")  # to capsys, as in-process
        return os.waitstatus_to_exitcode(status)

    try:
        yield base, run_as_nobody
    finally:
        for path in [base, *base.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                os.chmod(path, 0o755)
        shutil.rmtree(base)


def test_an_unreadable_subfolder_fails_alone(unprivileged, capsys):
    base, run = unprivileged
    saved(base / "runs" / "a.ckpt")
    saved(base / "runs" / "locked" / "b.ckpt")
    saved(base / "runs" / "z.ckpt")
    os.chmod(base / "runs" / "locked", 0)
    assert run(["upgrade", str(base / "runs"), "--in-place"]) == 1  # CheckpointIOError
    err = capsys.readouterr().err
    assert f"FAILED {base}/runs/locked: CheckpointIOError: PermissionError" in err
    assert "1 of 3 checkpoint(s) failed" in err
    assert version_of(base / "runs" / "a.ckpt") == version_of(base / "runs" / "z.ckpt") == CURRENT


def test_a_sharded_folder_whose_metadata_is_a_fifo_is_a_named_failure(tmp_path, capsys):
    saved(tmp_path / "runs" / "a.ckpt")
    (tmp_path / "runs" / "sharded.ckpt").mkdir()
    os.mkfifo(tmp_path / "runs" / "sharded.ckpt" / "meta.pt")
    assert main(["upgrade", str(tmp_path / "runs"), "--in-place"]) == 2
    err = capsys.readouterr().err
    assert (
        f"FAILED {tmp_path}/runs/sharded.ckpt: NotARegularFile: {tmp_path}/runs/sharded.ckpt is a sharded "
        "checkpoint folder whose meta.pt is a FIFO, not a regular file; refusing to read it" in err
    )
    assert "1 of 2 checkpoint(s) failed" in err and version_of(tmp_path / "runs" / "a.ckpt") == CURRENT
    assert main(["inspect", str(tmp_path / "runs" / "sharded.ckpt")]) == 2


# --------------------------------------------------------------------------------------------
# Names are escaped in every message
# --------------------------------------------------------------------------------------------


def test_control_characters_in_names_never_reach_the_terminal(tmp_path, capsys):
    good = saved(tmp_path / "good\n0 of 2 checkpoint(s) failed\x1b[2J.ckpt")
    bad = tmp_path / "bad\r\x1b]0;title\x07.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["upgrade", str(good), str(bad), "--in-place"]) == 5
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        assert not any(ch in text for ch in "\x1b\r\x07"), text
    assert captured.out.splitlines()[0].startswith(f"{tmp_path}/good\\n0 of 2 checkpoint(s) failed\\x1b[2J.ckpt: ")
    assert len(captured.out.splitlines()) == 1
    err = captured.err.splitlines()
    assert len(err) == 2 and err[1] == "1 of 2 checkpoint(s) failed"
    assert err[0].startswith(f"FAILED {tmp_path}/bad\\r\\x1b]0;title\\x07.ckpt: ")
    assert f"{tmp_path}/bad\\r\\x1b]0;title\\x07.ckpt is not a readable torch checkpoint" in err[0]


def test_undecodable_bytes_in_a_name_are_shown_as_escapes(tmp_path, capsys):
    folder = os.fsencode(tmp_path)
    name = folder + b"/caf\xe9.ckpt"
    with open(name, "wb") as fh:
        torch.save(old_checkpoint(), fh)
    assert main(["inspect", os.fsdecode(name)]) == 0
    assert f"path: {tmp_path}/caf\\xe9.ckpt" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Messages name what is wrong
# --------------------------------------------------------------------------------------------


def test_output_into_a_missing_folder_names_the_folder(tmp_path, capsys):
    ckpt = saved(tmp_path / "model.ckpt")
    out = tmp_path / "missing" / "new.ckpt"
    assert main(["upgrade", str(ckpt), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        f"FAILED {ckpt}: CheckpointNotFound: cannot write {out}: the folder {tmp_path}/missing does not exist; "
        "create it first" in err
    )
    assert TEMP_MARKER not in err


@pytest.mark.parametrize("command", ["upgrade", "inspect"])
def test_a_dangling_link_is_named_as_one(tmp_path, capsys, command):
    link = tmp_path / "last.ckpt"
    link.symlink_to("epoch=9.ckpt")
    argv = [command, str(link)] + (["--in-place"] if command == "upgrade" else [])
    assert main(argv) == 2
    assert (
        f"{link} is a dangling symbolic link: it points to epoch=9.ckpt, which does not exist"
        in capsys.readouterr().err
    )


def test_inspect_of_a_plain_folder_exits_2_like_upgrade(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    assert main(["upgrade", str(tmp_path / "runs"), "--in-place"]) == 2
    assert main(["inspect", str(tmp_path / "runs")]) == 2
    assert "is a folder but not a sharded Lightning checkpoint" in capsys.readouterr().err


def test_a_loop_of_links_is_named(tmp_path, capsys):
    (tmp_path / "a.ckpt").symlink_to("b.ckpt")
    (tmp_path / "b.ckpt").symlink_to("a.ckpt")
    assert main(["inspect", str(tmp_path / "a.ckpt")]) == 2
    assert "is a loop of symbolic links" in capsys.readouterr().err
