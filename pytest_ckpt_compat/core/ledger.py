"""The one owner of ``checkpoint["ckpt_compat"]``: this tool's ledger in a checkpoint.

As Alembic's ``MigrationContext`` owns the version table, every read and write of the ledger goes
through here (the engine, units through ``ops``, callback re-keying, the premigrated repair, the
commands and the matrix), and its sub-keys are named once, below. Lightning ignores the key.

The shape (README "What an upgrade records")::

    {"tool_version": "...", "applied": {catalogue name: [unit ids]},   # which catalogues applied, what ran
     "callback_keys": {key: {"from", "how"}}, "dropped": {...}, "notes": {unit id: text},
     "original_counters": {...}, "lightning_migrated": {...}, "warnings": [text]}

Import-light: plain dicts only (units reach it through ``ops``).
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidLedger
from .versions import TOOL_VERSION

KEY = "ckpt_compat"  # our own top-level key in a checkpoint

TOOL_VERSION_KEY = "tool_version"  # the version of this tool that last wrote the ledger
APPLIED = "applied"  # {catalogue name: [ids]}: a catalogue is listed once it applied to the file
CALLBACK_KEYS = "callback_keys"  # how each pre-1.5 callback state got its Lightning 2.x key
DROPPED = "dropped"  # state of removed features, moved here, never destroyed
NOTES = "notes"  # {unit id: what it did that a reader should know}
ORIGINAL_COUNTERS = "original_counters"  # pre-1.6 counters before the 1.6.0 loop synthesis
LIGHTNING_MIGRATED = "lightning_migrated"  # what Lightning's own migration did, and our repair
WARNINGS = "warnings"  # [text]: what a reader must know (reported by the upgrade, kept here)
REDIRECTS = "redirects"  # {old pickled name: new name}: the redirects a load used (``core.redirects``)


def present(checkpoint: Any) -> bool:
    """True when ``checkpoint`` carries a ledger dict (the file is already this tool's output)."""
    return isinstance(checkpoint, dict) and isinstance(checkpoint.get(KEY), dict)


def has_key(checkpoint: Any) -> bool:
    """True when ``checkpoint`` has our top-level key at all, whatever it holds."""
    return isinstance(checkpoint, dict) and KEY in checkpoint


def read(checkpoint: Any) -> dict | None:
    """The ledger dict, or ``None`` when there is none; creates nothing."""
    return checkpoint.get(KEY) if present(checkpoint) else None


def get(checkpoint: Any, name: str, default: Any = None) -> Any:
    """One sub-key of the ledger (``default`` when absent); creates nothing."""
    found = read(checkpoint)
    return default if found is None else found.get(name, default)


def ensure(checkpoint: dict) -> dict:
    """The ledger dict, created on first use."""
    return checkpoint.setdefault(KEY, {})


def section(checkpoint: dict, name: str) -> dict:
    """The dict under sub-key ``name`` (``dropped``, ``notes``, ``callback_keys``), created on first use."""
    return ensure(checkpoint).setdefault(name, {})


def put(checkpoint: dict, name: str, value: Any) -> None:
    """Set sub-key ``name`` (``original_counters``, ``lightning_migrated``)."""
    ensure(checkpoint)[name] = value


def validate(checkpoint: dict) -> None:
    """``InvalidLedger`` unless our key is what we write: a dict whose ``applied`` maps names to id lists."""
    if KEY not in checkpoint:
        return
    found = checkpoint[KEY]
    applied = found.get(APPLIED, {}) if isinstance(found, dict) else None
    if not isinstance(applied, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(i, str) for i in v) for k, v in applied.items()
    ):
        raise InvalidLedger(
            f"the checkpoint's {KEY!r} key is {type(found).__name__} {_short(found)}, not this tool's ledger "
            "(a dict with 'applied': {catalogue: [ids]}); another tool may have written it"
        )


def _short(value: object) -> str:
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def applied_ids(checkpoint: Any, catalogue_name: str = "lightning") -> list[str]:
    """Ids of the units of ``catalogue_name`` already applied."""
    applied = get(checkpoint, APPLIED)
    return list(applied.get(catalogue_name, [])) if isinstance(applied, dict) else []


def applied_catalogues(checkpoint: Any) -> list[str]:
    """Names of the catalogues that applied to this checkpoint, in the order they first did."""
    applied = get(checkpoint, APPLIED)
    return [str(name) for name in applied] if isinstance(applied, dict) else []


def open_catalogue(checkpoint: dict, catalogue_name: str) -> list[str]:
    """Stamp the tool version and list ``catalogue_name`` as applied; returns its (live) id list."""
    found = ensure(checkpoint)
    found[TOOL_VERSION_KEY] = TOOL_VERSION
    return found.setdefault(APPLIED, {}).setdefault(catalogue_name, [])


def record_applied(checkpoint: dict, catalogue_name: str, unit_id: str) -> None:
    """Note that unit ``unit_id`` of ``catalogue_name`` ran (once)."""
    ids = open_catalogue(checkpoint, catalogue_name)
    if unit_id not in ids:
        ids.append(unit_id)


def warn(checkpoint: dict, text: str) -> None:
    """Keep ``text`` among the ledger's warnings (once); the upgrade's result reports the new ones."""
    found = ensure(checkpoint).setdefault(WARNINGS, [])
    if text not in found:
        found.append(text)
