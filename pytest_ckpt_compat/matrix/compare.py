"""Exact comparisons shared by the golden matrix and :mod:`.testing` (pytest-regressions' ``common.py``).

Why a room of its own: the public ``testing`` helpers must not pull in the matrix (recipe,
workspace, Lightning) just to report differences; and both sides compare the same way, exactly.
"""

from __future__ import annotations

import copy
from typing import Any

from ..core.errors import CheckFailed


class Mismatches:
    """Collects differences so one failure reports all of them, not just the first."""

    def __init__(self, where: str):
        self.where = where
        self.lines: list[str] = []

    def eq(self, what: str, got: Any, expected: Any) -> None:
        if got != expected or type(got) is not type(expected) and not _same_number(got, expected):
            self.lines.append(f"{what}: got {got!r}, expected {expected!r}")

    def add(self, line: str) -> None:
        self.lines.append(line)

    def raise_if_any(self) -> None:
        __tracebackhide__ = True
        if self.lines:
            raise CheckFailed(f"{self.where}:\n  " + "\n  ".join(self.lines))


def _same_number(a: Any, b: Any) -> bool:
    return (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


def copy_checkpoint(checkpoint: dict) -> dict:
    """Deep copy of containers; tensors are shared (cheap, and lets identity checks work)."""
    return copy.deepcopy(checkpoint, memo=_tensor_memo(checkpoint))


def _tensor_memo(obj: Any, memo: dict | None = None) -> dict:
    import torch

    memo = {} if memo is None else memo
    if isinstance(obj, torch.Tensor):
        memo[id(obj)] = obj
    elif isinstance(obj, dict):
        for v in obj.values():
            _tensor_memo(v, memo)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _tensor_memo(v, memo)
    return memo
