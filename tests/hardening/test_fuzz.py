"""The CI run of the atheris fuzz target (benchmarks/fuzz_roundtrip.py): a fixed seed and a fixed
number of mutated real goldens through load_checkpoint -> upgrade -> save_checkpoint; only our
named errors may come out. The long run is the same script with ``--seconds``.

It counts inputs, not seconds: a busy machine runs the same inputs (a fixed seed, a fixed hash
seed), only slower. Per-input time and memory limits are libFuzzer's own findings (a hang, a bomb,
written as artifacts); they are generous for time (a busy machine is not a hang) and tight for
memory (no input may cost more than its size, so the kernel's OOM killer never decides).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_roundtrip.py"
RUNS = 10_000


@pytest.mark.fuzz
def test_fuzz_load_upgrade_save_fixed_run(tmp_path):
    crashes = tmp_path / "crashes"
    crashes.mkdir()
    argv = ["--runs", str(RUNS), "--seconds", "0", "--seed", "1", "--input-timeout", "300", "--rss-limit-mb", "1536"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *argv, "--artifacts", str(crashes), "--workdir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=3600,  # a guard against a hang of the harness itself, not a speed requirement
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"},
    )
    found = sorted(p.name for p in crashes.iterdir())
    how = (
        f"killed by {signal.Signals(-result.returncode).name}" if result.returncode < 0 else f"exit {result.returncode}"
    )
    assert (result.returncode, found) == (0, []), f"{how}, artifacts {found}:\n{result.stderr[-4000:]}"
    executed = re.search(r"stat::number_of_executed_units:\s+(\d+)", result.stderr)
    assert executed, f"no final statistics from libFuzzer:\n{result.stderr[-2000:]}"
    assert int(executed.group(1)) >= RUNS, result.stderr[-2000:]
    peak = re.search(r"stat::peak_rss_mb:\s+(\d+)", result.stderr)
    print(f"fuzz executions: {executed.group(1)}, peak RSS {peak.group(1) if peak else '?'} MB")
