"""What a new user meets first answers at once: ``--help``, ``--version`` and ``migrations`` import no torch.

Each runs in a fresh interpreter, which reports the heavy modules it imported (``sys.modules``);
time bounds are too noisy for a test on a shared machine, so none is asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ckpt_compat.core.versions import TOOL_VERSION

HEAVY = ("torch", "lightning", "pytorch_lightning", "lightning_fabric", "numpy")
MIGRATIONS = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "migrations").glob("v*.py"))

PROBE = """
import contextlib, io, json, sys
from pytest_ckpt_compat.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # argparse's --help and --version
        code = exc.code
heavy = sorted(m for m in HEAVY if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy, "out": out.getvalue()}))
"""


def _probe(*argv: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + PROBE, *argv], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_help_imports_nothing_heavy():
    probe = _probe("--help")
    assert (probe["code"], probe["heavy"]) == (0, [])
    assert "upgrade" in probe["out"] and "migrations" in probe["out"]


def test_version_imports_nothing_heavy():
    probe = _probe("--version")
    assert (probe["code"], probe["heavy"], probe["out"]) == (0, [], f"ckpt-compat {TOOL_VERSION}\n")


@pytest.mark.parametrize("command", ["upgrade", "inspect"])
def test_sub_command_help_imports_nothing_heavy(command):
    probe = _probe(command, "--help")
    assert (probe["code"], probe["heavy"]) == (0, [])


def test_migrations_lists_the_catalogue_without_torch():
    probe = _probe("migrations", "--json")
    assert (probe["code"], probe["heavy"]) == (0, [])
    files = sorted(row["file"] for row in json.loads(probe["out"]) if row["catalogue"] == "lightning")
    assert files == MIGRATIONS
