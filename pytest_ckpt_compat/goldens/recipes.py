"""The recipe contract: how a suite of goldens is made and how the matrix rebuilds its objects.

A recipe tells this tool, for each scenario, how to build the LightningModule, the datamodule, the
callbacks and the Trainer arguments on small deterministic data, and which installed distribution's
version names the goldens (``DIR/<version>/<scenario>.ckpt``). ``ckpt-compat golden record`` and
``golden add --recipe`` run it to save goldens and record their truth live; the matrix
(``--ckpt-compat-recipe``) runs it again, with the current code, to resume every golden.

Why a protocol and not a base class: ``golden add`` runs the recipe inside an isolated environment
that holds the team's old release, its old Lightning and an old Python, where this package is not
installed. A recipe is any object with these attributes; its module imports nothing from
``pytest_ckpt_compat`` (the ``catalogue`` is named as a string, imported only by the matrix).

The built-in Lightning goldens are one recipe of this contract (``golden/recipes/recipe.py``,
object ``RECIPE``); a team writes its own (README, "Your own goldens").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..core.errors import RecipeError
from .recorder import DEFAULT_SCENARIOS, import_object, save_point, scenarios_of

__all__ = [
    "DEFAULT_SCENARIOS",
    "Recipe",
    "RecipeError",
    "load_recipe_object",
    "recipe_problems",
    "save_point",
    "scenarios_of",
]

# DEFAULT_SCENARIOS: ``end_of_fit`` saves after ``max_epochs``; ``mid_epoch`` saves right after batch 1
# of epoch 1 (so the Trainer needs ``max_epochs >= 2`` and at least 3 training batches per epoch).

REQUIRED = ("package", "make_module", "make_datamodule", "make_callbacks", "trainer_kwargs")


@runtime_checkable
class Recipe(Protocol):
    """What a recipe object provides.

    Optional: ``scenarios`` (default :data:`DEFAULT_SCENARIOS`); ``save_point(scenario)`` →
    ``(epoch, batch)`` after which a scenario of its own saves mid-epoch, ``None`` for the end of fit;
    ``catalogue``, ``"PKG.MODULE:FUNCTION"`` returning the team's :class:`~pytest_ckpt_compat.Catalogue`,
    which the matrix registers (after Lightning's) for this suite; ``safe_globals``, the classes
    (or ``"module.QualName"`` strings) the team's files pickle and its users register with
    ``torch.serialization.add_safe_globals`` so that ``weights_only`` loading (Lightning's default
    under torch >= 2.6) reads them: the matrix registers them too, and without them a file that
    pickles a class of yours fails the ``weights_only`` check naming it.
    """

    package: str
    """The distribution whose installed version names the goldens (``teamnet`` → ``DIR/1.2.0/``)."""

    scenarios: Sequence[str]
    """The scenarios it records (default :data:`DEFAULT_SCENARIOS`); its own names need a ``save_point``."""

    def make_module(self, scenario: str, hparams: dict | None = None) -> Any:
        """The LightningModule, seeded by the caller. ``hparams`` is ``None`` when recording (use the
        scenario's defaults) and the upgraded file's ``hyper_parameters`` when the matrix resumes it:
        build the module the way your users' ``load_from_checkpoint`` would."""
        ...

    def make_datamodule(self, scenario: str) -> Any:
        """The LightningDataModule: small, deterministic (fixed seed), the same batches every run."""
        ...

    def make_callbacks(self, scenario: str, dirpath: str) -> list:
        """The callbacks, with every path under ``dirpath`` (a ModelCheckpoint's ``dirpath``): goldens
        store paths relative to it, so a golden made on one machine resumes on another."""
        ...

    def trainer_kwargs(self, scenario: str, dirpath: str) -> dict:
        """Trainer arguments besides ``callbacks`` (``max_epochs``, ``logger=False``, ...), CPU only;
        ``default_root_dir`` under ``dirpath``. The matrix adds its own ``max_epochs`` when resuming."""
        ...


def load_recipe_object(spec: str) -> Any:
    """The object ``PKG.MODULE:OBJECT`` (or ``path/to/file.py:OBJECT``) names, checked against the contract."""
    module_name, sep, attr = str(spec).rpartition(":")
    if not sep or not module_name or not attr:
        raise RecipeError(f"recipe {spec!r}: expected PKG.MODULE:OBJECT or path/to/recipe.py:OBJECT")
    if module_name.endswith(".py") and not Path(module_name).is_file():
        raise RecipeError(f"recipe file {module_name} does not exist")
    try:
        recipe = import_object(spec)
    except AttributeError as exc:
        raise RecipeError(f"recipe {spec!r}: {exc}") from None
    except Exception as exc:
        raise RecipeError(f"recipe {spec!r} does not import: {type(exc).__name__}: {exc}") from exc
    problems = recipe_problems(recipe)
    if problems:
        raise RecipeError(f"recipe {spec!r} does not follow the recipe contract: " + "; ".join(problems))
    return recipe


def recipe_problems(recipe: Any) -> list[str]:
    """What the object lacks of the contract (empty: it is a recipe)."""
    problems = [f"no {name!r}" for name in REQUIRED if not hasattr(recipe, name)]
    problems += [
        f"{name!r} is not callable"
        for name in REQUIRED[1:]
        if hasattr(recipe, name) and not callable(getattr(recipe, name))
    ]
    if hasattr(recipe, "package") and not (isinstance(recipe.package, str) and recipe.package):
        problems.append(f"'package' must name a distribution, not {recipe.package!r}")
    own = [s for s in scenarios_of(recipe) if s not in DEFAULT_SCENARIOS]
    if own and not callable(getattr(recipe, "save_point", None)):
        problems.append(f"scenarios {own} need a save_point(scenario) method")
    return problems
