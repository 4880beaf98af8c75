"""The known-defects table: which cells a Lightning defect turns into strict expected failures."""

from __future__ import annotations

import pytest

from pytest_ckpt_compat.core.errors import GoldenError
from pytest_ckpt_compat.matrix import known_defects


def test_the_shipped_table_names_the_mid_epoch_replay_with_its_issues():
    (defect,) = [d for d in known_defects.load() if d.id == "mid-epoch-replay"]
    assert defect.scenarios == ("mid_epoch",) and defect.checks == ("resume", "plain_resume")
    assert any("/issues/18060" in link for link in defect.links) and any(
        "/issues/19815" in link for link in defect.links
    )
    assert "18060" in defect.text and "replay" in defect.text


@pytest.mark.parametrize(
    ("installed", "scenario", "check", "saved", "hit"),
    [
        ("2.0.0", "mid_epoch", "resume", "2.6.6", True),
        ("2.3.3", "mid_epoch", "resume", "1.6.5", True),
        ("2.4.0", "mid_epoch", "resume", "2.3.3", True),  # measured: 2.4.0 still replays the batch
        ("2.5.0", "mid_epoch", "resume", "2.6.6", False),  # fixed release: the cell must pass again
        ("2.0.0", "weight_averaging", "plain_resume", "1.9.5", True),  # measured: replays like mid_epoch
        ("2.0.0", "weight_averaging", "resume", "1.2.7", False),  # no loop state before 1.6: nothing replays
        ("2.6.6", "weight_averaging", "weights_only", "2.6.0", None),  # SWALR's pickled anneal_func (torch 2.9.1)
        ("2.6.6", "weight_averaging", "weights_only", "2.6.1", False),
        ("2.6.6", "mid_epoch", "resume", "2.6.6", False),
        ("2.0.0", "end_of_fit", "resume", "2.6.6", False),
        ("2.0.0", "mid_epoch", "load", "2.6.6", False),
        ("2.0.0", "mid_epoch", "resume", "1.5.10", False),  # pre-1.6 files restart the epoch: no replay
        ("2.0.0", "fault_tolerant", "resume", "1.4.9", True),  # ... unless they carry loop state
        ("2.4.0", "fault_tolerant", "plain_resume", "1.5.10", True),
        ("2.5.0", "fault_tolerant", "resume", "1.5.10", False),
    ],
)
def test_lookup(installed, scenario, check, saved, hit):
    found = known_defects.lookup(scenario, check, saved, installed=installed)
    if hit is None:  # another defect than the replay
        assert found is not None and found.id == "swalr-anneal-func-weights-only"
        return
    assert (found is not None and found.id.startswith("mid-epoch-replay")) is hit


def test_a_malformed_entry_is_a_named_error(tmp_path):
    table = tmp_path / "defects.toml"
    table.write_text('[[defect]]\nid = "x"\nlightning = ">=2.0"\n')
    with pytest.raises(GoldenError, match=r"defect #1 lacks \['scenarios', 'checks', 'links', 'reason'\]"):
        known_defects.load(str(table))
