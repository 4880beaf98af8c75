"""A release's ``meta.json``: the recorded truth of its goldens, read and checked in one place.

Why checked: the file comes with the registry (a checkout, a wheel, a team's folder) and is read
during collection; a list, a string where a scenario belongs or nesting deep enough to exhaust the
parser must be a :class:`GoldenError` naming the file, not an INTERNALERROR or a collection error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.errors import GoldenError

__all__ = ["META_FILE", "read_meta"]

META_FILE = "meta.json"


def read_meta(path: Path) -> dict | None:
    """A release's ``meta.json`` (None when absent); any shape the matrix cannot read is a :class:`GoldenError`."""
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError names the line and column
        raise GoldenError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise GoldenError(f"{path}: JSON nested too deeply to be a golden's meta.json") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldenError(f"cannot read {path}: {exc}") from None
    _expect(path, "the top level", meta, dict)
    scenarios = meta.get("scenarios", {})
    _expect(path, "'scenarios'", scenarios, dict)
    for name, entry in scenarios.items():
        where = f"scenario {name!r}"
        _expect(path, where, entry, dict)
        for key, kinds in _SCENARIO_FIELDS.items():
            if entry.get(key) is not None:
                _expect(path, f"{where} field {key!r}", entry[key], kinds)
    return meta


_SCENARIO_FIELDS: dict[str, Any] = {"truth": dict, "saved_version": str, "requires": str, "file": str, "size": int}


def _expect(path: Path, where: str, value: Any, kinds: Any) -> None:
    if not isinstance(value, kinds) or isinstance(value, bool):
        name = getattr(kinds, "__name__", str(kinds))
        raise GoldenError(
            f"{path}: {where} must be a JSON {_JSON_NAMES.get(name, name)}, not {type(value).__name__}: "
            f"{_short(value)}; re-create the file with `ckpt-compat golden add`"
        )


_JSON_NAMES = {"dict": "object", "str": "string", "int": "integer"}


def _short(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."
