"""A small golden folder for the plugin tests: a copy of real goldens (registry, meta, recipe)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_ckpt_compat.goldens.registry import read_registry, write_registry

REPO_GOLDEN = Path(__file__).resolve().parents[2] / "golden"
SUBSET = ("1.6.5/end_of_fit.ckpt", "2.6.6/end_of_fit.ckpt", "2.6.6/mid_epoch.ckpt")


def make_golden_subset(dest: Path, names=SUBSET) -> Path:
    """Copy ``names`` with their registry lines, trimmed meta.json and the recipe into ``dest``."""
    registry = read_registry(REPO_GOLDEN)
    dest.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name in sorted(names):
        release, file = name.split("/")
        (dest / release).mkdir(exist_ok=True)
        shutil.copyfile(REPO_GOLDEN / name, dest / name)
        meta_path = dest / release / "meta.json"
        meta = (
            json.loads(meta_path.read_text())
            if meta_path.exists()
            else dict(json.loads((REPO_GOLDEN / release / "meta.json").read_text()), scenarios={})
        )
        meta["scenarios"][Path(file).stem] = json.loads((REPO_GOLDEN / release / "meta.json").read_text())["scenarios"][
            Path(file).stem
        ]
        meta_path.write_text(json.dumps(meta))
        entries[name] = registry[name]
    write_registry(dest, entries)
    shutil.copytree(
        REPO_GOLDEN / "recipes", dest / "recipes", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    return dest


@pytest.fixture(scope="session")
def golden_subset(tmp_path_factory) -> Path:
    return make_golden_subset(tmp_path_factory.mktemp("goldens") / "golden")


@pytest.fixture
def golden_copy(tmp_path, golden_subset) -> Path:
    """A private copy tests may break."""
    return Path(shutil.copytree(golden_subset, tmp_path / "golden-copy"))


@pytest.fixture
def cache_args(tmp_path) -> list:
    """A private cache per test, and no .pytest_cache in the pytester folder."""
    return ["--ckpt-compat", f"--ckpt-compat-cache={tmp_path / 'cache'}", "-p", "no:cacheprovider"]


@pytest.fixture(autouse=True)
def _importable_from_anywhere(monkeypatch):
    """Subprocess runs start in a temp folder: put the checkout first on the path.

    (An editable install plus wheel force-include leaves a ``site-packages/pytest_ckpt_compat/_data``
    folder that otherwise shadows the checkout as a namespace package.)
    """
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
