"""A tiny team recipe whose module pickles an object in its hyperparameters, as chemprop's MPNN does.

``Options`` is a ``dict`` subclass: torch's ``weights_only`` unpickler cannot rebuild it even when
allowed (it only fills plain dicts), so no file this "release" saves loads with ``weights_only=True``
and its users resume with ``weights_only=False`` (chemprop's ``AttributeDict`` hparams).
"""

from __future__ import annotations

from tests.goldens.team_recipe import TinyNet, TinyRecipe


class Options(dict):
    """Options the team's module keeps and saves as a hyperparameter."""


class OptionsNet(TinyNet):
    def __init__(self, hidden: int = 4, lr: float = 0.1, options: Options | None = None):
        super().__init__(hidden, lr)
        self.save_hyperparameters()


class PicklesRecipe(TinyRecipe):
    def make_module(self, scenario, hparams=None):
        return OptionsNet(**(hparams or {"options": Options(alias="mse")}))


PICKLES = PicklesRecipe()
