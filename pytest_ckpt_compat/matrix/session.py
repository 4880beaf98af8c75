"""What one pytest run collects: the cells, the shard, the labels, the outcomes, the check verdict.

Why a separate room: the plugin hooks stay one-liners, and :mod:`.report` renders this state as
the terminal matrix and the Markdown report (syrupy keeps ``session.py`` and ``report.py`` apart).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..core import versions
from ..goldens.store import Golden, GoldenStore, resolve_cache, resolve_source
from . import known_defects
from .checks import CHECKS, skip_reason
from .suites import Suite

OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed")  # known defects are xfailed cells
_CELL_PROP = "ckpt_compat_cell"
_MIGRATION_PROP = "ckpt_compat_migration"
_CHECK_PROP = "ckpt_compat_check"  # the check-mode tests: installed release, schema drift
CELL_ARG, MIGRATION_ARG, DRIFT_ARG, RELEASE_ARG = (
    "ckpt_compat_cell",
    "ckpt_compat_migration",
    "ckpt_compat_drift_scenario",
    "ckpt_compat_installed_release",
)


@dataclass(frozen=True)
class Cell:
    """One matrix cell: a golden and a check. Its id is what ``-k`` matches."""

    golden: Golden
    check: str
    suite: Suite | None = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.golden.id}-{self.check}"

    def marks(self) -> list:
        reason = skip_reason(self.golden, self.check) or self._team_skip()
        if reason:
            return [pytest.mark.skip(reason=reason)]
        if self.golden.suite:  # known_defects.toml names Lightning's defects on the built-in model
            return []
        defect = known_defects.lookup(self.golden.scenario, self.check, self.golden.saved_version)
        return [pytest.mark.xfail(reason=defect.text, strict=True)] if defect else []

    def _team_skip(self) -> str | None:
        """A team golden of a release newer than the team's installed one cannot be read by it."""
        if self.suite is None or not self.suite.is_team or self.check == "fetch":
            return None
        installed = self.suite.installed_version()
        if versions.parse(self.golden.release) > versions.parse(installed):
            return (
                f"golden {self.golden.id} was saved by {self.suite.name} {self.golden.release}, "
                f"newer than the installed {installed}"
            )
        return None


@dataclass
class Sample:
    """A checkpoint handed to a migration test: from a real golden, or hand-made (``golden`` is None)."""

    golden: Golden | None
    checkpoint: dict


@dataclass
class State:
    """Everything the plugin knows in one pytest process."""

    store: GoldenStore  # the first suite's store (the migration fixtures draw their samples from it)
    shard_spec: tuple[int, int] | None = None
    suites: list = field(default_factory=list)  # the suites whose goldens this session runs
    outcomes: dict = field(default_factory=dict)  # nodeid -> (kind, key, outcome, message)
    selected: set = field(default_factory=set)  # golden names collected and not deselected
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # check mode: what did not run, and why (not failures)

    @classmethod
    def from_config(cls, config: pytest.Config) -> State:
        cache = resolve_cache(config.getoption("ckpt_compat_cache", None), config.getini("ckpt_compat_cache"))
        shard = _parse_shard(config.getoption("ckpt_compat_shard", None))
        team = team_suite(config, cache)
        if team is not None and not config.getoption("ckpt_compat_builtin", False):
            return cls(store=team.store, shard_spec=shard, suites=[team])  # the built-in goldens not even located
        source = resolve_source(config.getoption("ckpt_compat_url", None), config.getini("ckpt_compat_url"))
        registry = config.getoption("ckpt_compat_registry", None) or config.getini("ckpt_compat_registry") or None
        store = GoldenStore(source, cache, registry_dir=registry, retries=1)
        return cls(store=store, shard_spec=shard, suites=[Suite(store)] + ([team] if team is not None else []))

    def __post_init__(self) -> None:
        if not self.suites:
            self.suites = [Suite(self.store)]

    @property
    def goldens(self) -> list[Golden]:
        """Every golden of every suite of the session, suite by suite."""
        return [g for suite in self.suites for g in suite.store.goldens]

    def suite_of(self, golden: Golden) -> Suite:
        return next(s for s in self.suites if s.name == golden.suite)

    # ---------------------------------------------------------------- collection
    def header(self) -> list[str]:
        lines = [
            f"ckpt-compat: {suite.label() + ' ' if suite.is_team else ''}goldens from {suite.store.source} "
            f"(registry {suite.store.registry_dir}), cache {suite.store.cache}"
            for suite in self.suites
        ]
        if self.shard_spec:
            lines.append(f"ckpt-compat: shard {self.shard_spec[0]}/{self.shard_spec[1]}")
        return lines

    def cells(self) -> list[Cell]:
        return [Cell(g, check, suite) for suite in self.suites for g in suite.store.goldens for check in CHECKS]

    def drift_params(self) -> tuple[list[tuple[str, str]], list[str]]:
        """``(suite, scenario)`` and ids ``[<suite>-]<release>-<scenario>``: ``-k "2.6.6"`` selects them by release."""
        goldens = [g for suite in self.suites for g in drift_goldens(suite)]
        return [(g.suite, g.scenario) for g in goldens], [g.id for g in goldens]

    def drift_scenarios(self) -> list[str]:
        """Scenarios of the newest golden release not newer than the installed one (CPU ones), every suite."""
        return [g.scenario for suite in self.suites for g in drift_goldens(suite)]

    def installed_params(self) -> tuple[list[tuple[str, str]], list[str]]:
        """``(suite, installed release)`` per suite, ids ``2.6.6`` / ``teamnet-2.0.0`` (selectable by release)."""
        pairs = [(suite.name, suite.installed_version()) for suite in self.suites]
        return pairs, [f"{name}-{version}" if name else version for name, version in pairs]

    def shard(self, items: list) -> tuple[list, list]:
        if not self.shard_spec:
            return items, []
        index, total = self.shard_spec
        order = {g.key: i for i, g in enumerate(self.goldens)}
        keep: list = []
        drop: list = []
        for item in items:
            golden = _param(item, CELL_ARG)
            if golden is not None:
                ok = order[golden.golden.key] % total == index - 1
            else:
                ok = index == 1 or not _is_ours(item)
            (keep if ok else drop).append(item)
        return keep, drop

    def label(self, item) -> None:
        """Tag the plugin's own items so their reports (forwarded by xdist too) land in the matrix."""
        cell = _param(item, CELL_ARG)
        if cell is not None:
            item.user_properties.append((_CELL_PROP, [cell.golden.key, cell.check]))
        unit = _param(item, MIGRATION_ARG)
        if hasattr(unit, "id") and _is_ours(item):  # an empty catalogue parametrizes with NOTSET
            item.user_properties.append((_MIGRATION_PROP, unit.id))
        for arg, what in ((DRIFT_ARG, "drift"), (RELEASE_ARG, "installed")):
            if _param(item, arg) is not None and _is_ours(item):
                item.user_properties.append((_CHECK_PROP, what))

    def golden_names(self, items: Iterable) -> set[str]:
        """Names of the goldens that collected items exercise, read from each item's parameters."""
        cells = (_param(item, CELL_ARG) for item in items)
        return {cell.golden.key for cell in cells if cell is not None}

    # ---------------------------------------------------------------- outcomes
    def record(self, rep) -> None:
        props = dict((k, v) for k, v in getattr(rep, "user_properties", ()) if k in _PROPS)
        if not props:
            return
        kind = next(k for k in _PROPS if k in props)
        key = tuple(props[kind]) if kind == _CELL_PROP else props[kind]
        previous = self.outcomes.get(rep.nodeid)
        if rep.failed:
            outcome = "failed"
        elif rep.skipped:
            outcome = "xfailed" if hasattr(rep, "wasxfail") else "skipped"
        elif rep.when == "call":
            outcome = "xpassed" if hasattr(rep, "wasxfail") else "passed"
        else:
            return
        if previous and previous[2] == "failed":
            return
        message = _first_lines(rep) if outcome != "passed" else ""
        if outcome in ("xfailed", "xpassed"):  # a known defect: its reason, not a traceback
            message = str(getattr(rep, "wasxfail", "") or message).removeprefix("reason: ")
        self.outcomes[rep.nodeid] = (kind, key, outcome, message)

    def cell_outcomes(self) -> dict[tuple[str, str], tuple[str, str]]:
        return {key: (outcome, msg) for kind, key, outcome, msg in self.outcomes.values() if kind == _CELL_PROP}

    def migration_outcomes(self) -> dict[str, tuple[str, str]]:
        return {key: (outcome, msg) for kind, key, outcome, msg in self.outcomes.values() if kind == _MIGRATION_PROP}

    # ---------------------------------------------------------------- check mode
    def check_notes(self) -> list[str]:
        """Check-mode tests that did not run here, said out loud (a shard or ``-k`` may leave them out)."""
        ran = {key for kind, key, _, _ in self.outcomes.values() if kind == _CHECK_PROP}
        notes = []
        if "drift" not in ran and self.drift_scenarios():
            notes.append(
                "schema drift was not checked in this run: its tests (test_schema_drift[<release>-<scenario>]) "
                "were deselected by -k/-m or --ckpt-compat-shard (shard 1 runs them); make one CI job run them"
            )
        if "installed" not in ran:
            notes.append(
                "the installed release's golden was not checked in this run: test_installed_release_has_golden "
                "was deselected by -k/-m or --ckpt-compat-shard (shard 1 runs it)"
            )
        return notes

    def check_problems(self) -> list[str]:
        """Session-level failures of ``--ckpt-compat-check`` (per-item ones are tests of their own)."""
        exercised = {name for name, _ in self.cell_outcomes()}
        problems = [
            f"golden {name} was selected but never exercised (no matrix cell reported)"
            for name in sorted(self.selected - exercised)
        ]
        problems += [
            f"golden {suite.name + ':' if suite.name else ''}{name} is described in meta.json but missing from "
            "registry.txt, so it is never tested"
            for suite in self.suites
            for name in suite.store.unregistered_scenarios()
        ]
        return problems

    # ---------------------------------------------------------------- summaries
    def rows(self) -> list[tuple[Golden, dict[str, str | None]]]:
        cells = self.cell_outcomes()
        out = []
        for golden in self.goldens:
            row = {check: cells.get((golden.key, check), (None, ""))[0] for check in CHECKS}
            if any(v is not None for v in row.values()):
                out.append((golden, row))
        return out

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for outcome, _ in list(self.cell_outcomes().values()) + list(self.migration_outcomes().values()):
            counts[outcome] += 1
        return counts


# ------------------------------------------------------------------------------------ helpers
def migrations(catalogue=None) -> list:
    """Units of one catalogue, or of every registered catalogue, in application order."""
    from ..core.catalogue import all_catalogues

    if catalogue is not None:
        return list(catalogue.migrations)
    return [unit for cat in all_catalogues() for unit in cat.migrations]


def drift_goldens(suite: Suite | GoldenStore) -> list[Golden]:
    """The CPU goldens of the newest release not newer than the installed one: what drift compares with.

    The built-in suite compares each golden's saving Lightning with the installed Lightning; a team's
    suite its release folders with the installed version of its package.
    """
    suite = suite if isinstance(suite, Suite) else Suite(suite)
    installed = versions.parse(suite.installed_version())
    version = (lambda g: g.release) if suite.is_team else (lambda g: g.saved_version)
    eligible = [g for g in suite.store.goldens if versions.parse(version(g)) <= installed and not g.requires]
    return [g for g in eligible if g.release == eligible[-1].release] if eligible else []


def team_suite(config: pytest.Config, cache) -> Suite | None:
    """The team's suite the options name (``--ckpt-compat-goldens DIR --ckpt-compat-recipe SPEC``), or None."""
    from ..core.errors import GoldenError

    folder = config.getoption("ckpt_compat_goldens", None) or config.getini("ckpt_compat_goldens") or None
    spec = config.getoption("ckpt_compat_recipe", None) or config.getini("ckpt_compat_recipe") or None
    if folder is None and spec is None:
        return None
    if folder is None or spec is None:
        given, missing = (
            ("--ckpt-compat-goldens", "--ckpt-compat-recipe")
            if folder
            else ("--ckpt-compat-recipe", "--ckpt-compat-goldens")
        )
        raise GoldenError(f"{given} needs {missing} too: a team's goldens are rebuilt by the recipe that made them")
    folder = Path(str(folder)).expanduser()
    if not folder.is_absolute():
        folder = Path(str(config.rootpath)) / folder
    name = suite_name(folder)
    source = config.getoption("ckpt_compat_goldens_url", None) or str(folder)
    store = GoldenStore(source, Path(cache) / "suites" / name, registry_dir=folder, retries=1, suite=name)
    return Suite(store, recipe_spec=str(spec), name=name)


def suite_name(folder: Path) -> str:
    """A team suite's name: the ``package`` its ``meta.json`` files record (no import at start-up)."""
    import json

    for meta in sorted(folder.glob("*/meta.json")):
        try:
            package = json.loads(meta.read_text(encoding="utf-8")).get("package")
        except (OSError, ValueError):
            continue
        if isinstance(package, str) and package:
            return re.sub(r"[^A-Za-z0-9_.-]+", "_", package)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.name) or "team"


def golden_around(store: GoldenStore, migration, *, before: bool) -> Golden | None:
    """Newest golden saved before ``migration.version`` (or oldest at/after it), preferring end_of_fit."""
    if migration.catalogue != "lightning":
        return None
    goldens = [
        g for g in store.goldens if (versions.parse(g.saved_version) < migration.version) == before and not g.requires
    ]
    if not goldens:
        return None
    release = goldens[-1].release if before else goldens[0].release
    same = [g for g in goldens if g.release == release]
    return next((g for g in same if g.scenario == "end_of_fit"), same[0])


_PROPS = (_CELL_PROP, _MIGRATION_PROP, _CHECK_PROP)


def _param(item, name: str) -> Any:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get(name) if callspec is not None else None


def _is_ours(item) -> bool:
    return str(item.nodeid).startswith("ckpt-compat/") or os.path.basename(str(getattr(item, "path", ""))) in (
        "_matrix.py",
        "_check.py",
    )


def _parse_shard(spec: str | None) -> tuple[int, int] | None:
    if not spec:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not match or not (1 <= int(match.group(1)) <= int(match.group(2))):
        raise ValueError(f"--ckpt-compat-shard expects I/N with 1 <= I <= N, got {spec!r}")
    return int(match.group(1)), int(match.group(2))


def _first_lines(rep) -> str:
    """The reason a cell failed or skipped, without the traceback."""
    if rep.skipped and isinstance(rep.longrepr, tuple):
        return str(rep.longrepr[2]).removeprefix("Skipped: ")
    text = getattr(rep, "longreprtext", "") or str(rep.longrepr or "")
    lines, started = [], False
    for line in text.splitlines():
        if line.startswith("E "):
            started = True
            lines.append(line[2:].strip())
        elif started and line.startswith(" ") and line.strip():
            lines.append(line.strip())
        elif started:
            break
    return "\n".join(lines[:15]) if lines else (text.strip().splitlines() or [""])[-1]
