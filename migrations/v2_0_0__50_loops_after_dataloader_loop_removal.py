"""The dataloader loops were flattened into the evaluation/prediction loops.

Why: 2.0 merged ``_EvaluationLoop``/``_PredictionLoop`` (over dataloaders) with their epoch loops,
so ``<loop>.epoch_loop.X`` became ``<loop>.X`` and ``dataloader_progress`` is gone. Lightning's
migration does this for ``validate_loop``/``test_loop``/``predict_loop`` only and misses the fit
loop's nested validation loop: there ``epoch_loop.val_loop.epoch_loop.batch_progress`` and
``epoch_loop.val_loop.epoch_loop.state_dict`` stay stale, ``epoch_loop.val_loop.batch_progress`` is
absent, and validation progress inside ``fit`` restarts from defaults on resume. Here:
  * top-level eval loops: drop ``dataloader_progress``, ``epoch_loop.X`` → ``X``;
  * fit loop: drop ``epoch_loop.val_loop.dataloader_progress``,
    ``epoch_loop.val_loop.epoch_loop.X`` → ``epoch_loop.val_loop.X``.
``dataloader_progress`` only counted dataloaders (no longer tracked) and is removed, as Lightning
does. The outer loop's own ``state_dict`` is replaced by the inner one (Lightning's rule); if the
outer one was not empty it is kept in ``ckpt_compat.dropped["loops/<loop>/<key>"]``.
When: Lightning 2.0.0, PR #16726 (commit ec4f592; Lightning's migration shipped in 2.0.1, #17125).
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-2.0.0-loops-after-dataloader-loop-removal"
VERSION = "2.0.0"
ORDER = 50
CHANGES_TENSORS = False


def _flatten(checkpoint: dict, loop_name: str, loop: dict, outer: str) -> None:
    """``{outer}dataloader_progress`` is dropped and ``{outer}epoch_loop.X`` becomes ``{outer}X``."""
    loop.pop(outer + "dataloader_progress", None)
    inner = outer + "epoch_loop."
    for key in [k for k in loop if isinstance(k, str) and k.startswith(inner)]:
        new = outer + key[len(inner) :]
        value = loop.pop(key)
        if loop.get(new):  # a non-empty outer value would be overwritten: keep it
            ops.drop(checkpoint, f"loops/{loop_name}/{new}", loop[new])
        loop[new] = value


def upgrade(checkpoint: dict) -> dict:
    loops = checkpoint.get("loops")
    if not isinstance(loops, dict):
        return checkpoint
    for loop_name in ("predict_loop", "validate_loop", "test_loop"):
        if isinstance(loops.get(loop_name), dict):
            _flatten(checkpoint, loop_name, loops[loop_name], "")
    if isinstance(loops.get("fit_loop"), dict):
        _flatten(checkpoint, "fit_loop", loops["fit_loop"], "epoch_loop.val_loop.")
    return checkpoint
