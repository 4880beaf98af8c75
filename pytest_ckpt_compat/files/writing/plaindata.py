"""The pickle module the writer hands to torch: nothing named in a checkpoint is ever imported.

Why: pickling a class or function stores its name, and ``pickle`` checks the name by importing
its module. A stand-in for a pickled Lightning class (``allowlist.LegacyClassRef``) left anywhere in
an upgraded checkpoint would make the writer import ``pytorch_lightning...``: whatever package of
that name is first on ``sys.path`` (a ``lightning/`` folder in the working directory) would run.
Upgraded files hold plain data only, so such a stand-in, or any class or function of a module
not already imported, fails with ``NotPlainData`` before any import happens.
"""

from __future__ import annotations

import pickle
import sys
import types
from typing import Any

from ...core.errors import NotPlainData

_NAMED = (type, types.FunctionType, types.BuiltinFunctionType)


def _is_stand_in(obj: Any) -> bool:
    """A ``allowlist.LegacyClassRef`` class (recognised by its metaclass, so writing need not import it)."""
    meta = type(obj)
    return meta.__name__ == "LegacyClassRef" and meta.__module__ == "pytest_ckpt_compat.files.allowlist"


def _is_redirected_stand_in(obj: Any) -> bool:
    """A safe load's stand-in for a redirected class (``redirecting.RedirectedClass``, by its metaclass)."""
    meta = type(obj)
    return meta.__name__ == "RedirectedClass" and meta.__module__ == "pytest_ckpt_compat.files.redirecting"


class PlainDataPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _NAMED):
            name = f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"
            if _is_redirected_stand_in(obj):
                raise NotPlainData(
                    f"the checkpoint holds {name}, a redirected class loaded safely as an inert stand-in "
                    f"(pickled as {getattr(obj, 'redirected_from', '?')}); writing needs the real class: "
                    "upgrade with trust=True (CLI: --trust) so the redirect imports it"
                )
            if _is_stand_in(obj):
                raise NotPlainData(
                    f"the checkpoint still holds the pickled Lightning class {name} as a value (not as a callbacks "
                    "key, which the upgrade converts); writing it would import that module. Upgraded files hold "
                    "plain data only: replace the value (e.g. by its name as a string) before saving"
                )
            module = getattr(obj, "__module__", None)
            if module and module not in sys.modules:
                raise NotPlainData(f"writing {name} would import the module {module!r}, which is not loaded; refusing")
        return NotImplemented


class _PlainDataPickle:
    """A ``pickle_module`` for ``torch.save`` / ``torch.serialization._save``."""

    Pickler = PlainDataPickler
    Unpickler = pickle.Unpickler
    HIGHEST_PROTOCOL = pickle.HIGHEST_PROTOCOL
    __name__ = "pickle"

    @staticmethod
    def dump(obj: Any, file: Any, protocol: int | None = None) -> None:
        PlainDataPickler(file, protocol=protocol).dump(obj)


plain_data_pickle = _PlainDataPickle()
