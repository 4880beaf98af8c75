"""The two unpicklers ``torch.load`` runs for us: a restricted one (safe loads) and a redirecting one (trust).

Why our own Unpickler and not ``torch.serialization.safe_globals``: that context manager edits one
process-wide set, so two threads loading at once remove each other's entries mid-load. Each load
passes an explicit, immutable table to an Unpickler whose ``find_class`` resolves only names in it
(the restriction the ``pickle`` documentation gives for untrusted data). Nothing process-wide is
written, so loads are thread-safe. Trusted loads resolve Lightning's legacy shims in their
``find_class`` instead of entering Lightning's ``pl_legacy_patch``, which takes a non-reentrant
process lock that the Trainer already holds while it loads a checkpoint.

The safe one is pickle's Python Unpickler, because resolving names is not enough: BUILD sets the
state of whatever object is on the stack, and allowed objects are shared (torch's
``_rebuild_tensor_v2``, a cached stand-in class). A file that set ``_rebuild_tensor_v2.__defaults__``
would negate every tensor of the next file. Here BUILD acts only on instances this load created
from an allowed class; calls that allocate by size are bounded and zero-filled (``bounds``).
"""

from __future__ import annotations

import _compat_pickle
import contextlib
import enum
import pickle
from types import MappingProxyType
from typing import Any

from . import bounds
from .allowlist import NAMESPACES


def pickled_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 spellings (``__builtin__.set``, protocol < 3) mapped to today's, as pickle's ``fix_imports`` does."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _Refused(pickle.UnpicklingError):
    """A global outside the safe table, or state-setting on an object the load did not create."""

    def __init__(self, name: str, detail: str = ""):
        self.name = name
        super().__init__(detail or f"Unsupported global: GLOBAL {name} is not in the safe loader's allowlist")


def _numpy_factories() -> tuple:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return (), None
    return (np.ndarray.__reduce__(np.zeros(0))[0],), np.dtype


_FRESH_FACTORIES, _NP_DTYPE = _numpy_factories()


_PyUnpickler: Any = pickle._Unpickler  # pickle's Python implementation


class SafeUnpickler(_PyUnpickler):
    """Resolves only the names in its table; BUILD only on fresh instances; size requests within budget."""

    table: MappingProxyType = MappingProxyType({})
    budget: bounds.LoadBudget = bounds.LoadBudget(0)
    per_load: Any = None  # redirecting.PerLoad: the load's redirects for moved classes

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._fresh: dict[int, Any] = {}  # id -> object (kept alive, so ids stay unique)

    def find_class(self, module: str, name: str) -> Any:
        module, name = pickled_name(module, name)
        try:
            return self.table[f"{module}.{name}"]
        except KeyError:
            found = self.per_load.safe(module, name, self.table) if self.per_load is not None else None
            if found is None:  # not a moved class a catalogue declared either
                raise _Refused(f"{module}.{name}") from None
            return found

    def _call(self, func: Any, args: tuple, kwargs: dict, new: bool) -> Any:
        """``func(*args, **kwargs)`` (``func.__new__`` for NEWOBJ), within the load's budget."""
        if _NP_DTYPE is not None and func is _NP_DTYPE and 0 < len(args) <= 3 and not kwargs:
            args = (args[0], args[1] if len(args) > 1 else False, True)  # copy=True: never the shared singleton
        request = bounds.sized_request(func, args, kwargs)
        if request is not None:
            self.budget.charge(request, f"{getattr(func, '__name__', func)!s}{args!r}"[:200])
        obj = func.__new__(func, *args, **kwargs) if new else func(*args, **kwargs)
        if request:
            bounds.zero_fill(obj)
        if (isinstance(func, type) or func in _FRESH_FACTORIES) and not isinstance(obj, type):
            self._fresh[id(obj)] = obj
        return obj

    def load_reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args, {}, new=False)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, args, {}, new=True))

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, args, kwargs, new=True))

    def _instantiate(self, klass: Any, args: tuple) -> None:
        new = not args and isinstance(klass, type) and not hasattr(klass, "__getinitargs__")
        self.append(self._call(klass, () if new else args, {}, new=new))

    def load_build(self) -> None:
        inst = self.stack[-2] if len(self.stack) > 1 else None
        if id(inst) not in self._fresh or self._fresh[id(inst)] is not inst:
            what = _describe(inst)
            raise _Refused(
                f"BUILD on {what}",
                f"Unsupported state-setting (BUILD) on {what}: only objects the file itself created from an "
                "allowed class may be given state",
            )
        super().load_build()

    dispatch = dict(_PyUnpickler.dispatch)
    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build


def _describe(obj: Any) -> str:
    """``module.name`` of a shared class or function; the type of anything else."""
    named = obj if hasattr(obj, "__qualname__") else type(obj)
    return f"{getattr(named, '__module__', '?')}.{named.__qualname__}"


class SafePickleModule:
    """A ``pickle_module`` for ``torch.load``: every unpickling (also a legacy file's header) is restricted."""

    __name__ = "pickle"

    def __init__(self, table: MappingProxyType, budget: bounds.LoadBudget, per_load: Any = None):
        attributes = {"table": table, "budget": budget, "per_load": per_load}
        self.Unpickler = type("SafeUnpickler", (SafeUnpickler,), attributes)

    def load(self, file: Any, **kwargs: Any) -> Any:
        return self.Unpickler(file, **kwargs).load()


class _MissingGlobal(Exception):
    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason
        super().__init__(name)


def _gpus_arg_default(x: Any) -> Any:
    """Lightning < 1.2.8 pickled this argparse helper; Lightning's own shim is the identity too."""
    return x


class _FaultTolerantMode(str, enum.Enum):
    """The enum removed in Lightning 2.0 that 1.5 files pickled (the values of Lightning's shim)."""

    DISABLED = "disabled"
    AUTOMATIC = "automatic"
    MANUAL = "manual"


# Lightning's ``pl_legacy_patch`` shims, by pickled name under both namespaces: resolved here, per
# load, instead of patching modules and ``pickle.Unpickler`` under Lightning's process lock.
_LEGACY_SHIMS = {
    f"{ns}.{name}": obj
    for ns in NAMESPACES
    for name, obj in (
        ("utilities.argparse_utils._gpus_arg_default", _gpus_arg_default),
        ("utilities.argparse._gpus_arg_default", _gpus_arg_default),
        ("utilities.enums._FaultTolerantMode", _FaultTolerantMode),
    )
}


class RedirectingUnpickler(pickle.Unpickler):
    """Trusted loads: Lightning's legacy shims, and ``pytorch_lightning.*`` ↔ ``lightning.pytorch.*``.

    A global that cannot be imported under either namespace (a module removed, a class renamed)
    raises ``_MissingGlobal`` naming it, instead of a traceback or "corrupt". A catalogue's redirect
    for a moved class is applied first; every global found is noted (``PerLoad.blame``).
    """

    per_load: Any = None

    def find_class(self, module: str, name: str) -> Any:
        module, name = pickled_name(module, name)
        shim = _LEGACY_SHIMS.get(f"{module}.{name}")
        if shim is not None:
            return shim
        pickled = f"{module}.{name}"
        moved = self.per_load.redirect(module, name) if self.per_load is not None else None
        if moved is not None:
            module, name = moved
        if self.per_load is not None:
            self.per_load.resolved.append(f"{module}.{name}")
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError) as first:
            for old, new in (NAMESPACES, NAMESPACES[::-1]):
                if module == old or module.startswith(old + "."):
                    with contextlib.suppress(ImportError, AttributeError):
                        return super().find_class(new + module[len(old) :], name)
            shown = f"{pickled} (redirected to {module}.{name})" if moved is not None else pickled
            raise _MissingGlobal(shown, f"{type(first).__name__}: {first}") from None


class RedirectingPickleModule:
    """A ``pickle_module`` for ``torch.load`` whose Unpickler redirects Lightning's namespaces."""

    __name__ = "pickle"

    def __init__(self, per_load: Any = None):
        self.Unpickler = type("RedirectingUnpickler", (RedirectingUnpickler,), {"per_load": per_load})

    def load(self, file: Any, **kwargs: Any) -> Any:
        return self.Unpickler(file, **kwargs).load()
