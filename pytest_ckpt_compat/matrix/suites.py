"""Golden suites: the built-in one (Lightning's format on this project's model) and a team's own.

Why one shape for both: every check of the matrix rebuilds a golden's module, datamodule,
callbacks and Trainer arguments through the public recipe contract
(:mod:`pytest_ckpt_compat.goldens.recipes`) and compares what a resume restored with the truth
recorded live, read by the same truth readers (the built-in recipe's). What differs is said here:

- which version names a suite's releases (the installed Lightning, or the team's package);
- which hyperparameters rebuild a module: the built-in suite's module keeps its constructor across
  releases, so the recorded ones; a team's module is built from the *upgraded* file's
  ``hyper_parameters``, as its users' ``load_from_checkpoint`` would (its catalogue renames them);
- the team's catalogue, registered for the session after Lightning's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from ..core import versions
from ..goldens.store import Golden, GoldenStore

BUILTIN = ""  # the built-in suite's name: its ids stay "<release>-<scenario>-<check>"
RECIPE_MODULE = "ckpt_compat_recipe"  # the module name the built-in recipe's classes were pickled under


@dataclass
class Suite:
    """One suite of goldens in a session: where they are and which recipe rebuilds them."""

    store: GoldenStore
    recipe_spec: str | None = None  # None: the built-in recipe (recipes/recipe.py next to the registry)
    name: str = BUILTIN  # a team suite is named after its recipe's package
    _view: RecipeView | None = field(default=None, init=False, repr=False)

    @property
    def is_team(self) -> bool:
        return self.recipe_spec is not None

    def installed_version(self) -> str:
        """The installed release this suite's goldens are compared with."""
        if not self.is_team:
            return versions.installed_lightning_version()
        from importlib import metadata

        return metadata.version(self.recipe.contract.package)

    @property
    def recipe(self) -> RecipeView:
        """The recipe, imported on first use; a team's catalogue is registered then (after Lightning's)."""
        if self._view is None:
            if not self.is_team:
                self._view = builtin_view(self.store)
            else:
                self._view = team_view(str(self.recipe_spec))
                register_team_catalogue(self._view.contract)
                register_safe_globals(self._view.contract)
        return self._view

    def label(self) -> str:
        return "built-in (Lightning)" if not self.is_team else f"{self.name} (recipe {self.recipe_spec})"


class RecipeView:
    """A recipe as the matrix uses it: the contract object plus the truth readers and Lightning it goes with."""

    def __init__(self, contract: Any, truth: ModuleType, *, team: bool):
        self.contract, self.truth, self.team = contract, truth, team

    # the truth readers (one copy: the built-in recipe's), bound to the suite's Lightning
    @property
    def pl(self):
        return self.truth.pl

    def jsonable(self, value: Any) -> Any:
        return self.truth.jsonable(value)

    def weights(self, module) -> tuple[str, float]:
        return self.truth._weights(module)

    def as_count(self, value: Any) -> Any:
        return self.truth._as_count(value)

    def relativize(self, value: Any, build_dir: str) -> Any:
        return self.truth._relativize(value, build_dir)

    def find_scaler(self, trainer) -> Any:
        return self.truth._find_scaler(trainer)

    # the contract, per golden
    def hparams(self, golden: Golden, upgraded: dict | None) -> dict:
        if self.team and upgraded is not None:
            return dict(upgraded.get("hyper_parameters") or {})
        return dict(golden.truth["hparams"])

    def make_module(self, golden: Golden, upgraded: dict | None):
        return self.contract.make_module(golden.scenario, self.hparams(golden, upgraded))

    def module_class(self, golden: Golden, upgraded: dict | None) -> type:
        return type(self.make_module(golden, upgraded))

    def make_datamodule(self, scenario: str):
        return self.contract.make_datamodule(scenario)

    def make_callbacks(self, scenario: str, dirpath: str) -> list:
        return list(self.contract.make_callbacks(scenario, dirpath))

    def trainer_kwargs(self, scenario: str, dirpath: str) -> dict:
        return dict(self.contract.trainer_kwargs(scenario, dirpath))


def recipe_path(store: GoldenStore) -> Path:
    """The built-in recipe that made the goldens, next to the registry (repository or wheel)."""
    from ..goldens.store import packaged_golden_dir, repository_golden_dir

    for base in (store.registry_dir, repository_golden_dir(), packaged_golden_dir()):
        if base is not None and (Path(base) / "recipes" / "recipe.py").is_file():
            return Path(base) / "recipes" / "recipe.py"
    raise FileNotFoundError(f"no recipes/recipe.py next to {store.registry_dir}: cannot rebuild the golden's classes")


def builtin_view(store: GoldenStore) -> RecipeView:
    module = load_recipe(str(recipe_path(store)))
    return RecipeView(module.RECIPE, module, team=False)


def load_recipe(path: str):
    """Import the built-in recipe by path under the module name its classes were pickled with.

    Each call makes the recipe asked for the module of that name again: pickle (a save, an old
    ``ckpt_subclass`` file's classes) and LightningCLI's ``class_path`` find the classes through
    ``sys.modules``, and another copy (a golden subset's recipe) may have taken the name meanwhile.
    """
    import sys

    module = _import_recipe(path)
    sys.modules[RECIPE_MODULE] = module
    return module


@cache
def _import_recipe(path: str):
    import importlib.util
    import sys

    import torch

    from ..lightning import trainer_module

    existing = sys.modules.get(RECIPE_MODULE)
    if existing is not None and getattr(existing, "__file__", None) == str(path) and getattr(existing, "CLASSES", None):
        return existing
    spec = importlib.util.spec_from_file_location(RECIPE_MODULE, path)
    assert spec is not None and spec.loader is not None, path  # a .py file always has a source loader
    module: Any = importlib.util.module_from_spec(spec)
    sys.modules[RECIPE_MODULE] = module
    spec.loader.exec_module(module)
    module.pl, module.torch = trainer_module(), torch
    module.CLASSES = module._build_classes()
    return module


def forget_recipes() -> None:
    """Forget the recipes imported so far: the next load binds the namespace chosen then (tests switch it)."""
    _import_recipe.cache_clear()


def team_view(spec: str) -> RecipeView:
    """A team's recipe, checked against the contract, with the truth readers bound to its Lightning."""
    import torch

    from ..goldens import recorder
    from ..goldens.recipes import load_recipe_object, scenarios_of

    contract = load_recipe_object(spec)
    pl = recorder.lightning_of(contract.make_module(scenarios_of(contract)[0], None))
    return RecipeView(contract, recorder.truth_library(pl, torch), team=True)


def register_team_catalogue(contract: Any) -> None:
    """Register the catalogue the recipe names, unless a catalogue of that name is registered already."""
    from ..core.catalogue import all_catalogues, register_catalogue

    catalogue = team_catalogue(contract)
    if catalogue is not None and catalogue.name not in {c.name for c in all_catalogues()}:
        register_catalogue(catalogue)


def register_safe_globals(contract: Any) -> list:
    """``torch.serialization.add_safe_globals`` for the classes the recipe declares, as its users do."""
    import torch

    from ..core.errors import GoldenError
    from ..goldens.recorder import import_object

    classes = []
    for entry in getattr(contract, "safe_globals", None) or ():
        if isinstance(entry, str):
            module, _, name = entry.rpartition(".")
            try:
                entry = import_object(f"{module}:{name}")
            except Exception as exc:
                raise GoldenError(f"the recipe's safe_globals entry {entry!r} does not import: {exc}") from exc
        classes.append(entry)
    if classes:
        torch.serialization.add_safe_globals(classes)
    return classes


def team_catalogue(contract: Any):
    """The catalogue a team's recipe names (``catalogue = "PKG.MODULE:FUNCTION"``), built; None if it names none."""
    from ..core.errors import CatalogueError

    spec = getattr(contract, "catalogue", None)
    if spec is None:
        return None
    if callable(spec):
        return spec()
    from ..goldens.recorder import import_object

    try:
        factory = import_object(spec)
    except Exception as exc:
        raise CatalogueError(f"the recipe's catalogue {spec!r} does not import: {type(exc).__name__}: {exc}") from exc
    return factory() if callable(factory) else factory
