"""``ckpt-compat``: the one argparse front end: upgrade, inspect, migrations, golden, matrix.

Every sub-command is defined here and calls the functions of its room (engine, building,
the plugin's matrix file); no room registers commands of its own. The loader (torch) is imported
by the commands that read a checkpoint, so ``--help``, ``--version`` and ``migrations`` answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .core import callback_keys, premigrated, redirects
from .core.catalogue import all_catalogues
from .core.engine import LEDGER_KEY, plan, upgrade
from .core.errors import CheckpointCompatError, HardLinked, classify
from .core.progress import echo, iterate
from .core.versions import LEGACY_VERSION_KEY, TOOL_VERSION, VERSION_KEY
from .files.names import shown
from .files.signals import signals_as_exceptions
from .goldens.building import PACKAGES, add_release, default_golden_dir
from .goldens.listing import list_goldens


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 must print, not crash
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # only a sub-command that forwards its arguments (``matrix`` → pytest) accepts unknown ones
        if not getattr(args, "passthrough", None):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        setattr(args, args.passthrough, [*extra, *getattr(args, args.passthrough)])
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        with signals_as_exceptions():
            return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        print("interrupted", file=sys.stderr)
        return 128 + int(getattr(exc, "signal_number", signal.SIGINT))
    except Exception as exc:  # single-file commands (inspect): the same named errors and exit codes
        error = classify(exc)
        print(f"error: {shown(str(error))}", file=sys.stderr)
        return error.exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ckpt-compat", description="Upgrade and inspect PyTorch Lightning checkpoints."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {TOOL_VERSION}")
    sub = parser.add_subparsers(metavar="COMMAND")

    up = sub.add_parser("upgrade", help="upgrade checkpoint files to the installed (or --target) Lightning format")
    up.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="checkpoint files, sharded checkpoint folders, or folders to search for *.ckpt",
    )
    where = up.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", type=Path, help="write the upgraded checkpoint here (one input file)")
    where.add_argument(
        "--in-place",
        action="store_true",
        help="atomically replace each input (the first original kept as NAME.ckpt.bak)",
    )
    where.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    up.add_argument("--no-backup", action="store_true", help="with --in-place: do not keep NAME.ckpt.bak")
    up.add_argument(
        "--follow-links",
        action="store_true",
        help="in a folder: also upgrade what symbolic links point to outside it (default: skipped, and said so)",
    )
    up.add_argument(
        "--break-hardlinks",
        action="store_true",
        help="with --in-place: upgrade a file that has other hard links (they keep the old bytes)",
    )
    _add_common(up)
    up.set_defaults(func=_cmd_upgrade)

    ins = sub.add_parser("inspect", help="saved version, plan, top-level keys and ledger of a checkpoint")
    ins.add_argument("path", type=Path)
    ins.add_argument("--json", action="store_true", help="machine-readable output")
    _add_common(ins)
    ins.set_defaults(func=_cmd_inspect)

    _add_check(sub)

    mig = sub.add_parser("migrations", help="list the catalogue in application order")
    mig.add_argument("--json", action="store_true")
    mig.set_defaults(func=_cmd_migrations)

    _add_golden(sub)
    _add_matrix(sub)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", metavar="VERSION", help="target Lightning version (default: the installed one)")
    parser.add_argument(
        "--trust", action="store_true", help="allow arbitrary pickled globals (only for files you trust)"
    )
    parser.add_argument(
        "--assume-version",
        metavar="VERSION",
        help="version of a checkpoint that has no version key (Lightning < 0.8.2)",
    )
    parser.add_argument(
        "--callback",
        action="append",
        metavar="SPEC",
        dest="callbacks",
        type=_callback_spec,
        help="configuration of a callback that wrote a pre-1.5 file, "
        'e.g. \'EarlyStopping{"monitor": "val_loss", "mode": "max"}\' (repeatable)',
    )


def _add_check(subparsers) -> None:
    """``ckpt-compat check``: preflight of a file against your module (:mod:`.lightning.preflight`)."""
    chk = subparsers.add_parser(
        "check", help="what a load or resume into your module would not restore or fail on (no training)"
    )
    chk.add_argument("path", type=Path)
    chk.add_argument("--model", required=True, metavar="PKG.MODULE:CLASS", help="your LightningModule class")
    chk.add_argument("--datamodule", metavar="PKG.MODULE:CLASS", help="your LightningDataModule class")
    chk.add_argument(
        "--callback",
        action="append",
        default=[],
        dest="callbacks",
        metavar="SPEC",
        type=_callback_spec,
        help="a live callback: 'EarlyStopping{\"monitor\": \"val_loss\"}' or 'pkg.mod:MyCallback{...}' (repeatable)",
    )
    chk.add_argument("--precision", help="the Trainer's precision, e.g. 16-mixed (default 32-true)")
    chk.add_argument("--trust", action="store_true", help="allow arbitrary pickled globals (only for files you trust)")
    chk.add_argument("--json", action="store_true", help="machine-readable output")
    chk.set_defaults(func=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    from .core.errors import PreflightFailed
    from .lightning.preflight import preflight_specs

    try:
        report = preflight_specs(
            args.path,
            args.model,
            datamodule=args.datamodule,
            callbacks=args.callbacks,
            precision=args.precision,
            trust=args.trust,
        )
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        print(
            f"error: cannot build what --model/--datamodule/--callback name: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else "\n".join(report.lines()))
    return 0 if report.ok else PreflightFailed.exit_code


def _callback_spec(text: str) -> str:
    from .core.callback_keys import parse_spec

    try:
        parse_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _cmd_migrations(args: argparse.Namespace) -> int:
    rows = [
        {
            "catalogue": m.catalogue,
            "version": str(m.version),
            "order": m.order,
            "id": m.id,
            "title": m.title,
            "file": m.path.name,
        }
        for cat in all_catalogues()
        for m in cat.migrations
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for i, row in enumerate(rows, 1):
        print(f"{i:3d}. [{row['catalogue']}] {row['version']:<8} {row['id']:<48} {row['title']}")
    return 0


def _jsonable(value: object, depth: int = 0, seen: frozenset = frozenset()) -> object:
    """``value`` as JSON can show it whatever a file holds: other keys as text, a cycle or a deep nest cut short."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if id(value) in seen or depth > 32:
        return "..."
    inner = seen | {id(value)}
    if isinstance(value, dict):
        return {k if isinstance(k, str) else repr(k): _jsonable(v, depth + 1, inner) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1, inner) for v in value]
    return str(value)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .files.loading import checkpoint_file, is_zip_checkpoint, load_checkpoint
    from .files.paths import checked_input

    checked_input(args.path)  # a plain folder, a dangling link: named, exit 2 as for upgrade
    checkpoint = load_checkpoint(args.path, trust=args.trust)
    file = checkpoint_file(args.path)
    info: dict[str, Any] = {
        "path": str(args.path),
        "format": "sharded" if args.path.is_dir() else ("zip" if is_zip_checkpoint(file) else "legacy"),
        "size_bytes": file.stat().st_size,
        "saved_version": _str_or_none(checkpoint.get(VERSION_KEY)) if isinstance(checkpoint, dict) else None,
        "legacy_version": _str_or_none(checkpoint.get(LEGACY_VERSION_KEY)) if isinstance(checkpoint, dict) else None,
        "top_level_keys": [str(k) for k in checkpoint] if isinstance(checkpoint, dict) else [],
        "ledger": checkpoint.get(LEDGER_KEY) if isinstance(checkpoint, dict) else None,
        "redirects": redirects.recorded(checkpoint),  # moved classes resolved by this load or an earlier upgrade
        "plan": [
            {"id": m.id, "version": str(m.version), "title": m.title}
            for m in plan(checkpoint, args.target, assume_version=args.assume_version)
        ],
    }
    # how the callback states are (or, after the plan, would be) keyed: upgraded in memory only
    upgrade(checkpoint, args.target, assume_version=args.assume_version, callbacks=args.callbacks)
    info["callback_keys"] = (checkpoint.get(LEDGER_KEY) or {}).get("callback_keys", {})
    info["unkeyed_callbacks"] = callback_keys.unresolved(checkpoint)
    info["lightning_migrated"] = (checkpoint.get(LEDGER_KEY) or {}).get(
        premigrated.RECORD_KEY
    )  # already migrated by Lightning
    if args.json:
        print(json.dumps(_jsonable(info), indent=2))
        return 0
    lines = [f"{key:>15}: {info[key]}" for key in ("path", "format", "size_bytes", "saved_version", "legacy_version")]
    lines.append(f"{'top_level_keys':>15}: {', '.join(info['top_level_keys'])}")
    lines.append(f"{'ledger':>15}: {json.dumps(_jsonable(info['ledger'])) if info['ledger'] else '-'}")
    lines += [f"{'redirect':>15}: {old} -> {new}" for old, new in info["redirects"].items()]
    lines.append(f"{'plan':>15}: {len(info['plan'])} migration(s)")
    lines += [f"{'':>17}{step['version']:<8} {step['id']}  {step['title']}" for step in info["plan"]]
    lines += [f"{'callback key':>15}: {k}  <- {rec['from']} ({rec['how']})" for k, rec in info["callback_keys"].items()]
    if info["lightning_migrated"]:
        lines.append(f"{'lightning_migrated':>15}: {premigrated.summary(info['lightning_migrated'])}")
    for line in lines:  # names and keys come from the file: nothing in them may reach the terminal raw
        print(shown(line))
    _print_unkeyed(args.path, info["unkeyed_callbacks"], sys.stdout)
    return 0


def _print_unkeyed(path, unkeyed: dict, stream) -> None:
    """Callback states plain Lightning will not restore until their configuration is stated."""
    for key, why in unkeyed.items():
        print(
            f"{shown(path)}: callback state kept under {key!r}, not keyed for Lightning 2.x ({why}); "
            f'state its configuration with --callback \'{key}{{"monitor": ..., "mode": ...}}\'',
            file=stream,
        )


def _cmd_upgrade(args: argparse.Namespace) -> int:
    if args.output is not None and (len(args.paths) != 1 or args.paths[0].is_dir()):
        print(
            "error: -o/--output takes exactly one checkpoint file; use --in-place for several files or sharded folders",
            file=sys.stderr,
        )
        return 2
    if args.output is None and not args.in_place and not args.dry_run:
        print("error: say where to write: -o OUT, --in-place, or --dry-run", file=sys.stderr)
        return 2
    from .files.discovery import discover
    from .files.paths import is_same_entry

    if args.output is not None and is_same_entry(args.output, args.paths[0]):
        print(
            f"error: -o {shown(args.output)} is the input {shown(args.paths[0])} itself (through a link or '..'); "
            "use --in-place to replace it (the original is kept as NAME.ckpt.bak), or another -o",
            file=sys.stderr,
        )
        return 2
    found = discover(args.paths, follow_links=args.follow_links)
    for path, why in found.skipped:
        echo(f"skipped {shown(path)}: {why}", file=sys.stderr)
    targets = found.found
    failures: list[CheckpointCompatError] = []
    if not targets:
        print("error: no checkpoint found in the given paths", file=sys.stderr)
        return 2
    done = 0
    for index, entry in enumerate(iterate(targets, desc="upgrading", unit="ckpt")):
        path = entry.path
        try:
            if entry.error is not None:  # a folder that could not be searched fails alone
                raise entry.error
            _upgrade_one(path, args)
            done += 1
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the file in progress is left as it was
            code = 128 + int(getattr(exc, "signal_number", signal.SIGINT))
            echo(
                f"interrupted while upgrading {shown(path)} (left as it was): {done} done, {len(failures)} failed, "
                f"{len(targets) - index - 1} not started",
                file=sys.stderr,
            )
            return code
        except Exception as exc:  # the per-file error boundary: one bad file does not stop the run
            error = classify(exc)
            failures.append(error)
            echo(f"FAILED {shown(path)}: {type(error).__name__}: {shown(str(error))}", file=sys.stderr)
    if failures:
        codes = {f.exit_code for f in failures}
        print(f"{len(failures)} of {len(targets)} checkpoint(s) failed", file=sys.stderr)
        return codes.pop() if len(codes) == 1 else 1
    return 0


def _upgrade_one(path: Path, args: argparse.Namespace) -> None:
    from .files import writing
    from .files.loading import checkpoint_file
    from .files.paths import checked_input, in_place_target

    file = checkpoint_file(checked_input(path))
    if args.in_place:  # load → backup → replace must not interleave with another upgrader
        file = in_place_target(file)  # through a link: the file it points to, its backup beside it
        writing.clean_stale_temp_files(file.parent)
        with writing.exclusive(file):
            _upgrade_file(path, file, args, writing)
    else:
        _upgrade_file(path, file, args, writing)


def _upgrade_file(path: Path, file: Path, args: argparse.Namespace, writing) -> None:
    from .files.loading import checkpoint_file, load_checkpoint

    checkpoint = load_checkpoint(path, trust=args.trust)
    ours = isinstance(checkpoint, dict) and isinstance(checkpoint.get(LEDGER_KEY), dict)  # already our output
    lightning_migrated = premigrated.detect(checkpoint) is not None  # repaired by this upgrade, said below
    steps = plan(checkpoint, args.target, assume_version=args.assume_version)
    before = _str_or_none(checkpoint.get(VERSION_KEY)) if isinstance(checkpoint, dict) else None
    if args.dry_run:
        echo(f"{shown(path)}: {before} -> {args.target or 'installed Lightning'}: {len(steps)} migration(s)")
        if migrated := premigrated.repair(checkpoint):  # in memory only, to be shown
            echo(f"    first, already migrated by Lightning: {premigrated.summary(migrated)}")
        for old, new in redirects.recorded(checkpoint).items():
            echo(shown(f"    redirect {old} -> {new}"))
        for m in steps:
            echo(f"    {str(m.version):<8} {m.id}  {m.title}")
        return
    rekeyed = callback_keys.apply_explicit(checkpoint, args.callbacks or []) if args.callbacks else []
    upgrade(checkpoint, args.target, assume_version=args.assume_version, callbacks=args.callbacks)
    _print_unkeyed(path, callback_keys.unresolved(checkpoint), sys.stderr)
    if args.in_place and not args.break_hardlinks and os.stat(file).st_nlink > 1:
        raise HardLinked(
            f"{shown(file)} has {os.stat(file).st_nlink} hard links; an in-place upgrade writes a new file, "
            "so the other links would keep the old checkpoint. "
            "Use -o, or pass --break-hardlinks to upgrade this name only"
        )
    if args.in_place:
        if not steps and not rekeyed and before == checkpoint.get(VERSION_KEY):
            echo(f"{shown(path)}: already at {before}, nothing to do")
            return
        kept = None if args.no_backup else writing.keep_first_original(file, ours=ours)
        writing.save_checkpoint(checkpoint, file, source=file)
        named = checkpoint_file(path)  # as given: a link names the file written, not itself
        where = shown(file) + (f" (the file the link {shown(named)} points to)" if os.path.islink(named) else "")
        where += f"; original kept as {shown(kept)}" if kept is not None else ""
    else:
        writing.save_checkpoint(checkpoint, args.output, source=file)
        where = shown(args.output)
    migrated = (checkpoint.get(LEDGER_KEY) or {}).get(premigrated.RECORD_KEY) if lightning_migrated else None
    echo(
        f"{shown(path)}: {before} -> {checkpoint.get(VERSION_KEY)} ({len(steps)} migration(s)) written to {where}"
        + (f"; it was already migrated by Lightning, {premigrated.summary(migrated)}" if migrated else "")
    )


def _add_golden(subparsers) -> None:
    """``ckpt-compat golden add|list``: goldens from real historical releases (:mod:`.building`)."""
    golden = subparsers.add_parser("golden", help="make (add) or list golden checkpoints")
    gsub = golden.add_subparsers(metavar="ACTION")

    add = gsub.add_parser("add", help="save goldens with a real historical release in an isolated environment")
    add.add_argument("release", help="e.g. 1.6.5")
    add.add_argument(
        "--scenario", action="append", dest="scenarios", metavar="S", help="only this scenario (repeatable)"
    )
    add.add_argument("--python", help="pyenv Python X.Y[.Z] (default: environments.toml)")
    add.add_argument("--torch", help="torch version pin (default: whatever resolves as of the release date)")
    add.add_argument("--package", default="pytorch-lightning", choices=PACKAGES)
    add.add_argument("--force", action="store_true", help="replace an existing golden folder")
    add.add_argument("--accelerator", default="cpu", choices=("cpu", "gpu"))
    add.add_argument("--golden-dir", type=Path, help="the golden folder to add to (default: the checkout's golden/)")
    add.set_defaults(func=_cmd_golden_add)

    lst = gsub.add_parser("list", help="list goldens, or the releases still missing in a range")
    lst.add_argument("--missing", metavar="A..B", help="releases in A..B (inclusive) without a golden")
    lst.add_argument("--package", default="pytorch-lightning", choices=PACKAGES)
    lst.add_argument("--golden-dir", type=Path, help="default: the checkout's golden/, else the installed registry")
    lst.set_defaults(func=_cmd_golden_list)
    golden.set_defaults(func=lambda args: (golden.print_help(), 2)[1])


def _cmd_golden_add(args: argparse.Namespace) -> int:
    add_release(
        args.release,
        golden_dir=args.golden_dir or default_golden_dir(writing=True),
        scenarios=args.scenarios,
        python=args.python,
        torch=args.torch,
        package=args.package,
        force=args.force,
        accelerator=args.accelerator,
    )
    return 0


def _cmd_golden_list(args: argparse.Namespace) -> int:
    golden_dir = args.golden_dir or default_golden_dir(writing=False)
    rows = list_goldens(golden_dir, args.missing, package=args.package, log=lambda m: print(m, file=sys.stderr))
    if args.missing is not None:
        for row in rows:
            print(f"{row['release']:<12} uploaded {row['uploaded']}")
        print(f"{len(rows)} {args.package} releases in {args.missing} have no golden")
        return 0
    for row in rows:
        print(
            f"{row['release']:<18} {row.get('package', '?'):<18} py{row.get('python')} torch {row.get('torch')} "
            f"{row['bytes'] / 1024:7.1f} KiB  {' '.join(sorted(row['scenarios']))}"
        )
    print(f"{len(rows)} releases, {sum(r['bytes'] for r in rows) / 1e6:.2f} MB")
    return 0


def _add_matrix(subparsers) -> None:
    """``ckpt-compat matrix [pytest args]``: the matrix alone, without the project's own tests."""
    matrix = subparsers.add_parser(
        "matrix",
        help="run the golden matrix (pytest --ckpt-compat) on the installed package",
        description="Extra arguments go to pytest, e.g. `ckpt-compat matrix -k 1.6 -n 2 --ckpt-compat-check`.",
    )
    matrix.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to pytest")
    matrix.set_defaults(func=_cmd_matrix, passthrough="pytest_args")


def _cmd_matrix(args: argparse.Namespace) -> int:
    import pytest

    from .plugin import MATRIX_FILE

    user_args = [a for a in args.pytest_args if a != "--"]
    report = _report_option(user_args)
    if report is None:  # the matrix always leaves a report behind, and says where
        from .matrix.report import default_path

        report = str(default_path())  # outside the checkout: no stray file in `git status`
        user_args.append(f"--ckpt-compat-report={report}")
    # this package is imported already (it runs the command), so pytest cannot assert-rewrite it
    argv = ["--ckpt-compat", "-W", "ignore::pytest.PytestAssertRewriteWarning", str(MATRIX_FILE), *user_args]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        argv[:0] = ["-p", "pytest_ckpt_compat.plugin"]
    failures = _Failures()
    code = int(pytest.main(argv, plugins=[failures]))
    if Path(report).is_file():
        print(f"ckpt-compat matrix: report written to {Path(report).resolve()}")
    if failures.names:
        print(
            f"ckpt-compat matrix: {len(failures.names)} failed; re-run only those with:\n  "
            f"{rerun_command(args.pytest_args, failures.names)}"
        )
    return code


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


class _Failures:
    """pytest plugin object: names of the tests that failed in this run (controller side under xdist)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def pytest_runtest_logreport(self, report) -> None:
        name = report.nodeid.rsplit("::", 1)[-1]
        if report.failed and name not in self.names:
            self.names.append(name)


def _str_or_none(value) -> str | None:
    return None if value is None else str(value)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
