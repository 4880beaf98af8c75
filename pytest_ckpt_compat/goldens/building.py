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
    release_sort_key,
    resolve_environment,
    store_release_dates,
    uv_command,
)
from .registry import read_registry, update_registry, write_registry

PACKAGES = ("pytorch-lightning", "lightning")
DEFAULT_GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden"
# Neutral absolute folder: ModelCheckpoint stores absolute paths inside the checkpoint.
BUILD_ROOT = Path(os.environ.get("CKPT_COMPAT_BUILD_ROOT", "/golden-build"))
RECIPE = Path("recipes") / "recipe.py"


def _commit_lock(golden_dir: Path) -> FileLock:
    """A lock outside the golden folder (nothing stray appears in the repository)."""
    key = hashlib.sha256(str(Path(golden_dir).resolve()).encode()).hexdigest()[:16]
    return FileLock(os.path.join(tempfile.gettempdir(), f"ckpt-compat-golden-{key}.lock"))


def _sha256(path: Path) -> str:
    """Hex sha256 of a file, as pooch verifies the fetched goldens (one hashing routine for both)."""
    import pooch

    return pooch.file_hash(str(path), alg="sha256")


def _run(cmd: list[str], log: Callable, *, cwd: Path | None = None, env: dict | None = None, what: str) -> str:
    log("  $ " + " ".join(str(c) for c in cmd))
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        raise GoldenBuildError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


# ------------------------------------------------------------------------------------ golden add
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
) -> dict:
    """Build ``golden/<release>/`` with the real release; returns a summary of what changed."""
    started = time.monotonic()
    golden_dir = Path(golden_dir).resolve()
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
    cutoff = exclude_newer(dates[release])
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

    build_root = Path(build_root or BUILD_ROOT)
    build_dir = build_root / folder
    env_dir = build_root / ".envs" / folder
    stage = golden_dir / f".staging-{folder}-{os.getpid()}"
    requirements = [f"{package}=={release}"]
    if env_cfg["torch"]:
        requirements.append(f"torch=={env_cfg['torch']}")
    requirements += env_cfg["pins"]
    log(f"golden add {folder}: python {env_cfg['python']}, exclude-newer {cutoff}, requirements {requirements}")
    try:
        for path in (build_dir, env_dir):
            if path.exists():
                shutil.rmtree(path)
        build_dir.mkdir(parents=True)
        uv = uv_command()
        _run(uv + ["venv", "--quiet", "--python", interpreter, env_dir], log, what="uv venv")
        env_python = env_dir / "bin" / "python"
        _run(
            uv + ["pip", "install", "--quiet", "--python", env_python, "--exclude-newer", cutoff] + requirements,
            log,
            what=f"installing {package}=={release}",
        )
        freeze = _run(uv + ["pip", "freeze", "--python", env_python], log, what="uv pip freeze").split()
        stage.mkdir()
        cmd = [
            env_python,
            recipe,
            "--package",
            package,
            "--build-dir",
            build_dir,
            "--out",
            stage,
            "--accelerator",
            accelerator,
        ]
        for name in scenarios or []:
            cmd += ["--scenario", name]
        run_env = {
            k: v
            for k, v in os.environ.items()
            if k in ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "CUDA_VISIBLE_DEVICES")
        }
        run_env.update(
            PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1", PYTHONWARNINGS="ignore", CUBLAS_WORKSPACE_CONFIG=":4096:8"
        )
        _run(cmd, log, cwd=build_dir, env=run_env, what=f"recipe under {package} {release}")
        result = json.loads((stage / "recipe-result.json").read_text())
        (stage / "recipe-result.json").unlink()
        if not result["scenarios"]:
            raise GoldenBuildError(f"recipe made no scenario for {folder}: {result['skipped'] or result['failed']}")
        kept = _keep_other_scenarios(target, stage, scenarios, result) if scenarios else {}
        files = {entry["file"]: entry["sha256"] for entry in kept.values()}
        for name, entry in sorted(result["scenarios"].items()):
            digest = _sha256(stage / entry["file"])
            files[entry["file"]] = digest
            entry["sha256"] = digest
            entry["size"] = (stage / entry["file"]).stat().st_size
        meta = {
            "release": release,
            "package": package,
            "python": result["python"],
            "torch": result["torch"],
            "pins": env_cfg["pins"] + ([f"torch=={env_cfg['torch']}"] if env_cfg["torch"] else []),
            "exclude_newer": cutoff,
            "made_with": " ".join(
                ["ckpt-compat golden add", release]
                + ([f"--package {package}"] if package != "pytorch-lightning" else [])
                + ([f"--accelerator {accelerator}"] if accelerator != "cpu" else [])
            ),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
            "build_dir": str(build_root.as_posix().rstrip("/") + "/" + folder),
            "lightning_version": result["lightning_version"],
            "environment": freeze,
            "scenarios": dict(sorted({**kept, **result["scenarios"]}.items())),
            "skipped": {
                k: v
                for k, v in sorted({**_old_skipped(target, scenarios), **result["skipped"], **result["failed"]}.items())
                if k not in kept and k not in result["scenarios"]
            },
        }
        (stage / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=False) + "\n")
        files["meta.json"] = _sha256(stage / "meta.json")
        registry_files = {k: v for k, v in files.items() if k.endswith(".ckpt")}

        # Commit: one rename for the folder, one atomic rewrite for the registry. The lock keeps
        # two concurrent builds from losing each other's registry lines.
        with _commit_lock(golden_dir):
            if not force and target.exists():
                raise GoldenBuildError(f"golden/{folder} appeared while building; pass --force to replace it")
            old = None
            if target.exists():
                old = golden_dir / f".old-{folder}-{os.getpid()}"
                os.replace(target, old)
            os.replace(stage, target)
            new_registry, added, removed = update_registry(
                read_registry(golden_dir, missing_ok=True), folder, registry_files
            )
            write_registry(golden_dir, new_registry)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            if online:
                store_release_dates(golden_dir, package, dates)
    finally:
        for path in (stage, env_dir, build_dir):
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
    seconds = round(time.monotonic() - started, 1)
    summary = {
        "release": release,
        "folder": folder,
        "package": package,
        "python": meta["python"],
        "torch": meta["torch"],
        "pins": meta["pins"],
        "scenarios": sorted(meta["scenarios"]),
        "skipped": meta["skipped"],
        "added": added,
        "removed": removed,
        "seconds": seconds,
    }
    log(f"golden/{folder}: {len(added)} registry entries added/changed, {len(removed)} removed, in {seconds}s")
    for name in added:
        log(f"  + {name}")
    for name in removed:
        log(f"  - {name}")
    for name, why in meta["skipped"].items():
        log(f"  (no {name}: {why})")
    return summary


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


# ----------------------------------------------------------------------------------- golden list
def list_goldens(
    golden_dir: Path, missing: str | None = None, *, package: str = "pytorch-lightning", log: Callable = print
) -> list[dict]:
    """Present goldens (release, scenarios, bytes), or with ``missing="A..B"`` the releases to add."""
    golden_dir = Path(golden_dir)
    registry = read_registry(golden_dir, missing_ok=True)
    present: dict[str, dict] = {}
    for name in registry:
        folder, _, file = name.partition("/")
        row = present.setdefault(folder, {"release": folder, "scenarios": [], "bytes": 0})
        row["scenarios"].append(file[: -len(".ckpt")] if file.endswith(".ckpt") else file)
        path = golden_dir / name
        row["bytes"] += path.stat().st_size if path.exists() else 0
    for folder, row in present.items():
        meta_path = golden_dir / folder / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        row.update(package=meta.get("package", "?"), python=meta.get("python"), torch=meta.get("torch"))
    if missing is None:
        return sorted(
            present.values(), key=lambda r: (r.get("package", ""), release_sort_key(r["release"].split("-")[-1]))
        )
    lo, sep, hi = missing.partition("..")
    if not sep:
        raise GoldenBuildError(f"--missing expects A..B, got {missing!r}")
    dates, _ = release_dates(package, golden_dir, log=log)
    lo_v = Version(lo) if lo else Version("0")
    hi_v = Version(hi) if hi else Version("9999")
    rows = []
    for release, uploaded in dates.items():
        try:
            v = Version(release)
        except InvalidVersion:
            continue
        if v.is_prerelease or v.is_devrelease or v.is_postrelease or not (lo_v <= v <= hi_v):
            continue
        if folder_name(release, package) not in present:
            rows.append({"release": release, "package": package, "uploaded": uploaded})
    return sorted(rows, key=lambda r: Version(r["release"]))


# ------------------------------------------------------------------------------------------ CLI
