"""The wheel ships the catalogue as package data, never as a top-level `migrations` package."""

from __future__ import annotations

import os
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


def test_wheel_requires_what_the_readme_commands_use(wheel):
    """``-n 2`` (pytest-xdist) works after a plain ``pip install pytest-ckpt-compat``, not only with ``[test]``."""
    with zipfile.ZipFile(wheel) as zf:
        (meta,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        requires = [line for line in zf.read(meta).decode().splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in requires if r.startswith("Requires-Dist: pytest-xdist") and "extra ==" not in r] != []


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """The wheel unpacked as a site-packages folder, and a command that runs ``ckpt-compat`` from it
    (in an empty folder, so neither the checkout nor its editable install is on the path first)."""
    site = tmp_path_factory.mktemp("site-packages")
    zipfile.ZipFile(wheel).extractall(site)
    cwd = tmp_path_factory.mktemp("cwd")

    def ckpt_compat(*args: str) -> subprocess.CompletedProcess:
        code = (
            "import sys, pytest_ckpt_compat, pytest_ckpt_compat.cli as cli; "
            f"assert pytest_ckpt_compat.__file__.startswith({str(site)!r}), pytest_ckpt_compat.__file__; "
            "sys.exit(cli.main(sys.argv[1:]))"
        )
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(site)},
            capture_output=True,
            text=True,
            timeout=300,
        )

    return site, ckpt_compat


def test_golden_list_from_a_wheel_lists_the_goldens_it_ships(installed):
    site, ckpt_compat = installed
    result = ckpt_compat("golden", "list")
    assert result.returncode == 0, result.stderr
    folders = sorted(p.parent.name for p in (ROOT / "golden").glob("*/meta.json"))
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{len(folders)} releases, ") and not summary.endswith(" 0.00 MB"), summary
    listed = sorted(line.split()[0] for line in result.stdout.strip().splitlines()[:-1])
    assert listed == folders


def test_golden_add_from_a_wheel_asks_for_a_folder_and_writes_nothing(installed):
    site, ckpt_compat = installed
    before = sorted(p.relative_to(site) for p in site.rglob("*"))
    result = ckpt_compat("golden", "add", "2.6.6")
    assert result.returncode == 9, result.stderr  # GoldenError
    assert "no golden/ folder of a checkout next to the installed package: pass --golden-dir" in result.stderr
    assert sorted(p.relative_to(site) for p in site.rglob("*") if "__pycache__" not in p.parts) == [
        p for p in before if "__pycache__" not in p.parts
    ]
