"""What a run collects (session) and how it is rendered (report): outcomes per cell, the count line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_ckpt_compat.goldens.store import GoldenStore
from pytest_ckpt_compat.matrix import report
from pytest_ckpt_compat.matrix.checks import CHECKS
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
    # plain_resume and evaluate were not recorded for this golden: their columns show "-" (not run)
    assert report.text_lines(state)[1].split()[1:] == ["pass", "FAIL", "skip", "xfail", "XPASS", "-", "-"]


def test_count_line_leaves_out_absent_known_defect_kinds(state):
    golden = state.store.goldens[0]
    state.record(_report("m::t[fetch]", [golden.name, "fetch"], "passed"))
    assert report.count_line(state) == "ckpt-compat: 1 goldens, 0 migrations: 1 passed, 0 failed, 0 skipped"


def test_a_failed_teardown_is_not_overwritten(state):
    golden = state.store.goldens[0]
    state.record(_report("m::t[fetch]", [golden.name, "fetch"], "failed", when="setup"))
    state.record(_report("m::t[fetch]", [golden.name, "fetch"], "passed"))
    assert state.cell_outcomes()[(golden.name, "fetch")][0] == "failed"


def _all_pass(state, goldens) -> None:
    for golden in goldens:
        for check in CHECKS:
            state.record(_report(f"m::t[{golden.id}-{check}]", [golden.name, check], "passed"))


def test_a_clean_run_is_one_line_not_a_table_of_pass(state):
    """1,161 goldens passing printed 1,161 rows of ``pass``; now one line (the report keeps the table)."""
    _all_pass(state, state.store.goldens[:3])
    assert report.text_lines(state) == [
        "ckpt-compat: no failures (the full table: --ckpt-compat-report=FILE.md, or -v)",
        "ckpt-compat: 3 goldens, 0 migrations: 21 passed, 0 failed, 0 skipped",
    ]
    full = report.text_lines(state, full=True)
    assert [line.split()[0] for line in full] == ["golden", *(g.id for g in state.store.goldens[:3]), "ckpt-compat:"]


def test_only_rows_with_a_failure_are_shown(state):
    goldens = state.store.goldens[:3]
    _all_pass(state, goldens)
    state.record(_report(f"m::t[{goldens[1].id}-load]", [goldens[1].name, "load"], "failed"))
    lines = report.text_lines(state)
    assert lines[1].split() == [goldens[1].id, "pass", "pass", "FAIL", "pass", "pass", "pass", "pass"]
    assert lines[0].split()[0] == "golden" and len(lines) == 4
    assert (
        lines[2] == "ckpt-compat: 2 more goldens without failures (the full table: --ckpt-compat-report=FILE.md, or -v)"
    )


def test_the_default_report_is_outside_the_working_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CKPT_COMPAT_CACHE", str(tmp_path / "cache"))
    assert report.default_path() == tmp_path / "cache" / "reports" / "ckpt-compat-report.md"
