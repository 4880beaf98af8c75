"""``--ckpt-compat``: collection, ids, -k selection, the terminal matrix, sabotaged units."""

from __future__ import annotations

import pytest

from pytest_ckpt_compat.core.catalogue import lightning_catalogue

CHECKS = ("fetch", "upgrade", "load", "resume", "weights_only", "plain_resume", "evaluate")
GOLDEN_IDS = ("1.6.5-end_of_fit", "2.6.6-end_of_fit", "2.6.6-mid_epoch")


def test_nothing_without_the_flag(pytester):
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "ckpt-compat:" not in result.stdout.str() and "ckpt-compat matrix" not in result.stdout.str()


def test_collects_one_test_per_golden_and_check(pytester, golden_subset, tmp_path, cache_args):
    result = pytester.runpytest_subprocess(f"--ckpt-compat-url={golden_subset}", "--collect-only", "-q", *cache_args)
    ids = [line for line in result.stdout.lines if "test_golden[" in line]
    assert ids == [f"ckpt-compat/matrix::test_golden[{g}-{c}]" for g in GOLDEN_IDS for c in CHECKS]
    units = [line for line in result.stdout.lines if "test_migration[" in line]
    assert units == [f"ckpt-compat/matrix::test_migration[{m.id}]" for m in lightning_catalogue().migrations]


def test_k_selects_a_release_series(pytester, golden_subset, tmp_path, cache_args):
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_subset}", "--collect-only", "-q", "-k", "1.6 and test_golden", *cache_args
    )
    assert [line for line in result.stdout.lines if "::" in line] == [
        f"ckpt-compat/matrix::test_golden[1.6.5-end_of_fit-{c}]" for c in CHECKS
    ]


def test_matrix_passes_and_is_summarised(pytester, golden_subset, tmp_path, cache_args):
    result = pytester.runpytest_subprocess(f"--ckpt-compat-url={golden_subset}", "-k", "test_golden", *cache_args)
    result.assert_outcomes(passed=21)
    result.stdout.fnmatch_lines(
        [
            f"ckpt-compat: goldens from {golden_subset}*cache {tmp_path / 'cache'}",
            "*- ckpt-compat matrix -*",
            "ckpt-compat: no failures (the full table: --ckpt-compat-report=FILE.md, or -v)",
            "ckpt-compat: 3 goldens, 0 migrations: 21 passed, 0 failed, 0 skipped",
        ]
    )
    assert "1.6.5-end_of_fit  pass" not in result.stdout.str()  # a clean run prints no table of pass


def test_newer_golden_is_skipped_with_reason(pytester, golden_copy, tmp_path, cache_args):
    """A golden saved by a release newer than the installed one cannot be loaded: skip, say why."""
    import json

    meta_path = golden_copy / "2.6.6" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["scenarios"]["mid_epoch"]["saved_version"] = "99.0.0"
    meta_path.write_text(json.dumps(meta))
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_copy}", "-k", "2.6.6-mid_epoch", "-rs", *cache_args
    )
    result.assert_outcomes(passed=1, skipped=6)
    result.stdout.fnmatch_lines(
        ["*golden 2.6.6-mid_epoch was saved by Lightning 99.0.0, newer than the installed 2.6.6*"]
    )


SABOTAGE = """
import dataclasses
from pytest_ckpt_compat.core.catalogue import lightning_catalogue

def _broken(checkpoint):
    raise RuntimeError("sabotaged for the test")

_units = lightning_catalogue().migrations
_i = next(i for i, m in enumerate(_units) if m.id == {unit!r})
_units[_i] = dataclasses.replace(_units[_i], upgrade=_broken)
"""


def test_sabotaged_unit_fails_exactly_its_cells(pytester, golden_subset, tmp_path, cache_args):
    """Breaking one 2.0.0 unit fails the 1.6.5 golden's upgrade-dependent cells and that unit only."""
    unit = next(m.id for m in lightning_catalogue().migrations if str(m.version) == "2.0.0")
    pytester.makeconftest(SABOTAGE.format(unit=unit))
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_subset}", "-k", f"test_golden or {unit}", *cache_args
    )
    failed = sorted(line.split(" ")[1] for line in result.stdout.lines if line.startswith("FAILED "))
    expected = sorted(
        f"ckpt-compat/matrix::test_golden[1.6.5-end_of_fit-{c}]"
        for c in ("upgrade", "load", "resume", "weights_only", "plain_resume", "evaluate")
    )
    expected.append(f"ckpt-compat/matrix::test_migration[{unit}]")
    assert failed == sorted(expected)
    result.stdout.fnmatch_lines([f"*MigrationError: migration {unit} failed: RuntimeError: sabotaged for the test*"])
    result.stdout.fnmatch_lines(
        ["1.6.5-end_of_fit  pass * FAIL * FAIL * FAIL * FAIL", "ckpt-compat: 2 more goldens without failures*"]
    )


@pytest.mark.parametrize("blocked", ["pytorch_lightning", "lightning"])
def test_works_with_either_package(pytester, golden_subset, tmp_path, blocked, cache_args):
    """With one of the two Lightning packages unimportable, the other one runs the matrix."""
    pytester.makeconftest(
        "import sys\n"
        f"for name in [n for n in list(sys.modules) if n == {blocked!r} or n.startswith({blocked!r} + '.')]:\n"
        "    del sys.modules[name]\n"
        f"sys.modules[{blocked!r}] = None\n"
        "import pytest_ckpt_compat.core.versions as v\n"
        "v.lightning_module_name.cache_clear()\n"
        "def test_which():\n"
        "    from pytest_ckpt_compat.lightning import trainer_module\n"
        f"    assert not trainer_module().__name__.startswith({blocked!r})\n"
    )
    pytester.makepyfile(test_which="from conftest import test_which\n")
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_subset}",
        "-k",
        "which or 1.6.5-end_of_fit-resume or 2.6.6-end_of_fit-load",
        *cache_args,
    )
    result.assert_outcomes(passed=3)


def test_matrix_runs_torch_on_one_thread(pytester, golden_subset, cache_args, monkeypatch):
    """The matrix's tiny models gain nothing from intra-op threads: one in a serial run too, not only in workers."""
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # torch would start with 3 threads on any machine
    pytester.makepyfile(test_threads="import torch\n\ndef test_threads():\n    assert torch.get_num_threads() == 1\n")
    result = pytester.runpytest_subprocess(f"--ckpt-compat-url={golden_subset}", "-k", "threads", *cache_args)
    result.assert_outcomes(passed=1)
