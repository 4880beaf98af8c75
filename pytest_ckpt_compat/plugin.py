"""pytest plugin: ``pytest --ckpt-compat`` runs the golden matrix and the per-migration contract.

Kept thin on purpose (options, parametrization, fixtures, hooks); the logic lives in
:mod:`.goldens`, :mod:`.workspace`, :mod:`.checks`, :mod:`.drift`, :mod:`.testing`, :mod:`.session` and
:mod:`.report`.

Nothing runs unless asked: every fixture and marker is prefixed ``ckpt_compat_`` (as
pytest-regressions prefixes ``data_regression``), and ``ckpt_compat_migration`` is parametrized only
on tests marked ``@pytest.mark.ckpt_compat_migrations`` (the shipped ``_matrix.py`` is one); no
private pytest API; a golden's cell is read from the item's parameters, never from its node id.

Splitting the matrix across CI jobs: every cell id starts with the golden's release
(``1.6.5-end_of_fit-resume``), so ``-k "1.6"`` / ``-k "not 1."`` select by release series, or use
``--ckpt-compat-shard=2/4`` (goldens dealt round-robin; migration and check items in shard 1).
The check-mode tests carry the release too (``test_schema_drift[2.6.6-end_of_fit]``). Check mode
(``--ckpt-compat-check``) respects both: deselected goldens are not "unexercised", and check-mode
tests that did not run are named at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .matrix.session import State

# Nothing heavy at module level: every pytest run in an environment with this package installed
# imports this module. torch, Lightning and pooch are imported inside the hooks and fixtures that
# need them, and only with --ckpt-compat (or when a test asks for one of the fixtures).

MATRIX_FILE = Path(__file__).resolve().parent / "_matrix.py"
CHECK_FILE = Path(__file__).resolve().parent / "_check.py"
_STATE: pytest.StashKey[State] = pytest.StashKey()
MIGRATIONS_MARKER = "ckpt_compat_migrations"
MIGRATION_ARG = "ckpt_compat_migration"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ckpt-compat", "golden checkpoint compatibility (pytest-ckpt-compat)")
    group.addoption(
        "--ckpt-compat",
        action="store_true",
        dest="ckpt_compat",
        help="run the golden checkpoint matrix and the migration contract checks",
    )
    group.addoption(
        "--ckpt-compat-url",
        dest="ckpt_compat_url",
        metavar="URL_OR_FOLDER",
        help=f"where goldens are fetched from (env {_env('URL')})",
    )
    group.addoption(
        "--ckpt-compat-cache",
        dest="ckpt_compat_cache",
        metavar="DIR",
        help=f"verified golden cache (env {_env('CACHE')})",
    )
    group.addoption(
        "--ckpt-compat-registry",
        dest="ckpt_compat_registry",
        metavar="DIR",
        help="folder with registry.txt, <release>/meta.json and recipes/",
    )
    group.addoption(
        "--ckpt-compat-goldens",
        dest="ckpt_compat_goldens",
        metavar="DIR",
        help="a team's own goldens (registry.txt, <version>/meta.json, the files): run the matrix on them",
    )
    group.addoption(
        "--ckpt-compat-recipe",
        dest="ckpt_compat_recipe",
        metavar="PKG.MODULE:OBJECT",
        help="the recipe that made --ckpt-compat-goldens (also path/to/recipe.py:OBJECT)",
    )
    group.addoption(
        "--ckpt-compat-goldens-url",
        dest="ckpt_compat_goldens_url",
        metavar="URL_OR_FOLDER",
        help="fetch the team's golden files from here instead of --ckpt-compat-goldens (hashes stay local)",
    )
    group.addoption(
        "--ckpt-compat-builtin",
        action="store_true",
        dest="ckpt_compat_builtin",
        help="with --ckpt-compat-goldens: run the built-in Lightning goldens in the same session too",
    )
    group.addoption(
        "--ckpt-compat-check",
        action="store_true",
        dest="ckpt_compat_check",
        help="fail when the installed Lightning has no golden, a golden went unexercised, or the format drifted",
    )
    group.addoption(
        "--ckpt-compat-report", dest="ckpt_compat_report", metavar="FILE.md", help="write the matrix as Markdown"
    )
    group.addoption(
        "--ckpt-compat-shard", dest="ckpt_compat_shard", metavar="I/N", help="run only shard I of N of the goldens"
    )
    parser.addini("ckpt_compat_url", "golden source: http(s) base URL or a folder")
    parser.addini("ckpt_compat_goldens", "a team's goldens folder (as --ckpt-compat-goldens)")
    parser.addini("ckpt_compat_recipe", "the recipe of the team's goldens (as --ckpt-compat-recipe)")
    parser.addini("ckpt_compat_cache", "golden cache folder")
    parser.addini(
        "ckpt_compat_registry",
        "folder with registry.txt and meta.json (default: the checkout's or the packaged golden/)",
    )


def _env(what: str) -> str:
    return f"CKPT_COMPAT_{what}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MIGRATIONS_MARKER}(catalogue=None): parametrize `{MIGRATION_ARG}` over a catalogue's units "
        "(default: every registered catalogue)",
    )
    if config.getoption("ckpt_compat_check") or config.getoption("ckpt_compat_goldens"):
        config.option.ckpt_compat = True
    if not config.getoption("ckpt_compat"):
        return
    from .core.errors import CatalogueError, GoldenError
    from .matrix.session import State

    try:
        state = State.from_config(config)
        _ = state.goldens  # registry.txt and meta.json read now: a bad line is an error naming the file
        if config.getoption("ckpt_compat_check"):
            for suite in state.suites:
                suite.store.unregistered_scenarios()
        for suite in state.suites:
            if suite.is_team:  # a recipe that does not import or lacks part of the contract: said once, up front
                _ = suite.recipe
    except (GoldenError, CatalogueError, ValueError) as exc:
        raise pytest.UsageError(f"--ckpt-compat: {exc}") from None
    config.stash[_STATE] = state
    if hasattr(config, "workerinput") or getattr(config.option, "dist", "no") == "no":  # not xdist's controller
        _one_torch_thread()
    config.pluginmanager.register(_Reports(state), "ckpt-compat-reports")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(state), "ckpt-compat-xdist")


def _one_torch_thread() -> None:
    """The matrix's models are tiny: torch's intra-op threads only wait on each other. One thread in every
    matrix process (serial, and each xdist worker: N workers on N cores must not each spawn N threads)."""
    import torch

    torch.set_num_threads(1)


def _state(config: pytest.Config):
    return config.stash.get(_STATE, None)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = _state(config)
    return state.header() if state else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize the plugin's own arguments; ``ckpt_compat_migration`` only under the opt-in marker."""
    state = _state(metafunc.config)
    names = metafunc.fixturenames
    if "ckpt_compat_cell" in names and state:
        cells = state.cells()
        metafunc.parametrize("ckpt_compat_cell", [pytest.param(c, marks=c.marks(), id=c.id) for c in cells])
    if "ckpt_compat_drift_scenario" in names and state:
        scenarios, ids = state.drift_params()
        metafunc.parametrize("ckpt_compat_drift_scenario", scenarios, ids=ids)
    if "ckpt_compat_installed_release" in names and state:
        releases, ids = state.installed_params()
        metafunc.parametrize("ckpt_compat_installed_release", releases, ids=ids)
    marker = metafunc.definition.get_closest_marker(MIGRATIONS_MARKER)
    if marker is not None and MIGRATION_ARG in names:
        from .matrix.session import migrations

        units = migrations(marker.kwargs.get("catalogue", marker.args[0] if marker.args else None))
        if state and Path(str(metafunc.definition.path)) == MATRIX_FILE and state.suites and state.suites[0].is_team:
            _ = state.suites[0].recipe  # a team's session: its own catalogue's units, not Lightning's
            units = [u for u in migrations() if u.catalogue != "lightning"]
        metafunc.parametrize(MIGRATION_ARG, units, ids=[u.id for u in units])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Add the shipped matrix (and check) modules, then apply the shard; -k/-m run after this."""
    state = _state(config)
    if not state:
        return
    present = {Path(str(item.path)) for item in items}
    extra = [MATRIX_FILE] + ([CHECK_FILE] if config.getoption("ckpt_compat_check") else [])
    for path in extra:
        if path not in present:
            module = pytest.Module.from_parent(session, path=path, nodeid=f"ckpt-compat/{path.stem.lstrip('_')}")
            items.extend(session.genitems(module))
    keep, drop = state.shard(items)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    for item in items:
        state.label(item)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    state = _state(session.config)
    if state:
        state.selected.update(state.golden_names(session.items))
        if hasattr(session.config, "workeroutput"):
            session.config.workeroutput["ckpt_compat_selected"] = sorted(state.selected)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state(session.config)
    if not state or hasattr(session.config, "workerinput"):
        return
    if session.config.getoption("collectonly"):
        return  # nothing ran, so nothing went unexercised
    if session.config.getoption("ckpt_compat_check"):
        state.problems = state.check_problems()
        state.notes = state.check_notes()
        if state.problems and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    path = session.config.getoption("ckpt_compat_report")
    if path:
        from .matrix import report

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(report.markdown(state), encoding="utf-8")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    if not state or hasattr(config, "workerinput") or config.getoption("collectonly"):
        return
    from .matrix import report

    terminalreporter.write_sep("-", "ckpt-compat matrix")
    for line in report.text_lines(state, full=config.getoption("verbose") > 0):
        terminalreporter.write_line(line)
    for line in state.problems:
        terminalreporter.write_line(f"ckpt-compat check: {line}", red=True)
    for line in state.notes:
        terminalreporter.write_line(f"ckpt-compat check: not checked: {line}", yellow=True)


class _Reports:
    """Per-session collector of cell outcomes (on the controller too: xdist forwards reports)."""

    def __init__(self, state):
        self.state = state

    def pytest_runtest_logreport(self, report) -> None:
        self.state.record(report)


class _XdistHooks:
    """Controller side of pytest-xdist: which goldens each worker selected (for check mode)."""

    def __init__(self, state):
        self.state = state

    def pytest_testnodedown(self, node, error) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        self.state.selected.update(output.get("ckpt_compat_selected", []))


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def ckpt_compat_workspace(request, tmp_path_factory):
    """Fetched/upgraded goldens shared by the tests of one process (one per xdist worker)."""
    from .matrix.session import State
    from .matrix.workspace import Workspace

    state = _state(request.config) or State.from_config(request.config)
    return Workspace(state.store, tmp_path_factory.mktemp("ckpt-compat"), state.suites[0])


@pytest.fixture(scope="session")
def ckpt_compat_workspaces(request, tmp_path_factory, ckpt_compat_workspace):
    """One workspace per suite of the session, by suite name (``""``: the built-in suite)."""
    from .matrix.workspace import Workspace

    state = _state(request.config)
    first = ckpt_compat_workspace.suite
    out = {first.name: ckpt_compat_workspace}
    for suite in state.suites if state else ():
        if suite is not first:
            out[suite.name] = Workspace(suite.store, tmp_path_factory.mktemp(f"ckpt-compat-{suite.name}"), suite)
    return out


@pytest.fixture
def ckpt_compat_migration(request):
    """One migration unit; parametrized only on tests marked ``@pytest.mark.ckpt_compat_migrations``."""
    pytest.fail(
        f"{request.node.nodeid} asks for `{MIGRATION_ARG}` (or a fixture built on it) without the marker "
        f"that parametrizes it: add @pytest.mark.{MIGRATIONS_MARKER}() (every registered catalogue) or "
        f"@pytest.mark.{MIGRATIONS_MARKER}(catalogue=...)",
        pytrace=False,
    )


@pytest.fixture
def ckpt_compat_golden_before(ckpt_compat_migration, ckpt_compat_workspace):
    """The newest real golden saved before the unit's version, loaded and brought just before it."""
    return _sample(ckpt_compat_migration, ckpt_compat_workspace, before=True)


@pytest.fixture
def ckpt_compat_golden_after(ckpt_compat_migration, ckpt_compat_workspace):
    """The oldest real golden saved at or after the unit's version, as loaded."""
    return _sample(ckpt_compat_migration, ckpt_compat_workspace, before=False)


@pytest.fixture
def ckpt_compat_migration_example(ckpt_compat_migration, ckpt_compat_workspace):
    """``ckpt_compat_golden_before`` where one exists, else a hand-made minimal checkpoint just below the version."""
    from .matrix.session import Sample
    from .testing import catalogue_of, minimal_checkpoint, prepare_for, version_before

    migration = ckpt_compat_migration
    try:
        return _sample(migration, ckpt_compat_workspace, before=True, skip=False)
    except LookupError:
        catalogue = catalogue_of(migration)
        ckpt = minimal_checkpoint(version_before(migration.version), version_key=catalogue.version_key)
        return Sample(None, prepare_for(migration, ckpt, catalogue))


def _sample(migration, ws, *, before: bool, skip: bool = True):
    from .matrix.session import Sample, golden_around
    from .testing import catalogue_of, prepare_for

    golden = golden_around(ws.store, migration, before=before)
    if golden is None:
        reason = f"no golden saved {'before' if before else 'at or after'} {migration.version} ({migration.id})"
        if skip:
            pytest.skip(reason)
        raise LookupError(reason)
    checkpoint = ws.load(golden)
    if before:
        prepare_for(migration, checkpoint, catalogue_of(migration))
    return Sample(golden, checkpoint)
