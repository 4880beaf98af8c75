"""files.names, files.paths and files.discovery on real folders: escaping, what a path is, what a folder holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_ckpt_compat.core.errors import CheckpointNotFound, NotARegularFile
from pytest_ckpt_compat.files.discovery import discover
from pytest_ckpt_compat.files.names import shown
from pytest_ckpt_compat.files.paths import checked_input, in_place_target, is_same_entry


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain/name.ckpt", "plain/name.ckpt"),
        ("épreuve ✓.ckpt", "épreuve ✓.ckpt"),  # printable non-ASCII stays
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("\x1b[2J\x07\x00\x7f\x9b", "\\x1b[2J\\x07\\x00\\x7f\\x9b"),
        (os.fsdecode(b"caf\xe9"), "caf\\xe9"),  # a byte that is not UTF-8
        ("evil\u202egnp.ckpt\u2028x", "evil\\u202egnp.ckpt\\u2028x"),  # bidi override, line separator
        (b"raw\nbytes", "raw\\nbytes"),
        (Path("p\n"), "p\\n"),
    ],
)
def test_shown_escapes_what_a_terminal_would_act_on(raw, expected):
    assert shown(raw) == expected
    assert shown(shown(raw)) == expected  # idempotent: a message may pass through it twice


def test_checked_input_names_each_kind_of_path(tmp_path):
    (tmp_path / "file.ckpt").write_bytes(b"x")
    assert checked_input(tmp_path / "file.ckpt") == tmp_path / "file.ckpt"
    with pytest.raises(CheckpointNotFound, match="^no such checkpoint: "):
        checked_input(tmp_path / "missing.ckpt")
    (tmp_path / "dangling.ckpt").symlink_to("gone/x.ckpt")
    with pytest.raises(CheckpointNotFound, match="dangling symbolic link: it points to gone/x.ckpt, which does not"):
        checked_input(tmp_path / "dangling.ckpt")
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotARegularFile, match="is a folder but not a sharded Lightning checkpoint"):
        checked_input(tmp_path / "plain")
    assert checked_input(tmp_path / "plain", folder_ok=True) == tmp_path / "plain"
    (tmp_path / "ds" / "checkpoint").mkdir(parents=True)
    os.mkfifo(tmp_path / "ds" / "checkpoint" / "mp_rank_00_model_states.pt")
    with pytest.raises(NotARegularFile, match="whose checkpoint/mp_rank_00_model_states.pt is a FIFO"):
        checked_input(tmp_path / "ds")


def test_in_place_target_and_same_entry(tmp_path):
    real = tmp_path / "runs" / "epoch=1.ckpt"
    real.parent.mkdir()
    real.write_bytes(b"x")
    (tmp_path / "last.ckpt").symlink_to(real)
    os.link(real, tmp_path / "hard.ckpt")
    assert in_place_target(tmp_path / "last.ckpt") == real
    assert in_place_target(tmp_path / "runs" / ".." / "runs" / "epoch=1.ckpt") == real
    assert is_same_entry(tmp_path / "last.ckpt", real)
    assert is_same_entry(tmp_path / "runs" / ".." / "runs" / "epoch=1.ckpt", real)
    assert not is_same_entry(tmp_path / "hard.ckpt", real)  # another name: writing it leaves real alone
    assert not is_same_entry(tmp_path / "missing" / "x.ckpt", real)


def test_discover_orders_searches_and_skips(tmp_path):
    runs = tmp_path / "runs"
    for name in ("b.ckpt", "a.ckpt", "notes.txt", "sub/c.ckpt", "sub/deeper/d.ckpt", "fsdp.ckpt/meta.pt"):
        (runs / name).parent.mkdir(parents=True, exist_ok=True)
        (runs / name).write_bytes(b"x")
    (runs / "fsdp.ckpt" / "shard_0.distcp").write_bytes(b"x")
    (runs / "last.ckpt").symlink_to("sub/c.ckpt")  # inside: the same checkpoint as sub/c.ckpt
    (tmp_path / "outside.ckpt").write_bytes(b"x")
    (runs / "out.ckpt").symlink_to("../outside.ckpt")
    found = discover([runs, tmp_path / "outside.ckpt", tmp_path / "missing.ckpt"])
    assert [f.path.relative_to(tmp_path).as_posix() for f in found.found] == [
        "runs/a.ckpt",
        "runs/b.ckpt",
        "runs/fsdp.ckpt",
        "runs/last.ckpt",
        "runs/sub/deeper/d.ckpt",
        "outside.ckpt",  # named explicitly: used
        "missing.ckpt",  # the per-file boundary reports it
    ]
    assert [p.name for p, _ in found.skipped] == ["out.ckpt"]
    assert all(f.error is None for f in found.found)
