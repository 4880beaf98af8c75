"""What a file may cost: memory allocated by size, and the size of the structure it unpickles to.

Why: a few allow-listed constructors take a *size* (``UntypedStorage(n)``, ``torch.Tensor(n)``,
``bytearray(n)``, ``numpy.ndarray(shape)``), so a 2 KB pickle could ask for gigabytes, and torch
hands back that memory uninitialised (heap contents would then be written into an upgraded file).
A pickle's memo lets it share one list at every level of a 20-deep nest: a few bytes that any
plain recursive walk (a migration, a copy) expands to millions of nodes. Both are bounded here
relative to the file's own size; what is allocated by size is zero-filled.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

FLOOR = 1 << 20  # bytes any file may allocate by size (a genuine file allocates none)
NODES_FLOOR = 1 << 16  # containers + leaves of the unpickled structure, expanded as a tree


class _TooLarge(pickle.UnpicklingError):
    """A load asked for more than its file's size allows."""


class LoadBudget:
    """Bytes that constructor calls of one load may allocate by size: the file's size (at least ``FLOOR``)."""

    def __init__(self, file_size: int):
        self.file_size = file_size
        self.left = max(file_size, FLOOR)

    def charge(self, nbytes: int, what: str) -> None:
        if nbytes > self.left:
            raise _TooLarge(
                f"{what} asks for {nbytes} bytes by size, more than a {self.file_size}-byte file may allocate "
                "(a memory bomb?)"
            )
        self.left -= nbytes


def _ints(values: Any) -> list[int] | None:
    """``values`` as a list of non-negative sizes if it is an int or a sequence of ints, else ``None``."""
    if isinstance(values, int) and not isinstance(values, bool):
        return [values]
    if isinstance(values, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return list(values)
    return None


def _elements(args: tuple) -> int | None:
    """Element count of a legacy ``Tensor(2, 3)`` / ``Tensor(torch.Size([2, 3]))`` / ``Storage(n)`` call."""
    sizes = _ints(list(args)) if len(args) != 1 else _ints(args[0])
    if not sizes:
        return None
    return math.prod(max(0, s) for s in sizes)


def _numpy_bytes(shape: Any, dtype: Any) -> int | None:
    import numpy as np

    sizes = _ints(shape)
    if sizes is None:
        return None
    try:
        itemsize = np.dtype(float if dtype is None else dtype).itemsize
    except Exception:  # noqa: BLE001 - numpy refuses it itself when called
        itemsize = 8
    return math.prod(max(0, s) for s in sizes) * max(itemsize, 1)


def sized_request(func: Any, args: tuple, kwargs: dict) -> int | None:
    """Bytes ``func(*args, **kwargs)`` allocates by size (not from data in the file), or ``None``."""
    import numpy as np
    import torch

    if func is bytearray:
        return args[0] if args and _ints(args[0]) is not None and not isinstance(args[0], (tuple, list)) else None
    if func is np.ndarray:
        if len(args) > 2 or "buffer" in kwargs:  # a view of a buffer the file provided
            return None
        return _numpy_bytes(args[0] if args else kwargs.get("shape"), args[1] if len(args) > 1 else kwargs.get("dtype"))
    if func is np.ndarray.__reduce__(np.zeros(0))[0]:  # numpy's _reconstruct(subtype, shape, dtype)
        return _numpy_bytes(args[1], args[2]) if len(args) == 3 else None
    if isinstance(func, type) and issubclass(func, torch.UntypedStorage):
        return _elements(args)  # bytes
    legacy_type = isinstance(func, type(torch.FloatTensor))  # torch.FloatTensor & co.
    if legacy_type or (isinstance(func, type) and issubclass(func, (torch.Tensor, torch.storage.TypedStorage))):
        count = _elements(args)
        dtype = getattr(func, "dtype", None) if legacy_type else None
        itemsize = (dtype if isinstance(dtype, torch.dtype) else torch.get_default_dtype()).itemsize
        return None if count is None else count * itemsize
    return None


def zero_fill(obj: Any) -> Any:
    """Overwrite memory allocated by size, so nothing of the process's heap reaches a checkpoint."""
    import numpy as np
    import torch

    if isinstance(obj, torch.Tensor):
        if obj.numel():
            with torch.no_grad():
                obj.zero_()
    elif isinstance(obj, (torch.UntypedStorage, torch.storage.TypedStorage)):
        if obj.nbytes():
            obj.fill_(0)
    elif isinstance(obj, np.ndarray) and obj.size and obj.dtype != object:
        obj.fill(0)
    return obj


def check_expansion(obj: Any, file_size: int) -> None:
    """Refuse (``_TooLarge``) a structure whose tree expansion exceeds what a file of ``file_size`` bytes holds.

    Counts dict/list/tuple/set nodes and their leaves as a recursive walk without a memo would meet
    them; each distinct container is measured once (iteratively: no recursion limit), a cycle counts once.
    """
    limit = max(file_size, NODES_FLOOR)
    sizes: dict[int, int] = {}
    keep: list[Any] = []  # ids stay valid while measured
    stack: list[tuple[Any, bool]] = [(obj, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if children is None:
            continue
        if done:
            total = 1 + sum(sizes.get(id(c), 1) if isinstance(c, _CONTAINERS) else 1 for c in children)
            sizes[key] = total
            if total > limit:
                raise _TooLarge(
                    f"the unpickled structure expands to more than {limit} nodes "
                    "(one part shared at every level: a memory bomb?)"
                )
            continue
        if key in sizes:
            continue
        sizes[key] = 1  # in progress: a cycle back to it counts once
        keep.append(node)
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, _CONTAINERS) and id(c) not in sizes)


_CONTAINERS = (dict, list, tuple, set, frozenset)


def _children(node: Any) -> list | None:
    if isinstance(node, dict):
        return [*node.keys(), *node.values()]
    if isinstance(node, (list, tuple, set, frozenset)):
        return list(node)
    return None
