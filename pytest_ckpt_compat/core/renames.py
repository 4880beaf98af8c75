"""Pattern renames of state-dict keys that keep everything keyed by a parameter's name aligned.

Why: a refactor (``encoder.layers`` → ``encoder.blocks``), ``torch.compile`` (an ``_orig_mod.``
segment after every compiled submodule: Lightning#17415, #20233) or a wrapper (``module.`` from
``DataParallel``) renames every key, and Lightning then fails with ``Missing key(s)`` /
``Unexpected key(s)`` (anomalib#988, chemprop#1088, Lightning#4361). Renaming ``state_dict`` alone
is not enough: the same names live in

* ``state_dict._metadata``: per-module versions (BatchNorm's ``version`` decides how
  ``num_batches_tracked`` is read), keyed by module path;
* the optimizer's ``param_groups[i]["param_names"]`` (optimizers built from ``named_parameters()``;
  torch's ``load_state_dict`` silently keeps the saved names);
* callback states that hold a copy of the weights (StochasticWeightAveraging's averaged model,
  EMA callbacks), keyed by the same names, possibly under ``AveragedModel``'s ``module.``.

Optimizer *state* is keyed by position, and a rename keeps every parameter's position, so it stays
aligned by itself. A rule is ``(regex, replacement)`` applied with ``re.sub`` to every key, in
order; ``prefix(old, new)`` builds the common one. A rename that makes two keys equal raises
(the unit fails with ``MigrationError``) instead of silently dropping a tensor.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Union

import torch

Rule = tuple[Union[str, "re.Pattern[str]"], str]

# ``_orig_mod.`` as a whole path segment: at the start or after a dot (``net._orig_mod.fc.weight``)
COMPILED_SEGMENT = r"(?<![^.])_orig_mod\."
_AVERAGED_PREFIX = "module."  # torch.optim.swa_utils.AveragedModel keeps the module under ``module``

__all__ = [
    "Rule",
    "add_compiled_prefix",
    "add_wrapper_prefix",
    "prefix",
    "rename_state_keys",
    "strip_compiled_prefix",
    "strip_wrapper_prefix",
]


def prefix(old: str, new: str) -> Rule:
    """A rule that replaces the leading ``old`` of a key by ``new`` (``prefix("module.", "")``)."""
    return ("^" + re.escape(old), new.replace("\\", "\\\\"))


def rename_state_keys(checkpoint: dict, rules: Iterable[Rule]) -> dict[str, str]:
    """Rename ``state_dict`` keys by ``rules`` and keep ``_metadata``, ``param_names`` and callback copies aligned.

    Returns ``{old: new}`` of the renamed ``state_dict`` keys (empty: nothing matched, nothing changed).
    """
    compiled = [(re.compile(pattern) if isinstance(pattern, str) else pattern, repl) for pattern, repl in rules]

    def rename(key: str) -> str:
        for pattern, repl in compiled:
            key = pattern.sub(repl, key)
        return key

    state = checkpoint.get("state_dict")
    renamed = _rename_mapping(state, rename, "state_dict") if isinstance(state, Mapping) else None
    if renamed is not None:
        checkpoint["state_dict"] = renamed[0]
    for optimizer in checkpoint.get("optimizer_states") or ():
        for group in (optimizer.get("param_groups") or ()) if isinstance(optimizer, dict) else ():
            names = group.get("param_names") if isinstance(group, dict) else None
            if isinstance(names, list):
                group["param_names"] = [rename(n) if isinstance(n, str) else n for n in names]
    callbacks = checkpoint.get("callbacks")
    if isinstance(callbacks, dict):
        for key, value in callbacks.items():
            callbacks[key] = _rename_weight_copies(value, rename, f"callbacks[{key!r}]")
    return renamed[1] if renamed is not None else {}


def _rename_mapping(mapping: Mapping, rename: Any, where: str) -> tuple[Any, dict[str, str]] | None:
    """A renamed copy of ``mapping`` (same type, order and ``_metadata``), or ``None`` if no key changes."""
    changes = {k: rename(k) for k in mapping if isinstance(k, str) and rename(k) != k}
    metadata = getattr(mapping, "_metadata", None)
    if not changes and not isinstance(metadata, Mapping):
        return None
    out: Any = OrderedDict() if isinstance(mapping, OrderedDict) else {}
    for key, value in mapping.items():
        new = changes.get(key, key)
        if new in out:
            raise ValueError(f"renaming {where} keys: {key!r} and another key both become {new!r}")
        out[new] = value
    if isinstance(metadata, Mapping):
        out._metadata = _rename_metadata(metadata, rename)
    elif not changes:
        return None
    return out, changes


def _rename_metadata(metadata: Mapping, rename: Any) -> OrderedDict:
    """Module paths (``""``, ``net``, ``net.bn``) renamed as the keys under them are; a renamed one wins.

    A wrapper's own entry (``net`` of a compiled ``net``) and the module it wrapped (``net._orig_mod``)
    meet at one path: the wrapped module's entry is the one that describes the parameters.
    """
    out: OrderedDict = OrderedDict()
    renamed: set[str] = set()
    for path, value in metadata.items():
        if not isinstance(path, str):
            out[path] = value
            continue
        new = rename(path + "." if path else "")
        new = new[:-1] if new.endswith(".") else new
        if new != path:
            out[new] = value
            renamed.add(new)
        elif new not in renamed:
            out[new] = value
    return out


def _rename_weight_copies(value: Any, rename: Any, where: str) -> Any:
    """Dicts inside a callback state that hold tensors under parameter names, renamed (nested, recursively)."""
    if not isinstance(value, dict):
        return value
    if any(isinstance(v, torch.Tensor) for v in value.values()):

        def with_wrapper(key: str) -> str:
            if key.startswith(_AVERAGED_PREFIX) and rename(key) == key:
                return _AVERAGED_PREFIX + rename(key[len(_AVERAGED_PREFIX) :])
            return rename(key)

        done = _rename_mapping(value, with_wrapper, where)
        if done is not None:
            value = done[0]
    for key, item in list(value.items()):
        value[key] = _rename_weight_copies(item, rename, f"{where}[{key!r}]")
    return value


# ------------------------------------------------------------------------------- ready-made units
def strip_compiled_prefix(checkpoint: dict) -> dict:
    """Keys saved from a ``torch.compile``'d module (``net._orig_mod.fc.weight``) for the eager one (``net.fc.weight``).

    Usable as a unit's ``upgrade`` as it is; idempotent (eager keys have no ``_orig_mod.``).
    """
    rename_state_keys(checkpoint, [(COMPILED_SEGMENT, "")])
    return checkpoint


def add_compiled_prefix(checkpoint: dict, module: str = "") -> dict:
    """Keys saved eager, for a module whose submodule ``module`` (``""``: the whole model) is now compiled.

    Keys that already carry ``_orig_mod.`` there are left alone, so running it twice changes nothing.
    """
    head = module + "." if module else ""
    rule = ("^" + re.escape(head) + r"(?!_orig_mod\.)", head.replace("\\", "\\\\") + "_orig_mod.")
    rename_state_keys(checkpoint, [rule])
    return checkpoint


def strip_wrapper_prefix(checkpoint: dict, wrapper: str = "module.") -> dict:
    """Keys saved through a wrapper (``DataParallel``/``DistributedDataParallel``: ``module.``) for the bare module."""
    rename_state_keys(checkpoint, [prefix(wrapper, "")])
    return checkpoint


def add_wrapper_prefix(checkpoint: dict, wrapper: str = "module.") -> dict:
    """Keys saved bare, for a model that is now wrapped (keys already wrapped are left alone)."""
    rename_state_keys(checkpoint, [("^(?!" + re.escape(wrapper) + ")", wrapper.replace("\\", "\\\\"))])
    return checkpoint
