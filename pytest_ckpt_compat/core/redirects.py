"""Redirects for moved classes: old pickled global names mapped to new ones, declared by catalogues.

Why: a class pickled in a checkpoint (a metric in ``hyper_parameters``, a loss, a config class)
that a library moved or renamed breaks the file before any unit can run: unpickling fails
(chemprop 2.0 → 2.1 renamed ``chemprop.nn.metrics.RMSEMetric`` to ``RMSE`` and moved
``chemprop.nn.loss`` into ``chemprop.nn.metrics``; chemprop#1156, darts#1443). A catalogue (or one
of its units, with ``REDIRECTS = {...}``) declares the old names and the new ones; the loader
resolves each load's names through this table, so the file loads and the rest of the catalogue runs.

Two forms, both ``"module.QualName"`` strings:

* a class: ``"chemprop.nn.loss.MSELoss": "chemprop.nn.metrics.MSE"``;
* a module (everything in it): ``"chemprop.nn.loss.*": "chemprop.nn.metrics.*"``.

A name mapped to itself (``"chemprop.*": "chemprop.*"``) is not a move but a name the catalogue
vouches for: the safe loader gives it a stand-in too (so ``inspect`` and ``--dry-run`` read a team's
files without ``--trust``), the trusted loader imports it as it is, and the ledger does not list it.
An exact name wins over a module, a longer module over a shorter one. One step only: a redirect's
target is not redirected again, so a table can never loop. Which redirects a load used is kept in
the ledger (``ckpt_compat["redirects"]``: old → new), so ``inspect`` and ``--dry-run`` show them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from . import ledger
from .errors import CatalogueError

if TYPE_CHECKING:
    from .catalogue import Catalogue

RECORD_KEY = ledger.REDIRECTS  # {old name: new name} used when loading
_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def validate(mapping: object, where: str) -> dict[str, str]:
    """``mapping`` as a plain ``{old: new}`` dict, or ``CatalogueError`` saying what is wrong and where."""
    if not isinstance(mapping, Mapping):
        raise CatalogueError(f"{where}: REDIRECTS must be a dict of old name -> new name, not {type(mapping).__name__}")
    out: dict[str, str] = {}
    for old, new in mapping.items():
        if not isinstance(old, str) or not isinstance(new, str):
            raise CatalogueError(f"{where}: redirect {old!r} -> {new!r}: both names must be strings")
        if old.endswith(".*") != new.endswith(".*"):
            raise CatalogueError(
                f"{where}: redirect {old!r} -> {new!r}: a module ('pkg.mod.*') maps to a module, a class to a class"
            )
        for name in (old, new):
            bare = name[:-2] if name.endswith(".*") else name
            if not _NAME.match(bare) or (not name.endswith(".*") and "." not in bare):
                raise CatalogueError(
                    f"{where}: redirect {old!r} -> {new!r}: {name!r} is not 'module.ClassName' or 'module.*'"
                )
        out[old] = new
    return out


class Redirects:
    """An immutable table of redirects and the catalogue (or unit) that declared each one."""

    def __init__(self, pairs: Iterable[tuple[str, str, str]] = ()):
        names: dict[str, str] = {}
        origin: dict[str, str] = {}
        for old, new, source in pairs:
            if old in names and names[old] != new:
                raise CatalogueError(
                    f"redirect conflict: {old!r} -> {names[old]!r} ({origin[old]}) and -> {new!r} ({source})"
                )
            names.setdefault(old, new)
            origin.setdefault(old, source)
        self._exact = MappingProxyType({k: v for k, v in names.items() if not k.endswith(".*")})
        modules = {k[:-2]: v[:-2] for k, v in names.items() if k.endswith(".*")}
        self._modules = tuple(sorted(modules.items(), key=lambda kv: -len(kv[0])))  # longest prefix first
        self.origin = MappingProxyType(origin)

    def __bool__(self) -> bool:
        return bool(self._exact or self._modules)

    def __len__(self) -> int:
        return len(self._exact) + len(self._modules)

    def resolve(self, module: str, name: str) -> tuple[str, str] | None:
        """The new ``(module, qualname)`` for a pickled global, or ``None`` when no redirect names it."""
        full = f"{module}.{name}"
        if full in self._exact:
            new_module, _, new_name = self._exact[full].rpartition(".")
            return new_module, new_name
        for old, new in self._modules:
            if module == old or module.startswith(old + "."):
                return new + module[len(old) :], name
        return None

    def declared_by(self, module: str, name: str) -> str:
        """Which catalogue or unit declared the redirect that ``module.name`` hits ("" if none)."""
        full = f"{module}.{name}"
        if full in self._exact:
            return self.origin[full]
        for old, _ in self._modules:
            if module == old or module.startswith(old + "."):
                return self.origin[old + ".*"]
        return ""


EMPTY = Redirects()


def from_catalogues(catalogues: Iterable[Catalogue]) -> Redirects:
    """Every redirect the catalogues declare: their own ``redirects``, then their units' ``REDIRECTS``."""
    pairs: list[tuple[str, str, str]] = []
    for catalogue in catalogues:
        pairs.extend((old, new, f"catalogue {catalogue.name}") for old, new in catalogue.redirects.items())
        for unit in catalogue.migrations:
            pairs.extend((old, new, f"{catalogue.name}:{unit.id}") for old, new in unit.redirects)
    return Redirects(pairs)


def record(checkpoint: object, used: Mapping[str, str]) -> None:
    """Keep the redirects a load used in the ledger (merged with any an earlier upgrade recorded)."""
    used = {old: new for old, new in used.items() if old != new}  # names vouched for, not moved
    if not used or not isinstance(checkpoint, dict):
        return
    if ledger.has_key(checkpoint) and not ledger.present(checkpoint):
        return  # not our ledger: the engine reports it (InvalidLedger), the loader does not overwrite it
    table = ledger.ensure(checkpoint).setdefault(RECORD_KEY, {})
    if isinstance(table, dict):
        table.update(sorted(used.items()))


def recorded(checkpoint: object) -> dict[str, str]:
    """The redirects recorded in ``checkpoint``'s ledger (old → new)."""
    table = ledger.get(checkpoint, RECORD_KEY, {})
    return dict(table) if isinstance(table, dict) else {}
