"""``--ckpt-compat-check``: a removed golden, an unregistered golden, -k respected, format drift.

The check-mode tests carry the release in their ids (``test_schema_drift[2.6.6-end_of_fit]``,
``test_installed_release_has_golden[2.6.6]``), so sharding by release with ``-k`` keeps them in the
shard of that release; a run that leaves them out says so.
"""

from __future__ import annotations


def _drop(golden_dir, name):
    lines = [line for line in (golden_dir / "registry.txt").read_text().splitlines() if not line.startswith(name)]
    (golden_dir / "registry.txt").write_text("\n".join(lines) + "\n")


def test_clean_check_passes(pytester, golden_subset, cache_args):
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_subset}",
        "--ckpt-compat-check",
        "-k",
        "test_golden or installed or drift",
        *cache_args,
    )
    result.assert_outcomes(passed=24)  # 21 cells, the installed-release check, drift of 2 scenarios
    assert result.ret == 0
    assert "ckpt-compat check:" not in result.stdout.str()


def test_removed_golden_of_installed_release_fails(pytester, golden_copy, cache_args):
    for name in ("2.6.6/end_of_fit.ckpt", "2.6.6/mid_epoch.ckpt"):
        _drop(golden_copy, name)
    (golden_copy / "2.6.6" / "meta.json").unlink()
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_copy}", "--ckpt-compat-check", "-k", "installed", *cache_args
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*the installed Lightning 2.6.6 has no golden in *registry.txt (releases with goldens: 1.6.5)*"]
    )


def test_golden_missing_from_registry_fails_the_session(pytester, golden_copy, cache_args):
    """All tests pass, but meta.json describes a golden the registry forgot: the session fails."""
    _drop(golden_copy, "2.6.6/mid_epoch.ckpt")
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_copy}", "--ckpt-compat-check", "-k", "end_of_fit-fetch", *cache_args
    )
    result.assert_outcomes(passed=2)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "ckpt-compat check: golden 2.6.6/mid_epoch.ckpt is described in meta.json but missing from registry.txt, "
            "so it is never tested"
        ]
    )


def test_deselected_goldens_are_not_unexercised(pytester, golden_subset, cache_args):
    """Deselected goldens are no failure; the check-mode tests it left out are named, with the reason."""
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_subset}", "--ckpt-compat-check", "-k", "1.6.5-end_of_fit-fetch", *cache_args
    )
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "ckpt-compat check: not checked: schema drift was not checked in this run: its tests "
            "(test_schema_drift[[]<release>-<scenario>[]]) were deselected by -k/-m or --ckpt-compat-shard*",
            "ckpt-compat check: not checked: the installed release's golden was not checked in this run*",
        ]
    )


def test_selecting_the_newest_release_keeps_drift_and_the_installed_check(pytester, golden_subset, cache_args):
    """Before: ``-k "2.6.6"`` (the README's sharding advice) silently dropped both check-mode tests."""
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_subset}", "--ckpt-compat-check", "-k", "2.6.6", "--collect-only", "-q", *cache_args
    )
    check_items = [line for line in result.stdout.lines if line.startswith("ckpt-compat/check::")]
    assert check_items == [
        "ckpt-compat/check::test_installed_release_has_golden[2.6.6]",
        "ckpt-compat/check::test_schema_drift[2.6.6-end_of_fit]",
        "ckpt-compat/check::test_schema_drift[2.6.6-mid_epoch]",
        "ckpt-compat/check::test_round_trip[2.6.6-end_of_fit]",
        "ckpt-compat/check::test_round_trip[2.6.6-mid_epoch]",
    ]


def test_collect_only_reports_no_golden_as_unexercised(pytester, golden_subset, cache_args):
    """Before: ``--collect-only`` failed check mode with every golden "selected but never exercised"."""
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_subset}", "--ckpt-compat-check", "--collect-only", "-q", *cache_args
    )
    assert result.ret == 0
    assert "never exercised" not in result.stdout.str() and "ckpt-compat check:" not in result.stdout.str()


def test_unexercised_selected_golden_fails(pytester, golden_subset, cache_args):
    """A run stopped early: the goldens that were selected but never ran are named."""
    pytester.makepyfile(
        stopper="import pytest\n"
        "@pytest.hookimpl(tryfirst=True)\n"
        "def pytest_runtest_setup(item):\n"
        "    if '2.6.6-mid_epoch' in item.nodeid:\n"
        "        pytest.exit('stopped early', returncode=0)\n"
    )
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_subset}", "--ckpt-compat-check", "-k", "fetch", "-p", "stopper", *cache_args
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["ckpt-compat check: golden 2.6.6/mid_epoch.ckpt was selected but never exercised*"])


def test_synthetic_format_change_is_reported(pytester, golden_subset, cache_args):
    """Lightning "starts" writing a new key and stops writing another: the drift check names both."""
    pytester.makeconftest(
        "from pytest_ckpt_compat.lightning import trainer_module\n"
        "connector = trainer_module().trainer.connectors.checkpoint_connector._CheckpointConnector\n"
        "original = connector.dump_checkpoint\n"
        "def dump(self, weights_only=False):\n"
        "    checkpoint = original(self, weights_only)\n"
        "    checkpoint['new_format_key'] = {'count': 1}\n"
        "    checkpoint.pop('hparams_name', None)\n"
        "    return checkpoint\n"
        "connector.dump_checkpoint = dump\n"
    )
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_subset}", "--ckpt-compat-check", "-k", "drift and end_of_fit", *cache_args
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*schema drift: a end_of_fit checkpoint saved now by Lightning 2.6.6 differs from golden "
            "2.6.6/end_of_fit.ckpt*",
            "*- hparams_name (str)  only in the upgraded golden",
            "*+ new_format_key (dict)  only in the checkpoint saved now",
            "*+ new_format_key.count (int)  only in the checkpoint saved now",
            "*The golden was saved by the installed release 2.6.6 itself, so no migration can be missing:*",
        ]
    )
