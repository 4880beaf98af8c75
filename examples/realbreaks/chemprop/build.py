"""Rebuild the chemprop 2.0 -> 2.1 real break from PyPI and check it: two isolated environments.

1. ``uv venv`` with a pyenv Python and ``chemprop>=2.0,<2.1`` (2.0.5 when this was built): run
   ``save_v2_0.py``, which trains a tiny MPNN and writes ``chemprop-2.0-metrics.ckpt`` + ``meta.json``;
2. a second venv with ``chemprop>=2.1,<2.2`` (2.1.2) and this package: run ``resume_v2_1.py`` on the
   file: chemprop alone fails, this package without the team catalogue names the error, with it the
   file loads and resumes with exact state.

Usage: ``python examples/realbreaks/chemprop/build.py [--out DIR] [--envs DIR] [--torch WHEEL_OR_SPEC]``.
``--torch`` installs that torch first (a CPU wheel saves a multi-GB CUDA download). Prints the
check's JSON and the time of each step; exits non-zero when a step or an expectation fails.
Needs ``uv`` and a pyenv Python 3.11 (as ``ckpt-compat golden add`` does).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
RELEASES = {"chemprop20": "chemprop>=2.0,<2.1", "chemprop21": "chemprop>=2.1,<2.2"}


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(command), file=sys.stderr)
    return subprocess.run(command, check=True, **kwargs)


def _env(envs: Path, name: str, python: Path, uv: list[str], torch: str | None, extra: list[str]) -> Path:
    folder = envs / name
    if folder.exists():
        shutil.rmtree(folder)
    _run([*uv, "venv", "-q", "-p", str(python), str(folder)])
    exe = folder / "bin" / "python"
    _run([*uv, "pip", "install", "-q", "--python", str(exe), *([torch] if torch else []), RELEASES[name], *extra])
    return exe


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    from pytest_ckpt_compat.goldens.environments import find_python, uv_command

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "data", help="where the file and meta.json go")
    parser.add_argument(
        "--envs", type=Path, default=Path(tempfile.gettempdir()) / "ckpt-compat-realbreaks", help="environments"
    )
    parser.add_argument("--torch", help="a torch wheel or requirement installed first in both environments")
    parser.add_argument("--python", default="3.11")
    args = parser.parse_args(argv)
    python, uv, timings = find_python(args.python), uv_command(), {}
    args.envs.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    old = _env(args.envs, "chemprop20", python, uv, args.torch, [])
    timings["env_2.0_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    _run([str(old), str(HERE / "save_v2_0.py"), str(args.out)], cwd=args.envs)
    timings["save_2.0_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    new = _env(args.envs, "chemprop21", python, uv, args.torch, ["-e", str(REPO)])
    timings["env_2.1_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    done = subprocess.run([str(new), str(HERE / "resume_v2_1.py"), str(args.out / "chemprop-2.0-metrics.ckpt")])
    timings["check_2.1_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(timings))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
