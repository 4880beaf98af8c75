"""The tests ``--ckpt-compat-check`` adds (like ``makemigrations --check``): fail CI on gaps and drift."""

from __future__ import annotations

from pytest_ckpt_compat.goldens.registry import REGISTRY_FILE
from pytest_ckpt_compat.matrix import drift
from pytest_ckpt_compat.matrix.compare import CheckFailed


def test_installed_release_has_golden(ckpt_compat_installed_release, ckpt_compat_workspace):
    """The installed Lightning release has goldens: its format is pinned before anyone relies on it.

    Parametrized by the installed release, so ``-k "2.6"`` (sharding by release) selects it too.
    """
    __tracebackhide__ = True
    installed = ckpt_compat_installed_release
    releases = sorted({g.release for g in ckpt_compat_workspace.store.goldens})
    if installed not in releases:
        raise CheckFailed(
            f"the installed Lightning {installed} has no golden in "
            f"{ckpt_compat_workspace.store.registry_dir / REGISTRY_FILE} "
            f"(releases with goldens: {', '.join(releases) or 'none'}); "
            f"add one with `ckpt-compat golden add {installed}`"
        )


def test_schema_drift(ckpt_compat_drift_scenario, ckpt_compat_workspace, tmp_path):
    """A checkpoint saved now has the key paths and value types of the newest golden after upgrade."""
    __tracebackhide__ = True
    drift.check_schema_drift(ckpt_compat_workspace, ckpt_compat_drift_scenario, tmp_path)
