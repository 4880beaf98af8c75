"""The matrix must catch regressions in Lightning's restore path (issue: mutation-tested checks).

Opt-in (``-m mutation``; CI runs it): every mutant of ``mutants.MUTANTS`` is planted in the
installed Lightning, one at a time, under each installed namespace, and the matrix on a fixed
small golden subset must fail (a save-path mutant: with the round trip of a file saved now), by
the check the mutant names; unpatched, the same runs must pass.
"""

from __future__ import annotations

import pytest

from tests.mutation.conftest import ROUND_TRIP_SCENARIOS
from tests.mutation.mutants import CELLS, MUTANTS

pytestmark = pytest.mark.mutation


def test_matrix_passes_on_unpatched_lightning(namespace, run_matrix, mutation_goldens):
    outcome = run_matrix()
    assert outcome["failed"] == []
    scenarios = {p.name for p in mutation_goldens.glob("*/*.ckpt")}
    assert len(outcome["passed"]) == len(CELLS) * len(scenarios), (
        outcome
    )  # every restore cell of every golden, none skipped
    round_trip = run_matrix(round_trip=True)
    assert (round_trip["failed"], len(round_trip["passed"])) == ([], len(ROUND_TRIP_SCENARIOS)), round_trip


def _check_of(nodeid: str) -> str:
    """``test_golden[2.6.6-end_of_fit-evaluate]`` -> ``evaluate``; ``test_round_trip[...]`` -> ``round_trip``."""
    if "test_round_trip[" in nodeid:
        return "round_trip"
    return nodeid.rsplit("-", 1)[-1].rstrip("]")


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_matrix_kills_mutant(mutant, namespace, run_matrix, mutation_goldens, monkeypatch):
    if mutant.needs and not list(mutation_goldens.glob(f"*/{mutant.needs}.ckpt")):
        pytest.skip(
            f"{mutant.what}: only a {mutant.needs} golden can show it (ckpt-compat golden add R --scenario "
            f"{mutant.needs})"
        )
    mutant.apply(namespace, monkeypatch)
    outcome = run_matrix()
    if mutant.saves:  # a save-path regression: the goldens cannot show it, a file saved now can
        round_trip = run_matrix(round_trip=True)
        outcome = {key: outcome[key] + round_trip[key] for key in outcome}
    assert outcome["failed"], f"mutant survived: {mutant.what} (passed: {outcome['passed']})"
    # killed by a check that saw the difference, not by a crash of the run
    assert outcome["checks_failed"], (
        f"{mutant.what}: the matrix failed, but no check reported a difference: {outcome['failed']}"
    )
    killers = sorted({_check_of(nodeid) for nodeid in outcome["checks_failed"]})
    print(f"{mutant.id}: killed by {', '.join(killers)}")  # the mutant table of the README (-s shows it)
    if mutant.killed_by:
        assert mutant.killed_by in killers, (
            f"{mutant.what}: expected the {mutant.killed_by} check to fail, got {killers}"
        )
