"""The built-in recipe module the matrix shares stays itself when other copies of the recipe load.

CI failed 146 contiguous resume/plain_resume/evaluate cells in one xdist worker: a test loaded a
golden subset's copy of the recipe (the same module name, ``ckpt_compat_recipe``), a later fresh
save rebuilt that copy's classes for ``pytorch_lightning``, and the session's recipe, which looked
its classes up through ``sys.modules``, handed the ``lightning.pytorch`` Trainer a module of the
other namespace (``model must be a LightningModule ..., got GoldenModule``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from pytest_ckpt_compat.matrix.suites import RECIPE_MODULE, load_recipe

REPO_GOLDEN = Path(__file__).resolve().parents[2] / "golden"


@pytest.fixture
def two_copies(tmp_path):
    first = load_recipe(str(REPO_GOLDEN / "recipes" / "recipe.py"))
    shutil.copytree(REPO_GOLDEN / "recipes", tmp_path / "recipes", ignore=shutil.ignore_patterns("__pycache__"))
    second = load_recipe(str(tmp_path / "recipes" / "recipe.py"))
    yield first, second
    load_recipe(str(REPO_GOLDEN / "recipes" / "recipe.py"))  # the shared one is the module of that name again


def test_a_copy_loaded_later_does_not_change_the_classes_the_first_builds(two_copies):
    first, second = two_copies
    assert second is not first
    for scenario in ("end_of_fit", "cli_saved", "stateful_loader", "reduce_on_plateau"):
        own = [c for c in vars(first).values() if isinstance(c, type)]
        assert type(first.RECIPE.make_module(scenario)) in own, scenario
        assert first.module_class(scenario) in own, scenario
        assert type(first.RECIPE.make_datamodule(scenario)) in own, scenario
    assert type(first.RECIPE.make_module("end_of_fit")) is first.CLASSES[1]
    assert type(second.RECIPE.make_module("end_of_fit")) is second.CLASSES[1]


def test_a_copy_rebuilt_for_the_other_namespace_leaves_the_first_on_its_own(two_copies):
    """What the failing worker did: the copy's classes rebuilt for the other Lightning package."""
    first, second = two_copies
    other = "pytorch_lightning" if first.pl.__name__.startswith("lightning") else "lightning.pytorch"
    try:
        second.pl = __import__(other, fromlist=["Trainer"])
    except ImportError:
        pytest.skip(f"{other} is not installed")
    second.CLASSES = second._build_classes()
    model = first.RECIPE.make_module("end_of_fit")
    assert isinstance(model, first.pl.LightningModule)
    assert not isinstance(model, second.pl.LightningModule)


def test_loading_the_recipe_again_makes_it_the_module_of_its_name(two_copies):
    """Pickle finds the classes it saves through ``sys.modules``: the recipe asked for must be there."""
    first, second = two_copies
    assert sys.modules[RECIPE_MODULE] is second
    assert load_recipe(first.__file__) is first
    assert sys.modules[RECIPE_MODULE] is first
