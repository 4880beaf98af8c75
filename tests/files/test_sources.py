"""The SourceChanged guard of memory-mapped sources (issue 20): it holds however many files a process loads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import torch

from pytest_ckpt_compat import load_checkpoint
from pytest_ckpt_compat.files.writing import sources

VERSION = "pytorch-lightning_version"

_SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    from pathlib import Path
    from pytest_ckpt_compat import load_checkpoint, save_checkpoint
    from pytest_ckpt_compat.core.errors import CheckpointCompatError
    folder = Path(sys.argv[1])
    source = folder / "source.ckpt"
    torch.save({"pytorch-lightning_version": "2.0.0", "state_dict": {"w": torch.ones(1 << 20)}}, source)
    checkpoint = load_checkpoint(source)  # its tensor is the file's pages (mmap)
    small = folder / "small.ckpt"
    torch.save({"pytorch-lightning_version": "2.0.0", "state_dict": {"w": torch.ones(2)}}, small)
    for i in range(300):
        other = folder / f"other{i}.ckpt"
        other.write_bytes(small.read_bytes())
        load_checkpoint(other)
    os.truncate(source, 4096)  # another process rewrites it
    try:
        save_checkpoint(checkpoint, folder / "out.ckpt", source=source)
        print("WROTE")
    except CheckpointCompatError as exc:
        print("NAMED", type(exc).__name__, exc.exit_code)
    """
)


def test_truncated_source_after_300_loads_is_source_changed_not_sigbus(tmp_path):
    """The guard used to keep the last 256 loads only: the 301st load's writer touched truncated pages."""
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert (result.returncode, result.stdout.split()) == (0, ["NAMED", "SourceChanged", "1"]), result.stderr[-2000:]
    assert not (tmp_path / "out.ckpt").exists()


def test_files_no_longer_mapped_are_forgotten(tmp_path):
    """Memory stays flat over a long folder run: identities of files no tensor maps any more are pruned."""
    torch.save({VERSION: "2.0.0", "state_dict": {"w": torch.ones(2)}}, tmp_path / "c0.ckpt")
    for i in range(200):
        path = tmp_path / f"c{i}.ckpt"
        path.write_bytes((tmp_path / "c0.ckpt").read_bytes())
        load_checkpoint(path)  # and dropped at once
    kept = load_checkpoint(tmp_path / "c0.ckpt")
    assert os.path.realpath(tmp_path / "c0.ckpt") in sources._loaded
    assert sum(1 for key in sources._loaded if key.startswith(os.path.realpath(tmp_path))) < 140
    assert kept["state_dict"]["w"].tolist() == [1.0, 1.0]
