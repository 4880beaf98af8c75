"""What a run collects (session) and how it is rendered (report): outcomes per cell, the count line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_ckpt_compat.goldens.store import GoldenStore
from pytest_ckpt_compat.matrix import report
from pytest_ckpt_compat.matrix.session import State

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def _report(
    nodeid: str, cell: list, outcome: str, when: str = "call", wasxfail: str | None = None
) -> pytest.TestReport:
    rep = pytest.TestReport(
        nodeid,
        ("x.py", 0, nodeid),
        {},
        outcome,
        "E   reason" if outcome != "passed" else None,
        when,
        user_properties=[("ckpt_compat_cell", cell)],
    )
    if wasxfail is not None:
        rep.wasxfail = wasxfail
    return rep


@pytest.fixture
def state(tmp_path) -> State:
    return State(store=GoldenStore(GOLDEN, tmp_path / "cache", progressbar=False))


def test_count_line_names_every_outcome_including_known_defects(state):
    golden = state.store.goldens[0]
    cells = {check: [golden.name, check] for check in ("fetch", "upgrade", "load", "resume", "weights_only")}
    state.record(_report("m::t[fetch]", cells["fetch"], "passed"))
    state.record(_report("m::t[upgrade]", cells["upgrade"], "failed"))
    state.record(_report("m::t[load]", cells["load"], "skipped"))
    state.record(_report("m::t[resume]", cells["resume"], "skipped", wasxfail="known defect"))
    state.record(_report("m::t[weights_only]", cells["weights_only"], "passed", wasxfail="known defect"))
    assert (
        report.count_line(state)
        == "ckpt-compat: 1 goldens, 0 migrations: 1 passed, 1 failed, 1 skipped, 1 xfailed, 1 xpassed"
    )
    # plain_resume was not recorded for this golden: its column shows "-" (not run)
    assert report.text_lines(state)[1].split()[1:] == ["pass", "FAIL", "skip", "xfail", "XPASS", "-"]


def test_count_line_leaves_out_absent_known_defect_kinds(state):
    golden = state.store.goldens[0]
    state.record(_report("m::t[fetch]", [golden.name, "fetch"], "passed"))
    assert report.count_line(state) == "ckpt-compat: 1 goldens, 0 migrations: 1 passed, 0 failed, 0 skipped"


def test_a_failed_teardown_is_not_overwritten(state):
    golden = state.store.goldens[0]
    state.record(_report("m::t[fetch]", [golden.name, "fetch"], "failed", when="setup"))
    state.record(_report("m::t[fetch]", [golden.name, "fetch"], "passed"))
    assert state.cell_outcomes()[(golden.name, "fetch")][0] == "failed"
