"""Whatever ``torch.load`` raises on a file, as the named error a user can act on.

Why one place: torch and pickle raise dozens of types for damaged or hostile bytes (IndexError,
struct.error, UnpicklingError with torch's own wording, MemoryError, RecursionError...). Every one
becomes ``UnsafeCheckpoint`` (a refused global or state-setting), ``MissingGlobal`` (a trusted load
that cannot import a class) or ``CorruptCheckpoint`` (anything else), with the file's name.
"""

from __future__ import annotations

import contextlib
import pickle
import re
from typing import Any

import torch

from ..core.errors import CheckpointCompatError, CorruptCheckpoint, IncompatibleClass, MissingGlobal, UnsafeCheckpoint
from .allowlist import safe_table
from .bounds import _TooLarge
from .unpicklers import _MissingGlobal, _Refused

_PASS_THROUGH = (FileNotFoundError, PermissionError, IsADirectoryError, KeyboardInterrupt, SystemExit)
_UNSAFE_WORDING = r"Unsupported (global|class)|not an allowed global|Trying to call reduce"


def translate(
    exc: BaseException, name: str, source: Any, zipped: bool, trusted: Any = None, redirects: Any = None
) -> BaseException:
    """The error to raise for ``exc`` raised while loading ``name`` (``exc`` itself where it must pass through).

    ``trusted``: a trusted load's ``redirecting.PerLoad``, which can tell a class whose pickle layout
    changed (``IncompatibleClass``) from a corrupt file; ``redirects``: names not to list as unsafe.
    """
    if isinstance(exc, (CheckpointCompatError, *_PASS_THROUGH)):
        return exc
    if isinstance(exc, _MissingGlobal):
        return MissingGlobal(name, exc.name, exc.reason)
    if isinstance(exc, _TooLarge):
        return CorruptCheckpoint(f"{name}: {exc}")
    if isinstance(exc, _Refused) or (isinstance(exc, pickle.UnpicklingError) and re.search(_UNSAFE_WORDING, str(exc))):
        return UnsafeCheckpoint(name, _unsafe_globals(source, exc, zipped, redirects), _short_reason(exc))
    blamed = trusted.blame(exc) if trusted is not None else None
    if blamed is not None:
        return IncompatibleClass(name, blamed[0], blamed[1], detail=blamed[2])
    if isinstance(exc, pickle.UnpicklingError):
        return CorruptCheckpoint(f"{name} is not a readable torch checkpoint: {_short_reason(exc) or first_line(exc)}")
    # IndexError, struct.error, LookupError, MemoryError, RecursionError, ...
    return CorruptCheckpoint(
        f"{name} is not a readable torch checkpoint (truncated or corrupt?): {type(exc).__name__}: {first_line(exc)}"
    )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _short_reason(exc: BaseException) -> str:
    match = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(exc))
    if match:
        return match.group(1).strip()
    return first_line(exc) if isinstance(exc, _Refused) and exc.name.startswith("BUILD on ") else ""


def _unsafe_globals(file: Any, exc: BaseException, zipped: bool, redirects: Any = None) -> list[str]:
    """Every offending global for zip files (torch can list them); the first one otherwise."""
    if isinstance(exc, _Refused) and exc.name.startswith("BUILD on "):
        return [exc.name]
    allowed = set(safe_table())
    if zipped:
        with contextlib.suppress(Exception):
            names = set(torch.serialization.get_unsafe_globals_in_checkpoint(file))
            if redirects is not None:  # a declared move resolves: not an offending global
                names = {n for n in names if redirects.resolve(*n.rpartition(".")[::2]) is None}
            found = sorted(names - allowed)
            if found:
                return found
    if isinstance(exc, _Refused):
        return [exc.name]
    found = re.findall(r"GLOBAL ([\w.]+)", str(exc))
    return sorted(set(found) - allowed) or ["(see the torch error)"]
