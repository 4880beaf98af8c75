"""``ckpt-compat golden record``: a team's recipe recorded in this environment, twice, into its own folder.

Why: a team's goldens are the truth its CI resumes against; they must hold exactly what the
recipe saved (files, sha256, truth), refuse to overwrite a release unasked, and refuse a recipe
that does not import, lacks part of the contract, or saves different tensors every run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from pytest_ckpt_compat import cli
from pytest_ckpt_compat.core.errors import GoldenError
from pytest_ckpt_compat.goldens import determinism
from pytest_ckpt_compat.goldens.environments import GoldenBuildError
from pytest_ckpt_compat.goldens.recipes import RecipeError
from pytest_ckpt_compat.goldens.registry import read_registry, write_registry
from pytest_ckpt_compat.goldens.team_building import _import_path, record_release

SPEC = "tests.goldens.team_recipe:RECIPE"
VERSION = metadata.version("pytorch-lightning")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def build_root(tmp_path_factory) -> Path:
    """One build folder for the module: the same paths inside the checkpoints, so the same bytes."""
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, build_root) -> tuple[Path, dict, list[str]]:
    out = tmp_path_factory.mktemp("team") / "goldens"
    lines: list[str] = []
    summary = record_release(SPEC, out=out, build_root=build_root, log=lines.append)
    return out, summary, lines


def test_record_writes_the_release_folder_meta_and_registry(recorded, build_root):
    out, summary, lines = recorded
    files = _files(out)
    assert sorted(files) == [
        f"{VERSION}/end_of_fit.ckpt",
        f"{VERSION}/meta.json",
        f"{VERSION}/mid_epoch.ckpt",
        "registry.txt",
    ]
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items() if name.endswith(".ckpt")}
    assert read_registry(out) == {name: f"sha256:{digest}" for name, digest in digests.items()}
    assert (summary["release"], summary["package"], summary["scenarios"], summary["removed"]) == (
        VERSION,
        "pytorch-lightning",
        ["end_of_fit", "mid_epoch"],
        [],
    )
    assert summary["added"] == sorted(digests)
    assert sum("recorder.py" in line for line in lines) == 2  # recorded twice: the determinism check
    assert not list(build_root.iterdir())  # the build folder is removed afterwards


def test_record_meta_holds_the_live_truth(recorded, build_root):
    out, _, _ = recorded
    meta = json.loads((out / VERSION / "meta.json").read_text())
    assert list(meta) == [
        "release",
        "package",
        "python",
        "torch",
        "made_with",
        "build_dir",
        "date",
        "lightning_version",
        "environment",
        "scenarios",
        "skipped",
    ]
    assert (meta["release"], meta["package"], meta["lightning_version"], meta["skipped"]) == (
        VERSION,
        "pytorch-lightning",
        VERSION,
        {},
    )
    assert meta["made_with"] == f"ckpt-compat golden record --recipe {SPEC}"
    assert meta["build_dir"] == str(build_root / "record-pytorch-lightning")  # truth paths are relative to it
    assert meta["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert meta["torch"] == metadata.version("torch")
    assert f"pytorch-lightning=={VERSION}" in meta["environment"]
    for name, entry in meta["scenarios"].items():
        data = (out / VERSION / f"{name}.ckpt").read_bytes()
        assert (entry["file"], entry["sha256"], entry["size"]) == (
            f"{name}.ckpt",
            hashlib.sha256(data).hexdigest(),
            len(data),
        )
    end, mid = meta["scenarios"]["end_of_fit"]["truth"], meta["scenarios"]["mid_epoch"]["truth"]
    assert (end["completed_epochs"], end["optimizer_steps"], end["batches_in_current_epoch"]) == (2, [8], 0)
    assert (mid["completed_epochs"], mid["optimizer_steps"], mid["batches_in_current_epoch"]) == (1, [6], 2)
    assert end["hparams"] == {"hidden": 4, "lr": 0.1}


def test_record_refuses_an_existing_release_without_force(recorded, tmp_path, capsys):
    out = tmp_path / "goldens"
    shutil.copytree(recorded[0], out)
    before = _files(out)
    code = cli.main(["golden", "record", "--recipe", SPEC, "--out", str(out)])
    assert code == GoldenError.exit_code
    assert f"goldens/{VERSION} already exists; pass --force to replace it" in capsys.readouterr().err
    assert _files(out) == before


def test_record_with_force_replaces_the_release(recorded, tmp_path, build_root):
    """A damaged golden and its registry line are replaced; another release's line stays."""
    out = tmp_path / "goldens"
    shutil.copytree(recorded[0], out)
    original = _files(out)
    (out / VERSION / "end_of_fit.ckpt").write_bytes(b"damaged")
    other = {"0.1.0/end_of_fit.ckpt": "sha256:" + "c" * 64}
    damaged = {f"{VERSION}/end_of_fit.ckpt": "sha256:" + hashlib.sha256(b"damaged").hexdigest()}
    write_registry(out, {**read_registry(out), **damaged, **other})
    summary = record_release(
        SPEC,
        out=out,
        scenarios=["end_of_fit"],
        force=True,
        determinism_check=False,
        build_root=build_root,
        log=lambda m: None,
    )
    assert (summary["added"], summary["removed"]) == ([f"{VERSION}/end_of_fit.ckpt"], [])
    files = _files(out)
    assert files[f"{VERSION}/end_of_fit.ckpt"] == original[f"{VERSION}/end_of_fit.ckpt"]
    assert files[f"{VERSION}/mid_epoch.ckpt"] == original[f"{VERSION}/mid_epoch.ckpt"]
    assert read_registry(out) == {**read_registry(recorded[0]), **other}
    assert sorted(p.name for p in out.iterdir()) == [VERSION, "registry.txt"]  # no staging folder left


def test_record_of_a_recipe_that_does_not_import_names_the_error(tmp_path, capsys):
    (tmp_path / "broken.py").write_text("import not_a_module_of_anyone\nRECIPE = None\n")
    out = tmp_path / "goldens"
    code = cli.main(["golden", "record", "--recipe", f"{tmp_path / 'broken.py'}:RECIPE", "--out", str(out)])
    assert code == RecipeError.exit_code
    err = capsys.readouterr().err
    assert "does not import: ModuleNotFoundError: No module named 'not_a_module_of_anyone'" in err
    assert not out.exists()


def test_record_of_a_recipe_without_make_module_names_it(tmp_path):
    out = tmp_path / "goldens"
    with pytest.raises(RecipeError, match="does not follow the recipe contract: no 'make_module'$"):
        record_release("tests.goldens.team_recipe:NO_MODULE", out=out, log=lambda m: None)
    assert not out.exists()


def test_record_of_a_recipe_whose_package_is_not_installed_names_it(tmp_path):
    (tmp_path / "other.py").write_text(
        "from tests.goldens.team_recipe import TinyRecipe\n\n"
        "class Other(TinyRecipe):\n    package = 'ckpt-compat-not-installed'\n\nRECIPE = Other()\n"
    )
    with pytest.raises(RecipeError) as caught:
        record_release(f"{tmp_path / 'other.py'}:RECIPE", out=tmp_path / "goldens", log=lambda m: None)
    assert str(caught.value).endswith(
        "its package 'ckpt-compat-not-installed' is not installed here; install it, or set 'package' to the "
        "distribution whose version names the goldens"
    )
    assert not (tmp_path / "goldens").exists()


def test_record_of_a_recipe_that_does_not_build_shows_its_error_and_writes_nothing(tmp_path):
    out = tmp_path / "goldens"
    with pytest.raises(GoldenBuildError) as caught:
        record_release("tests.goldens.team_recipe:NO_DATA", out=out, build_root=tmp_path / "build", log=lambda m: None)
    message = str(caught.value)
    assert message.startswith("recording the recipe tests.goldens.team_recipe:NO_DATA failed (exit 1):")
    assert "ValueError: no data for end_of_fit" in message and "ValueError: no data for mid_epoch" in message
    assert list(out.iterdir()) == [] and list((tmp_path / "build").iterdir()) == []


def test_record_of_a_recipe_that_is_not_deterministic_names_the_tensor(tmp_path):
    out = tmp_path / "goldens"
    with pytest.raises(RecipeError) as caught:
        record_release(
            "tests.goldens.team_recipe:NOISY",
            out=out,
            scenarios=["end_of_fit"],
            build_root=tmp_path / "build",
            log=lambda m: None,
        )
    assert str(caught.value) == (
        "scenario end_of_fit: state_dict['encoder.weight'] differs between two runs: "
        "the recipe is not deterministic (seed your data and model)"
    )
    assert list(out.iterdir()) == []
    assert list((tmp_path / "build").iterdir()) == []


def test_cli_parses_every_record_option():
    args = cli.build_parser().parse_args(
        "golden record --recipe a.b:R --out g --scenario end_of_fit --force --no-determinism-check".split()
    )
    assert (args.recipe, args.out, args.scenarios, args.force, args.determinism_check) == (
        "a.b:R",
        Path("g"),
        ["end_of_fit"],
        True,
        False,
    )
    assert args.func is cli.suite._cmd_golden_record
    assert cli.build_parser().parse_args("golden record --recipe a.b:R --out g".split()).determinism_check is True


def test_the_recorder_imports_from_this_process_folders_but_not_its_interpreter_ones():
    """The checkout (pytest's pythonpath) reaches the recorder; site-packages and the standard library do not
    come through PYTHONPATH (they would precede the standard library there: a backport would shadow it)."""
    path = _import_path()
    assert str(Path(__file__).resolve().parents[2]) in path
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    assert [p for p in path if any(p.startswith(r) for r in roots)] == []


# ------------------------------------------------------------------------- the determinism check
def test_first_difference_walks_nested_tensors_in_saved_order(tmp_path):
    import torch

    base = {"epoch": 1, "state_dict": {"a": torch.ones(2), "b": torch.zeros(2)}, "opt": [{"s": torch.ones(1)}]}
    torch.save(base, tmp_path / "a.ckpt")
    torch.save({**base, "opt": [{"s": torch.full((1,), 2.0)}]}, tmp_path / "b.ckpt")
    torch.save({**base, "state_dict": {"a": torch.ones(2)}}, tmp_path / "c.ckpt")
    torch.save({**base, "epoch": 2, "nan": torch.tensor([float("nan")])}, tmp_path / "d.ckpt")
    torch.save({**base, "epoch": 3, "nan": torch.tensor([float("nan")])}, tmp_path / "e.ckpt")
    assert (
        determinism.first_difference(tmp_path / "a.ckpt", tmp_path / "b.ckpt") == "opt[0]['s'] differs between two runs"
    )
    assert determinism.first_difference(tmp_path / "a.ckpt", tmp_path / "c.ckpt") == (
        "state_dict['b'] is saved by one run only"
    )
    assert (
        determinism.first_difference(tmp_path / "d.ckpt", tmp_path / "e.ckpt") is None
    )  # NaN = NaN, no tensor in epoch


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_first_difference_reads_classes_that_do_not_import_here(tmp_path, zip_format):
    """A team's old class that this process cannot import still has its tensors compared (both file formats)."""
    (tmp_path / "gone_module.py").write_text(
        "import torch\nclass Kept:\n    def __init__(self, v):\n        self.weights = torch.full((2,), v)\n"
    )
    script = (
        "import sys, torch; sys.path.insert(0, sys.argv[1]); import gone_module\n"
        "for name, value in (('a', 1.0), ('b', 1.0), ('c', 5.0)):\n"
        "    torch.save({'kept': gone_module.Kept(value)}, f'{sys.argv[1]}/{name}.ckpt', "
        "_use_new_zipfile_serialization=sys.argv[2] == 'True')"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path), str(zip_format)], check=True)
    (tmp_path / "gone_module.py").unlink()
    assert determinism.first_difference(tmp_path / "a.ckpt", tmp_path / "b.ckpt") is None
    assert determinism.first_difference(tmp_path / "a.ckpt", tmp_path / "c.ckpt") == (
        "kept['weights'] differs between two runs"
    )
