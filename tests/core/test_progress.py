"""Progress bars only for a person at a terminal: quiet in CI, under xdist, in pipes."""

from __future__ import annotations

import io
import sys

import pytest

from pytest_ckpt_compat.core import progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch):
    """stderr is a terminal, and neither CI nor an xdist worker."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setattr(sys, "__stderr__", _Tty())


def test_a_pipe_gets_no_bar(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert progress.wanted(io.StringIO()) is False


def test_a_terminal_gets_a_bar(terminal):
    assert progress.wanted() is True


@pytest.mark.parametrize("var", ["CI", "PYTEST_XDIST_WORKER"])
def test_ci_and_xdist_workers_are_quiet(terminal, monkeypatch, var):
    monkeypatch.setenv(var, "1")
    assert progress.wanted() is False


def test_iterate_shows_a_bar_on_stderr_and_yields_every_item(terminal, capsys):
    assert list(progress.iterate(["a", "b", "c"], desc="upgrading", unit="ckpt")) == ["a", "b", "c"]
    assert "upgrading" in capsys.readouterr().err


def test_iterate_without_terminal_is_the_plain_sequence(monkeypatch):
    monkeypatch.setattr(sys, "__stderr__", io.StringIO())
    items = ["a", "b"]
    assert progress.iterate(items, desc="x") is items


def test_echo_prints_whole_lines_in_both_modes(terminal, capsys, monkeypatch):
    progress.echo("with bars")
    monkeypatch.setattr(sys, "__stderr__", io.StringIO())
    progress.echo("without", file=sys.stderr)
    out = capsys.readouterr()
    assert (out.out, out.err) == ("with bars\n", "without\n")
