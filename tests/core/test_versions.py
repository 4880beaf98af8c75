"""The installed Lightning's version is read from the metadata once per process (the matrix asks per cell)."""

from __future__ import annotations

from pytest_ckpt_compat.core import versions


def test_installed_version_reads_the_metadata_once(monkeypatch):
    calls = []
    real = versions.metadata.version
    monkeypatch.setattr(versions.metadata, "version", lambda dist: calls.append(dist) or real(dist))
    versions.installed_lightning_version.cache_clear()
    try:
        first = versions.installed_lightning_version()
        for _ in range(3):
            assert versions.installed_lightning_version() == first
        assert len(calls) == 2  # pytorch-lightning and lightning, once each
    finally:
        versions.installed_lightning_version.cache_clear()
