"""The public fixtures and the marker, one test each, in a real pytest run (pytester), as users write them.

Goldens come from the real subset in ``conftest.py`` (1.6.5 end_of_fit, 2.6.6 end_of_fit and
mid_epoch); ``--ckpt-compat`` is not needed for the fixtures. Every name is prefixed
``ckpt_compat_``, and ``ckpt_compat_migration`` is parametrized only under the marker: a project's
own argument named ``migration`` (Django, Alembic) is never touched.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def golden_args(golden_subset, tmp_path) -> list:
    return [
        f"--ckpt-compat-registry={golden_subset}",
        f"--ckpt-compat-url={golden_subset}",
        f"--ckpt-compat-cache={tmp_path / 'cache'}",
        "-p",
        "no:cacheprovider",
        "-q",
    ]


def test_golden_before_is_the_newest_earlier_golden_brought_just_before_the_unit(pytester, golden_args):
    pytester.makepyfile(
        test_before="""
import pytest
from pytest_ckpt_compat import applied_ids

@pytest.mark.ckpt_compat_migrations()
def test_before(ckpt_compat_migration, ckpt_compat_golden_before):
    assert ckpt_compat_golden_before.golden.name == "1.6.5/end_of_fit.ckpt"
    done = applied_ids(ckpt_compat_golden_before.checkpoint)
    assert ckpt_compat_migration.id not in done
    assert "pl-1.9.0-precision-key-mixed-precision-plugin" in done  # earlier pending units were applied
    assert ckpt_compat_golden_before.checkpoint["pytorch-lightning_version"] == "1.9.0"
"""
    )
    result = pytester.runpytest_subprocess("-k", "pl-2.0.0-drop-apex-amp-state", *golden_args)
    result.assert_outcomes(passed=1)


def test_golden_before_skips_when_no_golden_is_older(pytester, golden_args):
    pytester.makepyfile(
        test_before="import pytest\n\n@pytest.mark.ckpt_compat_migrations\n"
        "def test_before(ckpt_compat_golden_before):\n    raise AssertionError('not reached')\n"
    )
    result = pytester.runpytest_subprocess("-k", "pl-1.5.0-callback-state-keys", "-rs", *golden_args)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no golden saved before 1.5.0 (pl-1.5.0-callback-state-keys)*"])


def test_golden_after_is_the_oldest_golden_at_or_after_the_unit_as_loaded(pytester, golden_args):
    pytester.makepyfile(
        test_after="""
import pytest

@pytest.mark.ckpt_compat_migrations()
def test_after(ckpt_compat_golden_after):
    assert ckpt_compat_golden_after.golden.name == "2.6.6/end_of_fit.ckpt"  # end_of_fit preferred over mid_epoch
    assert ckpt_compat_golden_after.checkpoint["pytorch-lightning_version"] == "2.6.6"
    assert "ckpt_compat" not in ckpt_compat_golden_after.checkpoint  # as saved: nothing applied
"""
    )
    result = pytester.runpytest_subprocess("-k", "pl-2.6.0-early-stopping-stopping-reason", *golden_args)
    result.assert_outcomes(passed=1)


def test_migration_example_falls_back_to_a_hand_made_checkpoint(pytester, golden_args):
    pytester.makepyfile(
        test_example="""
import pytest

@pytest.mark.ckpt_compat_migrations()
def test_example(ckpt_compat_migration, ckpt_compat_migration_example):
    example = ckpt_compat_migration_example
    if ckpt_compat_migration.id == "pl-1.0.8-hparams-plain-dict":
        assert example.golden is None  # no golden before 1.0.8 in this registry
        assert example.checkpoint["pytorch-lightning_version"] == "1.0.7"
        assert "ckpt_compat" not in example.checkpoint  # 1.0.7 is past the earlier units: none applied
        assert example.checkpoint["hyper_parameters"] == {"lr": 0.01}
    else:
        assert example.golden.name == "1.6.5/end_of_fit.ckpt"
"""
    )
    result = pytester.runpytest_subprocess(
        "-k", "pl-1.0.8-hparams-plain-dict or pl-1.9.0-model-checkpoint-state-key", *golden_args
    )
    result.assert_outcomes(passed=2)


def test_marker_parametrizes_migration_over_a_downstream_catalogue(pytester, golden_args):
    units = pytester.mkdir("mymodel_migrations")
    for version, uid in (("1.0.0", "mm-1.0.0-rename"), ("2.0.0", "mm-2.0.0-drop")):
        (units / f"v{version.replace('.', '_')}__10_unit.py").write_text(
            f'"""Unit {uid}."""\nID = {uid!r}\nVERSION = {version!r}\n\n'
            "def upgrade(checkpoint):\n    return checkpoint\n"
        )
    pytester.makepyfile(
        test_marker="""
import pathlib
import pytest
from pytest_ckpt_compat import Catalogue

MINE = Catalogue(name="mymodel", path=pathlib.Path(__file__).parent / "mymodel_migrations",
                 version_key="mymodel_version", target_version="2.0.0")

@pytest.mark.ckpt_compat_migrations(catalogue=MINE)
def test_mine(ckpt_compat_migration):
    assert ckpt_compat_migration.catalogue == "mymodel"

@pytest.mark.ckpt_compat_migrations
def test_default_is_every_registered_catalogue(ckpt_compat_migration):
    assert ckpt_compat_migration.catalogue == "lightning"
"""
    )
    result = pytester.runpytest_subprocess("-vv", *golden_args)  # -q in golden_args: -vv is -v
    from pytest_ckpt_compat import lightning_catalogue

    result.assert_outcomes(passed=2 + len(lightning_catalogue().migrations))  # every Lightning unit, once
    result.stdout.fnmatch_lines(["*test_mine[[]mm-1.0.0-rename[]] PASSED*", "*test_mine[[]mm-2.0.0-drop[]] PASSED*"])


def test_a_projects_own_migration_argument_is_left_alone(pytester):
    """Before: every argument named ``migration`` was parametrized over the catalogue (and collided)."""
    pytester.makeconftest("import pytest\n\n@pytest.fixture\ndef migration():\n    return 'from conftest'\n")
    pytester.makepyfile(
        test_django="""
import pytest

@pytest.mark.parametrize("migration", ["0001_initial", "0002_auto"])
def test_parametrized(migration):
    assert migration.startswith("000")

def test_fixture(migration):
    assert migration == "from conftest"
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3)


def test_the_migration_argument_without_the_marker_says_how_to_opt_in(pytester, golden_args):
    pytester.makepyfile(test_unmarked="def test_unmarked(ckpt_compat_migration):\n    pass\n")
    result = pytester.runpytest_subprocess(*golden_args)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*asks for `ckpt_compat_migration` (or a fixture built on it) without the marker"
            "*@pytest.mark.ckpt_compat_migrations()*"
        ]
    )
