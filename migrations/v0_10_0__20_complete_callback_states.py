"""Partial 0.x callback states completed with a fresh callback's defaults.

Why: the 0.x keys carried only some fields (0.5 – 0.8.1: best score and/or path, EarlyStopping
wait and patience). Current ``ModelCheckpoint.load_state_dict`` needs ``best_model_path`` (and
``best_model_score`` when the dirpath matches, which it does when the state has no ``dirpath``);
``EarlyStopping.load_state_dict`` needs ``wait_count``, ``stopped_epoch``, ``best_score`` and
``patience``. Without them ``Trainer.fit(ckpt_path=...)`` raises ``KeyError: 'best_model_path'`` /
``KeyError: 'stopped_epoch'`` (verified with Lightning 2.6.5).
When: Lightning 0.10.0 (commit a5d1176), the release that introduced per-callback states.

Defaults (the values a freshly constructed callback has):
``ModelCheckpoint``: ``best_model_path=""``, ``best_model_score=None``.
``EarlyStopping``: ``wait_count=0``, ``stopped_epoch=0``, ``patience=3``, and
``best_score=tensor(inf)``: the fresh value for ``mode="min"``, which is what the 0.x default
(``monitor="val_loss"``, mode "auto") resolved to. 0.5 – 0.8.1 never saved the best score nor the
mode, so a run monitored in ``mode="max"`` gets an impossible-to-beat best and counts every epoch
as "no improvement" after resume; each filled field is listed in ``ckpt_compat.notes[ID]``.
Only the bare ``"ModelCheckpoint"``/``"EarlyStopping"`` entries that the 0.10.0 key move creates are
touched; complete states are left as they are.
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-0.10.0-complete-callback-states"
VERSION = "0.10.0"
ORDER = 20
CHANGES_TENSORS = True  # may add the scalar tensor EarlyStopping.best_score

_MODEL_CHECKPOINT_DEFAULTS = (("best_model_path", lambda: ""), ("best_model_score", lambda: None))
_EARLY_STOPPING_DEFAULTS = (
    ("wait_count", lambda: 0),
    ("stopped_epoch", lambda: 0),
    ("best_score", lambda: _tensor(float("inf"))),
    ("patience", lambda: 3),
)


def _tensor(value: float):
    import torch  # when a state is completed, not when the catalogue is listed

    return torch.tensor(value)


def _complete(checkpoint: dict, name: str, defaults) -> None:
    callbacks = checkpoint.get("callbacks")
    if not isinstance(callbacks, dict):
        return
    state = callbacks.get(name)
    if not isinstance(state, dict):
        return
    filled = []
    for field, make in defaults:
        if field not in state:
            state[field] = make()
            filled.append(field)
    if filled:
        ops.note(
            checkpoint,
            ID,
            f"callbacks[{name!r}]: {', '.join(filled)} not saved by Lightning < 0.8.2; filled with a fresh callback's "
            "defaults",
        )


def upgrade(checkpoint: dict) -> dict:
    _complete(checkpoint, "ModelCheckpoint", _MODEL_CHECKPOINT_DEFAULTS)
    _complete(checkpoint, "EarlyStopping", _EARLY_STOPPING_DEFAULTS)
    return checkpoint
