"""``ckpt-compat golden record`` and ``golden add PKG==VER --recipe``: goldens of a team's own model.

Why a room of its own: the built-in builder (:mod:`.building`) runs the one built-in recipe with
Lightning's releases; a team runs *its* recipe with *its* releases, named by the installed version
of ``recipe.package``. The steps are the built-in ones (a neutral build folder, a staging folder,
sha256 into meta.json and the registry, folder and registry committed at once), plus a determinism
check: every scenario is saved twice and the two files' tensors must match, or the goldens would
be noise.

How the recipe runs: :mod:`.recorder` and :mod:`.determinism` are copied as plain scripts into the
build folder (with the built-in recipe beside them as ``ckpt_compat_truth.py``, the truth readers)
and run by the recording environment's Python: the current one (``record``) or an isolated uv
environment with the old release (``add``), where this package is not installed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .building import BUILD_ROOT, _hash_files, _keep_other_scenarios, _old_skipped, _run, commit_release
from .environments import GoldenBuildError
from .recipes import RecipeError, load_recipe_object
from .registry import read_registry
from .store import packaged_golden_dir, repository_golden_dir

TOOLS = "_recorder"  # the build folder's subfolder holding the copied scripts
TRUTH_SCRIPT = "ckpt_compat_truth.py"
NOT_DETERMINISTIC = "the recipe is not deterministic (seed your data and model)"


@dataclass
class TeamBuild:
    """One recording: which recipe, where its goldens go, and the environment that records it."""

    spec: str
    out: Path
    python: Path
    build_dir: Path
    made_with: str
    scenarios: list[str] | None = None
    force: bool = False
    determinism_check: bool = True
    env: dict = field(default_factory=dict)
    freeze: list[str] = field(default_factory=list)
    extra_meta: dict = field(default_factory=dict)
    copy_in: list[Path] = field(default_factory=list)  # files the recipe needs beside the recorder


def neutral_build_root(build_root: Path | None = None) -> Path:
    """The built-in neutral folder when it can be written, else one under the temp folder: paths saved
    inside checkpoints (a ModelCheckpoint's ``dirpath``) then name no user's home or checkout."""
    if build_root is not None:
        return Path(build_root)
    try:
        BUILD_ROOT.mkdir(parents=True, exist_ok=True)
        if os.access(BUILD_ROOT, os.W_OK):
            return BUILD_ROOT
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "ckpt-compat-build"


def refuse_existing(out: Path, release: str, force: bool) -> None:
    """An existing release (its folder or a registry line) is replaced only with ``--force``."""
    registry = read_registry(out, missing_ok=True)
    if not force and ((out / release).exists() or any(k.startswith(release + "/") for k in registry)):
        raise GoldenBuildError(f"{out.name}/{release} already exists; pass --force to replace it")


def builtin_recipe() -> Path:
    """The built-in recipe, copied beside the recorder as its library of truth readers."""
    for root in (repository_golden_dir(), packaged_golden_dir()):
        if root is not None and (root / "recipes" / "recipe.py").is_file():
            return root / "recipes" / "recipe.py"
    raise GoldenBuildError("the built-in recipe (golden/recipes/recipe.py) is missing from this installation")


def recorder_env(extra: dict | None = None) -> dict:
    """A small, fixed environment for the recorder: the same hash seed and warnings every run."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TERM")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1", PYTHONWARNINGS="ignore")
    env.update(extra or {})
    return env


# ------------------------------------------------------------------------------------ recording
def record_build(build: TeamBuild, log: Callable = print) -> dict:
    """Run the recipe (twice, with the determinism check), write meta.json, commit; returns a summary."""
    started = time.monotonic()
    build.out.mkdir(parents=True, exist_ok=True)
    stage = build.out / f".staging-{os.getpid()}"
    second = build.build_dir.parent / f".{build.build_dir.name}-second-{os.getpid()}"
    try:
        _prepare_build_dir(build)
        result = _run_recorder(build, stage, log)
        release = result["package_version"]
        refuse_existing(build.out, release, build.force)
        if build.determinism_check:
            _run_recorder(build, second, log)
            for name, entry in result["scenarios"].items():
                _compare(build, name, stage / entry["file"], second / entry["file"], log)
        target = build.out / release
        kept = _keep_other_scenarios(target, stage, build.scenarios, result) if build.scenarios else {}
        registry_files = _hash_files(stage, result, kept)
        meta = _meta(build, result, kept, target)
        (stage / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=False) + "\n")
        added, removed = commit_release(build.out, release, stage, registry_files, build.force)
    finally:
        for path in (stage, second, build.build_dir):
            shutil.rmtree(path, ignore_errors=True)
    seconds = round(time.monotonic() - started, 1)
    log(f"{build.out.name}/{release}: {len(added)} registry entries added/changed, {len(removed)} removed, {seconds}s")
    for name in added:
        log(f"  + {name}")
    for name in removed:
        log(f"  - {name}")
    return {
        "release": release,
        "package": meta["package"],
        "python": meta["python"],
        "torch": meta["torch"],
        "lightning_version": meta["lightning_version"],
        "scenarios": sorted(meta["scenarios"]),
        "added": added,
        "removed": removed,
        "seconds": seconds,
    }


def _prepare_build_dir(build: TeamBuild) -> None:
    """A fresh build folder with the recorder, the determinism check and the truth readers in it."""
    shutil.rmtree(build.build_dir, ignore_errors=True)
    tools = build.build_dir / TOOLS
    tools.mkdir(parents=True)
    here = Path(__file__).resolve().parent
    shutil.copy(here / "recorder.py", tools / "recorder.py")
    shutil.copy(here / "determinism.py", tools / "determinism.py")
    shutil.copy(builtin_recipe(), tools / TRUTH_SCRIPT)
    for path in build.copy_in:
        shutil.copy(path, tools / path.name)


def _run_recorder(build: TeamBuild, stage: Path, log: Callable) -> dict:
    """``python recorder.py --recipe SPEC`` in the neutral build folder, writing into ``stage``."""
    shutil.rmtree(stage, ignore_errors=True)
    cmd: list[object] = [build.python, build.build_dir / TOOLS / "recorder.py", "--recipe", build.spec]
    cmd += ["--build-dir", build.build_dir, "--out", stage]
    for name in build.scenarios or []:
        cmd += ["--scenario", name]
    _run(cmd, log, cwd=build.build_dir, env=build.env, what=f"recording the recipe {build.spec}")
    result = json.loads((stage / "recipe-result.json").read_text())
    (stage / "recipe-result.json").unlink()
    if not result["scenarios"]:
        raise GoldenBuildError(f"the recipe {build.spec} made no scenario: {result['skipped'] or result['failed']}")
    return result


def _compare(build: TeamBuild, scenario: str, first: Path, second: Path, log: Callable) -> None:
    """The two saves of ``scenario`` hold the same tensors, or :class:`RecipeError` names the first that differs."""
    if first.read_bytes() == second.read_bytes():
        return
    cmd: list[object] = [build.python, build.build_dir / TOOLS / "determinism.py", first, second]
    log("  $ " + " ".join(str(c) for c in cmd))
    proc = subprocess.run([str(c) for c in cmd], cwd=build.build_dir, env=build.env, capture_output=True, text=True)
    if proc.returncode == 1 and proc.stdout.strip():
        raise RecipeError(f"scenario {scenario}: {proc.stdout.strip().splitlines()[-1]}: {NOT_DETERMINISTIC}")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise GoldenBuildError(f"comparing the two saves of {scenario} failed (exit {proc.returncode}):\n{tail}")


def _meta(build: TeamBuild, result: dict, kept: dict, target: Path) -> dict:
    """The release's ``meta.json``: the built-in fields that apply to a team's release."""
    skipped = {**_old_skipped(target, build.scenarios), **result["skipped"], **result["failed"]}
    return {
        "release": result["package_version"],
        "package": result["package"],
        "python": result["python"],
        "torch": result["torch"],
        **build.extra_meta,
        "made_with": build.made_with,
        "build_dir": str(build.build_dir),  # truth paths are relative to it; the matrix relativizes restored ones
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
        "lightning_version": result["lightning_version"],
        "environment": build.freeze,
        "scenarios": dict(sorted({**kept, **result["scenarios"]}.items())),
        "skipped": {k: v for k, v in sorted(skipped.items()) if k not in kept and k not in result["scenarios"]},
    }


# ------------------------------------------------------------------------- golden record (here)
def record_release(
    spec: str,
    *,
    out: Path,
    scenarios: Sequence[str] | None = None,
    force: bool = False,
    determinism_check: bool = True,
    build_root: Path | None = None,
    log: Callable = print,
) -> dict:
    """``ckpt-compat golden record``: the recipe's goldens of the release installed in this environment."""
    recipe = load_recipe_object(spec)
    from importlib import metadata

    try:
        version = metadata.version(recipe.package)
    except metadata.PackageNotFoundError:
        raise RecipeError(
            f"recipe {spec!r}: its package {recipe.package!r} is not installed here; install it, or set "
            "'package' to the distribution whose version names the goldens"
        ) from None
    out = Path(out).resolve()
    refuse_existing(out, version, force)
    module, _, attr = spec.rpartition(":")
    shown_spec = spec
    if module.endswith(".py"):  # the recorder runs elsewhere: an absolute path; meta.json: the file's name
        spec, shown_spec = f"{Path(module).resolve()}:{attr}", f"{Path(module).name}:{attr}"
    build = TeamBuild(
        spec=spec,
        out=out,
        python=Path(sys.executable),
        build_dir=neutral_build_root(build_root) / f"record-{recipe.package}",
        made_with=f"ckpt-compat golden record --recipe {shown_spec}",
        scenarios=list(scenarios) if scenarios else None,
        force=force,
        determinism_check=determinism_check,
        env=recorder_env({"PYTHONPATH": os.pathsep.join(_import_path())}),
        freeze=_freeze_here(),
    )
    log(f"golden record: {recipe.package} {version} with {shown_spec}, python {sys.version.split()[0]}")
    return record_build(build, log)


def _import_path() -> list[str]:
    """The folders this process imports from beyond its interpreter's own (the current folder, PYTHONPATH,
    a checkout), so the recorder imports the recipe as ``load_recipe_object`` did; the interpreter's
    standard library and site-packages stay in their own order (a backport there must not shadow the
    standard library)."""
    import site

    own = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    user_site = os.path.abspath(site.getusersitepackages())
    extra = []
    for entry in sys.path:
        path = os.path.abspath(entry or os.curdir)
        inside = any(path == root or path.startswith(root + os.sep) for root in own | {user_site})
        if os.path.isdir(path) and not inside and path not in extra:
            extra.append(path)
    return extra


def _freeze_here() -> list[str]:
    """``pip freeze`` of this environment without needing pip (a uv environment has none)."""
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(name.lower(), f"{name}=={dist.version}")
    return [found[k] for k in sorted(found)]
