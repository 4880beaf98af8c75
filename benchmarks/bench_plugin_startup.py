"""What the installed plugin costs a pytest run that does not use it: time and peak memory.

Runs a one-test pytest session in a fresh temp folder, alternately with the plugin autoloaded
(as in every environment where the package is installed) and with ``-p no:ckpt_compat``, and
prints the medians (wall and CPU time of the child) and their ratio. Both are measured in the same
run, interleaved, so a busy machine slows both alike. Peak memory is the child's own ``VmHWM``
(Linux), written by a conftest.

Target (issue 11): at most +0.1 s and +10 MB per run without ``--ckpt-compat``.

    python benchmarks/bench_plugin_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFTEST = """
import json, sys
from pathlib import Path

def pytest_unconfigure(config):
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    heavy = [m for m in ("torch", "lightning", "pytorch_lightning", "pooch", "numpy") if m in sys.modules]
    Path("probe.json").write_text(json.dumps({"vmhwm_kb": hwm, "heavy": heavy,
                                              "plugin": config.pluginmanager.hasplugin("ckpt_compat")}))
"""


def run_once(folder: Path, extra: list[str]) -> tuple[float, float, dict]:
    """(wall s, CPU s of the child, probe): CPU time is what a loaded machine blurs least."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"pytest {' '.join(extra)} failed with exit code {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, json.loads((folder / "probe.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each variant (medians are printed)")
    args = parser.parse_args()
    variants = {"with plugin": [], "-p no:ckpt_compat": ["-p", "no:ckpt_compat"]}
    results: dict[str, list] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="bench-plugin-") as tmp:
        folder = Path(tmp)
        (folder / "conftest.py").write_text(CONFTEST)
        (folder / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        for extra in variants.values():  # warm-up: page cache, .pyc files
            run_once(folder, extra)
        for _ in range(args.repeat):
            for name, extra in variants.items():
                results[name].append(run_once(folder, extra))
    rows = {}
    for name, runs in results.items():
        rows[name] = (
            statistics.median(w for w, _, _ in runs),
            statistics.median(c for _, c, _ in runs),
            statistics.median(p["vmhwm_kb"] for _, _, p in runs) / 1024,
            sorted({m for _, _, p in runs for m in p["heavy"]}),
            all(p["plugin"] for _, _, p in runs),
        )
    load = os.getloadavg()[0]
    print(
        f"one-test pytest run, median of {args.repeat} (python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load "
        f"{load:.1f})"
    )
    print(f"{'variant':<20} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13}  plugin loaded  heavy modules imported")
    for name, (wall, cpu, rss, heavy, loaded) in rows.items():
        print(f"{name:<20} {wall:8.3f} {cpu:8.3f} {rss:13.1f}  {str(loaded):<13}  {', '.join(heavy) or '-'}")
    (w1, c1, r1, _, _), (w0, c0, r0, _, _) = rows["with plugin"], rows["-p no:ckpt_compat"]
    print(
        f"ratio with/without: wall {w1 / w0:.2f}x (+{w1 - w0:.3f} s), CPU {c1 / c0:.2f}x (+{c1 - c0:.3f} s), "
        f"peak RSS {r1 / r0:.2f}x (+{r1 - r0:.1f} MiB)"
    )
    ok = min(w1 - w0, c1 - c0) <= 0.1 and r1 - r0 <= 10  # on a busy machine the wall delta is mostly noise
    print(f"target +0.1 s and +10 MB: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
