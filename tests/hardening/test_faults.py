"""Faults: an in-place upgrade SIGKILLed at every write step, and several upgrades of the same files at once.

Invariant after any kill: the checkpoint is either the original bytes or a complete upgrade, the
backup is either absent or the original bytes, and leftover temp files are ignored by the next run
and gone after the first run that completes. The kills land at named steps of the run (the child
is held there, ``fork_cli_held``), never at a moment chosen by a clock: the test is the same on an
idle machine and on a busy CI runner.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import torch

from tests.hardening.hardening_support import fork_cli, fork_cli_held, lightning_checkpoint, temp_files, wait_exit_code

MAX_STEPS = 200  # far more write steps than one in-place upgrade makes


def assert_intact(path: Path, original: bytes, weights: dict) -> str:
    """``path`` is the original or a complete upgrade of it; returns which."""
    data = path.read_bytes()
    if data == original:
        return "original"
    loaded = torch.load(path, mmap=True, weights_only=True, map_location="cpu")
    assert loaded["pytorch-lightning_version"] != "1.5.10"
    assert loaded["legacy_pytorch-lightning_version"] == "1.5.10"
    assert loaded["state_dict"].keys() == weights.keys()
    for key, tensor in weights.items():
        assert torch.equal(loaded["state_dict"][key], tensor), key
    return "upgraded"


def test_in_place_upgrade_killed_at_every_write_step(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save(lightning_checkpoint(16), path)
    original = path.read_bytes()
    weights = torch.load(path, weights_only=True)["state_dict"]
    backup = tmp_path / "model.ckpt.bak"

    outcomes = {"original": 0, "upgraded": 0}
    leftovers_seen = 0
    for step in range(1, MAX_STEPS + 1):
        path.write_bytes(original)  # start over from the old file; leftovers of earlier kills stay
        pid, ready, go = fork_cli_held("upgrade", path, "--in-place", nth=step)
        reached = os.read(ready, 1) == b"w"
        if reached:
            os.kill(pid, signal.SIGKILL)
        code = wait_exit_code(pid)
        os.close(ready)
        os.close(go)
        if not reached:  # the run has fewer steps: it completed
            assert code == 0
            break
        assert code == -signal.SIGKILL
        outcomes[assert_intact(path, original, weights)] += 1
        if backup.exists():
            assert backup.read_bytes() == original
        leftovers_seen += bool(temp_files(tmp_path))
    else:
        raise AssertionError(f"an in-place upgrade made more than {MAX_STEPS} write steps")

    # Kills landed before the rename (mid-write: a temp file was left behind) and after it.
    assert outcomes["original"] > 0 and outcomes["upgraded"] > 0, outcomes
    assert leftovers_seen > 0, outcomes
    assert assert_intact(path, original, weights) == "upgraded"  # the run that completed
    assert backup.read_bytes() == original
    assert temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt", "model.ckpt.bak"]


def test_several_processes_upgrade_the_same_files_at_once(tmp_path):
    paths, originals, weights = [], {}, {}
    for name in ("a", "b", "c"):
        path = tmp_path / f"{name}.ckpt"
        torch.save(lightning_checkpoint(4), path)
        paths.append(path)
        originals[path] = path.read_bytes()
        weights[path] = torch.load(path, weights_only=True)["state_dict"]

    read_fd, write_fd = os.pipe()
    pids = [fork_cli("upgrade", *paths, "--in-place", start_fd=read_fd) for _ in range(4)]
    os.write(write_fd, b"go!!")  # one byte per child: they start together
    codes = [wait_exit_code(pid) for pid in pids]
    os.close(read_fd)
    os.close(write_fd)

    assert codes == [0, 0, 0, 0]
    for path in paths:
        assert assert_intact(path, originals[path], weights[path]) == "upgraded"
        assert path.with_name(path.name + ".bak").read_bytes() == originals[path]
    assert temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.ckpt",
        "a.ckpt.bak",
        "b.ckpt",
        "b.ckpt.bak",
        "c.ckpt",
        "c.ckpt.bak",
    ]
