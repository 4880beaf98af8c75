"""Are two saves of the same scenario the same? The first tensor that differs between two checkpoints.

Why: a golden is the truth only if the recipe saves the same tensors every run; an unseeded
``torch.randn`` in a recipe makes every later comparison noise. ``golden record`` and ``golden add
--recipe`` save each scenario twice and ask this module which tensor, if any, differs.

Why standalone (like :mod:`.recorder`): the two files of a team's old release are compared inside
its isolated environment (old torch, old Python, this package absent), where the team's old classes
unpickle. So: standard library at module level, torch imported in :func:`first_difference`, Python
3.8 syntax. A class that does not import in the comparing process unpickles as a stand-in: only
tensors are compared.

Usage: ``python determinism.py A.ckpt B.ckpt`` prints the difference and exits 1, or exits 0.
"""

from __future__ import annotations

import pickle
import sys
import types


class _StandIn:
    """Whatever a class that does not import here pickled: its state kept, never compared."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name, (_StandIn,), {"__module__": "standin." + module})


_TOLERANT = types.ModuleType("_tolerant_pickle")
_TOLERANT.__dict__.update({k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")})
_TOLERANT.Unpickler = _Unpickler  # type: ignore[attr-defined]


def load(path):
    """The checkpoint as saved (all of it, not only weights), on CPU."""
    import torch

    try:
        return torch.load(path, map_location="cpu", pickle_module=_TOLERANT, weights_only=False)
    except TypeError:  # torch < 1.13 has no weights_only
        return torch.load(path, map_location="cpu", pickle_module=_TOLERANT)


def tensors(value, path=""):
    """``(key path, tensor)`` of every tensor in ``value``, in saved order: ``state_dict['encoder.weight']``."""
    import torch

    if isinstance(value, torch.Tensor):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from tensors(item, f"{key}" if not path else f"{path}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from tensors(item, f"{path}[{i}]")
    elif isinstance(value, _StandIn):
        yield from tensors(getattr(value, "state", None), path)


def same_tensor(a, b):
    import torch

    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if torch.equal(a, b):
        return True
    if a.is_floating_point() or a.is_complex():
        nan_a, nan_b = torch.isnan(a), torch.isnan(b)
        return bool(torch.equal(nan_a, nan_b) and torch.equal(a[~nan_a], b[~nan_b]))
    return False


def first_difference(path_a, path_b):
    """``None`` when both files hold the same tensors under the same key paths, else what differs."""
    a, b = dict(tensors(load(path_a))), dict(tensors(load(path_b)))
    for key, tensor in a.items():
        if key not in b:
            return f"{key} is saved by one run only"
        if not same_tensor(tensor, b[key]):
            return f"{key} differs between two runs"
    extra = [key for key in b if key not in a]
    return f"{extra[0]} is saved by one run only" if extra else None


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python determinism.py A.ckpt B.ckpt", file=sys.stderr)
        return 2
    difference = first_difference(args[0], args[1])
    if difference:
        print(difference)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
