"""The example team package's releases, built and installed once per test session (see ``wheels``)."""

from __future__ import annotations

import os

import pytest

from .wheels import Release, releases


@pytest.fixture(scope="session")
def teamnet_releases(tmp_path_factory) -> dict[str, Release]:
    """``{"1.0.0": Release, "2.0.0": Release, "2.0.1": Release}``, each importable by a subprocess.

    Under pytest-xdist the workers share one build (the session's common temp folder, a file lock).
    """
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return releases(root / "teamnet-releases")
