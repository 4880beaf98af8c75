"""LightningCLI hyperparameters: 2.3's nested ``class_path``/``init_args`` become 2.4's flat ``_class_path``.

Why: a module built by ``LightningCLI`` in subclass mode saves the CLI's config of it as its hparams,
with ``_instantiator`` naming the function that rebuilds it (``lightning.pytorch.cli.instantiate_module``).
Lightning 2.3.x saved that config nested, ``{"class_path": ..., "init_args": {...}, "_instantiator": ...}``;
from 2.4.0 ``LightningCLI`` writes the arguments flat with the class under ``_class_path``, and
``instantiate_module`` reads only that form: handed a 2.3 file, ``load_from_checkpoint`` builds the
class with its *default* arguments (measured with the 2.3.0 ``cli_saved`` golden under 2.6.6: hidden
16 instead of 12, a size mismatch on every layer). Written as 2.4 writes it: ``_class_path`` first, then
``init_args`` and ``dict_kwargs`` as top-level keys, ``_instantiator`` kept. Only hparams that carry
``_instantiator`` and a string ``class_path`` with an ``init_args`` dict are touched (a user's own
``class_path`` hyperparameter without the CLI's instantiator stays as saved).
When: Lightning 2.4.0 (its ``cli.py`` first writes ``_class_path``; 2.3.0 - 2.3.3 write the nested form).
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-2.4.0-cli-hparams-class-path-flat"
VERSION = "2.4.0"
ORDER = 10
CHANGES_TENSORS = False

KEYS = ("hyper_parameters", "datamodule_hyper_parameters")


def _nested_cli_config(hparams) -> bool:
    return (
        isinstance(hparams, dict)
        and "_instantiator" in hparams
        and isinstance(hparams.get("class_path"), str)
        and isinstance(hparams.get("init_args"), dict)
    )


def upgrade(checkpoint: dict) -> dict:
    for key in KEYS:
        hparams = checkpoint.get(key)
        if not _nested_cli_config(hparams):
            continue
        flat = {"_class_path": hparams["class_path"], **hparams["init_args"], **(hparams.get("dict_kwargs") or {})}
        flat.update((k, v) for k, v in hparams.items() if k not in ("class_path", "init_args", "dict_kwargs"))
        hparams.clear()
        hparams.update(flat)
        ops.note(checkpoint, ID, f"{key}: class_path/init_args -> _class_path and top-level arguments")
    return checkpoint
