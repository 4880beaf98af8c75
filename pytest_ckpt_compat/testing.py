"""Public helpers to test migration units, for this catalogue and for downstream ones.

Why a contract check per unit: a catalogue is only as safe as its weakest unit, and the rules
(idempotent, tensors untouched, ledger written, no-op when already upgraded, no imports of current
Lightning classes) are easy to break silently. ``check_migration`` asserts all of them on one
checkpoint dict; the plugin runs it for every unit with ``--ckpt-compat``. Downstream catalogues
(their own folder and version key) call it from their own tests::

    from pytest_ckpt_compat.testing import check_migration, minimal_checkpoint

    @pytest.mark.parametrize("migration", my_catalogue.migrations, ids=lambda m: m.id)
    def test_unit(migration):
        checkpoint = minimal_checkpoint(before(migration), version_key="my_version")
        check_migration(migration, checkpoint, catalogue=my_catalogue)
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from packaging.version import Version

from .core.catalogue import Catalogue, Migration, all_catalogues
from .core.engine import applied_ids, plan, upgrade
from .core.errors import CheckpointCompatError
from .core.ops import differences
from .matrix.compare import CheckFailed, Mismatches, copy_checkpoint

FORBIDDEN_MODULES = ("lightning", "pytorch_lightning", "lightning_fabric")

__all__ = [
    "CheckFailed",
    "catalogue_of",
    "check_migration",
    "forbidden_imports",
    "minimal_checkpoint",
    "prepare_for",
    "tensors_by_path",
    "version_before",
]


def catalogue_of(migration: Migration, catalogues: Iterable[Catalogue] | None = None) -> Catalogue:
    """The catalogue a migration belongs to (for its version key)."""
    for catalogue in catalogues if catalogues is not None else all_catalogues():
        if catalogue.name == migration.catalogue:
            return catalogue
    raise LookupError(f"no registered catalogue named {migration.catalogue!r} (migration {migration.id})")


def version_before(version: Version | str) -> str:
    """A release just below ``version``: the format a unit of that version expects as input."""
    v = Version(str(version))
    major, minor, micro = (list(v.release) + [0, 0])[:3]
    if micro:
        return f"{major}.{minor}.{micro - 1}"
    if minor:
        return f"{major}.{minor - 1}.0"
    return f"{major - 1}.0.0" if major else "0.0.1"


def minimal_checkpoint(version: str, *, version_key: str = "pytorch-lightning_version") -> dict:
    """A hand-made checkpoint with the keys every Lightning release writes, for units without goldens."""
    import torch

    return {
        version_key: str(version),
        "epoch": 1,
        "global_step": 8,
        "state_dict": {"layer.weight": torch.arange(4.0).reshape(2, 2), "layer.bias": torch.zeros(2)},
        "optimizer_states": [
            {"state": {0: {"step": 8, "exp_avg": torch.ones(2, 2)}}, "param_groups": [{"lr": 0.01, "params": [0, 1]}]}
        ],
        "lr_schedulers": [{"last_epoch": 1, "_step_count": 2, "_last_lr": [0.005]}],
        "callbacks": {},
        "hyper_parameters": {"lr": 0.01},
    }


def prepare_for(migration: Migration, checkpoint: dict, catalogue: Catalogue | None = None) -> dict:
    """Apply (in place) every pending unit that comes before ``migration``: the input it will really get."""
    catalogue = catalogue or catalogue_of(migration)
    earlier = [
        m for m in plan(checkpoint, str(migration.version), catalogues=[catalogue]) if m.sort_key < migration.sort_key
    ]
    if earlier:
        upgrade(
            checkpoint,
            str(earlier[-1].version),
            catalogues=[catalogue.subset(earlier, target_version=earlier[-1].version)],
        )
    return checkpoint


def tensors_by_path(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{key path: tensor}`` for every tensor in a nested checkpoint."""
    import torch

    found: dict[str, Any] = {}
    if isinstance(obj, torch.Tensor):
        found[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            found.update(tensors_by_path(value, f"{prefix}/{key!s}"))
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            found.update(tensors_by_path(value, f"{prefix}[{index}]"))
    return found


def forbidden_imports(path: str | Path, modules: Iterable[str] = FORBIDDEN_MODULES) -> list[str]:
    """``"line N: import X"`` for each import of a current Lightning package in a unit file."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    bad = []
    roots = set(modules)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
            "import_module",
            "__import__",
        ):
            names = [a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        for name in names:
            if name.split(".")[0] in roots:
                bad.append(f"line {getattr(node, 'lineno', '?')}: imports {name}")
    return bad


def check_migration(
    migration: Migration,
    checkpoint: dict,
    *,
    catalogue: Catalogue | None = None,
    after: dict | None = None,
) -> dict:
    """Assert the unit contract on ``checkpoint`` (left untouched); returns the upgraded copy.

    ``checkpoint`` is in the format just before the unit (see :func:`prepare_for`); ``after``
    optionally is a checkpoint already in the unit's format (a golden saved at or past its version),
    on which the unit must change nothing.
    """
    __tracebackhide__ = True
    catalogue = catalogue or catalogue_of(migration)
    m = Mismatches(f"migration {migration.id} ({migration.path.name})")
    for line in forbidden_imports(migration.path):
        m.add(f"imports current Lightning ({line}); units must work on plain dicts only")
    source = copy_checkpoint(checkpoint)
    before_tensors = {path: (t, t.detach().clone()) for path, t in tensors_by_path(source).items()}
    once = _run_twice(m, migration, source)
    if not migration.changes_tensors:
        _check_tensors_kept(m, before_tensors, once)
    _check_through_engine(m, migration, catalogue, source)
    if after is not None:
        untouched = copy_checkpoint(after)
        migration.upgrade(untouched)
        diff = differences(after, untouched)
        if diff:
            m.add("not a no-op on a checkpoint already in its format: changed " + "; ".join(diff[:5]))
    m.raise_if_any()
    return once


def _run_twice(m: Mismatches, migration: Migration, source: dict) -> dict:
    """The unit on a copy of ``source``, in place and returning it; a second run must change nothing."""
    once = copy_checkpoint(source)
    result = migration.upgrade(once)
    if result is not once:
        m.add("upgrade() must mutate the checkpoint in place and return the same dict")
    try:
        twice = migration.upgrade(copy_checkpoint(once))
    except Exception as exc:
        m.add(f"not idempotent: a second run raised {type(exc).__name__}: {exc}")
    else:
        diff = differences(once, twice)
        if diff:
            m.add("not idempotent: a second run changed " + "; ".join(diff[:5]))
    return once


def _check_tensors_kept(m: Mismatches, before_tensors: dict, once: dict) -> None:
    """A unit without ``CHANGES_TENSORS`` keeps every tensor object, unchanged, and adds none."""
    import torch

    after_tensors = tensors_by_path(once)
    kept = {id(t) for t in after_tensors.values()}
    for path, (tensor, snapshot) in before_tensors.items():
        if id(tensor) not in kept:
            m.add(f"tensor {path} was lost or replaced (set CHANGES_TENSORS = True if intended)")
        elif not torch.equal(tensor, snapshot):
            m.add(f"tensor {path} was changed in place (set CHANGES_TENSORS = True if intended)")
    original = {id(t) for t, _ in before_tensors.values()}
    for path, tensor in after_tensors.items():
        if id(tensor) not in original:
            m.add(f"tensor {path} was added (set CHANGES_TENSORS = True if intended)")


def _check_through_engine(m: Mismatches, migration: Migration, catalogue: Catalogue, source: dict) -> None:
    """Through the engine: planned only below its version, recorded in the ledger, stamped, not planned again."""
    __tracebackhide__ = True
    origin = source.get(catalogue.legacy_version_key, source.get(catalogue.version_key))
    alone = [catalogue.subset([migration])]
    if origin is not None and Version(str(origin)) >= migration.version:
        if any(p.id == migration.id for p in plan(copy_checkpoint(source), str(migration.version), catalogues=alone)):
            m.add(f"planned for a checkpoint already at {origin} (>= {migration.version})")
        return
    try:
        ledgered = upgrade(
            copy_checkpoint(source),
            str(migration.version),
            catalogues=[catalogue.subset([migration], target_version=migration.version)],
        )
    except CheckpointCompatError as exc:
        m.add(f"the engine could not apply it: {exc}")
        m.raise_if_any()
    if migration.id not in applied_ids(ledgered, catalogue.name):
        m.add(f"the engine did not record {migration.id} in the ledger")
    if str(ledgered.get(catalogue.version_key)) != str(migration.version):
        m.add(
            f"version stamp after upgrade is {ledgered.get(catalogue.version_key)!r}, expected "
            f"{str(migration.version)!r}"
        )
    if any(p.id == migration.id for p in plan(copy_checkpoint(ledgered), str(migration.version), catalogues=alone)):
        m.add("planned again on its own output (the ledger or the stamp is ignored)")
