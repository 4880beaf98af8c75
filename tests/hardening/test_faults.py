"""Faults: an in-place upgrade SIGKILLed at random moments, and several upgrades of the same files at once.

Invariant after any kill: the checkpoint is either the original bytes or a complete upgrade, the
backup is either absent or the original bytes, and leftover temp files are ignored by the next run
and gone after the first run that completes.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import time
from pathlib import Path

import torch

from tests.hardening.hardening_support import fork_cli, lightning_checkpoint, temp_files, wait_exit_code

ITERATIONS = 30


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


def timed_run(path: Path, original: bytes) -> float:
    path.write_bytes(original)
    start = time.perf_counter()
    assert wait_exit_code(fork_cli("upgrade", path, "--in-place")) == 0
    return time.perf_counter() - start


def test_in_place_upgrade_killed_at_random_points(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save(lightning_checkpoint(16), path)  # big enough that the write takes a while
    original = path.read_bytes()
    weights = torch.load(path, weights_only=True)["state_dict"]
    backup = tmp_path / "model.ckpt.bak"

    duration = statistics.median(timed_run(path, original) for _ in range(3))
    rng = random.Random(20261128)
    outcomes = {"original": 0, "upgraded": 0}
    leftovers_seen = 0
    deadline = time.monotonic() + 45
    for _ in range(ITERATIONS):
        path.write_bytes(original)  # start over from the old file; leftovers of earlier kills stay
        pid = fork_cli("upgrade", path, "--in-place")
        time.sleep(rng.uniform(0, 1.5 * duration))
        os.kill(pid, signal.SIGKILL)
        wait_exit_code(pid)
        outcomes[assert_intact(path, original, weights)] += 1
        if backup.exists():
            assert backup.read_bytes() == original
        leftovers_seen += bool(temp_files(tmp_path))
        assert time.monotonic() < deadline, f"too slow: {outcomes}"

    # Kills landed before and after the rename, and some mid-write (a temp file was left behind).
    assert outcomes["original"] > 0 and outcomes["upgraded"] > 0, outcomes
    assert leftovers_seen > 0, outcomes

    path.write_bytes(original)
    assert wait_exit_code(fork_cli("upgrade", path, "--in-place")) == 0
    assert assert_intact(path, original, weights) == "upgraded"
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
