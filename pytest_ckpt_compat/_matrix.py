"""The tests ``pytest --ckpt-compat`` adds: one per golden × check, one per migration unit.

Parametrized by :mod:`pytest_ckpt_compat.plugin`; the work is done in :mod:`.checks` and
:mod:`.testing`, so these stay readable as a specification.
"""

from __future__ import annotations

import pytest

from pytest_ckpt_compat import testing
from pytest_ckpt_compat.matrix import checks


def test_golden(ckpt_compat_cell, ckpt_compat_workspaces, tmp_path):
    """A golden checkpoint passes one matrix check (fetch, upgrade, load, resume, weights_only, plain_resume,
    evaluate)."""
    __tracebackhide__ = True
    golden = ckpt_compat_cell.golden
    checks.run(ckpt_compat_workspaces[golden.suite], golden, ckpt_compat_cell.check, tmp_path)


@pytest.mark.ckpt_compat_migrations()  # every registered catalogue
def test_migration(ckpt_compat_migration, ckpt_compat_migration_example, ckpt_compat_workspace):
    """A migration unit keeps the contract on its input, and is a no-op on a golden already in its format."""
    __tracebackhide__ = True
    from pytest_ckpt_compat.matrix.session import golden_around

    ws, unit = ckpt_compat_workspace, ckpt_compat_migration
    after = golden_around(ws.store, unit, before=False)
    testing.check_migration(unit, ckpt_compat_migration_example.checkpoint, after=ws.load(after) if after else None)
