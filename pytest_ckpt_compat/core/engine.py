"""Plan and apply migrations, and record what was applied.

``plan`` answers "which upgrades would run on this checkpoint"; ``upgrade_with_result`` runs them in place
(tensors are never copied), stamps the target version and keeps a ledger of applied ids (through
``ledger``), so that re-running is a no-op even after the catalogue grows, and returns an
``UpgradeResult`` saying what it did; ``upgrade`` is the same returning the dict.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.version import Version

from . import callback_keys, ledger, premigrated, versions
from .catalogue import Catalogue, Migration, all_catalogues
from .errors import CheckpointTooNew, InvalidVersion, MigrationError, NotALightningCheckpoint

LEDGER_KEY = ledger.KEY  # kept for callers of the engine; the ledger module owns the key

__all__ = [
    "UpgradeResult",
    "applied_ids",
    "origin_version",
    "plan",
    "require_lightning",
    "upgrade",
    "upgrade_with_result",
]


def origin_version(checkpoint: dict, catalogue: Catalogue, assumed: str | None = None) -> Version | None:
    """The version whose format the content had before any upgrade: the legacy stamp wins.

    ``None`` only when the key is absent (and nothing is assumed); a key holding ``None`` or a
    non-string is ``InvalidVersion``, not "no key".
    """
    key = catalogue.legacy_version_key if catalogue.legacy_version_key in checkpoint else catalogue.version_key
    if key not in checkpoint:
        return None if assumed is None else versions.parse(assumed, what="assume_version")
    return versions.parse(_stored_version(checkpoint, key), what=f"{key} in the checkpoint")


def _stored_version(checkpoint: dict, key: str) -> str | None:
    value = checkpoint.get(key)
    if value is not None and isinstance(value, str):
        return value
    if key not in checkpoint:
        return None
    raise InvalidVersion(f"{key} in the checkpoint is {value!r} ({type(value).__name__}), not a version string")


def applied_ids(checkpoint: dict, catalogue_name: str = "lightning") -> list[str]:
    """Ids of the migrations already applied (from our ledger)."""
    return ledger.applied_ids(checkpoint, catalogue_name)


def plan(
    checkpoint: dict,
    target_version: str | None = None,
    *,
    catalogues: Iterable[Catalogue] | None = None,
    assume_version: str | None = None,
) -> list[Migration]:
    """The migrations ``upgrade`` would apply, in order. Raises on newer or unversioned checkpoints.

    Pure: reads ``checkpoint`` and changes nothing in it (``assume_version`` included).
    """
    resolved = _resolve(checkpoint, target_version, catalogues, assume_version)
    return [m for catalogue, origin, target, _ in resolved for m in _pending(checkpoint, catalogue, origin, target)]


@dataclass
class UpgradeResult:
    """What one upgrade did, as Alembic reports each step: the command layer prints from this alone.

    ``checkpoint`` is the upgraded dict (the same object that was passed in). ``applied``: the
    units that ran, in order. ``catalogues``: the catalogues that applied to this checkpoint (a
    team's catalogue applies only to its own model's files, see ``Catalogue.applies_to``).
    ``rekeyed``: callback states moved to a stated or live configuration, ``(old key, new key)``.
    ``unresolved``: callback states left under their class name, with why. ``dropped``: ledger
    paths of state moved aside by this run. ``lightning_migrated``: what was found and repaired
    in a file Lightning's own migration had written. ``warnings``: what a reader must know (for
    example two states that collide once converted), one line each.
    """

    checkpoint: dict
    version_before: str | None
    version_after: str | None
    applied: list[Migration] = field(default_factory=list)
    catalogues: list[str] = field(default_factory=list)
    rekeyed: list[tuple[str, str]] = field(default_factory=list)
    unresolved: dict = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    lightning_migrated: dict | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """False when the upgrade left the content as it was (a re-run on our own output at the target)."""
        return bool(
            self.applied or self.rekeyed or self.lightning_migrated or self.version_before != self.version_after
        )


def upgrade(
    checkpoint: dict,
    target_version: str | None = None,
    *,
    catalogues: Iterable[Catalogue] | None = None,
    assume_version: str | None = None,
    callbacks: Iterable | None = None,
) -> dict:
    """Bring ``checkpoint`` to the target format in place and return it (``upgrade_with_result`` says what was done).

    ``target_version`` defaults to the installed Lightning; only migrations with a version
    ``<= target`` run, and reader-side ones (``READER_SIDE``) whatever the target. ``assume_version``
    names the version of a checkpoint that carries no version key (Lightning before 0.8.2).
    ``callbacks``: the configuration of the callbacks that wrote a pre-1.5 file, as live callbacks
    or specs like ``'EarlyStopping{"monitor": "val_loss", "mode": "max"}'``; states keyed by class
    name get those ``state_key``s (see ``callback_keys``).
    A file that Lightning's own ``migrate_checkpoint`` already migrated is repaired first
    (``premigrated``), so the catalogue runs on the content its legacy release saved. What a
    reader must know (``UpgradeResult.warnings``) is also raised as a ``UserWarning`` here.
    """
    result = upgrade_with_result(
        checkpoint, target_version, catalogues=catalogues, assume_version=assume_version, callbacks=callbacks
    )
    for text in result.warnings:
        warnings.warn(text, UserWarning, stacklevel=2)
    return checkpoint


def upgrade_with_result(
    checkpoint: dict,
    target_version: str | None = None,
    *,
    catalogues: Iterable[Catalogue] | None = None,
    assume_version: str | None = None,
    callbacks: Iterable | None = None,
) -> UpgradeResult:
    """``upgrade``, returning an ``UpgradeResult`` that says what was done (its warnings are not raised)."""
    resolved = _resolve(checkpoint, target_version, catalogues, assume_version)
    before = _stored_or_none(checkpoint, versions.VERSION_KEY)
    dropped_before = set(ledger.get(checkpoint, ledger.DROPPED) or {})
    warned_before = len(ledger.get(checkpoint, ledger.WARNINGS) or [])
    repaired = None
    if any(catalogue.version_key == versions.VERSION_KEY for catalogue, *_ in resolved):
        repaired = premigrated.repair(checkpoint)  # a file Lightning already migrated: undo its damage first
    ran: list[Migration] = []
    for catalogue, origin, target, assumed in resolved:
        if assumed is not None:  # units read the version key: give them the assumed one
            checkpoint[catalogue.version_key] = assumed
        for migration in _pending(checkpoint, catalogue, origin, target):
            try:
                returned = migration.upgrade(checkpoint)
            except Exception as exc:
                raise MigrationError(migration.id, exc) from exc
            if returned is not checkpoint:
                raise MigrationError(migration.id, TypeError("upgrade() must mutate and return the same dict"))
            ledger.record_applied(checkpoint, catalogue.name, migration.id)
            ran.append(migration)
        _stamp(checkpoint, catalogue, target)
    rekeyed = callback_keys.rekey(checkpoint, callbacks) if callbacks is not None else []
    return UpgradeResult(
        checkpoint=checkpoint,
        version_before=before,
        version_after=_stored_or_none(checkpoint, versions.VERSION_KEY),
        applied=ran,
        catalogues=[catalogue.name for catalogue, *_ in resolved],
        rekeyed=rekeyed,
        unresolved=callback_keys.unresolved(checkpoint),
        dropped=[str(p) for p in ledger.get(checkpoint, ledger.DROPPED) or {} if p not in dropped_before],
        lightning_migrated=repaired,
        warnings=[str(w) for w in (ledger.get(checkpoint, ledger.WARNINGS) or [])[warned_before:]],
    )


def _stored_or_none(checkpoint: dict, key: str) -> str | None:
    value = checkpoint.get(key)
    return None if value is None else str(value)


def _pending(checkpoint: dict, catalogue: Catalogue, origin: Version | None, target: Version) -> list[Migration]:
    """Units newer than the content's origin, not newer than the target, not yet in the ledger.

    A reader-side unit (``Migration.any_target``) runs whatever the target: what it rewrites is refused
    by the reader (torch's ``weights_only``), not by the format of the release its version names.
    """
    done = set(ledger.applied_ids(checkpoint, catalogue.name))
    return [
        m
        for m in catalogue.migrations
        if (origin is None or origin < m.version) and (m.version <= target or m.any_target) and m.id not in done
    ]


def require_lightning(checkpoint: object, assume_version: str | None = None) -> None:
    """The one definition of a Lightning checkpoint, shared by the API, the CLI and the integration.

    A dict that carries ``pytorch-lightning_version`` (or Lightning's legacy copy of it). A file
    saved before 0.8.2 has neither: it counts once its version is stated (``assume_version``).
    Anything else (a bare ``state_dict``, a dict of only ``state_dict`` and ``hyper_parameters``,
    a list) is ``NotALightningCheckpoint``: Lightning itself cannot resume or migrate it.
    """
    if not isinstance(checkpoint, dict):
        raise NotALightningCheckpoint(found=f"the payload is a {type(checkpoint).__name__}, not a dict")
    if assume_version is None and not (versions.VERSION_KEY in checkpoint or versions.LEGACY_VERSION_KEY in checkpoint):
        raise NotALightningCheckpoint([str(k) for k in checkpoint])


def _resolve(checkpoint, target_version, catalogues, assume_version):
    """For each catalogue: (catalogue, origin or None, target, assumed version or None); validates, writes nothing."""
    catalogues = list(catalogues) if catalogues is not None else all_catalogues()
    if any(catalogue.version_key == versions.VERSION_KEY for catalogue in catalogues):
        require_lightning(checkpoint, assume_version)
    elif not isinstance(checkpoint, dict):
        require_lightning(checkpoint)
    ledger.validate(checkpoint)
    resolved = []
    for catalogue in catalogues:
        is_lightning = catalogue.version_key == versions.VERSION_KEY
        if not is_lightning and not catalogue.applies_to(checkpoint):
            continue  # a team's catalogue: only its own model's files
        assumed = None
        if is_lightning and assume_version is not None and catalogue.version_key not in checkpoint:
            assumed = str(versions.parse(assume_version, what="assume_version"))
        origin = origin_version(checkpoint, catalogue, assumed)
        if origin is None and is_lightning:
            raise NotALightningCheckpoint([str(k) for k in checkpoint])
        # an explicit target applies to Lightning's catalogue; downstream ones target their own version
        raw_target = target_version if (is_lightning and target_version is not None) else catalogue.default_target()
        target = versions.parse(raw_target, what=f"target version of catalogue {catalogue.name!r}")
        current = _stored_version(checkpoint, catalogue.version_key) if catalogue.version_key in checkpoint else assumed
        if current is not None and versions.parse(current, what=catalogue.version_key) > target:
            raise CheckpointTooNew(str(current), str(target))
        resolved.append((catalogue, origin, target, assumed))
    return resolved


def _stamp(checkpoint: dict, catalogue: Catalogue, target: Version) -> None:
    """Set the version to the target and keep the first original version, as Lightning does."""
    current = checkpoint.get(catalogue.version_key)
    if current is not None and versions.parse(current) == target:
        return
    if current is not None:
        checkpoint.setdefault(catalogue.legacy_version_key, str(current))
    checkpoint[catalogue.version_key] = str(target)
    ledger.open_catalogue(checkpoint, catalogue.name)
