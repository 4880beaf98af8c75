"""The real-world files live outside the repository: the suite finds them through one setting.

Without the setting a fresh clone still passes (the suite skips and says how to get the files);
a setting that names no folder fails, so a CI run that asked for the files cannot pass without them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SUITE = Path(__file__).with_name("test_realworld.py")
ROOT = Path(__file__).parents[2]


def run_suite(setting: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CKPT_COMPAT_REALWORLD", "PYTEST_ADDOPTS")}
    if setting is not None:
        env["CKPT_COMPAT_REALWORLD"] = setting
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--collect-only", str(SUITE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_unset_skips_and_says_how_to_get_the_files():
    result = run_suite(None)
    assert result.returncode == 5, result.stdout + result.stderr  # collected nothing: the module skipped
    assert "set CKPT_COMPAT_REALWORLD to a folder holding the files that tests/realworld/SOURCES.md lists" in (
        result.stdout
    )
    assert "git show COMMIT:PATH > FILE" in result.stdout


def test_a_setting_that_names_no_folder_fails(tmp_path):
    missing = tmp_path / "nowhere"
    result = run_suite(str(missing))
    assert result.returncode == 2, result.stdout + result.stderr  # a collection error, not a skip
    assert f"CKPT_COMPAT_REALWORLD='{missing}' is not a folder" in result.stdout
