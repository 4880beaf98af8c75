"""Plan and apply migrations, and record what was applied.

``plan`` answers "which upgrades would run on this checkpoint"; ``upgrade`` runs them in place
(tensors are never copied), stamps the target version and keeps a ledger of applied ids, so that
re-running is a no-op even after the catalogue grows.
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.version import Version

from . import callback_keys, premigrated, versions
from .catalogue import Catalogue, Migration, all_catalogues
from .errors import CheckpointTooNew, InvalidLedger, InvalidVersion, MigrationError, NotALightningCheckpoint
from .ops import LEDGER_KEY  # defined with the helpers units use, which must not import the engine


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


def _check_ledger(checkpoint: dict) -> None:
    """Our ``ckpt_compat`` key must be what we write: a dict whose ``applied`` maps names to id lists."""
    if LEDGER_KEY not in checkpoint:
        return
    ledger = checkpoint[LEDGER_KEY]
    applied = ledger.get("applied", {}) if isinstance(ledger, dict) else None
    if not isinstance(applied, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(i, str) for i in v) for k, v in applied.items()
    ):
        raise InvalidLedger(
            f"the checkpoint's {LEDGER_KEY!r} key is {type(ledger).__name__} {_short(ledger)}, not this tool's ledger "
            "(a dict with 'applied': {catalogue: [ids]}); another tool may have written it"
        )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def applied_ids(checkpoint: dict, catalogue_name: str = "lightning") -> list[str]:
    """Ids of the migrations already applied (from our ledger)."""
    ledger = checkpoint.get(LEDGER_KEY)
    if not isinstance(ledger, dict):
        return []
    return list((ledger.get("applied") or {}).get(catalogue_name, []))


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


def upgrade(
    checkpoint: dict,
    target_version: str | None = None,
    *,
    catalogues: Iterable[Catalogue] | None = None,
    assume_version: str | None = None,
    callbacks: Iterable | None = None,
) -> dict:
    """Bring ``checkpoint`` to the target format in place and return it.

    ``target_version`` defaults to the installed Lightning; only migrations with a version
    ``<= target`` run. ``assume_version`` names the version of a checkpoint that carries no
    version key (Lightning before 0.8.2). ``callbacks``: the configuration of the callbacks that
    wrote a pre-1.5 file, as live callbacks or specs like ``'EarlyStopping{"monitor": "val_loss",
    "mode": "max"}'``; states keyed by class name get those ``state_key``s (see ``callback_keys``).
    A file that Lightning's own ``migrate_checkpoint`` already migrated is repaired first
    (``premigrated``), so the catalogue runs on the content its legacy release saved.
    """
    resolved = _resolve(checkpoint, target_version, catalogues, assume_version)
    if any(catalogue.version_key == versions.VERSION_KEY for catalogue, *_ in resolved):
        premigrated.repair(checkpoint)  # a file Lightning already migrated: undo its damage first
    for catalogue, origin, target, assumed in resolved:
        if assumed is not None:  # units read the version key: give them the assumed one
            checkpoint[catalogue.version_key] = assumed
        for migration in _pending(checkpoint, catalogue, origin, target):
            try:
                result = migration.upgrade(checkpoint)
            except Exception as exc:
                raise MigrationError(migration.id, exc) from exc
            if result is not checkpoint:
                raise MigrationError(migration.id, TypeError("upgrade() must mutate and return the same dict"))
            _record(checkpoint, catalogue.name, migration.id)
        _stamp(checkpoint, catalogue, origin, target)
    if callbacks is not None:
        callback_keys.apply_explicit(checkpoint, callbacks)
    return checkpoint


def _pending(checkpoint: dict, catalogue: Catalogue, origin: Version | None, target: Version) -> list[Migration]:
    """Units newer than the content's origin, not newer than the target, not yet in the ledger."""
    done = set(applied_ids(checkpoint, catalogue.name))
    return [
        m
        for m in catalogue.migrations
        if (origin is None or origin < m.version) and m.version <= target and m.id not in done
    ]


def _resolve(checkpoint, target_version, catalogues, assume_version):
    """For each catalogue: (catalogue, origin or None, target, assumed version or None); validates, writes nothing."""
    if not isinstance(checkpoint, dict):
        raise NotALightningCheckpoint(found=f"the payload is a {type(checkpoint).__name__}, not a dict")
    _check_ledger(checkpoint)
    catalogues = list(catalogues) if catalogues is not None else all_catalogues()
    resolved = []
    for catalogue in catalogues:
        is_lightning = catalogue.version_key == versions.VERSION_KEY
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


def _record(checkpoint: dict, catalogue_name: str, migration_id: str) -> None:
    ledger = checkpoint.setdefault(LEDGER_KEY, {})
    ledger["tool_version"] = versions.TOOL_VERSION
    ids = ledger.setdefault("applied", {}).setdefault(catalogue_name, [])
    if migration_id not in ids:
        ids.append(migration_id)


def _stamp(checkpoint: dict, catalogue: Catalogue, origin: Version | None, target: Version) -> None:
    """Set the version to the target and keep the first original version, as Lightning does."""
    current = checkpoint.get(catalogue.version_key)
    if current is not None and versions.parse(current) == target:
        return
    if current is not None:
        checkpoint.setdefault(catalogue.legacy_version_key, str(current))
    checkpoint[catalogue.version_key] = str(target)
    checkpoint.setdefault(LEDGER_KEY, {})["tool_version"] = versions.TOOL_VERSION
    checkpoint[LEDGER_KEY].setdefault("applied", {}).setdefault(catalogue.name, [])
