"""The example team's suite through the plugin: ``pytest --ckpt-compat-goldens --ckpt-compat-recipe``.

With teamnet 2.0.0 installed (built into a wheel at test time), its goldens of 1.0.0 (saved under
Lightning 1.9.5 in an environment of their own) and of 2.0.0 run the seven checks with exact state
through the team's catalogue; without the catalogue the matrix fails naming the moved class;
a deleted golden and a release without goldens fail check mode; teamnet 2.0.1, which saves one
buffer more with no unit, fails drift naming it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pytest_ckpt_compat.goldens.registry import read_registry, write_registry

from .wheels import DRIFT_VERSION, EXAMPLE

REPO = Path(__file__).resolve().parents[2]
GOLDENS = EXAMPLE / "goldens"
NO_CATALOGUE = Path(__file__).resolve().parent / "no_catalogue.py"
CHECKS = ("fetch", "upgrade", "load", "resume", "weights_only", "plain_resume", "evaluate")


def _pytest(release, tmp_path: Path, *args: str, goldens: Path = GOLDENS, recipe: str = "teamnet.goldens:RECIPE"):
    """The plugin in a subprocess where only ``release`` of teamnet is importable; its output as one string."""
    env = release.env()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(REPO)])
    cmd = ["-m", "pytest", "-p", "no:cacheprovider", "-rA", f"--basetemp={tmp_path / 'base'}"]
    cmd += [f"--ckpt-compat-goldens={goldens}", f"--ckpt-compat-recipe={recipe}"]
    cmd += ["--ckpt-compat-cache", str(tmp_path / "cache"), *args]
    (tmp_path / "run").mkdir(exist_ok=True)
    done = release.run(*cmd, cwd=tmp_path / "run")
    return done.returncode, done.stdout + done.stderr


def test_release_2_resumes_every_golden_with_exact_state(teamnet_releases, tmp_path):
    code, out = _pytest(teamnet_releases["2.0.0"], tmp_path, "--ckpt-compat-check")
    assert code == 0, out
    for release in ("1.0.0", "2.0.0"):
        for scenario in ("end_of_fit", "mid_epoch"):
            for check in CHECKS:
                assert f"PASSED ckpt-compat/matrix::test_golden[teamnet-{release}-{scenario}-{check}]" in out, out
    assert "PASSED ckpt-compat/check::test_installed_release_has_golden[teamnet-2.0.0]" in out
    assert "PASSED ckpt-compat/check::test_schema_drift[teamnet-2.0.0-end_of_fit]" in out
    for unit in (
        "teamnet-2.0-smoothl1-moved",
        "teamnet-2.0-encoder-renamed-backbone",
        "teamnet-2.0-hidden-renamed-width",
    ):
        assert f"PASSED ckpt-compat/matrix::test_migration[{unit}]" in out
    assert "4 goldens, 3 migrations: 31 passed, 0 failed" in out


def test_without_the_catalogue_release_1_goldens_fail_naming_the_moved_class(teamnet_releases, tmp_path):
    code, out = _pytest(teamnet_releases["2.0.0"], tmp_path, "-k", "load or resume", recipe=f"{NO_CATALOGUE}:RECIPE")
    assert code == 1, out
    for scenario in ("end_of_fit", "mid_epoch"):
        assert f"FAILED ckpt-compat/matrix::test_golden[teamnet-1.0.0-{scenario}-load]" in out
        assert f"PASSED ckpt-compat/matrix::test_golden[teamnet-2.0.0-{scenario}-resume]" in out
    assert "teamnet.losses.SmoothL1" in out and "No module named 'teamnet.losses'" in out


def test_a_deleted_golden_fails_check_mode(teamnet_releases, tmp_path):
    goldens = Path(shutil.copytree(GOLDENS, tmp_path / "goldens"))
    registry = read_registry(goldens)
    del registry["1.0.0/mid_epoch.ckpt"]
    write_registry(goldens, registry)
    (goldens / "1.0.0" / "mid_epoch.ckpt").unlink()
    code, out = _pytest(teamnet_releases["2.0.0"], tmp_path, "--ckpt-compat-check", "-k", "fetch", goldens=goldens)
    assert code == 1, out
    assert "golden teamnet:1.0.0/mid_epoch.ckpt is described in meta.json but missing from registry.txt" in out


@pytest.fixture(scope="module")
def drift_run(teamnet_releases, tmp_path_factory):
    return _pytest(
        teamnet_releases[DRIFT_VERSION],
        tmp_path_factory.mktemp("drift"),
        "--ckpt-compat-check",
        "-k",
        "installed or drift",
    )


def test_a_release_without_goldens_fails_check_mode(drift_run):
    code, out = drift_run
    assert code == 1, out
    assert f"FAILED ckpt-compat/check::test_installed_release_has_golden[teamnet-{DRIFT_VERSION}]" in out
    assert f"the installed teamnet {DRIFT_VERSION} has no golden" in out


def test_a_save_format_change_without_a_unit_fails_drift(drift_run):
    code, out = drift_run
    assert "FAILED ckpt-compat/check::test_schema_drift[teamnet-2.0.0-end_of_fit]" in out
    saved_now = f"schema drift: a end_of_fit checkpoint saved now by teamnet {DRIFT_VERSION}"
    assert f"{saved_now} differs from golden 2.0.0/end_of_fit.ckpt" in out
    assert "+ state_dict.output_scale (Tensor)  only in the checkpoint saved now" in out
    assert f"a unit of the teamnet catalogue with 2.0.0 < VERSION <= {DRIFT_VERSION}" in out
