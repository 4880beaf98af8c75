"""Find, load (by path) and order migration units.

A catalogue is a plain folder of documented files, one per backwards-incompatible change, in the
spirit of Alembic's script directory. Files are loaded by path, never imported by a package name,
so the folder stays readable on its own and installing never creates a top-level ``migrations``.
Lightning's own catalogue ships in this package; downstream projects register theirs (their own
folder and their own version key) and are applied after Lightning's, only to their own model's
checkpoints (``Catalogue.applies_to``).
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

from packaging.version import Version

from . import versions
from .errors import CatalogueError
from .redirects import validate as validate_redirects

_ENTRY_POINT_GROUP = "pytest_ckpt_compat.catalogues"


@dataclass(frozen=True)
class Migration:
    """One upgrade step: what changed in which version, and the function that upgrades a dict."""

    id: str
    version: Version
    order: int
    upgrade: Callable[[dict], dict] = field(repr=False, compare=False)
    doc: str = field(repr=False, compare=False)
    path: Path = field(repr=False, compare=False)
    catalogue: str = "lightning"
    changes_tensors: bool = False
    requires: tuple[str, ...] = ()  # ids of units whose output this one reads (they must sort before it)
    redirects: tuple[tuple[str, str], ...] = ()  # moved classes: (old pickled name, new name), see core.redirects
    # OBJECT_STATE(root class, pickle) -> {class: {attribute: str/int/bool/None}}: set on the objects of those
    # classes in a whole pickled object whose names this unit's catalogue redirected (files.renaming)
    object_state: Callable[[str, bytes], dict] | None = field(default=None, repr=False, compare=False)
    # READER_SIDE: why the unit rewrites what a reader (torch's weights_only, another OS) refuses whatever the
    # target, not a format change of the release VERSION names; such a unit runs for every target (core.engine)
    reader_side: str = field(default="", compare=False)

    @property
    def title(self) -> str:
        """First line of the docstring: what changed."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.id

    @property
    def any_target(self) -> bool:
        """A reader-side unit: it runs for every target, also one older than its ``version``."""
        return bool(self.reader_side)

    @property
    def sort_key(self) -> tuple:
        return (self.version, self.order, self.id)


@dataclass
class Catalogue:
    """A folder of migration units plus the checkpoint key that holds the version they compare to.

    ``target_version`` is a string or a zero-argument callable (the installed version of the
    project the catalogue belongs to); ``None`` means the installed Lightning. ``redirects``: moved
    or renamed classes (old pickled name -> new one) that every load resolves (``core.redirects``);
    ``models``: the LightningModules whose checkpoints saved through ``CheckpointUpgrade`` /
    ``install()`` get this catalogue's version stamp (``core.stamps``; empty: every checkpoint). ``recognizes``:
    for a team's catalogue, a predicate on the checkpoint dict that says "this is our model's
    file" for files saved before the model wrote its version key (e.g. a ``state_dict`` key or a
    ``hyper_parameters`` entry); see ``applies_to``.
    """

    name: str
    path: Path
    version_key: str = versions.VERSION_KEY
    target_version: str | Callable[[], str] | None = None
    redirects: Mapping[str, str] = field(default_factory=dict)
    models: tuple = ()  # classes (or "module.QualName") whose saved checkpoints get the version stamp; () = all
    recognizes: Callable[[dict], bool] | None = field(default=None, repr=False, compare=False)
    _units: list[Migration] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.redirects = validate_redirects(self.redirects, f"catalogue {self.name!r}")
        self.models = tuple(self.models)

    @property
    def legacy_version_key(self) -> str:
        return "legacy_" + self.version_key

    def applies_to(self, checkpoint: dict) -> bool:
        """Whether this catalogue upgrades ``checkpoint``: Lightning's applies to every checkpoint.

        A team's catalogue applies only to its own model's files: those that carry its version key
        (or the legacy copy of it), or that its ``recognizes`` predicate accepts. Any other file,
        such as another team's or a plain Lightning checkpoint, is left alone: no unit runs and
        neither its version key nor its ledger entry is written.
        """
        if self.version_key == versions.VERSION_KEY:
            return True
        if self.version_key in checkpoint or self.legacy_version_key in checkpoint:
            return True
        if self.recognizes is None:
            return False
        try:
            return bool(self.recognizes(checkpoint))
        except Exception as exc:
            raise CatalogueError(
                f"catalogue {self.name!r}: its recognizes() predicate raised {type(exc).__name__}: {exc}"
            ) from exc

    def default_target(self) -> str:
        target = self.target_version
        if callable(target):
            target = target()
        return str(target) if target is not None else versions.installed_lightning_version()

    @property
    def migrations(self) -> list[Migration]:
        """Every unit in the folder (loaded once), in application order (version, then ORDER, then id)."""
        if self._units is None:
            self._units = self._load_units()
        return self._units

    def subset(self, units: Iterable[Migration], *, target_version: object = None) -> Catalogue:
        """This catalogue restricted to ``units`` (same name and version key, so the ledger matches).

        For testing one unit through the engine; ``target_version`` pins the target (downstream
        catalogues ignore ``upgrade()``'s ``target_version``: they target their own version).
        """
        wanted = {u.id for u in units}
        unknown = wanted - {m.id for m in self.migrations}
        if unknown:
            raise CatalogueError(f"catalogue {self.name!r} has no unit {', '.join(sorted(unknown))}")
        target = self.target_version if target_version is None else str(target_version)
        restricted = Catalogue(
            name=self.name,
            path=self.path,
            version_key=self.version_key,
            target_version=target,
            redirects=self.redirects,
            models=self.models,
            recognizes=self.recognizes,
        )
        restricted._units = [m for m in self.migrations if m.id in wanted]
        return restricted

    def _load_units(self) -> list[Migration]:
        if not self.path.is_dir():
            raise CatalogueError(f"catalogue {self.name!r}: folder {self.path} does not exist")
        units = [self._load_unit(p) for p in sorted(self.path.glob("*.py")) if not p.name.startswith("_")]
        seen: dict[str, Path] = {}
        for unit in units:
            if unit.id in seen:
                raise CatalogueError(
                    f"catalogue {self.name!r}: id {unit.id!r} is used by {seen[unit.id].name} and {unit.path.name}"
                )
            seen[unit.id] = unit.path
        units.sort(key=lambda m: m.sort_key)
        position = {unit.id: i for i, unit in enumerate(units)}
        for i, unit in enumerate(units):
            _check_reader_side_requires(self.name, unit, {u.id: u for u in units})
            for required in unit.requires:
                if position.get(required, len(units)) >= i:
                    raise CatalogueError(
                        f"catalogue {self.name!r}: {unit.path.name} requires {required!r}, "
                        + (
                            "which sorts after it (check VERSION and ORDER)"
                            if required in position
                            else "which is not in the catalogue"
                        )
                    )
        return units

    def _load_unit(self, path: Path) -> Migration:
        module_name = f"pytest_ckpt_compat._units.{_safe_identifier(self.name)}.{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise CatalogueError(f"cannot load migration file {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # lets dataclasses/pickle resolve the module while it runs
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # a broken unit must name itself
            sys.modules.pop(module_name, None)
            raise CatalogueError(f"migration file {path.name} failed to import: {type(exc).__name__}: {exc}") from exc
        missing = [a for a in ("ID", "VERSION", "upgrade") if not hasattr(module, a)]
        if missing:
            raise CatalogueError(f"migration file {path.name} lacks {', '.join(missing)}")
        if not inspect.getdoc(module):
            raise CatalogueError(f"migration file {path.name} has no docstring saying what changed and why")
        return Migration(
            id=str(module.ID),
            version=versions.parse(module.VERSION, what=f"VERSION of {path.name}"),
            order=int(getattr(module, "ORDER", 0)),
            upgrade=module.upgrade,
            doc=inspect.getdoc(module) or "",
            path=path,
            catalogue=self.name,
            changes_tensors=bool(getattr(module, "CHANGES_TENSORS", False)),
            requires=tuple(str(r) for r in getattr(module, "REQUIRES", ())),
            redirects=tuple(
                validate_redirects(getattr(module, "REDIRECTS", {}), f"migration file {path.name}").items()
            ),
            reader_side=_reader_side(module, path),
            object_state=_object_state(module, path),
        )


def _object_state(module: object, path: Path) -> Callable[[str, bytes], dict] | None:
    hook = getattr(module, "OBJECT_STATE", None)
    if hook is not None and not callable(hook):
        raise CatalogueError(
            f"migration file {path.name}: OBJECT_STATE must be a function "
            "(root class, pickle) -> {class: {attribute: value}}"
        )
    return hook


def _check_reader_side_requires(catalogue: str, unit: Migration, by_id: Mapping[str, Migration]) -> None:
    """A reader-side unit runs for targets older than the units it could require: it may require only its kind."""
    if not unit.any_target:
        return
    for required in unit.requires:
        if required in by_id and not by_id[required].any_target:
            raise CatalogueError(
                f"catalogue {catalogue!r}: {unit.path.name} is READER_SIDE (runs whatever the target) but "
                f"requires {required!r}, which runs only up to its target: make both reader-side or drop REQUIRES"
            )


def _reader_side(module: object, path: Path) -> str:
    """A unit's ``READER_SIDE`` (why it applies whatever the target), checked: a non-empty string, or absent."""
    why = getattr(module, "READER_SIDE", "")
    if not isinstance(why, str) or (hasattr(module, "READER_SIDE") and not why.strip()):
        raise CatalogueError(
            f"migration file {path.name}: READER_SIDE must say why the unit applies whatever the target "
            f"(a non-empty string), not {why!r}"
        )
    return why.strip()


def lightning_catalogue_path() -> Path:
    """The Lightning catalogue: packaged data in a wheel, the repository's ``migrations/`` in a checkout."""
    packaged = Path(__file__).resolve().parents[1] / "_data" / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


@functools.cache
def lightning_catalogue() -> Catalogue:
    return Catalogue(name="lightning", path=lightning_catalogue_path())


_registered: dict[str, Catalogue] = {}


def register_catalogue(catalogue: Catalogue) -> Catalogue:
    """Add a downstream catalogue; it runs after Lightning's, in registration order."""
    if catalogue.name == "lightning":
        raise CatalogueError("the name 'lightning' is reserved for Lightning's own catalogue")
    _registered[catalogue.name] = catalogue
    return catalogue


def unregister_catalogue(name: str) -> None:
    _registered.pop(name, None)


def all_catalogues() -> list[Catalogue]:
    """Lightning's catalogue, then entry-point catalogues, then ones registered in this process."""
    found = [lightning_catalogue()]
    for ep in _entry_points():
        cat = _from_entry_point(ep)
        if cat.name not in _registered:
            found.append(cat)
    found.extend(_registered.values())
    return found


def _from_entry_point(ep: metadata.EntryPoint) -> Catalogue:
    """The ``Catalogue`` a team's entry point names; a ``CatalogueError`` naming the entry point if not."""
    where = f"entry point {ep.name!r} ({ep.value}) in group {_ENTRY_POINT_GROUP!r}"
    try:
        cat = ep.load()
        cat = cat() if callable(cat) and not isinstance(cat, Catalogue) else cat
    except Exception as exc:
        raise CatalogueError(
            f"{where} failed to load: {type(exc).__name__}: {exc}; fix or uninstall the package that declares it"
        ) from exc
    if not isinstance(cat, Catalogue):
        raise CatalogueError(f"{where} gave a {type(cat).__name__}, not a pytest_ckpt_compat.Catalogue")
    return cat


@functools.cache
def _entry_points() -> tuple:
    eps = metadata.entry_points()
    if hasattr(eps, "select"):  # Python >= 3.10
        return tuple(eps.select(group=_ENTRY_POINT_GROUP))
    return tuple(eps.get(_ENTRY_POINT_GROUP, ()))  # pragma: no cover - Python 3.9


def _safe_identifier(name: str) -> str:
    return re.sub(r"\W", "_", name)
