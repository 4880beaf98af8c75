"""What a team's suite costs: per golden of the example team (``examples/teamnet``), next to a bare resume.

Ratios are taken within one run on one machine, so they compare across machines; absolute seconds
do not. For every golden of teamnet 1.0.0 and 2.0.0, with teamnet 2.0.0 installed (built into a
wheel here, as the tests do), the median of ``--repeat`` timings (after one warm-up) of

* (a) a *bare* resume: the recipe's module, datamodule and callbacks,
  ``Trainer(...).fit(model, dm, ckpt_path=<file>)`` for one more epoch, on the file upgraded once
  beforehand (a 1.0.0 golden cannot be resumed by teamnet 2.0.0 at all without its catalogue: the
  bare run is what a user does after ``ckpt-compat upgrade``);
* (c) every check of ``checks.CHECKS`` (six) on the golden in one fresh workspace: what
  ``pytest --ckpt-compat-goldens ... --ckpt-compat-recipe ...`` spends per golden.

Printed: ``c/a`` per golden. The built-in suite's figures are ``bench_matrix.py``'s.

    python benchmarks/bench_team.py [--repeat 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOLDENS = REPO / "examples" / "teamnet" / "goldens"
RECIPE = "teamnet.goldens:RECIPE"


def bare_resume(ws, golden, path: Path, tmp: Path, max_epochs: int) -> int:
    """Plain ``Trainer.fit(ckpt_path=...)`` with the recipe's objects: no tool, Lightning's own load."""
    import torch

    view = ws.view
    torch.manual_seed(1234)
    upgraded, _ = ws.upgraded(golden)
    model = view.make_module(golden, upgraded)
    kwargs = view.trainer_kwargs(golden.scenario, str(tmp))
    kwargs.update(callbacks=view.make_callbacks(golden.scenario, str(tmp)), max_epochs=max_epochs, deterministic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = view.pl.Trainer(**kwargs)
        trainer.fit(model, datamodule=view.make_datamodule(golden.scenario), ckpt_path=str(path), weights_only=False)
    return int(trainer.global_step)


def all_checks(suite, golden, tmp: Path) -> None:
    from pytest_ckpt_compat.matrix import checks
    from pytest_ckpt_compat.matrix.workspace import Workspace

    suite.store._verified.clear()  # a new session verifies each golden's sha256 once: count that too
    ws = Workspace(suite.store, tmp / "ws", suite)
    for check in checks.CHECKS:
        (tmp / check).mkdir()
        checks.run(ws, golden, check, tmp / check)


def measure(repeat: int, out: list) -> None:
    import logging

    from pytest_ckpt_compat.goldens.store import GoldenStore
    from pytest_ckpt_compat.matrix import harness
    from pytest_ckpt_compat.matrix.suites import Suite
    from pytest_ckpt_compat.matrix.workspace import Workspace

    work = Path(tempfile.mkdtemp(prefix="bench-team-"))
    store = GoldenStore(GOLDENS, work / "cache", registry_dir=GOLDENS, suite="teamnet", progressbar=False)
    suite = Suite(store, recipe_spec=RECIPE, name="teamnet")
    _ = suite.recipe  # imports Lightning (which sets its loggers' level) and registers the team's catalogue
    for name in ("lightning.pytorch", "pytorch_lightning", "lightning.fabric", "lightning_fabric"):
        for logger in (name, f"{name}.utilities.rank_zero"):
            logging.getLogger(logger).setLevel(logging.ERROR)
    _say(out, f"== teamnet suite: per-golden cost vs a bare resume (median of {repeat} after 1 warm-up; seconds) ==")
    _say(out, f"{'golden':26} {'a bare':>8} {'c all 6':>8} {'c/a':>6}")
    ratios = []
    for golden in store.goldens:
        ws = Workspace(store, work / f"probe-{golden.id}", suite)
        upgraded, upgraded_path = ws.upgraded(golden)
        expected = harness.expected_counters(golden, upgraded, ws.load(golden))
        times: dict[str, list] = {"a": [], "c": []}
        for i in range(repeat + 1):
            for key in times:
                tmp = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=work))
                start = time.perf_counter()
                if key == "a":
                    bare_resume(ws, golden, upgraded_path, tmp, expected["epoch"] + 1)
                else:
                    all_checks(suite, golden, tmp)
                if i:
                    times[key].append(time.perf_counter() - start)
                shutil.rmtree(tmp, ignore_errors=True)
        a, c = statistics.median(times["a"]), statistics.median(times["c"])
        ratios.append(c / a)
        _say(out, f"{golden.id:26} {a:8.3f} {c:8.3f} {c / a:6.2f}")
    _say(out, f"median c/a {statistics.median(ratios):.2f}, worst {max(ratios):.2f}")
    shutil.rmtree(work, ignore_errors=True)


def _say(out: list, line: str) -> None:
    print(line, flush=True)
    out.append(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)  # the run with teamnet importable
    args = parser.parse_args(argv)
    if not args.inside:  # build and install teamnet 2.0.0 as the tests do, then measure where it is importable
        sys.path.insert(0, str(REPO))
        from tests.teams.wheels import releases

        release = releases(Path(tempfile.gettempdir()) / "ckpt-compat-bench-teamnet")["2.0.0"]
        env = release.env()
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(REPO)])
        cmd = [sys.executable, __file__, "--inside", "--repeat", str(args.repeat)]
        cmd += ["--out", str(args.out)] if args.out else []
        return subprocess.run(cmd, env=env).returncode
    out = [f"# bench_team: Python {platform.python_version()}, {os.cpu_count()} cores"]
    measure(args.repeat, out)
    if args.out:
        args.out.write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
