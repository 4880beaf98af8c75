"""``ckpt-compat golden add PACKAGE==VERSION --recipe``: a team's past release recorded in an isolated environment.

Why: every refusal (a request that is not one exact release, a missing --out, a release already
recorded, a recipe file that is not there, no Python, no date to resolve as of) must come before
anything is installed and name what to do; the real build is proven once, end to end (slow).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from pytest_ckpt_compat import cli
from pytest_ckpt_compat.core.errors import GoldenError
from pytest_ckpt_compat.goldens.environments import GoldenBuildError, find_python, uv_command
from pytest_ckpt_compat.goldens.recipes import RecipeError
from pytest_ckpt_compat.goldens.registry import read_registry
from pytest_ckpt_compat.goldens.team_adding import add_team_release, parse_release

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize(
    "request_text", ["teamnet", "teamnet>=1.0", "teamnet==1.*", "teamnet==1.0,<2", "not a requirement", "t @ file:x"]
)
def test_only_one_exact_release_is_accepted(request_text):
    with pytest.raises(GoldenBuildError) as caught:
        parse_release(request_text)
    assert str(caught.value) == (
        f"golden add --recipe needs PACKAGE==VERSION (e.g. teamnet==1.0.0), not {request_text!r}"
    )


def test_parse_release_keeps_the_name_and_version():
    assert parse_release("teamnet==1.0.0") == ("teamnet", "1.0.0")
    assert parse_release("Team_Net[extra]==2.1.0rc1") == ("Team_Net", "2.1.0rc1")


def _refused(tmp_path: Path, argv: list[str], capsys) -> str:
    code = cli.main(["golden", "add", *argv])
    assert code == GoldenError.exit_code
    return capsys.readouterr().err


def test_cli_team_mode_needs_out(tmp_path, capsys):
    err = _refused(tmp_path, ["teamnet==1.0.0", "--recipe", "teamnet.goldens:RECIPE"], capsys)
    assert "golden add --recipe needs --out DIR, the team's golden folder" in err


def test_cli_team_options_need_recipe(tmp_path, capsys):
    argv = ["1.6.5", "--out", "x", "--with", "numpy", "--no-determinism-check"]
    err = _refused(tmp_path, argv, capsys)
    assert "--out, --no-determinism-check: only with --recipe (a team's release)" in err


def test_cli_built_in_options_are_refused_with_recipe(tmp_path, capsys):
    argv = ["teamnet==1.0.0", "--recipe", "t.g:R", "--out", "x", "--torch", "2.0.0", "--package", "lightning"]
    err = _refused(tmp_path, argv, capsys)
    assert "--torch, --package: not with --recipe" in err


def test_an_existing_release_is_refused_before_building(tmp_path):
    """Known before installing when the folder's meta.json names the same package (else after recording:
    the folder is the installed version of the recipe's package)."""
    out = tmp_path / "goldens"
    (out / "1.0.0").mkdir(parents=True)
    (out / "1.0.0" / "meta.json").write_text(json.dumps({"release": "1.0.0", "package": "TeamNet"}))
    with pytest.raises(GoldenBuildError, match=r"^goldens/1.0.0 already exists; pass --force to replace it$"):
        add_team_release("teamnet==1.0.0", recipe="t.g:R", out=out, build_root=tmp_path / "b", log=lambda m: None)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"recipe": "no_colon"},
            RecipeError,
            "recipe 'no_colon': expected PKG.MODULE:OBJECT or path/to/recipe.py:OBJECT",
        ),
        ({"recipe": "missing.py:R"}, RecipeError, "recipe file missing.py does not exist"),
        ({"find_links": Path("no-such-folder")}, GoldenBuildError, "--find-links no-such-folder: not a folder"),
        ({"python": "2.1"}, GoldenBuildError, "no pyenv Python 2.1 under"),
        ({"exclude_newer": "last spring"}, GoldenBuildError, "--exclude-newer 'last spring': expected a date"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_installed(tmp_path, monkeypatch, options, error, message):
    monkeypatch.chdir(tmp_path)
    request = {"recipe": "t.g:R", "out": tmp_path / "goldens", "python": None, **options}
    if "exclude_newer" in options:  # checked after the Python is found
        request["python"] = _any_pyenv_python()
    with pytest.raises(error) as caught:
        add_team_release("teamnet==1.0.0", build_root=tmp_path / "b", log=lambda m: None, **request)
    assert str(caught.value).startswith(message)
    assert not (tmp_path / "b").exists() and not (tmp_path / "goldens").exists()


def test_a_release_not_on_pypi_needs_exclude_newer(tmp_path):
    """Its dependencies are resolved as of its date: without a PyPI upload date the user gives it."""
    with pytest.raises(GoldenBuildError) as caught:
        add_team_release(
            "ckpt-compat-no-such-team-package==1.0.0",
            recipe="t.g:R",
            out=tmp_path / "goldens",
            python=_any_pyenv_python(),
            build_root=tmp_path / "b",
            log=lambda m: None,
        )
    assert str(caught.value) == (
        "ckpt-compat-no-such-team-package 1.0.0 is not on PyPI (no upload date known): pass --exclude-newer DATE, "
        "the day after its release, to resolve its dependencies as of then (e.g. for a release installed from "
        "--find-links)"
    )
    assert not (tmp_path / "b").exists()


def test_cli_parses_every_team_add_option():
    args = cli.build_parser().parse_args(
        "golden add teamnet==1.0.0 --recipe teamnet.goldens:RECIPE --out g --find-links w --exclude-newer 2023-04-13 "
        "--python 3.10 --with setuptools<82 --with numpy<2 --scenario end_of_fit --force --no-determinism-check".split()
    )
    assert (
        args.release,
        args.recipe,
        args.out,
        args.find_links,
        args.exclude_newer,
        args.python,
        args.with_reqs,
        args.scenarios,
        args.force,
        args.determinism_check,
    ) == (
        "teamnet==1.0.0",
        "teamnet.goldens:RECIPE",
        Path("g"),
        Path("w"),
        "2023-04-13",
        "3.10",
        ["setuptools<82", "numpy<2"],
        ["end_of_fit"],
        True,
        False,
    )


def _any_pyenv_python() -> str:
    for version in ("3.11", "3.10", "3.12", "3.9"):
        try:
            find_python(version)
            return version
        except GoldenBuildError:
            continue
    pytest.skip("needs a pyenv Python")


# ------------------------------------------------------------------------------ end to end (slow)
def _tooling_available() -> bool:
    try:
        find_python("3.10")
        subprocess.run([*uv_command(), "--version"], check=True, capture_output=True)
    except (GoldenBuildError, OSError, subprocess.CalledProcessError):
        return False
    return True


def _team_wheel(tmp_path: Path) -> Path:
    """A wheel of a small team package whose release 1.0.0 needs pytorch-lightning 1.9.5; its recipe
    is this folder's tiny test recipe, naming ``teamfake`` as its package."""
    src = tmp_path / "src"
    (src / "teamfake").mkdir(parents=True)
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "teamfake"\nversion = "1.0.0"\ndependencies = ["pytorch-lightning==1.9.5"]\n'
    )
    (src / "teamfake" / "__init__.py").write_text("")
    recipe = (HERE / "team_recipe.py").read_text() + '\nRECIPE.package = "teamfake"\n'
    (src / "teamfake" / "goldens.py").write_text(recipe)
    wheels = tmp_path / "wheels"
    subprocess.run([*uv_command(), "build", "--wheel", "--quiet", "-o", str(wheels), str(src)], check=True)
    return wheels


@pytest.mark.slow
@pytest.mark.skipif(not _tooling_available(), reason="needs uv and a pyenv Python 3.10")
def test_real_team_add_end_to_end(tmp_path, request):
    """teamfake 1.0.0 (from a local wheel) with pytorch-lightning 1.9.5 as of 2023-04-13; then a recipe file."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("opt in with -m slow (builds a real environment with torch)")
    out, build_root = tmp_path / "goldens", tmp_path / "build"
    common = {"out": out, "python": "3.10", "build_root": build_root, "log": lambda m: None}
    extra = {"find_links": _team_wheel(tmp_path), "exclude_newer": "2023-04-13", "with_reqs": ["setuptools<82"]}
    summary = add_team_release("teamfake==1.0.0", recipe="teamfake.goldens:RECIPE", **common, **extra)
    assert (summary["release"], summary["package"], summary["lightning_version"], summary["python"][:5]) == (
        "1.0.0",
        "teamfake",
        "1.9.5",
        "3.10.",
    )
    meta = json.loads((out / "1.0.0" / "meta.json").read_text())
    assert (meta["requirements"], meta["exclude_newer"], meta["made_with"]) == (
        ["teamfake==1.0.0", "setuptools<82"],
        "2023-04-13",
        "ckpt-compat golden add teamfake==1.0.0 --recipe teamfake.goldens:RECIPE --with setuptools<82",
    )
    assert {"teamfake==1.0.0", "pytorch-lightning==1.9.5"} <= set(meta["environment"])
    assert meta["scenarios"]["end_of_fit"]["truth"]["optimizer_steps"] == [8]
    assert meta["scenarios"]["mid_epoch"]["truth"]["optimizer_steps"] == [6]
    digests = {
        f"1.0.0/{n}.ckpt": hashlib.sha256((out / "1.0.0" / f"{n}.ckpt").read_bytes()).hexdigest()
        for n in meta["scenarios"]
    }
    assert read_registry(out) == {name: f"sha256:{digest}" for name, digest in digests.items()}
    assert list(build_root.iterdir()) == [build_root / ".envs"] and not list((build_root / ".envs").iterdir())

    # A recipe file is copied in beside the recorder; --scenario with --force re-records one, keeps the other.
    mid_epoch = (out / "1.0.0" / "mid_epoch.ckpt").read_bytes()
    (tmp_path / "my_recipe.py").write_text((HERE / "team_recipe.py").read_text() + '\nRECIPE.package = "teamfake"\n')
    again = add_team_release(
        "teamfake==1.0.0",
        recipe=f"{tmp_path / 'my_recipe.py'}:RECIPE",
        scenarios=["end_of_fit"],
        force=True,
        determinism_check=False,
        **common,
        **extra,
    )
    assert (again["release"], again["removed"], again["scenarios"]) == ("1.0.0", [], ["end_of_fit", "mid_epoch"])
    meta = json.loads((out / "1.0.0" / "meta.json").read_text())
    assert meta["made_with"] == (
        "ckpt-compat golden add teamfake==1.0.0 --recipe my_recipe.py:RECIPE --with setuptools<82"
    )
    assert (out / "1.0.0" / "mid_epoch.ckpt").read_bytes() == mid_epoch
    end_of_fit = hashlib.sha256((out / "1.0.0" / "end_of_fit.ckpt").read_bytes()).hexdigest()
    assert meta["scenarios"]["end_of_fit"]["sha256"] == end_of_fit
    assert read_registry(out) == {
        "1.0.0/end_of_fit.ckpt": f"sha256:{end_of_fit}",
        "1.0.0/mid_epoch.ckpt": f"sha256:{hashlib.sha256(mid_epoch).hexdigest()}",
    }


@pytest.mark.parametrize(
    "given, recorded",
    [
        (
            "/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
            "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        ),
        ("file:///opt/wheels/torch-2.13.0+cpu.whl", "torch-2.13.0+cpu.whl"),
        ("torch @ file:///opt/wheels/torch-2.13.0+cpu.whl", "torch @ torch-2.13.0+cpu.whl"),
        ("setuptools<82", "setuptools<82"),
        ("teamnet==1.0.0", "teamnet==1.0.0"),
    ],
)
def test_meta_names_a_local_wheel_by_its_file_name_not_this_machines_folder(given, recorded):
    """meta.json is committed: a ``--with`` wheel path or a ``pip freeze`` file URL keeps only the file name."""
    from pytest_ckpt_compat.goldens.team_adding import _public

    assert _public(given) == recorded
