"""The tests ``--ckpt-compat-check`` adds (like ``makemigrations --check``): fail CI on gaps and drift."""

from __future__ import annotations

from pytest_ckpt_compat.goldens.registry import REGISTRY_FILE
from pytest_ckpt_compat.matrix import drift, roundtrip
from pytest_ckpt_compat.matrix.compare import CheckFailed


def test_installed_release_has_golden(ckpt_compat_installed_release, ckpt_compat_workspaces):
    """The installed release (Lightning's, or the team's package) has goldens: its format is pinned
    before anyone relies on it. Parametrized by the release, so ``-k "2.6"`` (sharding) selects it too.
    """
    __tracebackhide__ = True
    suite, installed = ckpt_compat_installed_release
    ws = ckpt_compat_workspaces[suite]
    releases = sorted({g.release for g in ws.store.goldens})
    if installed not in releases:
        how = (
            f"ckpt-compat golden record --recipe {ws.suite.recipe_spec} --out {ws.store.registry_dir}"
            if suite
            else f"ckpt-compat golden add {installed}"
        )
        raise CheckFailed(
            f"the installed {suite or 'Lightning'} {installed} has no golden in "
            f"{ws.store.registry_dir / REGISTRY_FILE} (releases with goldens: {', '.join(releases) or 'none'}); "
            f"add one with `{how}`"
        )


def test_schema_drift(ckpt_compat_drift_scenario, ckpt_compat_workspaces, tmp_path):
    """A checkpoint saved now has the key paths and value types of the newest golden after upgrade."""
    __tracebackhide__ = True
    suite, scenario = ckpt_compat_drift_scenario
    drift.check_schema_drift(ckpt_compat_workspaces[suite], scenario, tmp_path)


def test_round_trip(ckpt_compat_drift_scenario, ckpt_compat_workspaces, tmp_path):
    """A checkpoint saved now by the installed release passes the matrix's checks, exactly, like a golden."""
    __tracebackhide__ = True
    suite, scenario = ckpt_compat_drift_scenario
    roundtrip.check_round_trip(ckpt_compat_workspaces[suite], scenario, tmp_path)
