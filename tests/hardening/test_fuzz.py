"""The short CI run of the atheris fuzz target (benchmarks/fuzz_roundtrip.py): fixed seed, ~60 s,
mutated real goldens through load_checkpoint -> upgrade -> save_checkpoint; only our named
errors may come out. The long run is the same script with a larger --seconds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_roundtrip.py"


@pytest.mark.fuzz
def test_fuzz_load_upgrade_save_short_run(tmp_path):
    crashes = tmp_path / "crashes"
    crashes.mkdir()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--seconds", "60", "--seed", "1", "--artifacts", str(crashes)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    found = sorted(p.name for p in crashes.iterdir())
    assert result.returncode == 0 and found == [], result.stderr[-4000:]
    executed = int(re.search(r"stat::number_of_executed_units: (\d+)", result.stderr).group(1))
    assert executed >= 200, result.stderr[-2000:]  # it really ran (about 60 inputs a second here)
    print(f"fuzz executions: {executed}")
