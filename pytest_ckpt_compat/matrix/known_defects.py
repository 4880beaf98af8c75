"""Known Lightning restore defects: which matrix cells fail because of Lightning, not of us.

Why a table: a user pinned to an affected release must see one documented defect with its link,
not a block of red cells; and the entries are strict expected failures, so the release that
fixes the defect flips its cells back to failing until the range is corrected.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import SpecifierSet

from ..core import versions
from ..core.errors import GoldenError

try:  # Python 3.11+
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.9/3.10
    import tomli as _toml  # type: ignore[no-redef]

TABLE = Path(__file__).with_name("known_defects.toml")


@dataclass(frozen=True)
class Defect:
    id: str
    lightning: SpecifierSet
    scenarios: tuple
    checks: tuple
    saved: SpecifierSet | None
    links: tuple
    reason: str

    def applies(self, installed: str, scenario: str, check: str, saved_version: str) -> bool:
        if scenario not in self.scenarios or check not in self.checks:
            return False
        if versions.parse(installed) not in self.lightning:
            return False
        return self.saved is None or versions.parse(saved_version) in self.saved

    @property
    def text(self) -> str:
        """The xfail reason shown in the report."""
        return f"known Lightning defect {self.id} (Lightning {self.lightning}): {self.reason}; " + " ".join(self.links)


@functools.cache
def load(path: str | None = None) -> tuple:
    """The table, validated: a malformed entry is a named error, not a silently ignored line."""
    source = Path(path) if path else TABLE
    with open(source, "rb") as fh:
        data = _toml.load(fh)
    out = []
    for i, entry in enumerate(data.get("defect", [])):
        missing = [k for k in ("id", "lightning", "scenarios", "checks", "links", "reason") if k not in entry]
        if missing:
            raise GoldenError(f"{source}: defect #{i + 1} lacks {missing}")
        out.append(
            Defect(
                id=entry["id"],
                lightning=SpecifierSet(entry["lightning"]),
                scenarios=tuple(entry["scenarios"]),
                checks=tuple(entry["checks"]),
                saved=SpecifierSet(entry["saved"]) if entry.get("saved") else None,
                links=tuple(entry["links"]),
                reason=entry["reason"],
            )
        )
    return tuple(out)


def lookup(scenario: str, check: str, saved_version: str, installed: str | None = None) -> Defect | None:
    """The known defect that breaks this cell under the installed Lightning, if any."""
    installed = installed or versions.installed_lightning_version()
    for defect in load():
        if defect.applies(installed, scenario, check, saved_version):
            return defect
    return None
