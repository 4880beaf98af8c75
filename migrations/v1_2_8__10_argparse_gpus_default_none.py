"""Hyperparameters from ``Trainer.add_argparse_args``: the pickled ``_gpus_arg_default`` becomes ``None``.

Why: before 1.2.8 ``add_argparse_args`` gave ``--gpus`` and ``--tpu_cores`` the *function*
``_gpus_arg_default`` as their default, so a module built from ``vars(args)`` (or saving the
``Namespace``) stored that function among its hyperparameters when the flags were not given. The
file then pickles ``pytorch_lightning.utilities.argparse_utils._gpus_arg_default``, a module that
later releases removed (Lightning keeps an identity shim only inside its ``pl_legacy_patch``);
``torch.load(weights_only=True)`` refuses it and nothing outside Lightning can unpickle it. 1.2.8
made the default ``None``, the Trainer's own default, which is what the function stood for. Values
are recognised by the function's name (the shim a trusted load resolves it to has the same name),
in ``hyper_parameters`` and ``datamodule_hyper_parameters`` and one level of nesting (the
``args`` entry of a ``Namespace`` saved next to its fields); nothing else changes.
When: Lightning 1.2.8, PR #6898 (issues #6549, #6263).
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-1.2.8-argparse-gpus-default-none"
VERSION = "1.2.8"
ORDER = 10
CHANGES_TENSORS = False

NAME = "_gpus_arg_default"
KEYS = ("hyper_parameters", "datamodule_hyper_parameters")


def _is_default_function(value) -> bool:
    return callable(value) and not isinstance(value, type) and getattr(value, "__name__", None) == NAME


def _replace(mapping, where: str, found: list, depth: int = 0) -> None:
    if not isinstance(mapping, dict):
        return
    for key, value in mapping.items():
        if _is_default_function(value):
            mapping[key] = None
            found.append(f"{where}.{key}")
        elif depth == 0 and isinstance(value, dict):
            _replace(value, f"{where}.{key}", found, depth + 1)


def upgrade(checkpoint: dict) -> dict:
    found: list = []
    for key in KEYS:
        _replace(checkpoint.get(key), key, found)
    if found:
        ops.note(checkpoint, ID, f"{NAME} -> None: " + ", ".join(found))
    return checkpoint
