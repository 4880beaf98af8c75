"""Variants of the tiny team recipe (``tests/goldens/team_recipe.py``) for the team-suite plugin tests.

``DRIFTED``: the same model with one more buffer, as a release that changes its save format
without a migration unit would save it. ``PICKLING``: a release whose saves put an object into the
hyperparameters (the round trip's ``weights_only`` check must refuse what it saves now).
"""

from __future__ import annotations

import torch

from tests.goldens.team_recipe import TinyNet, TinyRecipe


class DriftedNet(TinyNet):
    def __init__(self, hidden: int = 4, lr: float = 0.1):
        super().__init__(hidden, lr)
        self.register_buffer("calibration", torch.ones(1))


class DriftedRecipe(TinyRecipe):
    def make_module(self, scenario, hparams=None):
        return DriftedNet(**(hparams or {}))


DRIFTED = DriftedRecipe()


class PicklingNet(TinyNet):
    """Saves an object among its hyperparameters: what ``weights_only`` (Lightning's default load) refuses."""

    def on_save_checkpoint(self, checkpoint):
        checkpoint["hyper_parameters"]["criterion"] = torch.nn.MSELoss()


class PicklingRecipe(TinyRecipe):
    def make_module(self, scenario, hparams=None):
        hparams = {k: v for k, v in (hparams or {}).items() if k != "criterion"}
        return PicklingNet(**hparams)


PICKLING = PicklingRecipe()
