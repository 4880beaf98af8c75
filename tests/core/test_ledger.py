"""One owner of ``checkpoint["ckpt_compat"]``: the ledger module names every sub-key; nobody else spells them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_ckpt_compat.core import ledger
from pytest_ckpt_compat.core.errors import InvalidLedger

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "pytest_ckpt_compat" / "core" / "ledger.py"
# Every room that writes or reads the ledger goes through its owner.
ROOMS = [
    *sorted((ROOT / "pytest_ckpt_compat").rglob("*.py")),
    *sorted((ROOT / "migrations").glob("v*.py")),
]
SUB_KEYS = [
    ledger.KEY,
    ledger.APPLIED,
    ledger.TOOL_VERSION_KEY,
    ledger.CALLBACK_KEYS,
    ledger.ORIGINAL_COUNTERS,
    ledger.LIGHTNING_MIGRATED,
    ledger.WARNINGS,
    ledger.REDIRECTS,
]


def _spelled(code: str) -> list[str]:
    """Ledger keys written out as a dict access (``x["applied"]``, ``.get("applied")``, ``{"applied": ...}``).

    ``info[...]`` is the ``inspect --json`` output, whose public field names may match a sub-key;
    ``{'key':>15}`` is an f-string format spec, not a dict.
    """
    code = "\n".join(line.split("#", 1)[0] for line in code.splitlines())
    code = re.sub(r'"""(.|\n)*?"""', "", code)  # docstrings may name the keys
    found = set()
    for key in SUB_KEYS:
        quoted = "[\"']" + re.escape(key) + "[\"']"
        patterns = [
            r"(?<!info)\[" + quoted + r"\]",
            r"\.(get|setdefault|pop)\(" + quoted,
            r"[{,]\s*" + quoted + r"\s*:(?![<>^])",
        ]
        if any(re.search(pattern, code) for pattern in patterns):
            found.add(key)
    return sorted(found)


@pytest.mark.parametrize("path", [p for p in ROOMS if p != OWNER], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_room_spells_the_ledger_keys_but_its_owner(path):
    assert _spelled(path.read_text(encoding="utf-8")) == []


def test_the_spelling_check_sees_each_way_of_writing_a_key():
    code = "\n".join(
        ['a["ckpt_compat"]', 'b.get("applied")', "c.setdefault('tool_version', {})", 'd = {"warnings": 1}']
    )
    code += "\ninfo['notes']\nf\"{'original_counters':>15}\""
    assert _spelled(code) == ["applied", "ckpt_compat", "tool_version", "warnings"]


def test_applied_catalogues_and_ids_are_recorded_once_in_order():
    checkpoint: dict = {}
    ledger.record_applied(checkpoint, "lightning", "a")
    ledger.record_applied(checkpoint, "lightning", "a")
    ledger.open_catalogue(checkpoint, "mymodel")
    assert checkpoint["ckpt_compat"]["applied"] == {"lightning": ["a"], "mymodel": []}
    assert ledger.applied_catalogues(checkpoint) == ["lightning", "mymodel"]
    assert ledger.applied_ids(checkpoint, "lightning") == ["a"]


def test_reading_creates_nothing():
    checkpoint = {"epoch": 1}
    assert ledger.read(checkpoint) is None and ledger.get(checkpoint, ledger.NOTES, {}) == {}
    assert ledger.applied_ids(checkpoint) == [] and ledger.applied_catalogues(checkpoint) == []
    assert checkpoint == {"epoch": 1}


def test_a_foreign_ledger_is_refused_by_name():
    with pytest.raises(InvalidLedger, match=r"'ckpt_compat' key is list \[1, 2\], not this tool's ledger"):
        ledger.validate({"ckpt_compat": [1, 2]})
