"""The chemprop 2.0 -> 2.1 real break (chemprop#1156) on the file chemprop 2.0.5 wrote.

``examples/realbreaks/chemprop/data/chemprop-2.0-metrics.ckpt`` was saved by chemprop 2.0.5 from
PyPI in its own environment (``build.py``; versions in ``meta.json``). chemprop is not installed in
the test environment, so these tests prove the redirects with the safe loader's stand-ins: without
the team catalogue the file is refused naming the renamed classes; with it the file loads, the
ledger names each redirect used, and both units run. The full proof under chemprop 2.1 (load and
resume with exact state) is ``build.py``, opt in with ``-m slow``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat.cli import main
from pytest_ckpt_compat.core.engine import upgrade
from pytest_ckpt_compat.core.errors import NotPlainData, UnsafeCheckpoint
from pytest_ckpt_compat.files.loading import load_checkpoint
from pytest_ckpt_compat.files.redirecting import RedirectedObject
from pytest_ckpt_compat.files.writing import save_checkpoint
from pytest_ckpt_compat.goldens.recipes import DEFAULT_SCENARIOS, load_recipe_object
from pytest_ckpt_compat.goldens.recorder import import_object
from tests.realbreaks.catalogues import registered_example_catalogue

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "realbreaks" / "chemprop"
FILE = FOLDER / "data" / "chemprop-2.0-metrics.ckpt"
MOVED = {
    "chemprop.nn.metrics.MAEMetric": "chemprop.nn.metrics.MAE",
    "chemprop.nn.metrics.RMSEMetric": "chemprop.nn.metrics.RMSE",
}


@pytest.fixture
def chemprop_catalogue():
    with registered_example_catalogue(FOLDER, "chemprop") as registered:
        yield registered


def test_the_file_is_what_chemprop_2_0_wrote():
    meta = json.loads((FILE.parent / "meta.json").read_text())
    assert meta["versions"]["chemprop"] == "2.0.5"
    names = set(torch.serialization.get_unsafe_globals_in_checkpoint(FILE))
    assert {"chemprop.nn.metrics.RMSEMetric", "chemprop.nn.metrics.MAEMetric"} <= names


def test_without_the_catalogue_the_renamed_classes_are_refused_by_name():
    with pytest.raises(UnsafeCheckpoint, match=r"chemprop\.nn\.metrics\.MAEMetric.*chemprop\.nn\.metrics\.RMSEMetric"):
        load_checkpoint(FILE)


def test_with_the_catalogue_the_file_loads_with_stand_ins_and_both_units_run(chemprop_catalogue):
    checkpoint = load_checkpoint(FILE)
    metrics = checkpoint["hyper_parameters"]["metrics"]
    assert [type(m).__qualname__ for m in metrics] == ["RMSE", "MAE"]
    assert all(isinstance(m, RedirectedObject) and type(m).__module__ == "chemprop.nn.metrics" for m in metrics)
    assert [type(m).redirected_from for m in metrics] == [
        "chemprop.nn.metrics.RMSEMetric",
        "chemprop.nn.metrics.MAEMetric",
    ]
    assert checkpoint["ckpt_compat"]["redirects"] == MOVED
    assert "metrics.0.task_weights" not in checkpoint["state_dict"]
    upgrade(checkpoint)
    assert checkpoint["ckpt_compat"]["applied"]["chemprop"] == [
        "chemprop-2.1-metrics-renamed",
        "chemprop-2.1-metric-task-weights",
    ]
    state = checkpoint["state_dict"]
    assert [torch.equal(state[f"metrics.{i}.task_weights"], torch.tensor([[1.0]])) for i in (0, 1)] == [True, True]
    assert torch.equal(state["metrics.2.task_weights"], state["predictor.criterion.task_weights"])
    with pytest.raises(NotPlainData, match="RMSE, a redirected class.*--trust"):
        save_checkpoint(checkpoint, FILE.parent / "never-written.ckpt")
    assert not (FILE.parent / "never-written.ckpt").exists()


def test_inspect_and_dry_run_show_the_redirects(chemprop_catalogue, capsys):
    assert main(["inspect", str(FILE)]) == 0
    out = capsys.readouterr().out
    assert [line.strip() for line in out.splitlines() if "redirect:" in line] == [
        f"redirect: {old} -> {new}" for old, new in MOVED.items()
    ]
    assert main(["upgrade", str(FILE), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "    redirect chemprop.nn.metrics.RMSEMetric -> chemprop.nn.metrics.RMSE" in out.splitlines()
    assert "chemprop-2.1-metric-task-weights" in out


RECIPE_FILE = FOLDER / "recipe.py"
GOLDENS = FOLDER / "goldens"


def test_the_goldens_are_what_each_release_wrote():
    registry = dict(line.split() for line in (GOLDENS / "registry.txt").read_text().splitlines())
    assert sorted(registry) == [f"{r}/{s}.ckpt" for r in ("2.0.5", "2.1.2") for s in ("end_of_fit", "mid_epoch")]
    for release in ("2.0.5", "2.1.2"):
        meta = json.loads((GOLDENS / release / "meta.json").read_text())
        assert (meta["package"], meta["release"]) == ("chemprop", release)
        assert f"chemprop=={release}" in meta["environment"]
        assert {s: meta["scenarios"][s]["truth"]["trainer"]["global_step"] for s in meta["scenarios"]} == {
            "end_of_fit": 6,
            "mid_epoch": 5,
        }
    old = set(torch.serialization.get_unsafe_globals_in_checkpoint(GOLDENS / "2.0.5" / "end_of_fit.ckpt"))
    assert {"chemprop.nn.metrics.RMSEMetric", "chemprop.nn.metrics.MAEMetric"} <= old


def test_the_catalogue_upgrades_the_2_0_golden_and_leaves_the_2_1_golden_alone(chemprop_catalogue):
    """2.1's files carry no version key either: its metrics' task_weights tell them apart (no units, no stamp)."""
    applied = {}
    for release in ("2.0.5", "2.1.2"):
        checkpoint = upgrade(load_checkpoint(GOLDENS / release / "end_of_fit.ckpt"))
        applied[release] = (
            checkpoint.get("ckpt_compat", {}).get("applied", {}).get("chemprop"),
            "chemprop_version" in checkpoint,
        )
    assert applied == {
        "2.0.5": (["chemprop-2.1-metrics-renamed", "chemprop-2.1-metric-task-weights"], True),
        "2.1.2": (None, False),
    }


def test_the_recipe_follows_the_contract_and_names_the_team_catalogue():
    recipe = load_recipe_object(f"{RECIPE_FILE}:RECIPE")
    assert (recipe.package, tuple(recipe.scenarios)) == ("chemprop", DEFAULT_SCENARIOS)
    assert load_recipe_object(f"{RECIPE_FILE}:WITHOUT_CATALOGUE").catalogue is None
    built = import_object(recipe.catalogue)()
    try:
        assert (built.name, built.version_key, Path(built.path)) == (
            "chemprop",
            "chemprop_version",
            FOLDER / "catalogue",
        )
    finally:
        for name in [n for n in sys.modules if n.startswith("ckpt_compat_team_recipe_")]:
            sys.modules.pop(name)


def test_the_recipe_imports_nothing_heavy_and_nothing_of_this_package():
    """It runs in chemprop 2.0.5's own environment (no pytest_ckpt_compat there) and is imported at collection."""
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]); "
        "print(sorted(m for m in ('torch', 'lightning', 'chemprop', 'pytest_ckpt_compat') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(RECIPE_FILE)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_build_from_pypi_then_load_and_resume_under_chemprop_2_1(tmp_path, request):
    """The whole proof: both releases from PyPI (minutes, network); ``CKPT_COMPAT_TORCH`` names a CPU wheel."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("opt in with -m slow (builds two chemprop environments from PyPI)")
    if shutil.which("uv") is None and subprocess.run([sys.executable, "-m", "uv", "--version"]).returncode:
        pytest.skip("needs uv")
    torch_arg = ["--torch", os.environ["CKPT_COMPAT_TORCH"]] if os.environ.get("CKPT_COMPAT_TORCH") else []
    done = subprocess.run(
        [sys.executable, str(FOLDER / "build.py"), "--out", str(tmp_path / "out"), "--envs", str(tmp_path), *torch_arg],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


@pytest.mark.slow
def test_the_ci_step_runs_the_team_matrix_under_chemprop_2_1_both_ways(tmp_path, request):
    """``.ci/chemprop``: a fresh venv with chemprop 2.1 from PyPI (uv, about a minute), then the matrix on the
    goldens without and with the team catalogue (``matrix_v2_1.py`` checks what each must give)."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("opt in with -m slow (builds a chemprop 2.1 environment from PyPI)")
    root = FOLDER.parents[2]
    done = subprocess.run(
        ["bash", str(root / ".ci" / "chemprop"), str(tmp_path / "venv")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    result = json.loads(done.stdout[done.stdout.index("{\n") : done.stdout.rindex("}") + 1])
    assert result["counts"] == {
        "without_catalogue": {"passed": 14, "failed": 10, "skipped": 1},  # test_migration: no units
        "with_catalogue": {"passed": 31, "failed": 0, "skipped": 0},  # 24 cells, 2 units, check mode: 5
    }
