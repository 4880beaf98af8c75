"""chemprop 2.1 keeps each metric's ``task_weights`` in the MPNN's state_dict.

Why: 2.1's MPNN holds its metrics (and a copy of the predictor's criterion) in a ``ModuleList``
whose ``task_weights`` buffers are part of the state_dict; a 2.0 file has none of these keys, so a
strict ``Trainer.fit(model, ckpt_path=...)`` fails with ``Missing key(s): "metrics.0.task_weights"``.
chemprop's own ``load_from_checkpoint`` adds them (ones for each metric, the criterion's weights
for the last); this unit writes the same keys into the file, so every Lightning path resumes it.
When: chemprop 2.1.0.
"""

import torch

ID = "chemprop-2.1-metric-task-weights"
VERSION = "2.1.0"
ORDER = 20
CHANGES_TENSORS = True
REQUIRES = ("chemprop-2.1-metrics-renamed",)


def upgrade(checkpoint):
    state = checkpoint.get("state_dict")
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(state, dict) or not isinstance(hparams, dict) or "metrics.0.task_weights" in state:
        return checkpoint
    if "predictor.criterion.task_weights" not in state:
        return checkpoint  # not an MPNN state_dict
    metrics = hparams.get("metrics")
    count = len(metrics) if metrics is not None else 1
    for index in range(count):
        state[f"metrics.{index}.task_weights"] = torch.tensor([[1.0]])
    state[f"metrics.{count}.task_weights"] = state["predictor.criterion.task_weights"].clone()
    return checkpoint
