"""Hyperparameters saved as ``AttributeDict`` objects become plain dicts.

Why: 0.8.0 – 1.0.7 pickled ``model.hparams`` itself, a
``pytorch_lightning.utilities.parsing.AttributeDict`` (0.10 – 1.0.7 whenever omegaconf was
importable). A file that still holds that class cannot be read with ``torch.load(weights_only=True)``
(``Unsupported global``), which is torch's default since 2.6 and Lightning's since 2.6. Our safe
loader already reads the class as ``dict``; a trusted load (``trust=True``) gives the real class,
and this upgrade makes the written file plain again. Nested ``AttributeDict`` values are converted
too; values are not copied (tensors keep their identity). OmegaConf containers are left alone: they
are not dicts and need a trusted load by design.
When: Lightning 1.0.8 (``dump_checkpoint`` writes ``dict(model.hparams)``).
"""

from __future__ import annotations

ID = "pl-1.0.8-hparams-plain-dict"
VERSION = "1.0.8"
ORDER = 10
CHANGES_TENSORS = False

# hyper_parameters (0.8+), datamodule_hyper_parameters (1.7+), and the 0.7 keys Lightning still reads
_HPARAM_KEYS = ("hyper_parameters", "datamodule_hyper_parameters", "hparams", "module_arguments")


def _is_attribute_dict(value) -> bool:
    return isinstance(value, dict) and type(value) is not dict and type(value).__name__ == "AttributeDict"


def _plain(value):
    """``(converted, changed)``: AttributeDicts become dicts; containers are rebuilt only if changed."""
    if isinstance(value, dict):
        changed = _is_attribute_dict(value)
        items = {}
        for key, item in value.items():
            new, item_changed = _plain(item)
            items[key] = new
            changed = changed or item_changed
        if not changed:
            return value, False
        if type(value) is dict:
            value.update(items)  # in place: keep the identity of the outer dict
            return value, True
        return dict(items), True
    if isinstance(value, (list, tuple)):
        converted = [_plain(item) for item in value]
        if not any(changed for _, changed in converted):
            return value, False
        items = [new for new, _ in converted]
        if isinstance(value, list):
            value[:] = items
            return value, True
        return (type(value)(*items) if hasattr(value, "_fields") else tuple(items)), True
    return value, False


def upgrade(checkpoint: dict) -> dict:
    for key in _HPARAM_KEYS:
        if key in checkpoint:
            new, changed = _plain(checkpoint[key])
            if changed:
                checkpoint[key] = new
    return checkpoint
