"""One load's view of the redirects for moved classes (``core.redirects``): stand-ins, names used, blame.

Why a per-load object: loads run in many threads at once, and what one file makes the loader do
must not outlive its load (no process-wide table is edited, no shared stand-in is handed to a file).
The safe loader turns a redirected name into the safe table's object for the new name, or, when the
new class is not in the allow-list (a team's own metric class), into an inert stand-in class made
for this load only: calling it or setting its state only keeps the pickled arguments and state as
data, and the writer refuses to write it (``NotPlainData``: an upgrade that must keep such objects
needs ``trust=True``). The trusted loader imports the new class instead. Either way the names used
are kept, for the ledger.

A trusted load can also fail because a class that *does* import cannot be rebuilt from the state
the file saved (its library changed the class's pickle layout: a pandas 1.x DataFrame under
pandas 3). ``blame`` tells that apart from a corrupt file by where the exception was raised.
"""

from __future__ import annotations

import contextlib
import functools
import pickle
from importlib import metadata
from typing import Any

from ..core.redirects import EMPTY, Redirects

# Modules whose frames say nothing about the pickled class: the unpickler, torch, this package.
_LOADER_PACKAGES = frozenset(
    {"pickle", "_pickle", "copyreg", "_compat_pickle", "torch", "pytest_ckpt_compat", "contextlib", "functools"}
)
_NOT_A_CLASS_FAULT = (EOFError, MemoryError, RecursionError, pickle.UnpicklingError)


class RedirectedClass(type):
    """Metaclass of the per-load stand-ins for redirected classes under the safe loader."""

    def __repr__(cls) -> str:
        origin = getattr(cls, "redirected_from", "?")
        return f"<stand-in for {cls.__module__}.{cls.__qualname__}, redirected from {origin}>"


class RedirectedObject:
    """An instance of a redirected class, loaded safely: the pickled arguments and state, as data."""

    redirected_from = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> RedirectedObject:
        obj = super().__new__(cls)
        obj.__dict__.update(pickled_args=args, pickled_kwargs=kwargs, pickled_state=None)
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Called by REDUCE: the arguments were kept by ``__new__``; nothing runs."""

    def __setstate__(self, state: Any) -> None:
        self.__dict__["pickled_state"] = state

    def __repr__(self) -> str:
        cls = type(self)
        return f"<{cls.__module__}.{cls.__qualname__} stand-in (pickled as {cls.redirected_from})>"


class PerLoad:
    """The redirects of one load, the stand-ins it made, the names it used and the globals it resolved."""

    def __init__(self, redirects: Redirects = EMPTY):
        self.redirects = redirects
        self.used: dict[str, str] = {}
        self.resolved: list[str] = []  # trusted loads: every global found, in order (for ``blame``)
        self._stand_ins: dict[str, type] = {}

    def redirect(self, module: str, name: str) -> tuple[str, str] | None:
        """The new ``(module, name)`` for a redirected global (and remember it was used), else ``None``."""
        new = self.redirects.resolve(module, name)
        if new is not None:
            self.used[f"{module}.{name}"] = f"{new[0]}.{new[1]}"
        return new

    def safe(self, module: str, name: str, table: Any) -> Any:
        """A safe load's object for a redirected name: the table's for the new name, else a stand-in."""
        new = self.redirect(module, name)
        if new is None:
            return None
        full = f"{new[0]}.{new[1]}"
        if full in table:
            return table[full]
        if full not in self._stand_ins:
            qualname = new[1]
            self._stand_ins[full] = RedirectedClass(
                qualname.rsplit(".", 1)[-1],
                (RedirectedObject,),
                {"__module__": new[0], "__qualname__": qualname, "redirected_from": f"{module}.{name}"},
            )
        return self._stand_ins[full]

    def blame(self, exc: BaseException) -> tuple[str, str, str] | None:
        """``(class, library, reason)`` when a trusted load failed inside a pickled class's own code.

        The exception's traceback names the library (its first frame outside the unpickler, torch
        and this package); the class is the last global of that library the load resolved. A
        ``TypeError`` raised by calling a class (a changed ``__init__``/``__new__``) has no such
        frame: then the class is the resolved global its message names. ``None``: not a class fault.
        """
        if isinstance(exc, _NOT_A_CLASS_FAULT) or not isinstance(exc, Exception) or not self.resolved:
            return None
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}".rstrip(": ")
        tb = exc.__traceback__
        while tb is not None:
            top = str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0]
            if top and top not in _LOADER_PACKAGES:
                ours = [g for g in self.resolved if g.split(".")[0] == top]
                if ours:
                    return ours[-1], _library(top), reason
                break
            tb = tb.tb_next
        text = str(exc)
        named = [g for g in self.resolved if g.rsplit(".", 1)[-1] in text]
        if isinstance(exc, TypeError) and named:
            return named[-1], _library(named[-1].split(".")[0]), reason
        return None


def holds_stand_ins(value: Any) -> bool:
    """Whether a safe load left a redirected stand-in (class or instance) anywhere in ``value``.

    Such a checkpoint reads, but cannot be written (``NotPlainData``) nor handed to the code that
    owns the class: whoever must do either loads it again with ``trust=True``. Walks containers and
    objects' attributes (tensors and other objects without ``__dict__`` are leaves), each once.
    """
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (str, bytes, int, float, bool, type(None))):
            continue
        seen.add(id(item))
        if isinstance(item, (RedirectedClass, RedirectedObject)):
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif not isinstance(item, type) and isinstance(getattr(item, "__dict__", None), dict):
            stack.extend(vars(item).values())
    return False


@functools.cache
def _library(top: str) -> str:
    """``pandas 3.1.1``: the distribution that installs the top-level package, with its version."""
    with contextlib.suppress(Exception):
        dist = metadata.packages_distributions().get(top, [top])[0]
        return f"{dist} {metadata.version(dist)}"
    return top


def for_load(redirects: Redirects | None = None) -> PerLoad:
    """A fresh per-load view; ``None``: the redirects every catalogue in use declares."""
    if redirects is None:
        from ..core.catalogue import all_catalogues
        from ..core.redirects import from_catalogues

        redirects = from_catalogues(all_catalogues())
    return PerLoad(redirects)
