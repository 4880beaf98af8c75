"""Variants of the tiny team recipe (``tests/goldens/team_recipe.py``) for the team-suite plugin tests.

``DRIFTED``: the same model with one more buffer, as a release that changes its save format
without a migration unit would save it.
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
