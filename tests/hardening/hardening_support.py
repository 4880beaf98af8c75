"""Helpers of the hardening suite: a small real checkpoint, and ways to run the CLI.

The CLI runs in-process (``cli.main``) where only its exit code and effects matter, in a forked
child where it must be killable mid-write without paying torch's import again, and in a fresh
subprocess only where the process itself must be set up (resource limits).
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

import torch

from pytest_ckpt_compat import cli
from pytest_ckpt_compat.files.writing import TEMP_MARKER


def lightning_checkpoint(mib: float = 1.0, version: str = "1.5.10") -> dict:
    """A Lightning-1.5-style checkpoint with about ``mib`` MiB of float32 weights."""
    numel = max(1, int(mib * (1 << 20) / 4 / 4))
    gen = torch.Generator().manual_seed(7)
    sd = collections.OrderedDict((f"layer{i}.weight", torch.rand(numel, generator=gen)) for i in range(4))
    sd["layer0.bias"] = torch.rand(16, generator=gen)
    return {
        "epoch": 2,
        "global_step": 40,
        "pytorch-lightning_version": version,
        "state_dict": sd,
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.01, "params": list(range(5))}]}],
        "lr_schedulers": [],
        "callbacks": {"EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}": {"wait_count": 0, "patience": 3}},
    }


def run_cli(*argv: str) -> int:
    """``ckpt-compat ARGV`` in this process; its exit code."""
    return cli.main([str(a) for a in argv])


def fork_cli(*argv: str, start_fd: int | None = None, setup=None) -> int:
    """Start ``ckpt-compat ARGV`` in a forked child (torch already imported); returns its pid.

    With ``start_fd`` the child first waits for one byte on that pipe, so several start together.
    ``setup`` runs in the child before the CLI (it may patch what only the child should see).
    """
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 98
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            if start_fd is not None:
                os.read(start_fd, 1)
            if setup is not None:
                setup()
            code = cli.main([str(a) for a in argv])
        except BaseException:
            code = 99
        finally:
            os._exit(code)
    return pid


def fork_cli_held(*argv: str, nth: int = 1) -> tuple[int, int, int]:
    """``fork_cli`` held at its ``nth`` write step: returns ``(pid, ready_fd, go_fd)``.

    Write steps, in the order a run makes them: each call of the byte sink (``sink._write_all``,
    ``sink._copy_range``: a temp file exists and bytes are about to go into it) and each
    ``atomic._fsync_dir`` (a rename just happened). At the ``nth`` the child writes one byte to
    ``ready_fd`` and waits for one byte on ``go_fd``. A test reads ``ready_fd`` (empty: the run
    ended before its ``nth`` step), does what it must do there (send a signal, SIGKILL), then writes
    ``go_fd``: no timing, under any load. A signal that arrives before the child's read starts is
    handled as soon as the read returns, still at that step.
    """
    from pytest_ckpt_compat.files.writing import atomic, sink

    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()

    def hold_at_nth_step() -> None:
        os.close(ready_r)
        os.close(go_w)
        steps = 0
        for module, name in ((sink, "_write_all"), (sink, "_copy_range"), (atomic, "_fsync_dir")):
            real = getattr(module, name)

            def held(*args, _real=real):
                nonlocal steps
                steps += 1
                if steps == nth:
                    os.write(ready_w, b"w")
                    os.read(go_r, 1)
                return _real(*args)

            setattr(module, name, held)

    pid = fork_cli(*argv, setup=hold_at_nth_step)
    os.close(ready_w)
    os.close(go_r)
    return pid, ready_r, go_w


def wait_exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def run_cli_subprocess(*argv: str, preexec_fn=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m pytest_ckpt_compat.cli ARGV`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_ckpt_compat.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMP_MARKER in p.name)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def run_cli_bounded(*argv: str, timeout: float = 60.0) -> int:
    """``ckpt-compat ARGV`` in a forked child that must finish within ``timeout`` (a hang fails, not blocks)."""
    import time

    pid = fork_cli(*argv)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError(f"ckpt-compat {' '.join(map(str, argv))} still running after {timeout} s (hangs)")


def zip_with_pickle(path: Path, pkl: bytes) -> Path:
    """A torch zip archive (records of a real ``torch.save({})``) whose data.pkl is ``pkl``."""
    import io
    import zipfile

    buffer = io.BytesIO()
    torch.save({}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(path, "w") as out:
        prefix = path.stem
        for info in src.infolist():
            name = prefix + "/" + info.filename.partition("/")[2]
            out.writestr(name, pkl if name.endswith("/data.pkl") else src.read(info))
    return path
