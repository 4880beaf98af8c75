"""The losses a TeamNet is built with (moved here from ``teamnet.losses`` in 2.0.0)."""

import torch


class SmoothL1:
    """Smooth L1 (Huber) loss with a fixed ``beta``; a plain object, pickled by its module path."""

    def __init__(self, beta=0.5):
        self.beta = beta

    def __call__(self, prediction, target):
        return torch.nn.functional.smooth_l1_loss(prediction, target, beta=self.beta)

    def __eq__(self, other):
        return type(other).__name__ == type(self).__name__ and getattr(other, "beta", None) == self.beta

    def __hash__(self):
        return hash(("SmoothL1", self.beta))

    def __repr__(self):
        return f"SmoothL1(beta={self.beta})"
