"""``ckpt-compat golden add/list``: make golden checkpoints with the real historical releases.

Why this shape: a golden is only worth something if the historical release itself wrote it, so
each release gets a throw-away ``uv`` environment resolved *as of its release date*
(``--exclude-newer``), the one version-agnostic recipe runs in a neutral folder (paths stored in
the checkpoint name nothing private), and the files reach ``golden/`` only after everything
succeeded: a release folder appears (or is replaced) by a single rename, then the registry is
rewritten atomically. A failed build leaves ``golden/`` exactly as it was.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from filelock import FileLock
from packaging.version import InvalidVersion, Version

from .environments import (
    ENVIRONMENTS_FILE,
    GoldenBuildError,
    exclude_newer,
    find_python,
    folder_name,
    load_environments,
    release_dates,
    resolve_environment,
    store_release_dates,
    uv_command,
)
from .registry import read_registry, update_registry, write_registry
from .store import packaged_golden_dir, repository_golden_dir

PACKAGES = ("pytorch-lightning", "lightning")
# Neutral absolute folder: ModelCheckpoint stores absolute paths inside the checkpoint.
BUILD_ROOT = Path(os.environ.get("CKPT_COMPAT_BUILD_ROOT", "/golden-build"))
RECIPE = Path("recipes") / "recipe.py"


def default_golden_dir(*, writing: bool) -> Path:
    """The golden folder when ``--golden-dir`` is not given: a checkout's ``golden/``. An installed
    wheel has none: ``list`` reads the registry and meta.json it ships, ``add`` needs a folder to write."""
    found = repository_golden_dir()
    if found is None and not writing:
        found = packaged_golden_dir()
    if found is None:
        raise GoldenBuildError(
            "no golden/ folder of a checkout next to the installed package: pass --golden-dir "
            "(the golden/ folder of a clone of pytest-ckpt-compat, or a folder of your own)"
        )
    return found


def _commit_lock(golden_dir: Path) -> FileLock:
    """A lock outside the golden folder (nothing stray appears in the repository)."""
    key = hashlib.sha256(str(Path(golden_dir).resolve()).encode()).hexdigest()[:16]
    return FileLock(os.path.join(tempfile.gettempdir(), f"ckpt-compat-golden-{key}.lock"))


def _sha256(path: Path) -> str:
    """Hex sha256 of a file, as pooch verifies the fetched goldens (one hashing routine for both)."""
    import pooch

    return pooch.file_hash(str(path), alg="sha256")


def _run(cmd: Sequence[object], log: Callable, *, cwd: Path | None = None, env: dict | None = None, what: str) -> str:
    log("  $ " + " ".join(str(c) for c in cmd))
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        raise GoldenBuildError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


# ------------------------------------------------------------------------------------ golden add
@dataclass
class _Build:
    """What one ``golden add`` resolved before building: the release, its folder and its environment."""

    release: str
    package: str
    folder: str
    target: Path
    cutoff: str
    env_cfg: dict
    interpreter: Path
    recipe: Path
    dates: dict
    online: bool
    with_reqs: tuple[str, ...] = ()


def add_release(
    release: str,
    *,
    golden_dir: Path,
    scenarios: list[str] | None = None,
    python: str | None = None,
    torch: str | None = None,
    package: str = "pytorch-lightning",
    force: bool = False,
    accelerator: str = "cpu",
    log: Callable = print,
    build_root: Path | None = None,
    with_reqs: Sequence[str] = (),
) -> dict:
    """Build ``golden/<release>/`` with the real release; returns a summary of what changed.

    ``with_reqs``: more requirements for the environment (``jsonargparse`` for ``cli_saved``), resolved
    as of the release date like everything else and recorded in ``meta.json``'s ``made_with``.

    The steps: resolve the request (:func:`_resolve`), install the environment, run the recipe into a
    staging folder, write ``meta.json`` there, then commit folder and registry at once (:func:`_commit`).
    """
    started = time.monotonic()
    golden_dir = Path(golden_dir).resolve()
    build = _resolve(release, package, golden_dir, python=python, torch=torch, force=force, log=log)
    build.with_reqs = tuple(with_reqs)
    build_root = Path(build_root or BUILD_ROOT)
    build_dir = build_root / build.folder
    env_dir = build_root / ".envs" / build.folder
    stage = golden_dir / f".staging-{build.folder}-{os.getpid()}"
    try:
        for path in (build_dir, env_dir):
            if path.exists():
                shutil.rmtree(path)
        build_dir.mkdir(parents=True)
        env_python, freeze = _install(build, env_dir, log)
        stage.mkdir()
        result = _run_recipe(build, env_python, build_dir, stage, scenarios, accelerator, log)
        kept = _keep_other_scenarios(build.target, stage, scenarios, result) if scenarios else {}
        registry_files = _hash_files(stage, result, kept)
        meta = _meta(build, result, kept, scenarios, freeze, accelerator, build_root)
        (stage / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=False) + "\n")
        added, removed = _commit(build, golden_dir, stage, registry_files, force)
    finally:
        for path in (stage, env_dir, build_dir):
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
    return _report(build, meta, added, removed, round(time.monotonic() - started, 1), log)


def _resolve(
    release: str, package: str, golden_dir: Path, *, python: str | None, torch: str | None, force: bool, log: Callable
) -> _Build:
    """Check the request and resolve its environment; nothing is built or written yet."""
    if package not in PACKAGES:
        raise GoldenBuildError(f"unknown package {package!r} (choose from {', '.join(PACKAGES)})")
    try:
        version = Version(release)
    except InvalidVersion as exc:
        raise GoldenBuildError(f"{release!r} is not a version") from exc
    if version.is_postrelease:
        raise GoldenBuildError(f"{release} is a re-upload: .postN releases share the golden of {version.base_version}")
    folder = folder_name(release, package)
    target = golden_dir / folder
    registry = read_registry(golden_dir, missing_ok=True)
    if not force and (target.exists() or any(k.startswith(folder + "/") for k in registry)):
        raise GoldenBuildError(f"golden/{folder} already exists; pass --force to rebuild it")
    dates, online = release_dates(package, golden_dir, log=log)
    if release not in dates:
        raise GoldenBuildError(f"{package} {release} is not on PyPI (no upload date known)")
    env_cfg = resolve_environment(release, package, load_environments(golden_dir))
    if python:
        env_cfg["python"] = python
    if torch:
        env_cfg["torch"] = torch
    if not env_cfg["python"]:
        raise GoldenBuildError(
            f"no Python for {package} {release}: add an [[env]] range to {ENVIRONMENTS_FILE} or pass --python"
        )
    interpreter = find_python(env_cfg["python"])
    recipe = golden_dir / RECIPE
    if not recipe.exists():
        raise GoldenBuildError(f"recipe missing: {recipe}")
    return _Build(
        release, package, folder, target, exclude_newer(dates[release]), env_cfg, interpreter, recipe, dates, online
    )


def _install(build: _Build, env_dir: Path, log: Callable) -> tuple[Path, list[str]]:
    """A fresh uv environment with the release, resolved as of its upload date; returns its python and freeze."""
    requirements = [f"{build.package}=={build.release}"]
    if build.env_cfg["torch"]:
        requirements.append(f"torch=={build.env_cfg['torch']}")
    requirements += build.env_cfg["pins"] + list(build.with_reqs)
    log(
        f"golden add {build.folder}: python {build.env_cfg['python']}, exclude-newer {build.cutoff}, "
        f"requirements {requirements}"
    )
    uv = uv_command()
    _run(uv + ["venv", "--quiet", "--python", build.interpreter, env_dir], log, what="uv venv")
    env_python = env_dir / "bin" / "python"
    _run(
        uv + ["pip", "install", "--quiet", "--python", env_python, "--exclude-newer", build.cutoff] + requirements,
        log,
        what=f"installing {build.package}=={build.release}",
    )
    freeze = _run(uv + ["pip", "freeze", "--python", env_python], log, what="uv pip freeze").split()
    return env_python, freeze


def _run_recipe(
    build: _Build,
    env_python: Path,
    build_dir: Path,
    stage: Path,
    scenarios: list[str] | None,
    accelerator: str,
    log: Callable,
) -> dict:
    """Run the recipe in the neutral build folder, writing into ``stage``; returns its result."""
    cmd = [env_python, build.recipe, "--package", build.package, "--build-dir", build_dir, "--out", stage]
    cmd += ["--accelerator", accelerator]
    for name in scenarios or []:
        cmd += ["--scenario", name]
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "CUDA_VISIBLE_DEVICES")
    run_env = {k: v for k, v in os.environ.items() if k in keep}
    run_env.update(
        PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1", PYTHONWARNINGS="ignore", CUBLAS_WORKSPACE_CONFIG=":4096:8"
    )
    _run(cmd, log, cwd=build_dir, env=run_env, what=f"recipe under {build.package} {build.release}")
    result = json.loads((stage / "recipe-result.json").read_text())
    (stage / "recipe-result.json").unlink()
    check_made(result, scenarios, build.folder)
    return result


def check_made(result: dict, scenarios: Sequence[str] | None, folder: str) -> None:
    """A build must make a scenario, unless every scenario asked for with ``--scenario`` does not exist in
    this release: then their reasons are what it records (``meta.json``'s ``skipped``), and nothing else changes."""
    if result["scenarios"]:
        return
    if scenarios and not result["failed"] and set(scenarios) <= set(result["skipped"]):
        return
    raise GoldenBuildError(f"recipe made no scenario for {folder}: {result['skipped'] or result['failed']}")


def _hash_files(stage: Path, result: dict, kept: dict) -> dict[str, str]:
    """sha256 (and size) of every checkpoint in ``stage``, recorded in its scenario entry; the registry lines."""
    files = {entry["file"]: entry["sha256"] for entry in kept.values()}
    for entry in result["scenarios"].values():
        digest = _sha256(stage / entry["file"])
        files[entry["file"]] = digest
        entry["sha256"] = digest
        entry["size"] = (stage / entry["file"]).stat().st_size
    return {k: v for k, v in files.items() if k.endswith(".ckpt")}


def _meta(
    build: _Build,
    result: dict,
    kept: dict,
    scenarios: list[str] | None,
    freeze: list[str],
    accelerator: str,
    build_root: Path,
) -> dict:
    """The release's ``meta.json``: environment, the truth per scenario, and why a scenario is absent."""
    env_cfg, package = build.env_cfg, build.package
    made_with = ["ckpt-compat golden add", build.release]
    made_with += [f"--package {package}"] if package != "pytorch-lightning" else []
    made_with += [f"--accelerator {accelerator}"] if accelerator != "cpu" else []
    made_with += [f"--with '{req}'" for req in build.with_reqs]
    skipped = {**_old_skipped(build.target, scenarios), **result["skipped"], **result["failed"]}
    return {
        "release": build.release,
        "package": package,
        "python": result["python"],
        "torch": result["torch"],
        "pins": env_cfg["pins"] + ([f"torch=={env_cfg['torch']}"] if env_cfg["torch"] else []),
        "exclude_newer": build.cutoff,
        "made_with": " ".join(made_with),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
        "build_dir": str(build_root.as_posix().rstrip("/") + "/" + build.folder),
        "lightning_version": result["lightning_version"],
        "environment": freeze,
        "scenarios": dict(sorted({**kept, **result["scenarios"]}.items())),
        "skipped": {k: v for k, v in sorted(skipped.items()) if k not in kept and k not in result["scenarios"]},
    }


def _commit(
    build: _Build, golden_dir: Path, stage: Path, registry_files: dict[str, str], force: bool
) -> tuple[list[str], list[str]]:
    """:func:`commit_release`, then the PyPI release dates fetched on the way are cached."""
    with _commit_lock(golden_dir):
        added, removed = _replace_release(golden_dir, build.folder, stage, registry_files, force)
        if build.online:
            store_release_dates(golden_dir, build.package, build.dates)
    return added, removed


def commit_release(
    golden_dir: Path, folder: str, stage: Path, registry_files: dict[str, str], force: bool
) -> tuple[list[str], list[str]]:
    """One rename for the folder, one atomic rewrite for the registry; returns registry names added and removed.

    The lock keeps two concurrent builds from losing each other's registry lines.
    """
    with _commit_lock(golden_dir):
        return _replace_release(golden_dir, folder, stage, registry_files, force)


def _replace_release(
    golden_dir: Path, folder: str, stage: Path, registry_files: dict[str, str], force: bool
) -> tuple[list[str], list[str]]:
    target = golden_dir / folder
    if not force and target.exists():
        raise GoldenBuildError(f"{golden_dir.name}/{folder} appeared while building; pass --force to replace it")
    old = None
    if target.exists():
        old = golden_dir / f".old-{folder}-{os.getpid()}"
        os.replace(target, old)
    os.replace(stage, target)
    new_registry, added, removed = update_registry(read_registry(golden_dir, missing_ok=True), folder, registry_files)
    write_registry(golden_dir, new_registry)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return added, removed


def _report(build: _Build, meta: dict, added: list[str], removed: list[str], seconds: float, log: Callable) -> dict:
    """Log what changed and return the summary ``golden add`` prints."""
    log(f"golden/{build.folder}: {len(added)} registry entries added/changed, {len(removed)} removed, in {seconds}s")
    for name in added:
        log(f"  + {name}")
    for name in removed:
        log(f"  - {name}")
    for name, why in meta["skipped"].items():
        log(f"  (no {name}: {why})")
    return {
        "release": build.release,
        "folder": build.folder,
        "package": build.package,
        "python": meta["python"],
        "torch": meta["torch"],
        "pins": meta["pins"],
        "scenarios": sorted(meta["scenarios"]),
        "skipped": meta["skipped"],
        "added": added,
        "removed": removed,
        "seconds": seconds,
    }


def _old_skipped(target: Path, scenarios: list[str] | None) -> dict:
    """With ``--scenario``, the reasons recorded for the scenarios not rebuilt stay too."""
    meta_path = target / "meta.json"
    if not scenarios or not meta_path.exists():
        return {}
    return {k: v for k, v in json.loads(meta_path.read_text()).get("skipped", {}).items() if k not in scenarios}


def _keep_other_scenarios(target: Path, stage: Path, scenarios: list[str], result: dict) -> dict:
    """With ``--scenario`` on an existing release, the scenarios not rebuilt stay as they were.

    That is how a GPU-only scenario joins a CPU-built release
    (``golden add 1.6.5 --scenario amp_16_mixed --accelerator gpu --force``). Entries made in
    another environment carry their own ``python``/``torch``.
    """
    meta_path = target / "meta.json"
    if not meta_path.exists():
        return {}
    old = json.loads(meta_path.read_text())
    kept = {}
    for name, entry in old.get("scenarios", {}).items():
        if name in scenarios or name in result["scenarios"]:
            continue
        shutil.copy2(target / entry["file"], stage / entry["file"])
        if _sha256(stage / entry["file"]) != entry["sha256"]:
            raise GoldenBuildError(f"golden/{target.name}/{entry['file']} does not match its meta.json sha256")
        for key in ("python", "torch"):
            if old.get(key) != result[key]:
                entry.setdefault(key, old.get(key))
        kept[name] = entry
    return kept


# ------------------------------------------------------------------------------------------ CLI
