"""The matrix must catch regressions in Lightning's restore path (issue: mutation-tested checks).

Opt-in (``-m mutation``; CI runs it): every mutant of ``mutants.MUTANTS`` is planted in the
installed Lightning, one at a time, under each installed namespace, and the matrix on a fixed
small golden subset must fail; unpatched, the same run must pass.
"""

from __future__ import annotations

import pytest

from tests.mutation.mutants import CELLS, MUTANTS

pytestmark = pytest.mark.mutation


def test_matrix_passes_on_unpatched_lightning(namespace, run_matrix, mutation_goldens):
    outcome = run_matrix()
    assert outcome["failed"] == []
    scenarios = {p.name for p in mutation_goldens.glob("*/*.ckpt")}
    assert len(outcome["passed"]) == len(CELLS) * len(scenarios), (
        outcome
    )  # every restore cell of every golden, none skipped


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_matrix_kills_mutant(mutant, namespace, run_matrix, mutation_goldens, monkeypatch):
    if mutant.needs and not list(mutation_goldens.glob(f"*/{mutant.needs}.ckpt")):
        pytest.skip(
            f"{mutant.what}: only a {mutant.needs} golden can show it (ckpt-compat golden add R --scenario "
            f"{mutant.needs})"
        )
    mutant.apply(namespace, monkeypatch)
    outcome = run_matrix()
    assert outcome["failed"], f"mutant survived: {mutant.what} (passed: {outcome['passed']})"
    # killed by a check that saw the difference, not by a crash of the run
    assert outcome["checks_failed"], (
        f"{mutant.what}: the matrix failed, but no check reported a difference: {outcome['failed']}"
    )
