"""0.x top-level callback keys moved into the ``callbacks`` dict.

Why: Lightning 0.10 – 1.8 refuse files that still carry the 0.x keys ("outdated schema"), and
Lightning >= 1.9 moves only five of them: the EarlyStopping state written by 0.8.2 – 0.9.x as
``early_stop_callback_state_dict`` stays behind unused, so the stopping state is silently lost.
Lightning's own migration also keys the entries by the callback *class*, which makes the file
unloadable with ``torch.load(weights_only=True)``; we key them by the bare class names
``"ModelCheckpoint"`` / ``"EarlyStopping"`` (the contract's rule for state keys we cannot rebuild).
When: Lightning 0.10.0, commit a5d1176 (``_migrate_model_checkpoint_early_stopping``).

Mapping (old top-level key -> ``callbacks[name][field]``), applied in this order as Lightning does,
so ``checkpoint_callback_best`` wins over ``checkpoint_callback_best_model_score``:
``early_stop_callback_state_dict`` -> ``EarlyStopping`` (whole state), then
``checkpoint_callback_best_model_score`` / ``checkpoint_callback_best`` -> ``ModelCheckpoint.best_model_score``,
``checkpoint_callback_best_model_path`` -> ``ModelCheckpoint.best_model_path``,
``early_stop_callback_wait`` -> ``EarlyStopping.wait_count``,
``early_stop_callback_patience`` -> ``EarlyStopping.patience``.
``callbacks`` is always present afterwards (``{}`` if nothing moved), like Lightning.
"""

from __future__ import annotations

ID = "pl-0.10.0-callbacks-dict"
VERSION = "0.10.0"
ORDER = 10
CHANGES_TENSORS = False

_KEYS_MAPPING = (
    ("checkpoint_callback_best_model_score", "ModelCheckpoint", "best_model_score"),
    ("checkpoint_callback_best_model_path", "ModelCheckpoint", "best_model_path"),
    ("checkpoint_callback_best", "ModelCheckpoint", "best_model_score"),
    ("early_stop_callback_wait", "EarlyStopping", "wait_count"),
    ("early_stop_callback_patience", "EarlyStopping", "patience"),
)


def upgrade(checkpoint: dict) -> dict:
    callbacks = checkpoint.get("callbacks") or {}
    checkpoint["callbacks"] = callbacks

    # 0.8.2 - 0.9.x: the whole EarlyStopping.state_dict() under one key (Lightning forgets it)
    es_state = checkpoint.get("early_stop_callback_state_dict")
    if isinstance(es_state, dict):
        entry = callbacks.get("EarlyStopping")
        if entry:
            for field, value in es_state.items():
                entry.setdefault(field, value)
        else:
            callbacks["EarlyStopping"] = es_state  # the same dict object: nothing copied
        del checkpoint["early_stop_callback_state_dict"]

    for old_key, name, field in _KEYS_MAPPING:
        if old_key in checkpoint:
            entry = callbacks.get(name) or {}
            callbacks[name] = entry
            entry[field] = checkpoint.pop(old_key)
    return checkpoint
