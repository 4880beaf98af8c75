"""``ckpt-compat golden add PKG==VER --recipe``: a team's past release recorded in an isolated environment.

Why: a team's old release only writes its old checkpoints with its old dependencies, so, as for
Lightning's own goldens (:mod:`.building`), the release is installed in a throw-away uv environment
resolved as of its release date (``--exclude-newer``; a release that is not on PyPI, installed with
``--find-links``, needs the date given) and the recipe runs there (:mod:`.team_building`). That
environment has an old Python and no ``pytest_ckpt_compat``: the recorder is copied in as a script,
and the recipe module must import nothing from this package and use the old Python's syntax.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath

from packaging.utils import canonicalize_name

from .building import _run
from .environments import GoldenBuildError, find_python, release_dates, uv_command
from .environments import exclude_newer as day_after
from .recipes import RecipeError
from .team_building import TOOLS, TeamBuild, neutral_build_root, record_build, recorder_env, refuse_existing


# ------------------------------------------------------------ golden add PKG==VER --recipe (isolated)
def add_team_release(
    requirement: str,
    *,
    recipe: str,
    out: Path,
    find_links: Path | None = None,
    exclude_newer: str | None = None,
    python: str | None = None,
    with_reqs: Sequence[str] = (),
    scenarios: Sequence[str] | None = None,
    force: bool = False,
    determinism_check: bool = True,
    build_root: Path | None = None,
    log: Callable = print,
) -> dict:
    """``ckpt-compat golden add PKG==VER --recipe``: a past release's goldens, recorded in an isolated uv
    environment with that release resolved as of its date; the environment is deleted afterwards.

    Everything that can be refused is checked before anything is installed.
    """
    package, version = parse_release(requirement)
    out = Path(out).resolve()
    if _recorded_package(out / version) == canonicalize_name(package):  # refused early, not after installing
        refuse_existing(out, version, force)
    module, attr, recipe_file = _recipe_parts(recipe)
    if find_links is not None and not Path(find_links).is_dir():
        raise GoldenBuildError(f"--find-links {find_links}: not a folder (of the release's wheels)")
    interpreter = _interpreter(python, package, version)
    cutoff = _cutoff(package, version, exclude_newer, out, log)
    root = neutral_build_root(build_root)
    name = f"team-{package}-{version}"
    build_dir, env_dir = root / name, root / ".envs" / name
    if recipe_file is not None:  # copied in beside the recorder: the spec names the copy
        spec, shown = f"{build_dir / TOOLS / recipe_file.name}:{attr}", f"{recipe_file.name}:{attr}"
    else:
        spec = shown = recipe
    requirements = [requirement, *with_reqs]
    build = TeamBuild(
        spec=spec,
        out=out,
        python=env_dir / "bin" / "python",
        build_dir=build_dir,
        made_with=" ".join(
            ["ckpt-compat golden add", requirement, "--recipe", shown, *(f"--with {_public(r)}" for r in with_reqs)]
        ),
        scenarios=list(scenarios) if scenarios else None,
        force=force,
        determinism_check=determinism_check,
        env=recorder_env(),
        extra_meta={"requirements": [_public(r) for r in requirements], "exclude_newer": cutoff},
        copy_in=[recipe_file] if recipe_file is not None else [],
    )
    log(f"golden add {requirement}: python {interpreter}, exclude-newer {cutoff}, requirements {requirements}")
    try:
        shutil.rmtree(env_dir, ignore_errors=True)
        build.freeze = [_public(line) for line in _install(interpreter, env_dir, requirements, cutoff, find_links, log)]
        return record_build(build, log)
    finally:
        shutil.rmtree(env_dir, ignore_errors=True)


def _public(text: str) -> str:
    """A requirement or ``pip freeze`` line without this machine's paths (a local wheel: its file name).

    ``torch @ file:///opt/wheels/torch-....whl`` becomes ``torch @ torch-....whl``."""
    name, at, where = text.rpartition(" @ ")
    if at:
        return f"{name} @ {_public(where)}"
    if "://" in text or text.startswith(("/", "~")) or text.endswith((".whl", ".tar.gz")):
        return PurePath(text.split("://", 1)[-1]).name
    return text


def _recorded_package(folder: Path) -> str | None:
    """The package an existing release folder was recorded for (its meta.json), if any."""
    try:
        return canonicalize_name(str(json.loads((folder / "meta.json").read_text())["package"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def parse_release(requirement: str) -> tuple[str, str]:
    """``teamnet==1.0.0`` -> ``("teamnet", "1.0.0")``; anything but one exact version is refused."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    wanted = f"golden add --recipe needs PACKAGE==VERSION (e.g. teamnet==1.0.0), not {requirement!r}"
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        raise GoldenBuildError(wanted) from None
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version or req.url or req.marker:
        raise GoldenBuildError(wanted)
    try:
        Version(specs[0].version)
    except InvalidVersion:
        raise GoldenBuildError(f"{requirement!r}: {specs[0].version!r} is not a version") from None
    return req.name, specs[0].version


def _recipe_parts(recipe: str) -> tuple[str, str, Path | None]:
    """The recipe's module (or file) and object; a file must exist here (it is copied in)."""
    module, sep, attr = str(recipe).rpartition(":")
    if not sep or not module or not attr:
        raise RecipeError(f"recipe {recipe!r}: expected PKG.MODULE:OBJECT or path/to/recipe.py:OBJECT")
    if not module.endswith(".py"):
        return module, attr, None
    path = Path(module)
    if not path.is_file():
        raise RecipeError(f"recipe file {module} does not exist")
    return module, attr, path.resolve()


def _interpreter(python: str | None, package: str, version: str) -> Path:
    """The pyenv Python for the environment: ``--python``, else this interpreter's X.Y."""
    if python:
        return find_python(python)
    here = "{}.{}".format(*sys.version_info[:2])
    try:
        return find_python(here)
    except GoldenBuildError as exc:
        raise GoldenBuildError(f"{exc}; or pass --python X.Y, a Python that {package} {version} supports") from None


def _cutoff(package: str, version: str, given: str | None, out: Path, log: Callable) -> str:
    """``--exclude-newer``: as given (checked), else the release's PyPI upload time plus one day."""
    if given:
        try:
            _dt.datetime.fromisoformat(given.replace("Z", "+00:00"))
        except ValueError:
            raise GoldenBuildError(
                f"--exclude-newer {given!r}: expected a date (2024-05-01) or a UTC time (2024-05-01T00:00:00Z)"
            ) from None
        return given
    dates, _ = release_dates(package, out, log=log)
    if version not in dates:
        raise GoldenBuildError(
            f"{package} {version} is not on PyPI (no upload date known): pass --exclude-newer DATE, the day after "
            "its release, to resolve its dependencies as of then (e.g. for a release installed from --find-links)"
        )
    return day_after(dates[version])


def _install(
    interpreter: Path, env_dir: Path, requirements: list[str], cutoff: str, find_links: Path | None, log: Callable
) -> list[str]:
    """A fresh uv environment with the release, resolved as of ``cutoff``; returns its ``pip freeze``."""
    uv = uv_command()
    _run(uv + ["venv", "--quiet", "--python", interpreter, env_dir], log, what="uv venv")
    env_python = env_dir / "bin" / "python"
    cmd: list[object] = [*uv, "pip", "install", "--quiet", "--python", env_python, "--exclude-newer", cutoff]
    if find_links is not None:
        cmd += ["--find-links", Path(find_links).resolve()]
    _run(cmd + requirements, log, what=f"installing {' '.join(requirements)}")
    return _run(uv + ["pip", "freeze", "--python", env_python], log, what="uv pip freeze").splitlines()
