"""Odd values in a file or on the command line (issue 20) end in a named error with its exit code.

A 5,000-digit integer as a version or ledger key, a ledger with a cycle or a tuple key (which
``upgrade`` handles, so ``inspect`` must too), a deeply nested ``--callback`` configuration, and
a file of no known format: never "please report this", never a traceback, never an internal class.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat import cli, errors, load_checkpoint
from pytest_ckpt_compat.core.errors import CheckpointCompatError
from tests.hardening.hardening_support import lightning_checkpoint

VERSION = "pytorch-lightning_version"
HUGE = 10**5000
LEDGER = {"tool_version": "0.1.0", "applied": {"lightning": []}}


@pytest.mark.parametrize(
    "where",
    [
        {VERSION: HUGE},
        {"ckpt_compat": {**LEDGER, "applied": {HUGE: ["x"]}}},
        {"ckpt_compat": {**LEDGER, "tool_version": HUGE}},
    ],
    ids=["version", "ledger-key", "ledger-value"],
)
def test_an_integer_too_long_to_print_is_a_corrupt_checkpoint(tmp_path, capsys, where):
    path = tmp_path / "huge.ckpt"
    torch.save({**lightning_checkpoint(0.01), **where}, path)
    with pytest.raises(errors.CorruptCheckpoint, match=r"an integer of 16610 bits, too long for Python to print"):
        load_checkpoint(path)
    assert cli.main(["upgrade", str(path), "-o", str(tmp_path / "out.ckpt")]) == 5
    assert cli.main(["inspect", str(path)]) == 5
    err = capsys.readouterr().err
    assert "UnexpectedError" not in err and "please report" not in err and "Traceback" not in err


def _upgraded_with_ledger(tmp_path, mutate) -> str:
    path = tmp_path / "in.ckpt"
    torch.save(lightning_checkpoint(0.01), path)
    assert cli.main(["upgrade", str(path), "-o", str(tmp_path / "up.ckpt")]) == 0
    checkpoint = torch.load(tmp_path / "up.ckpt", weights_only=True)
    mutate(checkpoint["ckpt_compat"])
    torch.save(checkpoint, tmp_path / "odd.ckpt")
    return str(tmp_path / "odd.ckpt")


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
@pytest.mark.parametrize(
    "mutate",
    [lambda ledger: ledger.__setitem__("loop", ledger), lambda ledger: ledger.__setitem__((1, 2), "x")],
    ids=["cycle", "tuple-key"],
)
def test_inspect_shows_a_ledger_that_upgrade_accepts(tmp_path, capsys, mutate, json_flag):
    odd = _upgraded_with_ledger(tmp_path, mutate)
    assert cli.main(["upgrade", odd, "-o", str(tmp_path / "again.ckpt")]) == 0
    capsys.readouterr()
    assert cli.main(["inspect", *json_flag, odd]) == 0
    out = capsys.readouterr().out
    ledger = json.loads(out)["ledger"] if json_flag else json.loads(out.split("ledger: ", 1)[1].splitlines()[0])
    assert ledger["tool_version"] and ("loop" in ledger or "(1, 2)" in ledger)
    assert ledger.get("loop", "...") == "..." or ledger["loop"]["loop"] == "..."


def test_a_deeply_nested_callback_configuration_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "in.ckpt"
    torch.save(lightning_checkpoint(0.01), path)
    spec = "EarlyStopping" + '{"a": ' * 5000 + "1" + "}" * 5000
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["upgrade", str(path), "-o", str(tmp_path / "out.ckpt"), "--callback", spec])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "nested too deeply" in err and "Traceback" not in err
    assert not (tmp_path / "out.ckpt").exists()


def test_a_file_of_no_known_format_names_a_documented_error(tmp_path, capsys):
    path = tmp_path / "notes.ckpt"
    path.write_bytes(b"\x00\x01 neither zip nor pickle")
    assert cli.main(["upgrade", str(path), "-o", str(tmp_path / "out.ckpt")]) == 5
    shown = capsys.readouterr().err.split(": ")[1]  # FAILED PATH: ErrorClass: ...
    assert shown == "NoTorchMagic" and getattr(errors, shown).__module__ == "pytest_ckpt_compat.core.errors"
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"`{shown}`" in readme


def test_every_error_the_file_layer_raises_is_a_documented_class():
    """Every named error lives in core/errors.py (the README's table), none in files/."""
    import pytest_ckpt_compat.files.loading  # noqa: F401 - defines whatever the file layer raises
    import pytest_ckpt_compat.files.writing  # noqa: F401

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    found = {f"{c.__module__}.{c.__qualname__}" for c in subclasses(CheckpointCompatError)}
    assert sorted(name for name in found if name.startswith("pytest_ckpt_compat.files")) == []
