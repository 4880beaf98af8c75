"""The plugin is free when unused: a plain pytest run imports nothing heavy and costs no memory.

pytest loads the ``pytest11`` entry point in every run of an environment where the package is
installed, so a run without ``--ckpt-compat`` must not import torch or Lightning. Time bounds are
too noisy for a test on a shared machine; they live in ``benchmarks/bench_plugin_startup.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

HEAVY = ("torch", "lightning", "pytorch_lightning", "lightning_fabric", "pooch", "numpy")
RSS_BOUND_KB = 10 * 1024

# Written into the pytester folder: what the run imported and its peak RSS (this process only:
# VmHWM belongs to the process's own address space, unlike ru_maxrss which survives exec).
PROBE = """
import json, sys
from pathlib import Path

def pytest_unconfigure(config):
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    Path(OUT).write_text(json.dumps({
        "heavy": sorted(m for m in HEAVY if m in sys.modules),
        "plugin": config.pluginmanager.hasplugin("ckpt_compat"),
        "vmhwm_kb": hwm,
    }))
"""

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmHWM from /proc (Linux)")


def _run(pytester, out: Path, *args: str) -> dict:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args)
    result.assert_outcomes(passed=1)
    return json.loads(out.read_text())


@pytest.fixture
def one_test(pytester, monkeypatch):
    """A folder with one trivial test and the probe conftest; the plugin autoloads from its entry point."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    out = pytester.path / "probe.json"
    pytester.makeconftest(f"OUT = {str(out)!r}\nHEAVY = {HEAVY!r}\n" + PROBE)
    pytester.makepyfile(test_one="def test_one():\n    assert 1 + 1 == 2\n")
    return out


def test_plain_run_imports_nothing_heavy(pytester, one_test):
    probe = _run(pytester, one_test)
    assert probe["plugin"] is True  # the entry point was loaded: this measures our plugin
    assert probe["heavy"] == []


def test_plain_run_peak_memory_within_10_mb_of_no_plugin(pytester, one_test):
    without = _run(pytester, one_test, "-p", "no:ckpt_compat")
    assert without["plugin"] is False
    with_plugin = _run(pytester, one_test)
    assert with_plugin["plugin"] is True
    assert with_plugin["vmhwm_kb"] - without["vmhwm_kb"] <= RSS_BOUND_KB, (with_plugin, without)
