"""Real goldens saved by Lightning 1.6.0+ releases: upgraded structure equals a fresh 2.6 save; counters equal truth.

For each ``<release>/<scenario>.ckpt`` of 1.6.0 or later in ``golden/registry.txt``: load it safely,
upgrade it with our catalogue, and compare key paths and value types of ``loops``, ``callbacks``
and the precision state with a checkpoint the installed Lightning saves *now* from the same
recipe (``golden/recipes/recipe.py``, same callbacks). The only differences allowed are listed in
``ALLOWED``. The loop counters must equal the ``truth`` recorded live when the golden was saved.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from pytest_ckpt_compat import load_checkpoint, upgrade
from pytest_ckpt_compat.errors import UnsafeCheckpoint
from pytest_ckpt_compat.goldens.registry import read_registry

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "golden"
TARGET = "2.6.6"

# Differences between an upgraded old file and a fresh save that are expected, and why.
ALLOWED = {
    # our ledger and Lightning's own legacy stamp
    "upgraded_only": {"ckpt_compat", "legacy_pytorch-lightning_version"},
    # datamodule hyperparameters are saved from 1.7.0 (#11935); an older file cannot hold them
    "fresh_only_before_1_7": {"datamodule_hparams_name", "datamodule_hyper_parameters"},
    # weight_averaging: StochasticWeightAveraging's state, which releases before 1.7.7 do not save
    "swa_state": "/callbacks/StochasticWeightAveraging",
}
COMPARED = ("loops", "callbacks")  # plus every top-level precision key (names compared as a set)


def _version(folder: str) -> Version:
    """``1.9.5`` for ``1.9.5`` and for ``lightning-1.9.5`` (saved with the unified package)."""
    return Version(folder.rsplit("-", 1)[-1])


def _registry() -> list[tuple[str, str]]:
    entries = []
    for name in read_registry(GOLDEN, missing_ok=True):
        release, scenario = name.split("/", 1)
        if Version("1.6.0") <= _version(release) <= Version(TARGET):
            entries.append((release, scenario[: -len(".ckpt")]))
    return sorted(entries, key=lambda e: (_version(e[0]), e[0], e[1]))


ENTRIES = _registry()
pytestmark = pytest.mark.skipif(not ENTRIES, reason="no golden of Lightning >= 1.6.0 in golden/registry.txt yet")


def _load_golden(path: Path) -> dict:
    """Safely, else trusted: old torch pickled scheduler methods, paths, argparse functions (sha256-pinned files)."""
    try:
        return load_checkpoint(path)
    except UnsafeCheckpoint:
        return load_checkpoint(path, trust=True)


def _meta(release: str) -> dict:
    return json.loads((GOLDEN / release / "meta.json").read_text())


def structure(node, path="") -> dict:
    """``{key path: type name}``; the keys of ``best_k_models`` (file paths) are replaced by ``*``, and a
    ``scheduler_state`` is compared as present, not by its keys."""
    out = {}
    for key, value in node.items():
        name = "*" if path.endswith("/best_k_models") else str(key)
        here = f"{path}/{name}"
        if isinstance(value, dict) and value and name != "scheduler_state":
            # a callback's torch scheduler state (SWA's SWALR) is torch's: its keys vary with torch, as in
            # lr_schedulers, which is not compared either
            out.update(structure(value, here))
        else:
            out[here] = type(value).__name__
    return out


def compared_structure(checkpoint: dict) -> dict:
    shape = structure({k: checkpoint[k] for k in COMPARED if k in checkpoint})
    shape.update({f"/precision/{k}": "present" for k in checkpoint if isinstance(k, str) and "Precision" in k})
    return shape


def _shared_recipe():
    """The recipe module under the name its classes pickle with, shared with the matrix in this process."""
    if "ckpt_compat_recipe" not in sys.modules:
        spec = importlib.util.spec_from_file_location("ckpt_compat_recipe", GOLDEN / "recipes" / "recipe.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["ckpt_compat_recipe"] = module
        spec.loader.exec_module(module)
    return sys.modules["ckpt_compat_recipe"]


def _save_fresh(recipe, scenarios: list, build: Path, out: Path) -> None:
    """Run the recipe's ``main()`` for ``scenarios`` into ``out``, leaving the shared module as it was.

    ``main()`` rebinds the module's globals (``pl``, ``torch`` and the classes ``_build_classes()``
    defines) for ``pytorch_lightning``; the matrix in the same xdist worker uses this module with
    classes built for the namespace it chose, so every global is put back, whatever happens.
    """
    cwd, shared = os.getcwd(), dict(vars(recipe))
    try:
        argv = ["--package", "pytorch-lightning", "--build-dir", str(build), "--out", str(out)]
        for scenario in scenarios:
            argv += ["--scenario", scenario]
        assert recipe.main(argv) == 0
    finally:
        os.chdir(cwd)
        vars(recipe).clear()
        vars(recipe).update(shared)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict:
    """Checkpoints saved now by the installed Lightning with the golden recipe, per scenario."""
    recipe = _shared_recipe()
    # amp_16_mixed needs a GPU; fault_tolerant exists only for 1.4/1.5
    scenarios = sorted(
        {s for _, s in ENTRIES if s in recipe.ALL_SCENARIOS and s not in ("amp_16_mixed", "fault_tolerant")}
    )
    out = tmp_path_factory.mktemp("fresh")
    _save_fresh(recipe, scenarios, tmp_path_factory.mktemp("build"), out)
    # trust: our own fresh saves (path_hparams holds a PosixPath); skipped scenarios write no file
    return {s: load_checkpoint(out / f"{s}.ckpt", trust=True) for s in scenarios if (out / f"{s}.ckpt").exists()}


def test_fresh_saves_leave_the_matrix_recipe_module_as_it_was(tmp_path):
    """CI failed 63 resume cells when this module's fresh saves rebound the recipe the matrix shares."""
    from pytest_ckpt_compat.matrix.workspace import load_recipe

    recipe = load_recipe(str(GOLDEN / "recipes" / "recipe.py"))
    before = (recipe.pl, recipe.module_class("end_of_fit"), recipe.CLASSES)
    _save_fresh(recipe, ["end_of_fit"], tmp_path / "build", tmp_path / "out")
    assert (tmp_path / "out" / "end_of_fit.ckpt").is_file()
    assert (recipe.pl, recipe.module_class("end_of_fit"), recipe.CLASSES) == before


@pytest.mark.parametrize(("release", "scenario"), ENTRIES, ids=[f"{r}-{s}" for r, s in ENTRIES])
def test_upgraded_golden(release, scenario, fresh):
    meta = _meta(release)["scenarios"][scenario]
    if meta.get("requires"):
        pytest.skip(f"{release}/{scenario} needs {meta['requires']} to compare with a fresh save")
    checkpoint = upgrade(_load_golden(GOLDEN / release / meta["file"]), TARGET)
    if scenario not in fresh:
        pytest.skip(f"the installed Lightning cannot make scenario {scenario!r} (recipe)")
    reference = fresh[scenario]

    # top-level keys
    upgraded_keys, fresh_keys = set(map(str, checkpoint)), set(map(str, reference))
    allowed_fresh_only = ALLOWED["fresh_only_before_1_7"] if _version(release) < Version("1.7.0") else set()
    assert upgraded_keys - fresh_keys <= ALLOWED["upgraded_only"]
    assert fresh_keys - upgraded_keys == allowed_fresh_only & fresh_keys
    # loops, callbacks, precision: same key paths and value types
    expected_shape = compared_structure(reference)
    if not any("StochasticWeightAveraging" in str(k) for k in checkpoint.get("callbacks") or {}):
        # SWA's averaged state is saved from 1.7.7 (1.7.0 saves none): no upgrade can invent it
        expected_shape = {k: v for k, v in expected_shape.items() if not k.startswith(ALLOWED["swa_state"])}
    assert compared_structure(checkpoint) == expected_shape

    # counters against what the saving process observed
    truth = meta["truth"]
    fit = checkpoint["loops"]["fit_loop"]
    steps = sum(truth["optimizer_steps"])
    if truth["scaler"] is not None:  # AMP: Lightning counts the steps the GradScaler skipped too
        assert steps <= truth["trainer"]["global_step"]
        steps = truth["trainer"]["global_step"]
    assert checkpoint["global_step"] == steps == truth["trainer"]["global_step"]
    assert checkpoint["epoch"] == truth["trainer"]["current_epoch"]
    assert fit["epoch_progress"]["current"]["processed"] == truth["completed_epochs"]
    assert fit["epoch_progress"]["total"]["processed"] == truth["completed_epochs"]
    manual = fit["epoch_loop.manual_optimization.optim_step_progress"]["total"]["completed"]
    auto = fit["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"]["total"]["completed"]
    expected = (steps, 0) if scenario == "manual_opt" else (0, steps)
    if scenario == "two_optimizers":  # 2.x: manual; 1.x automatic, copied to manual by the 2.0.0 unit
        expected = (steps, 0) if _version(release) >= Version("2.0.0") else (steps, steps)
    assert (manual, auto) == expected
    in_epoch = truth["batches_in_current_epoch"]
    batches = fit["epoch_loop.batch_progress"]
    assert batches["current"]["processed"] == (in_epoch or truth["steps_per_epoch"])
    run = truth["completed_epochs"] * truth["steps_per_epoch"] + in_epoch
    assert batches["total"]["processed"] == run
    # logging step as 1.6.5+ save it: batches that stepped, minus the running batch inside on_train_batch_end
    # (with gradient accumulation only every 2nd batch steps: the live value is recorded since then)
    stepped = (truth.get("loops") or {}).get("batches_that_stepped", run - (1 if in_epoch else 0))
    assert fit["epoch_loop.state_dict"]["_batches_that_stepped"] == stepped
