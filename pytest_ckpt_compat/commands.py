"""One function per user action, as Alembic's ``command.py``: the CLI parses, calls one, prints.

``upgrade_one`` (load → upgrade → write one checkpoint), ``expand`` (which checkpoints a list of
paths names), ``inspect``, ``migrations``, ``golden_add``, ``golden_add_team``, ``golden_record``,
``golden_list`` and ``matrix``. Each returns what it did (an ``UpgradeResult`` inside a
``FileUpgrade``, a dict, rows, an exit code); none prints except ``matrix``, which is pytest's own output.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .core import ledger, redirects
from .core.catalogue import all_catalogues
from .core.engine import UpgradeResult, plan, require_lightning, upgrade_with_result
from .core.errors import HardLinked
from .core.versions import LEGACY_VERSION_KEY, VERSION_KEY
from .files.names import shown

if TYPE_CHECKING:
    from .files.discovery import Discovery

__all__ = [
    "FileUpgrade",
    "UpgradeOptions",
    "expand",
    "golden_add",
    "golden_add_team",
    "golden_list",
    "golden_record",
    "inspect",
    "load_checkpoint",
    "matrix",
    "migrations",
    "rerun_command",
    "upgrade_one",
]


def load_checkpoint(
    path: str | os.PathLike, *, trust: bool = False, map_location: object = "cpu", assume_version: str | None = None
) -> dict:
    """Load a Lightning checkpoint safely (``files.loading``); refuse what is not one.

    What counts as a Lightning checkpoint is decided once (``engine.require_lightning``), so this
    function, ``upgrade()`` and ``ckpt-compat upgrade``/``inspect`` accept and refuse the same files:
    a dict without Lightning's version key is ``NotALightningCheckpoint`` unless ``assume_version``
    states the release that saved it (Lightning before 0.8.2).
    """
    from .files import loading  # here, not at import: --help and migrations must not import torch

    checkpoint = loading.load_checkpoint(path, trust=trust, map_location=map_location)
    require_lightning(checkpoint, assume_version)
    return checkpoint


@dataclass(frozen=True)
class UpgradeOptions:
    """How to upgrade: where to write (``output``, ``in_place`` or ``dry_run``) and what the file needs."""

    output: Path | None = None
    in_place: bool = False
    dry_run: bool = False
    no_backup: bool = False
    break_hardlinks: bool = False
    target: str | None = None
    trust: bool = False
    assume_version: str | None = None
    callbacks: Sequence[str] = ()


@dataclass
class FileUpgrade:
    """What ``upgrade_one`` did to one checkpoint: the engine's result and where it went.

    ``written_to`` is ``None`` for a dry run and for a file that was already current
    (``result.changed`` is then False). Through a link (``link``), an in-place upgrade writes the file
    the link points to and keeps ``backup`` beside it.
    """

    path: Path
    result: UpgradeResult
    written_to: Path | None = None
    dry_run: bool = False
    backup: Path | None = None  # where an in-place upgrade kept the original
    link: Path | None = None  # the link an in-place upgrade went through to ``written_to``
    redirected: dict[str, str] | None = None  # a whole pickled object: the names rewritten (old -> new)
    object_state: dict | None = None  # {class: {attribute: value}} its catalogues' OBJECT_STATE hooks set


def expand(paths: Sequence[Path], *, follow_links: bool = False) -> Discovery:
    """The checkpoints ``paths`` name (``files.discovery``): files stay, a sharded folder is one
    checkpoint, other folders are searched for ``*.ckpt`` without leaving them (unless ``follow_links``);
    what could not be searched is an entry that fails alone, what was skipped is listed with why."""
    from .files.discovery import discover

    return discover(list(paths), follow_links=follow_links)


def output_is_input(output: Path, source: Path) -> bool:
    """Writing ``output`` would replace ``source`` itself (through a link, ``..`` or a linked folder)."""
    from .files.paths import is_same_entry

    return is_same_entry(output, source)


def upgrade_one(path: Path, options: UpgradeOptions) -> FileUpgrade:
    """Upgrade one checkpoint file or sharded folder as ``options`` say; raises a named error on failure."""
    from .files import writing
    from .files.loading import checkpoint_file
    from .files.paths import checked_input, in_place_target

    file = checkpoint_file(checked_input(path))
    if options.in_place:  # load → backup → replace must not interleave with another upgrader
        file = in_place_target(file)  # through a link: the file it points to, its backup beside it
        writing.clean_stale_temp_files(file.parent)
        with writing.exclusive(file):
            return _upgrade_file(path, file, options, writing)
    return _upgrade_file(path, file, options, writing)


def _upgrade_file(path: Path, file: Path, options: UpgradeOptions, writing) -> FileUpgrade:
    from .files.renaming import is_object_file

    if file.is_file() and is_object_file(file):
        done = _upgrade_object_file(path, file, options, writing)
        if done is not None:
            return done
    checkpoint = load_checkpoint(path, trust=options.trust, assume_version=options.assume_version)
    ours = ledger.present(checkpoint)  # already our output
    result = upgrade_with_result(
        checkpoint, options.target, assume_version=options.assume_version, callbacks=list(options.callbacks) or None
    )
    if options.dry_run:  # upgraded in memory only, to be shown
        return FileUpgrade(path, result, dry_run=True)
    if options.in_place and not options.break_hardlinks and os.stat(file).st_nlink > 1:
        raise HardLinked(
            f"{shown(file)} has {os.stat(file).st_nlink} hard links; an in-place upgrade writes a new file, "
            "so the other links would keep the old checkpoint. "
            "Use -o, or pass --break-hardlinks to upgrade this name only"
        )
    if options.in_place:
        if not result.changed:
            return FileUpgrade(path, result)
        kept = None if options.no_backup else writing.keep_first_original(file, ours=ours)
        writing.save_checkpoint(checkpoint, file, source=file)
        from .files.loading import checkpoint_file

        named = checkpoint_file(path)  # as given
        return FileUpgrade(path, result, written_to=file, backup=kept, link=named if os.path.islink(named) else None)
    assert options.output is not None, "say where to write: output, in_place or dry_run"
    writing.save_checkpoint(checkpoint, options.output, source=file)
    return FileUpgrade(path, result, written_to=options.output)


def _upgrade_object_file(path: Path, file: Path, options: UpgradeOptions, writing) -> FileUpgrade | None:
    """A whole pickled object (``torch.save(model)``): the catalogues' redirects written into its pickle
    (``files.renaming``). ``None`` when no redirect (nor a name a catalogue vouches for) names any of its
    classes: the caller loads it as any other file (and names why it cannot: ``UnsafeCheckpoint``, ...)."""
    from .files.redirecting import for_load
    from .files.renaming import redirect_object_file

    table = for_load().redirects
    hooks = [(c.name, m.object_state) for c in all_catalogues() for m in c.migrations if m.object_state is not None]

    def rewrite(dest: Path | None) -> tuple[dict[str, str], dict | None]:
        return redirect_object_file(file, dest, table, trust=options.trust, state_hooks=hooks)

    used, state = rewrite(None)
    if state is None:
        return None
    result = UpgradeResult(checkpoint={}, version_before=None, version_after=None)
    if options.dry_run or not used:  # not used: a catalogue knows its classes and none moved
        return FileUpgrade(path, result, dry_run=options.dry_run, redirected=used, object_state=state)
    if options.in_place:
        if not options.break_hardlinks and os.stat(file).st_nlink > 1:
            raise HardLinked(
                f"{shown(file)} has {os.stat(file).st_nlink} hard links; an in-place upgrade writes a new file, "
                "so the other links would keep the old one. Use -o, or pass --break-hardlinks to upgrade this name only"
            )
        kept = None if options.no_backup else writing.keep_first_original(file, ours=False)
        rewrite(file)
        return FileUpgrade(path, result, written_to=file, backup=kept, redirected=used, object_state=state)
    assert options.output is not None, "say where to write: output, in_place or dry_run"
    rewrite(options.output)
    return FileUpgrade(path, result, written_to=options.output, redirected=used, object_state=state)


def inspect(
    path: Path,
    *,
    target: str | None = None,
    trust: bool = False,
    assume_version: str | None = None,
    callbacks: Sequence[str] = (),
) -> dict:
    """Saved version, format, keys, ledger, plan, and how callback states are (or would be) keyed.

    The upgrade runs in memory only: the file is never written.
    """
    from .files.loading import checkpoint_file, is_zip_checkpoint
    from .files.paths import checked_input

    checked_input(path)  # a plain folder, a dangling link: named, exit 2 as for upgrade
    checkpoint = load_checkpoint(path, trust=trust, assume_version=assume_version)
    file = checkpoint_file(path)
    is_dict = isinstance(checkpoint, dict)
    info = {
        "path": str(path),
        "format": "sharded" if path.is_dir() else ("zip" if is_zip_checkpoint(file) else "legacy"),
        "size_bytes": file.stat().st_size,
        "saved_version": _str_or_none(checkpoint.get(VERSION_KEY)) if is_dict else None,
        "legacy_version": _str_or_none(checkpoint.get(LEGACY_VERSION_KEY)) if is_dict else None,
        "top_level_keys": [str(k) for k in checkpoint] if is_dict else [],
        "ledger": ledger.read(checkpoint),
        "plan": [
            {"id": m.id, "version": str(m.version), "title": m.title, "catalogue": m.catalogue}
            for m in plan(checkpoint, target, assume_version=assume_version)
        ],
    }
    info["redirects"] = redirects.recorded(checkpoint)  # moved classes resolved by this load or an earlier upgrade
    result = upgrade_with_result(checkpoint, target, assume_version=assume_version, callbacks=list(callbacks) or None)
    info["catalogues"] = result.catalogues  # the catalogues that apply to this file (a team's: its own model only)
    info["callback_keys"] = ledger.get(checkpoint, ledger.CALLBACK_KEYS) or {}
    info["unkeyed_callbacks"] = result.unresolved
    info["lightning_migrated"] = ledger.get(checkpoint, ledger.LIGHTNING_MIGRATED)  # already migrated by Lightning
    info["warnings"] = result.warnings
    return info


def migrations() -> list[dict]:
    """Every catalogue's units in application order, one row each."""
    return [
        {
            "catalogue": m.catalogue,
            "version": str(m.version),
            "order": m.order,
            "id": m.id,
            "title": m.title,
            "file": m.path.name,
            "any_target": m.any_target,  # reader-side: runs whatever the target (its READER_SIDE says why)
        }
        for cat in all_catalogues()
        for m in cat.migrations
    ]


def golden_add(release: str, **options) -> None:
    """Save goldens with a real historical ``release`` in an isolated environment (``building.add_release``)."""
    from .goldens.building import add_release

    add_release(release, **options)


def golden_add_team(requirement: str, **options) -> dict:
    """A team's past release (``PACKAGE==VERSION``) recorded with its recipe in an isolated environment."""
    from .goldens.team_adding import add_team_release

    return add_team_release(requirement, **options)


def golden_record(recipe: str, **options) -> dict:
    """Save a recipe's goldens of the release installed here (``team_building.record_release``)."""
    from .goldens.team_building import record_release

    return record_release(recipe, **options)


def golden_list(golden_dir: Path, missing: str | None, *, package: str, log: Callable[[str], None]) -> list[dict]:
    """The goldens in ``golden_dir``, or with ``missing`` (``A..B``) the releases in that range without one."""
    from .goldens.listing import list_goldens

    return list_goldens(golden_dir, missing, package=package, log=log)


def golden_coverage(golden_dir: Path) -> str:
    """The README's coverage block (Markdown), counted from the golden folder's registry."""
    from .goldens.listing import coverage_markdown

    return coverage_markdown(golden_dir)


@dataclass
class MatrixRun:
    """The outcome of ``matrix``: pytest's exit code, the report written, and the tests that failed."""

    code: int
    report: Path | None
    failed: list[str]
    rerun: str | None


def matrix(pytest_args: Sequence[str]) -> MatrixRun:
    """The golden matrix (``pytest --ckpt-compat``) on the installed package, always leaving a report."""
    import pytest

    from .plugin import MATRIX_FILE

    user_args = [a for a in pytest_args if a != "--"]
    report = _report_option(user_args)
    if report is None:  # the matrix always leaves a report behind, and says where
        from .matrix.report import default_path

        report = str(default_path())  # outside the checkout: no stray file in `git status`
        user_args.append(f"--ckpt-compat-report={report}")
    # this package is imported already (it runs the command), so pytest cannot assert-rewrite it
    argv = ["--ckpt-compat", "-W", "ignore::pytest.PytestAssertRewriteWarning", str(MATRIX_FILE), *user_args]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        argv[:0] = ["-p", "pytest_ckpt_compat.plugin"]
    failures = Failures()
    code = int(pytest.main(argv, plugins=[failures]))
    return MatrixRun(
        code=code,
        report=Path(report).resolve() if Path(report).is_file() else None,
        failed=failures.names,
        rerun=rerun_command(pytest_args, failures.names) if failures.names else None,
    )


def _report_option(argv: Sequence[str]) -> str | None:
    """The value of ``--ckpt-compat-report`` among forwarded pytest arguments, if given."""
    for i, arg in enumerate(argv):
        if arg.startswith("--ckpt-compat-report="):
            return arg.split("=", 1)[1]
        if arg == "--ckpt-compat-report" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def rerun_command(pytest_args: Sequence[str], failed: Sequence[str]) -> str:
    """``ckpt-compat matrix`` with the same options and a ``-k`` that selects exactly ``failed``.

    Test names are matched as ``[cell id]`` (brackets included), so ``1.9.5-end_of_fit-load`` does
    not also select ``lightning-1.9.5-end_of_fit-load``.
    """
    kept, skip = [], False
    for arg in pytest_args:
        if skip:
            skip = False
        elif arg in ("-k", "--"):
            skip = arg == "-k"
        elif not arg.startswith("-k"):
            kept.append(arg)
    params = [name[name.index("[") :] if "[" in name else name for name in failed]
    expression = " or ".join(dict.fromkeys(params))
    return shlex.join(["ckpt-compat", "matrix", *kept, "-k", expression])


class Failures:
    """pytest plugin object: names of the tests that failed in this run (controller side under xdist)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def pytest_runtest_logreport(self, report) -> None:
        name = report.nodeid.rsplit("::", 1)[-1]
        if report.failed and name not in self.names:
            self.names.append(name)


def _str_or_none(value) -> str | None:
    return None if value is None else str(value)
