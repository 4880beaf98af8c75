"""A golden's checks share the work that gives the same result: the upgrade and its written file.

``plain_resume`` resumes the file ``upgrade`` + ``save_checkpoint`` write; the workspace wrote
exactly that for the other checks, so it is upgraded and written again only when the recipe's
callbacks must be stated (0.10/1.0 files that record no monitor).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_ckpt_compat.core import engine
from pytest_ckpt_compat.goldens.store import GoldenStore
from pytest_ckpt_compat.matrix import checks
from pytest_ckpt_compat.matrix.workspace import Workspace

REPO_GOLDEN = Path(__file__).resolve().parents[2] / "golden"


@pytest.mark.parametrize(("golden_id", "upgrades"), [("2.6.6-end_of_fit", 0), ("1.0.8-end_of_fit", 1)])
def test_plain_resume_upgrades_again_only_to_state_callbacks(golden_id, upgrades, tmp_path, monkeypatch):
    ws = Workspace(GoldenStore(REPO_GOLDEN, tmp_path / "cache", progressbar=False), tmp_path / "ws")
    golden = ws.store.get(golden_id)
    checks.run(ws, golden, "upgrade", tmp_path / "upgrade")
    calls = []
    real = engine.upgrade
    monkeypatch.setattr(engine, "upgrade", lambda *a, **k: calls.append(k) or real(*a, **k))

    checks.run(ws, golden, "plain_resume", tmp_path / "plain_resume")

    assert len(calls) == upgrades
    assert (tmp_path / "plain_resume" / "plain").exists() == bool(upgrades)
