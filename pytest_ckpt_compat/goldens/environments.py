"""Where a historical release runs: its PyPI release date, ``golden/environments.toml``, Python, uv.

Why a room: resolving an environment *as of a release date* (``uv --exclude-newer``) with a
Python that release supported is its own concern, separate from saving and committing goldens
(:mod:`.building`), and testable without building anything.
"""

from __future__ import annotations

import datetime as _dt
import glob
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Callable

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from ..core.errors import GoldenBuildError
from ..files.writing.atomic import write_bytes

try:  # Python 3.11+
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.9/3.10
    import tomli as _toml  # type: ignore[no-redef]

PYPI_JSON = "https://pypi.org/pypi/{package}/json"
DATES_FILE = "pypi-release-dates.json"
ENVIRONMENTS_FILE = "environments.toml"


def folder_name(release: str, package: str = "pytorch-lightning") -> str:
    """``1.6.5`` for pytorch-lightning, ``lightning-2.0.9`` for the unified package."""
    return release if package == "pytorch-lightning" else f"{package}-{release}"


# ------------------------------------------------------------------------------- PyPI dates
def _fetch_pypi(package: str, timeout: float = 20.0) -> dict[str, str]:
    with urllib.request.urlopen(PYPI_JSON.format(package=package), timeout=timeout) as resp:
        data = json.load(resp)
    dates = {}
    for version, files in data.get("releases", {}).items():
        times = [f["upload_time_iso_8601"] for f in files if f.get("upload_time_iso_8601")]
        if times:
            dates[version] = min(times).replace(".000000Z", "Z")
    return dates


def release_dates(
    package: str, golden_dir: Path, *, online: bool = True, log: Callable = print
) -> tuple[dict[str, str], bool]:
    """Upload time of every release (earliest file). Returns (dates, fetched_online).

    PyPI's JSON API when reachable, else the committed cache ``golden/pypi-release-dates.json``.
    """
    if online:
        try:
            return _fetch_pypi(package), True
        except Exception as exc:  # noqa: BLE001 - any network problem means: use the cache
            log(f"PyPI not reachable ({type(exc).__name__}: {exc}); using {DATES_FILE}")
    cache = Path(golden_dir) / DATES_FILE
    if cache.exists():
        return json.loads(cache.read_text()).get(package, {}), False
    return {}, False


def store_release_dates(golden_dir: Path, package: str, dates: dict[str, str]) -> bool:
    cache = Path(golden_dir) / DATES_FILE
    data = json.loads(cache.read_text()) if cache.exists() else {}
    ordered = dict(sorted(dates.items(), key=lambda kv: release_sort_key(kv[0])))
    if data.get(package) == ordered:
        return False
    data[package] = ordered
    write_bytes(cache, (json.dumps(data, indent=1) + "\n").encode("utf-8"))
    return True


def release_sort_key(version: str):
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


def exclude_newer(upload_time: str) -> str:
    """Resolve the environment as of the release: its upload time plus one day (RFC 3339)."""
    when = _dt.datetime.fromisoformat(upload_time.replace("Z", "+00:00")) + _dt.timedelta(days=1)
    return when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -------------------------------------------------------------------------------- environments
def load_environments(golden_dir: Path) -> list[dict]:
    path = Path(golden_dir) / ENVIRONMENTS_FILE
    if not path.exists():
        return []
    with open(path, "rb") as fh:
        data = _toml.load(fh)
    return list(data.get("env", []))


def resolve_environment(release: str, package: str, entries: list[dict]) -> dict:
    """Every matching ``[[env]]`` applies in file order: later scalars win, pins accumulate."""
    version = Version(release)
    env: dict = {"python": None, "torch": None, "pins": []}
    for entry in entries:
        if entry.get("package", package) != package:
            continue
        if version not in SpecifierSet(entry.get("releases", ""), prereleases=True):
            continue
        for key in ("python", "torch"):
            if entry.get(key):
                env[key] = entry[key]
        for pin in entry.get("pins", []):
            if pin not in env["pins"]:
                env["pins"].append(pin)
    return env


def pyenv_root() -> Path:
    try:
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
        if out:
            return Path(out)
    except (OSError, subprocess.CalledProcessError):
        pass
    return Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))


def find_python(spec: str) -> Path:
    """A pyenv interpreter matching ``X.Y`` or ``X.Y.Z`` (highest patch wins)."""
    versions = pyenv_root() / "versions"
    exact = versions / spec / "bin" / "python"
    if exact.exists():
        return exact
    found = []
    for cand in glob.glob(str(versions / f"{spec}.*")):
        name = Path(cand).name
        try:
            found.append((Version(name), Path(cand) / "bin" / "python"))
        except InvalidVersion:
            continue
    found = [f for f in found if f[1].exists()]
    if not found:
        raise GoldenBuildError(f"no pyenv Python {spec} under {versions} (install it with `pyenv install {spec}`)")
    return max(found)[1]


def uv_command() -> list[str]:
    exe = shutil.which("uv")
    return [exe] if exe else [sys.executable, "-m", "uv"]
