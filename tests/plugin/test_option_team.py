"""A team's own suite in pytest: ``--ckpt-compat-goldens DIR --ckpt-compat-recipe SPEC``.

The goldens are recorded here with ``golden record`` from the tiny team recipe
(``tests/goldens/team_recipe.py``), then run by the plugin in a subprocess: the six checks with
exact state, check mode (the installed release has a golden, every golden exercised, drift), ids
that tell the suites apart, and the named errors of a bad recipe.
"""

from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from pytest_ckpt_compat.goldens.registry import read_registry, write_registry
from pytest_ckpt_compat.goldens.team_building import record_release

SPEC = "tests.goldens.team_recipe:RECIPE"
VERSION = metadata.version("pytorch-lightning")
SUITE = "pytorch-lightning"  # the tiny recipe names its goldens after the installed pytorch-lightning


@pytest.fixture(scope="module")
def team_goldens(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("team") / "goldens"
    record_release(SPEC, out=out, build_root=tmp_path_factory.mktemp("build"), log=lambda line: None)
    return out


@pytest.fixture
def team_copy(tmp_path, team_goldens) -> Path:
    return Path(shutil.copytree(team_goldens, tmp_path / "goldens-copy"))


def _run(pytester, goldens: Path, *args, spec: str = SPEC, check: bool = True):
    options = [f"--ckpt-compat-goldens={goldens}", f"--ckpt-compat-recipe={spec}"]
    options += ["--ckpt-compat-check"] if check else []
    cache = ["--ckpt-compat-cache", str(pytester.path / "cache"), "-p", "no:cacheprovider", "-rA"]
    return pytester.runpytest_subprocess(*options, *cache, *args)


def test_the_team_suite_passes_every_check_with_exact_state(pytester, team_goldens):
    result = _run(pytester, team_goldens, "-k", "test_golden or installed or drift")
    result.assert_outcomes(passed=17)  # 2 goldens x 7 checks, the installed release, drift of 2 scenarios
    for check in ("fetch", "upgrade", "load", "resume", "weights_only", "plain_resume", "evaluate"):
        result.stdout.fnmatch_lines([f"PASSED ckpt-compat/matrix::test_golden[{SUITE}-{VERSION}-mid_epoch-{check}]"])
    result.stdout.fnmatch_lines([f"ckpt-compat: *goldens from {team_goldens}*"])
    result.stdout.fnmatch_lines([f"PASSED ckpt-compat/check::test_installed_release_has_golden[{SUITE}-{VERSION}]"])
    result.stdout.fnmatch_lines([f"PASSED ckpt-compat/check::test_schema_drift[{SUITE}-{VERSION}-end_of_fit]"])
    assert "test_golden[2.6.6-" not in result.stdout.str()  # the built-in suite is not run unasked


def test_a_resume_that_restores_other_state_fails(pytester, team_copy):
    """The truth is what the recipe saw live: a golden whose recorded optimizer steps are wrong fails resume."""
    meta_path = team_copy / VERSION / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["scenarios"]["end_of_fit"]["truth"]["optimizer_state"][0]["step"] = [7, 7, 7, 7]
    meta_path.write_text(json.dumps(meta))
    result = _run(pytester, team_copy, "-k", "end_of_fit and resume and not plain", check=False)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*optimizer 0 per-parameter step*"])


def test_with_the_builtin_suite_the_ids_tell_them_apart(pytester, team_goldens, golden_subset):
    """One session, both suites (the built-in one a 3-golden subset here): the same release, told apart."""
    result = _run(
        pytester,
        team_goldens,
        "--ckpt-compat-builtin",
        f"--ckpt-compat-url={golden_subset}",
        "-k",
        "end_of_fit and weights_only and 2.6.6",
    )
    result.assert_outcomes(passed=2)  # the built-in 2.6.6 end_of_fit and the team's
    result.stdout.fnmatch_lines(["PASSED ckpt-compat/matrix::test_golden[2.6.6-end_of_fit-weights_only]"])
    result.stdout.fnmatch_lines([f"PASSED ckpt-compat/matrix::test_golden[{SUITE}-{VERSION}-end_of_fit-weights_only]"])


def test_a_golden_missing_from_the_registry_fails_check_mode(pytester, team_copy):
    registry = read_registry(team_copy)
    del registry[f"{VERSION}/mid_epoch.ckpt"]
    write_registry(team_copy, registry)
    result = _run(pytester, team_copy, "-k", "test_golden or installed")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [f"*golden {SUITE}:{VERSION}/mid_epoch.ckpt is described in meta.json but missing from registry.txt*"]
    )


def test_no_golden_of_the_installed_team_release_fails_check_mode(pytester, team_copy):
    """A skipped release: the goldens stop at an older version than the installed one."""
    (team_copy / VERSION).rename(team_copy / "0.1.0")
    meta = json.loads((team_copy / "0.1.0" / "meta.json").read_text())
    (team_copy / "0.1.0" / "meta.json").write_text(json.dumps(dict(meta, release="0.1.0")))
    write_registry(team_copy, {k.replace(VERSION, "0.1.0", 1): v for k, v in read_registry(team_copy).items()})
    result = _run(pytester, team_copy, "-k", "installed")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*the installed {SUITE} {VERSION} has no golden in *registry.txt (releases with goldens: 0.1.0)*"
            f"ckpt-compat golden record --recipe {SPEC}*"
        ]
    )


def test_a_golden_of_a_newer_team_release_is_skipped_with_the_reason(pytester, team_copy):
    shutil.copytree(team_copy / VERSION, team_copy / "99.0.0")
    registry = read_registry(team_copy)
    registry.update({k.replace(VERSION, "99.0.0", 1): v for k, v in registry.items()})
    write_registry(team_copy, registry)
    result = _run(pytester, team_copy, "-k", "99.0.0 and end_of_fit and (load or fetch)", check=False)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [f"*golden {SUITE}-99.0.0-end_of_fit was saved by {SUITE} 99.0.0, newer than the installed {VERSION}*"]
    )


def test_a_save_format_change_without_a_unit_fails_drift(pytester, team_goldens):
    result = _run(pytester, team_goldens, "-k", "drift", spec="tests.plugin.team_variants:DRIFTED")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            f"*schema drift: a end_of_fit checkpoint saved now by {SUITE} {VERSION} differs from golden*",
            "*+ state_dict.calibration (Tensor)  only in the checkpoint saved now*",
            "*ckpt-compat golden record --recipe tests.plugin.team_variants:DRIFTED --force*",
        ]
    )


def test_the_round_trip_resumes_what_the_installed_release_saves_now(pytester, team_goldens):
    result = _run(pytester, team_goldens, "-k", "round_trip")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"PASSED ckpt-compat/check::test_round_trip[{SUITE}-{VERSION}-mid_epoch]"])


def test_a_release_that_saves_what_weights_only_refuses_fails_the_round_trip(pytester, team_goldens):
    result = _run(pytester, team_goldens, "-k", "round_trip and end_of_fit", spec="tests.plugin.team_variants:PICKLING")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*round trip: a end_of_fit checkpoint saved now by {SUITE} {VERSION} does not come back exactly:*",
            "*weights_only: *does not load with weights_only=True: UnpicklingError: the file pickles "
            "torch.nn.modules.loss.MSELoss; list it in the recipe's safe_globals*",
        ]
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        ("tests.goldens.no_such_module:RECIPE", "recipe 'tests.goldens.no_such_module:RECIPE' does not import"),
        ("tests.goldens.team_recipe:NO_MODULE", "does not follow the recipe contract: no 'make_module'"),
    ],
)
def test_a_bad_recipe_is_a_usage_error_naming_it(pytester, team_goldens, spec, message):
    result = _run(pytester, team_goldens, spec=spec, check=False)
    assert result.ret == 4  # pytest's usage error: nothing collected, nothing run
    result.stderr.fnmatch_lines([f"*--ckpt-compat: *{message}*"])


def test_goldens_without_a_recipe_is_a_usage_error(pytester, team_goldens):
    result = pytester.runpytest_subprocess(f"--ckpt-compat-goldens={team_goldens}", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--ckpt-compat-goldens needs --ckpt-compat-recipe too*"])
