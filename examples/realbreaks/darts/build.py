"""Rebuild the darts 0.22 -> 0.23 real break from PyPI and check it: two isolated environments.

1. ``uv venv`` with a pyenv Python 3.10 and ``u8darts[torch]==0.22.0``, resolved as of the day
   before 0.23.0 (``--exclude-newer 2022-12-20``; torch 2.0.0 and its own dependencies as of
   2023-03-20, the oldest torch wheels uv's cache here had): run ``save.py``, which trains a
   tiny BlockRNNModel with encoders and writes ``model.pt``, ``model.pt.ckpt``, the run folder
   (``darts022/_model.pth.tar``, ``darts022/checkpoints/last-epoch=1.ckpt``) and ``meta.json``;
2. a copy of those files upgraded by ``upgrade.py`` with this package (this interpreter's environment);
3. a second venv with ``u8darts[torch]==0.23.0`` (as of 2023-01-10) and no trace of this package:
   ``resume_v0_23.py`` shows 0.23 alone fails on the saved files and loads and resumes the upgraded ones;
   ``save.py`` there writes the same files after the move (``data-0.23/``), which the catalogue leaves alone.

Usage: ``python examples/realbreaks/darts/build.py [--out DIR] [--envs DIR]``. The environments go
in ``--envs``; the files are written in the neutral folder ``/golden-build/realbreaks-darts`` (the
goldens' build root, ``CKPT_COMPAT_BUILD_ROOT``; darts' ModelCheckpoint keeps that folder's real path
in them, so it names no machine's folder) and copied to ``--out`` (and ``data-0.23`` beside it).
Prints the check's JSON and the time of each step; exits non-zero when a step or an expectation
fails. Needs ``uv``, a pyenv Python 3.10 and a writable build root; two builds at once share it.
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
TORCH = ["torch", "triton", "cmake", "lit", "sympy", "mpmath", "networkx", "jinja2", "markupsafe", "filelock"]
TORCH += (
    ["typing-extensions"]
    + [
        f"nvidia-{lib}-cu11"
        for lib in ("cublas", "cuda-cupti", "cuda-nvrtc", "cuda-runtime", "cudnn", "cufft", "curand", "cusolver")
    ]
    + ["nvidia-cusparse-cu11", "nvidia-nccl-cu11", "nvidia-nvtx-cu11"]
)
RELEASES = {"darts022": ("u8darts[torch]==0.22.0", "2022-12-20"), "darts023": ("u8darts[torch]==0.23.0", "2023-01-10")}


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(command), file=sys.stderr)
    return subprocess.run(command, check=True, **kwargs)


def _env(envs: Path, name: str, python: Path, uv: list[str]) -> Path:
    folder = envs / name
    if folder.exists():
        shutil.rmtree(folder)
    _run([*uv, "venv", "-q", "-p", str(python), str(folder)])
    exe = folder / "bin" / "python"
    requirement, day = RELEASES[name]
    pins = [arg for package in TORCH for arg in ("--exclude-newer-package", f"{package}=2023-03-20")]
    _run(
        [*uv, "pip", "install", "-q", "--python", str(exe), "--exclude-newer", day, *pins, "torch==2.0.0", requirement]
    )
    return exe


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    from pytest_ckpt_compat.goldens.building import BUILD_ROOT
    from pytest_ckpt_compat.goldens.environments import find_python, uv_command

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "data", help="where the files and meta.json go")
    parser.add_argument(
        "--envs", type=Path, default=Path(tempfile.gettempdir()) / "ckpt-compat-realbreaks-darts", help="environments"
    )
    args = parser.parse_args(argv)
    python, uv, timings = find_python("3.10"), uv_command(), {}
    args.envs.mkdir(parents=True, exist_ok=True)
    work = BUILD_ROOT / "realbreaks-darts"  # the folder the files name (the runs' working directory)
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.mkdir(parents=True)
    except OSError as error:
        print(f"cannot create the build folder {work} ({error}): set CKPT_COMPAT_BUILD_ROOT", file=sys.stderr)
        return 2

    start = time.perf_counter()
    old = _env(args.envs, "darts022", python, uv)
    timings["env_0.22_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    _run([str(old), str(HERE / "save.py"), "data"], cwd=work)
    timings["save_0.22_s"] = round(time.perf_counter() - start, 1)
    if args.out.resolve() != (work / "data").resolve():
        shutil.rmtree(args.out, ignore_errors=True)
        shutil.copytree(work / "data", args.out)
    start = time.perf_counter()
    shutil.copytree(work / "data", work / "upgraded")
    _run([sys.executable, str(HERE / "upgrade.py"), str(work / "upgraded")])
    timings["upgrade_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    new = _env(args.envs, "darts023", python, uv)
    timings["env_0.23_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    done = subprocess.run([str(new), str(HERE / "resume_v0_23.py"), "data", "upgraded"], cwd=work)
    timings["check_0.23_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    _run([str(new), str(HERE / "save.py"), "data-0.23", "darts023"], cwd=work)
    timings["save_0.23_s"] = round(time.perf_counter() - start, 1)
    after = args.out.parent / "data-0.23"
    if after.resolve() != (work / "data-0.23").resolve():
        shutil.rmtree(after, ignore_errors=True)
        shutil.copytree(work / "data-0.23", after)
    print(json.dumps(timings))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
