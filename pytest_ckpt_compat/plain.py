"""Turn state of removed features into plain data that ``torch.load(weights_only=True)`` accepts.

Migrations move such state under ``ckpt_compat["dropped"]`` instead of destroying it. What they
move may hold objects (numpy RNG states, torch functions, sets, enums); this keeps the data
(numbers and arrays become tensors) and replaces other objects by their qualified names.
"""
from __future__ import annotations

from typing import Any

import torch

_ALLOWED = (str, int, float, bool, type(None), torch.Tensor, torch.device, torch.dtype)


def to_plain(value: Any) -> Any:
    """A weights_only-loadable copy of ``value``: tensors kept, arrays as tensors, objects named."""
    if isinstance(value, _ALLOWED):
        return value
    if isinstance(value, dict):
        return {k if isinstance(k, (str, int)) else repr(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_plain(v) for v in items]
    if type(value).__module__ == "numpy":
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            return value.item()  # numpy scalar
        try:
            return torch.as_tensor(value)  # numeric arrays keep their data
        except (TypeError, RuntimeError):
            return [to_plain(v) for v in value.tolist()]
    module = getattr(value, "__module__", None)
    name = getattr(value, "__name__", None) or getattr(value, "__qualname__", None)
    if module and name:
        return f"{module}.{name}"
    return repr(value)
