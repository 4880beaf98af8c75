"""The mutation self-test's golden subset and its in-process matrix runner.

Why in-process: a mutant is a monkeypatch of the Lightning already imported in this process, so
the matrix must run here (``pytester.inline_run``) to see it; a subprocess would import a clean
Lightning. Why a fixed subset: the goldens of the newest recorded release not newer than the
installed Lightning, one per scenario that can show a restore regression, so each run is seconds.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from pytest_ckpt_compat.core import versions
from pytest_ckpt_compat.matrix import suites, workspace
from tests.mutation.mutants import CELLS

REPO_GOLDEN = Path(__file__).resolve().parents[2] / "golden"
SCENARIOS = (
    "end_of_fit",
    "mid_epoch",
    "early_stop_waited",
    "custom_args",
    "grad_accum",
    "save_weights_only",
    "manual_opt",
    "amp_16_mixed",
    "amp_16_mixed_cpu",
    "ema_averaging",
)
REQUIRED = ("end_of_fit", "mid_epoch", "early_stop_waited", "custom_args", "save_weights_only")
NAMESPACES = ("pytorch_lightning", "lightning.pytorch")


def _registry() -> dict:
    lines = (REPO_GOLDEN / "registry.txt").read_text().splitlines()
    return dict(line.split() for line in lines if line.strip() and not line.startswith("#"))


def subset_release() -> str | None:
    """Newest ``pytorch-lightning`` golden release <= the installed Lightning with every REQUIRED scenario."""
    installed = versions.parse(versions.installed_lightning_version())
    registry = _registry()
    found = []
    for release in {name.split("/")[0] for name in registry}:
        if release.startswith("lightning-") or versions.parse(release) > installed:
            continue
        if all(f"{release}/{s}.ckpt" in registry for s in REQUIRED):
            found.append(versions.parse(release))
    return str(max(found)) if found else None


@pytest.fixture(scope="session")
def mutation_goldens(tmp_path_factory) -> Path:
    release = subset_release()
    if release is None:
        pytest.skip(
            f"no golden release <= the installed Lightning has all of {REQUIRED}: nothing to mutation-test against"
        )
    registry = _registry()
    dest = tmp_path_factory.mktemp("mutation") / "golden"
    (dest / release).mkdir(parents=True)
    meta = json.loads((REPO_GOLDEN / release / "meta.json").read_text())
    meta["scenarios"] = {s: e for s, e in meta["scenarios"].items() if s in SCENARIOS}
    lines = []
    for scenario in meta["scenarios"]:
        name = f"{release}/{scenario}.ckpt"
        shutil.copyfile(REPO_GOLDEN / name, dest / name)
        lines.append(f"{name} {registry[name]}")
    (dest / release / "meta.json").write_text(json.dumps(meta))
    (dest / "registry.txt").write_text("\n".join(sorted(lines)) + "\n")
    shutil.copytree(REPO_GOLDEN / "recipes", dest / "recipes", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(params=NAMESPACES)
def namespace(request, monkeypatch):
    """Run the matrix against one Lightning namespace (both when both packages are installed)."""
    try:
        __import__(request.param)
    except ImportError:
        pytest.skip(f"{request.param} is not installed")
    monkeypatch.setenv(versions.ENV_MODULE, request.param)
    _forget_namespace()
    yield sys.modules[request.param]
    _forget_namespace()


def _forget_namespace():
    versions.lightning_module_name.cache_clear()
    suites.forget_recipes()
    sys.modules.pop(workspace.RECIPE_MODULE, None)


# The round trip (a file saved now, then checked like a golden) runs on one scenario: a save-path
# mutant changes what every scenario saves, and each extra scenario costs a training run.
ROUND_TRIP_SCENARIOS = ("end_of_fit",)


@pytest.fixture
def run_matrix(pytester, mutation_goldens, tmp_path):
    """Run the cells (``CELLS``) of the subset in this process, or (``round_trip=True``) the round
    trip of ``ROUND_TRIP_SCENARIOS`` in check mode; outcome counts."""

    def run(round_trip: bool = False):
        _forget_namespace()  # the last inline run's module snapshot dropped the recipe it imported
        if round_trip:
            select = ["--ckpt-compat-check", "-k", "test_round_trip and (" + " or ".join(ROUND_TRIP_SCENARIOS) + ")"]
        else:
            select = ["-k", "test_golden and (" + " or ".join(CELLS) + ")"]
        rec = pytester.inline_run(
            "--ckpt-compat",
            f"--ckpt-compat-url={mutation_goldens}",
            f"--ckpt-compat-cache={tmp_path / 'cache'}",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            *select,
            "-q",
        )
        passed, skipped, failed = rec.listoutcomes()
        return {
            "passed": [r.nodeid for r in passed],
            "skipped": [r.nodeid for r in skipped],
            "failed": [r.nodeid for r in failed],
            "checks_failed": [r.nodeid for r in failed if "CheckFailed" in r.longreprtext],
        }

    return run


@pytest.fixture(autouse=True)
def _opt_in(request):
    if "mutation" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("opt in with -m mutation (plants regressions in Lightning and reruns the matrix)")
