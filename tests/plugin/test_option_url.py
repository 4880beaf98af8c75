"""``--ckpt-compat-url`` / ini / env: goldens over real HTTP from 127.0.0.1, and the shard option."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest


@pytest.fixture
def http_goldens(golden_subset):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(golden_subset))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_http_url_option(pytester, http_goldens, golden_subset, cache_args, tmp_path):
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={http_goldens}",
        f"--ckpt-compat-registry={golden_subset}",
        "-k",
        "fetch or 2.6.6-end_of_fit-load",
        *cache_args,
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [f"ckpt-compat: goldens from {http_goldens} (registry {golden_subset}), cache {tmp_path / 'cache'}"]
    )
    assert (tmp_path / "cache" / "2.6.6" / "mid_epoch.ckpt").is_file()


def test_ini_and_env(pytester, http_goldens, golden_subset, cache_args, monkeypatch):
    pytester.makeini(f"[pytest]\nckpt_compat_url = {http_goldens}\nckpt_compat_registry = {golden_subset}\n")
    result = pytester.runpytest_subprocess("-k", "1.6.5-end_of_fit-fetch", *cache_args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"ckpt-compat: goldens from {http_goldens} *"])
    monkeypatch.setenv("CKPT_COMPAT_URL", str(golden_subset))
    result = pytester.runpytest_subprocess("-k", "1.6.5-end_of_fit-fetch", *cache_args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"ckpt-compat: goldens from {golden_subset} *"])


def test_unreachable_url_fails_fetch_clearly(pytester, golden_subset, cache_args):
    result = pytester.runpytest_subprocess(
        "--ckpt-compat-url=http://127.0.0.1:9/",
        f"--ckpt-compat-registry={golden_subset}",
        "-k",
        "1.6.5-end_of_fit-fetch",
        *cache_args,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*cannot fetch golden 1.6.5/end_of_fit.ckpt from http://127.0.0.1:9/1.6.5/end_of_fit.ckpt*"]
    )


@pytest.mark.parametrize(
    "shard, goldens", [("1/2", ["1.6.5-end_of_fit", "2.6.6-mid_epoch"]), ("2/2", ["2.6.6-end_of_fit"])]
)
def test_shard(pytester, golden_subset, cache_args, shard, goldens):
    result = pytester.runpytest_subprocess(
        f"--ckpt-compat-url={golden_subset}",
        f"--ckpt-compat-shard={shard}",
        "--collect-only",
        "-q",
        "-k",
        "fetch",
        *cache_args,
    )
    assert [line for line in result.stdout.lines if "::" in line] == [
        f"ckpt-compat/matrix::test_golden[{g}-fetch]" for g in goldens
    ]
