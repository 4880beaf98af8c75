"""The wheel ships the catalogue as package data, never as a top-level `migrations` package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{done.stderr[-2000:]}")
    (path,) = out.glob("pytest_ckpt_compat-*.whl")
    return path


def test_wheel_has_no_top_level_migrations_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {n.split("/", 1)[0] for n in names}
    assert "migrations" not in top_levels
    assert {t for t in top_levels if not t.endswith(".dist-info")} == {"pytest_ckpt_compat"}


def test_wheel_carries_every_migration_unit_and_the_registry(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    units = sorted(p.name for p in (ROOT / "migrations").glob("v*.py"))
    assert units and all(f"pytest_ckpt_compat/_data/migrations/{u}" in names for u in units)
    assert "pytest_ckpt_compat/_data/golden/registry.txt" in names
    assert "pytest_ckpt_compat/_data/golden/recipes/recipe.py" in names
    metas = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "golden").glob("*/meta.json"))
    assert metas and all(f"pytest_ckpt_compat/_data/{m}" in names for m in metas)
    assert not any(n.endswith(".ckpt") for n in names)  # goldens are fetched, not installed


def test_entry_points_name_the_cli_and_the_plugin(wheel):
    with zipfile.ZipFile(wheel) as zf:
        (ep,) = [n for n in zf.namelist() if n.endswith("entry_points.txt")]
        text = zf.read(ep).decode()
    assert "ckpt-compat = pytest_ckpt_compat.cli:main" in text
    assert "[pytest11]" in text and "pytest_ckpt_compat.plugin" in text


def test_wheel_marks_the_package_as_typed(wheel):
    """PEP 561: the ``py.typed`` marker lets type checkers use the package's own annotations."""
    assert "pytest_ckpt_compat/py.typed" in zipfile.ZipFile(wheel).namelist()
