"""A tiny team recipe whose module pickles an object in its hyperparameters, as chemprop's MPNN does.

``Options`` is a ``dict`` subclass: torch's ``weights_only`` unpickler cannot rebuild it even when
allowed (``safe_globals``; it fills plain dicts only), so no file this "release" saves loads with
``weights_only=True`` and its users resume with ``weights_only=False`` (chemprop's ``AttributeDict``).
``WITH_UNITS`` adds a team catalogue whose unit runs on those files (saved by the installed Lightning).
"""

from __future__ import annotations

from pathlib import Path

from tests.goldens.team_recipe import TinyNet, TinyRecipe


class Options(dict):
    """Options the team's module keeps and saves as a hyperparameter."""


class OptionsNet(TinyNet):
    def __init__(self, hidden: int = 4, lr: float = 0.1, options: Options | None = None):
        super().__init__(hidden, lr)
        self.save_hyperparameters()


class PicklesRecipe(TinyRecipe):
    safe_globals = ("tests.plugin.team_pickles.Options",)  # allowed, and still not rebuilt weights-only

    def make_module(self, scenario, hparams=None):
        return OptionsNet(**(hparams or {"options": Options(alias="mse")}))


PICKLES = PicklesRecipe()


def tiny_catalogue():
    """A team catalogue that recognizes the tiny team's files (they carry no version key of their own)."""
    from pytest_ckpt_compat import Catalogue

    folder = Path(__file__).resolve().parent / "team_units"
    return Catalogue(name="tiny", path=folder, version_key="tiny_version", target_version="2.0.0", recognizes=bool)


class WithUnitsRecipe(PicklesRecipe):
    catalogue = "tests.plugin.team_pickles:tiny_catalogue"


WITH_UNITS = WithUnitsRecipe()
