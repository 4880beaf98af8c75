"""``--ckpt-compat-report``: the matrix as Markdown, identical with pytest-xdist."""

from __future__ import annotations

import pytest

EXPECTED_TABLE = [
    "| golden | fetch | upgrade | load | resume | weights_only | plain_resume | evaluate |",
    "|---|---|---|---|---|---|---|---|",
    "| 1.6.5 end_of_fit | pass | pass | pass | pass | pass | pass | pass |",
    "| 2.6.6 end_of_fit | pass | pass | pass | pass | pass | pass | pass |",
    "| 2.6.6 mid_epoch | pass | pass | pass | pass | pass | pass | pass |",
]


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_markdown_report(pytester, golden_subset, cache_args, tmp_path, xdist):
    out = tmp_path / "matrix.md"
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_subset}", f"--ckpt-compat-report={out}", "-k", "test_golden", *xdist, *cache_args
    )
    result.assert_outcomes(passed=21)
    text = out.read_text()
    assert text.splitlines()[0] == "# Checkpoint compatibility matrix"
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table == EXPECTED_TABLE
    assert text.rstrip().splitlines()[-1] == "ckpt-compat: 3 goldens, 0 migrations: 21 passed, 0 failed, 0 skipped"


def test_failures_are_listed(pytester, golden_copy, cache_args, tmp_path):
    (golden_copy / "2.6.6" / "mid_epoch.ckpt").write_bytes(b"tampered")
    out = tmp_path / "matrix.md"
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_copy}", f"--ckpt-compat-report={out}", "-k", "2.6.6-mid_epoch-fetch", *cache_args
    )
    result.assert_outcomes(failed=1)
    text = out.read_text()
    assert "| 2.6.6 mid_epoch | FAIL | - | - | - | - | - | - |" in text
    assert "- **2.6.6/mid_epoch.ckpt fetch**" in text
    assert "HashMismatch: golden 2.6.6/mid_epoch.ckpt from" in text
