"""One error hierarchy, in one module, built one way, and every exit code in the README's table."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import pytest_ckpt_compat
from pytest_ckpt_compat.core import errors

ROOT = Path(__file__).resolve().parents[2]

# The facts each class that writes its own message takes (any class not here takes the message).
FACTS = {
    errors.NotALightningCheckpoint: ({"found": "the payload is a list, not a dict"}, ["the payload is a list"]),
    errors.CheckpointTooNew: ({"saved": "2.6.0", "target": "2.0.0"}, ["2.6.0", "2.0.0"]),
    errors.UnsafeCheckpoint: ({"path": "a.ckpt", "globals_": ["os.system"]}, ["a.ckpt", "os.system"]),
    errors.MissingGlobal: ({"path": "a.ckpt", "name": "gone.Model"}, ["a.ckpt", "gone.Model"]),
    errors.IncompatibleClass: ({"path": "a.ckpt", "name": "lib.Frame", "library": "lib 3.0"}, ["lib.Frame", "lib 3.0"]),
    errors.MigrationError: ({"migration_id": "v1_0_0__x", "cause": KeyError("k")}, ["v1_0_0__x", "KeyError"]),
}


def package_modules() -> list:
    """Every module of the package except the test files the plugin adds (``_matrix``, ``_check``)."""
    names = [m.name for m in pkgutil.walk_packages(pytest_ckpt_compat.__path__, "pytest_ckpt_compat.")]
    return [importlib.import_module(n) for n in names if not n.rsplit(".", 1)[-1].startswith("_")]


def error_classes() -> list:
    return [getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)]


def test_every_error_class_of_the_package_is_defined_in_core_errors():
    defined_elsewhere = sorted(
        f"{module.__name__}.{name}"
        for module in package_modules()
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseException)
        and obj.__module__ == module.__name__
        and not name.startswith("_")
        and module.__name__ != errors.__name__
    )
    assert defined_elsewhere == []


def test_all_lists_every_class_and_each_resolves():
    defined = sorted(
        name
        for name, obj in vars(errors).items()
        if not name.startswith("_")
        and (isinstance(obj, type) and issubclass(obj, BaseException) or inspect.isfunction(obj))
        and obj.__module__ == errors.__name__
    )
    assert sorted(errors.__all__) == defined
    assert errors.GoldenBuildError.exit_code == errors.GoldenError.exit_code == 9
    assert issubclass(errors.CheckFailed, AssertionError)  # a test's failure, reported by pytest as one


@pytest.mark.parametrize("cls", error_classes(), ids=lambda c: c.__name__)
def test_one_constructor_style(cls):
    """Facts in, message out, with the same optional ``detail`` appended; or just the message."""
    if cls not in FACTS:
        assert str(cls("what was found; what to do next")) == "what was found; what to do next"
        return
    facts, shown = FACTS[cls]
    plain, detailed = str(cls(**facts)), str(cls(**facts, detail="the reason"))
    assert [s for s in shown if s not in plain] == []
    assert "()" not in plain and "the reason" not in plain
    assert "(the reason)" in detailed
    assert list(inspect.signature(cls).parameters)[-1] == "detail"
    for name in set(facts) - {"globals_"}:
        assert getattr(cls(**facts), name) == facts[name]


def test_not_a_lightning_checkpoint_says_what_was_found():
    assert str(errors.NotALightningCheckpoint(found="x.ckpt is not a torch file but a MindSpore file")) == (
        "not a Lightning checkpoint: x.ckpt is not a torch file but a MindSpore file"
    )
    keys = errors.NotALightningCheckpoint(["state_dict", "epoch"])
    assert keys.found_keys == ["state_dict", "epoch"]
    assert "(top-level keys found: 'state_dict', 'epoch')" in str(keys)


def readme_exit_codes() -> dict[int, set[str]]:
    """The README's exit-code table: code -> the error classes its row names."""
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        match = re.match(r"\| (\d+) \| [^|]* \| ([^|]*) \|$", line)
        if match:
            rows[int(match.group(1))] = set(re.findall(r"`(\w+)`", match.group(2)))
    return rows


def test_every_exit_code_is_in_the_readme_table():
    table = readme_exit_codes()
    ours = [c for c in error_classes() if issubclass(c, errors.CheckpointCompatError)]
    ours.remove(errors.CheckpointCompatError)  # the base: never raised itself
    missing = sorted(f"{c.__name__} ({c.exit_code})" for c in ours if c.__name__ not in table.get(c.exit_code, ()))
    assert missing == []
    named = {n for n in set().union(*table.values()) if re.fullmatch(r"[A-Z][a-z]+[A-Z]\w*", n)}  # class names
    assert sorted(named - {c.__name__ for c in ours}) == []  # the table names no class that is not there
