"""Rendering of a run's :class:`~.session.State`: the terminal matrix and the Markdown report.

Why apart from the session: what a run collected is one thing, how it is shown is another; a
new output (JSON, HTML) is a function here and needs no change to the hooks (syrupy's split).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core import versions
from ..goldens.store import resolve_cache
from .checks import CHECKS
from .session import State

_NOTEWORTHY = ("failed", "xpassed")
_SYMBOL = {"passed": "pass", "failed": "FAIL", "skipped": "skip", "xfailed": "xfail", "xpassed": "XPASS", None: "-"}


def count_line(state: State) -> str:
    """One line naming the counts per outcome (the last line of both renderings); xfail/xpass when any."""
    c = state.counts()
    goldens = len(state.rows())
    units = len(state.migration_outcomes())
    line = (
        f"ckpt-compat: {goldens} goldens, {units} migrations: "
        f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
    )
    return line + "".join(f", {c[kind]} {kind}" for kind in ("xfailed", "xpassed") if c[kind])


def text_lines(state: State, *, full: bool = False) -> list[str]:
    """The matrix as terminal lines: failing rows (every row with ``full``), failed migrations, the count line.

    Compact by default: a clean run of 1,000+ goldens is one line, not a table of ``pass`` (the
    Markdown report keeps the full table); a row is shown when a cell failed or passed unexpectedly.
    """
    rows = state.rows()
    shown = rows if full else [(g, row) for g, row in rows if any(row[c] in _NOTEWORTHY for c in CHECKS)]
    width = max([len(g.id) for g, _ in shown] + [6])
    lines = []
    if shown:
        lines.append(f"{'golden':<{width}}  " + "  ".join(f"{c:<12}" for c in CHECKS).rstrip())
        for golden, row in shown:
            lines.append(f"{golden.id:<{width}}  " + "  ".join(f"{_SYMBOL[row[c]]:<12}" for c in CHECKS).rstrip())
    hidden = len(rows) - len(shown)
    if hidden:
        what = "no failures" if not shown else f"{hidden} more goldens without failures"
        lines.append(f"ckpt-compat: {what} (the full table: --ckpt-compat-report=FILE.md, or -v)")
    failed_units = {k: v for k, v in state.migration_outcomes().items() if v[0] == "failed"}
    for unit, (_, msg) in sorted(failed_units.items()):
        lines.append(f"migration {unit}: FAIL " + " / ".join(msg.splitlines()[1:3] or msg.splitlines()[:1]))
    for reason, cells in known_defect_cells(state).items():
        lines.append(f"xfail ({len(cells)} cells: {', '.join(cells[:3])}{', ...' if len(cells) > 3 else ''}): {reason}")
    lines.append(count_line(state))
    return lines


def default_path() -> Path:
    """Where ``ckpt-compat matrix`` writes its report unless told: beside the golden cache, outside any checkout.

    Not the working folder: a report there shows up in ``git status`` of whatever project ran it.
    """
    return resolve_cache() / "reports" / "ckpt-compat-report.md"


def known_defect_cells(state: State) -> dict[str, list[str]]:
    """``reason -> [cell ids]`` of the cells a known Lightning defect turned into expected failures."""
    out: dict[str, list[str]] = {}
    for (name, check), (outcome, msg) in sorted(state.cell_outcomes().items()):
        if outcome == "xfailed":
            out.setdefault(msg, []).append(f"{name.rsplit('.', 1)[0]} {check}")
    return out


def markdown(state: State) -> str:
    """The matrix as a Markdown document (``--ckpt-compat-report``), failures with their reasons."""
    installed = versions.installed_lightning_version()
    out = [
        "# Checkpoint compatibility matrix",
        "",
        f"Installed Lightning {installed}; goldens from "
        + ", ".join(
            f"`{_display(suite.store.source)}`" + (f" ({suite.name})" if suite.name else "") for suite in state.suites
        )
        + ".",
        "",
    ]
    out.append("| golden | " + " | ".join(CHECKS) + " |")
    out.append("|---|" + "---|" * len(CHECKS))
    for golden, row in state.rows():
        label = f"{golden.suite} {golden.release}" if golden.suite else golden.release
        out.append(f"| {label} {golden.scenario} | " + " | ".join(_SYMBOL[row[c]] for c in CHECKS) + " |")
    units = state.migration_outcomes()
    if units:
        out += ["", "| migration | contract |", "|---|---|"]
        out += [f"| `{unit}` | {_SYMBOL[outcome]} |" for unit, (outcome, _) in sorted(units.items())]
    failures = [
        (f"{name} {check}", msg)
        for (name, check), (outcome, msg) in sorted(state.cell_outcomes().items())
        if outcome == "failed"
    ]
    failures += [(unit, msg) for unit, (outcome, msg) in sorted(units.items()) if outcome == "failed"]
    if failures:
        out += ["", "## Failures", ""]
        for what, msg in failures:
            out += [f"- **{what}**", "", "  ```", *("  " + line for line in msg.splitlines()[:12]), "  ```"]
    defects = known_defect_cells(state)
    if defects:
        out += ["", "## Known Lightning defects (expected failures)", ""]
        for reason, cells in defects.items():
            out += [f"- {reason}: {', '.join(cells)}"]
    if state.problems:
        out += ["", "## Check mode", ""] + [f"- {p}" for p in state.problems]
    out += ["", count_line(state), ""]
    return "\n".join(out)


def _display(source: str) -> str:
    return source if "://" in source else os.path.basename(source.rstrip("/\\")) or source
