"""A team suite whose files pickle the team's objects (chemprop's case): what no upgrade can change is skipped
with its reason, and plain resume reads the file in full, as the team's users must."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from pytest_ckpt_compat.goldens.team_building import record_release

SPEC = "tests.plugin.team_pickles:PICKLES"
VERSION = metadata.version("pytorch-lightning")
SUITE = "pytorch-lightning"


@pytest.fixture(scope="module")
def pickling_goldens(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("team-pickles") / "goldens"
    record_release(SPEC, out=out, build_root=tmp_path_factory.mktemp("build"), log=lambda line: None)
    return out


def test_weights_only_is_skipped_and_plain_resume_reads_the_file_in_full(pytester, pickling_goldens):
    options = [f"--ckpt-compat-goldens={pickling_goldens}", f"--ckpt-compat-recipe={SPEC}", "-rA"]
    cache = ["--ckpt-compat-cache", str(pytester.path / "cache"), "-p", "no:cacheprovider"]
    result = pytester.runpytest_subprocess(*options, *cache, "-k", "end_of_fit and (weights_only or plain_resume)")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([f"PASSED ckpt-compat/matrix::test_golden[{SUITE}-{VERSION}-end_of_fit-plain_resume]"])
    needs = "tests.plugin.team_pickles.Options"
    result.stdout.fnmatch_lines([f"SKIPPED * {SUITE} {VERSION} itself saves files that need {needs}*weights_only=True"])
