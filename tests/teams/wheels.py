"""The example team package's releases, built into wheels and installed side by side, at test time.

Why wheels and not the source trees on ``sys.path``: each release must be what a user installs, a
distribution whose ``importlib.metadata.version("teamnet")`` names it (the goldens' folder name and
the catalogue's target both come from it). Each release is built with the test environment's
setuptools (``pip wheel --no-build-isolation``: no index needed) and installed into a folder of its
own (``pip install --target``), which a subprocess puts first on ``PYTHONPATH``; two releases never
meet in one interpreter. ``--no-deps``: each runs on the test environment's Lightning, also release 1
(pinned to Lightning 1.9): the tests only import it and unpickle its files; its goldens were saved
under Lightning 1.9.5 in an environment of its own (``examples/teamnet/README.md``).

The drift variant (teamnet 2.0.1) is release 2 with one line more: a registered buffer, a change of
the saved format that no catalogue unit covers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "teamnet"
SOURCES = {"1.0.0": EXAMPLE / "release-1", "2.0.0": EXAMPLE / "release-2"}
DRIFT_VERSION = "2.0.1"
DRIFT_ANCHOR = "        self.loss_fn = loss\n"
DRIFT_LINE = '        self.register_buffer("output_scale", torch.ones(1))  # 2.0.1: saved, and no unit says so\n'


@dataclass(frozen=True)
class Release:
    """One installed release: its version, its wheel and the folder a subprocess imports it from."""

    version: str
    wheel: Path
    site: Path

    def env(self) -> dict[str, str]:
        """The environment of a subprocess that imports this release (and nothing else of teamnet)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.site), *filter(None, [env.get("PYTHONPATH")])])
        return env

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """``python args`` with this release importable; its output captured as text."""
        return subprocess.run(
            [sys.executable, *args], env=self.env(), cwd=cwd, capture_output=True, text=True, timeout=600
        )

    def json(self, script: Path, *args: str) -> dict:
        """Run ``script``, which prints one JSON object as its last line: that object (else fail with its output)."""
        done = self.run(str(script), *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])


def drift_source(dest: Path) -> Path:
    """A copy of release 2 as teamnet 2.0.1 with one buffer more in ``TeamNet`` (for the drift check)."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(SOURCES["2.0.0"], dest, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    model, project = dest / "teamnet" / "model.py", dest / "pyproject.toml"
    text = model.read_text()
    if DRIFT_ANCHOR not in text:
        raise AssertionError(f"release 2's model.py has no line {DRIFT_ANCHOR.strip()!r} to add the buffer after")
    model.write_text(text.replace(DRIFT_ANCHOR, DRIFT_ANCHOR + DRIFT_LINE, 1))
    project.write_text(project.read_text().replace('version = "2.0.0"', f'version = "{DRIFT_VERSION}"', 1))
    return dest


def _digest(source: Path) -> str:
    """A hash of every file of a source tree: a changed release is built again."""
    h = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(path.relative_to(source).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def build_and_install(source: Path, version: str, root: Path) -> Release:
    """Build ``source`` into a wheel and install it under ``root``; done once per source content."""
    folder = root / f"teamnet-{version}-{_digest(source)}"
    wheel_dir, site = folder / "wheel", folder / "site"
    done = folder / "done"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        build = folder / "src"  # a scratch copy: setuptools writes build/ and *.egg-info next to the sources
        shutil.copytree(source, build, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
        _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheel_dir), str(build))
        wheel = next(wheel_dir.glob("teamnet-*.whl"))
        _pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel))
        shutil.rmtree(build)
        done.write_text(wheel.name)
    return Release(version=version, wheel=wheel_dir / done.read_text(), site=site)


def releases(root: Path) -> dict[str, Release]:
    """Every release (1.0.0, 2.0.0 and the drift variant 2.0.1) built and installed under ``root``.

    ``root`` may be shared by several processes (pytest-xdist workers): a file lock lets one build.
    """
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "build.lock")):
        out = {version: build_and_install(source, version, root) for version, source in SOURCES.items()}
        drift = drift_source(root / "drift-source")
        out[DRIFT_VERSION] = build_and_install(drift, DRIFT_VERSION, root)
    return out
