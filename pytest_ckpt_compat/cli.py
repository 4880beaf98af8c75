"""``ckpt-compat``: the one argparse front end: upgrade, inspect, migrations, golden, matrix.

Every sub-command is defined here; each parses, calls one function of ``commands`` (where the
work is done), prints what it returned and gives the exit code. No room registers commands.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from . import commands
from .core import premigrated
from .core.errors import classify
from .core.progress import echo, iterate
from .core.versions import TOOL_VERSION
from .files.signals import signals_as_exceptions
from .goldens.building import DEFAULT_GOLDEN_DIR, PACKAGES

DEFAULT_REPORT = commands.DEFAULT_REPORT
rerun_command = commands.rerun_command


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 must print, not crash
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
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
        print(f"error: {error}", file=sys.stderr)
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


def _callback_spec(text: str) -> str:
    from .core.callback_keys import parse_spec

    try:
        parse_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _cmd_migrations(args: argparse.Namespace) -> int:
    rows = commands.migrations()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for i, row in enumerate(rows, 1):
        print(f"{i:3d}. [{row['catalogue']}] {row['version']:<8} {row['id']:<48} {row['title']}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    info = commands.inspect(
        args.path,
        target=args.target,
        trust=args.trust,
        assume_version=args.assume_version,
        callbacks=args.callbacks or (),
    )
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    for key in ("path", "format", "size_bytes", "saved_version", "legacy_version"):
        print(f"{key:>15}: {info[key]}")
    print(f"{'top_level_keys':>15}: {', '.join(info['top_level_keys'])}")
    print(f"{'ledger':>15}: {json.dumps(info['ledger'], default=str) if info['ledger'] else '-'}")
    print(f"{'catalogues':>15}: {', '.join(info['catalogues'])}")
    print(f"{'plan':>15}: {len(info['plan'])} migration(s)")
    for step in info["plan"]:
        print(f"{'':>17}{step['version']:<8} {step['id']}  {step['title']}")
    for key, rec in info["callback_keys"].items():
        print(f"{'callback key':>15}: {key}  <- {rec['from']} ({rec['how']})")
    if info["lightning_migrated"]:
        print(f"{'lightning_migrated':>15}: {premigrated.summary(info['lightning_migrated'])}")
    for text in info["warnings"]:
        print(f"{'warning':>15}: {text}")
    _print_unkeyed(args.path, info["unkeyed_callbacks"], sys.stdout)
    return 0


def _print_unkeyed(path, unkeyed: dict, stream) -> None:
    """Callback states plain Lightning will not restore until their configuration is stated."""
    for key, why in unkeyed.items():
        print(
            f"{path}: callback state kept under {key!r}, not keyed for Lightning 2.x ({why}); "
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
    targets, failures = commands.expand(args.paths), []
    if not targets:
        print("error: no checkpoint found in the given paths", file=sys.stderr)
        return 2
    options = _upgrade_options(args)
    done = 0
    for index, path in enumerate(iterate(targets, desc="upgrading", unit="ckpt")):
        try:
            _print_upgrade(commands.upgrade_one(path, options), args.target)
            done += 1
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the file in progress is left as it was
            code = 128 + int(getattr(exc, "signal_number", signal.SIGINT))
            echo(
                f"interrupted while upgrading {path} (left as it was): {done} done, {len(failures)} failed, "
                f"{len(targets) - index - 1} not started",
                file=sys.stderr,
            )
            return code
        except Exception as exc:  # the per-file error boundary: one bad file does not stop the run
            error = classify(exc)
            failures.append(error)
            echo(f"FAILED {path}: {type(error).__name__}: {error}", file=sys.stderr)
    if failures:
        codes = {f.exit_code for f in failures}
        print(f"{len(failures)} of {len(targets)} checkpoint(s) failed", file=sys.stderr)
        return codes.pop() if len(codes) == 1 else 1
    return 0


def _upgrade_options(args: argparse.Namespace) -> commands.UpgradeOptions:
    return commands.UpgradeOptions(
        output=args.output,
        in_place=args.in_place,
        dry_run=args.dry_run,
        no_backup=args.no_backup,
        break_hardlinks=args.break_hardlinks,
        target=args.target,
        trust=args.trust,
        assume_version=args.assume_version,
        callbacks=tuple(args.callbacks or ()),
    )


def _print_upgrade(done: commands.FileUpgrade, target: str | None) -> None:
    """The report of one file: what ran, what was repaired, what a reader must know, where it went."""
    path, result = done.path, done.result
    migrated = result.lightning_migrated
    if done.dry_run:
        echo(
            f"{path}: {result.version_before} -> {target or 'installed Lightning'}: {len(result.applied)} migration(s)"
        )
        if migrated:
            echo(f"    first, already migrated by Lightning: {premigrated.summary(migrated)}")
        for m in result.applied:
            echo(f"    {str(m.version):<8} {m.id}  {m.title}")
        return
    for text in result.warnings:
        echo(f"{path}: warning: {text}", file=sys.stderr)
    _print_unkeyed(path, result.unresolved, sys.stderr)
    if done.written_to is None:
        echo(f"{path}: already at {result.version_before}, nothing to do")
        return
    echo(
        f"{path}: {result.version_before} -> {result.version_after} ({len(result.applied)} migration(s)) "
        f"written to {done.written_to}"
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
    add.add_argument("--golden-dir", type=Path, default=DEFAULT_GOLDEN_DIR)
    add.set_defaults(func=_cmd_golden_add)

    lst = gsub.add_parser("list", help="list goldens, or the releases still missing in a range")
    lst.add_argument("--missing", metavar="A..B", help="releases in A..B (inclusive) without a golden")
    lst.add_argument("--package", default="pytorch-lightning", choices=PACKAGES)
    lst.add_argument("--golden-dir", type=Path, default=DEFAULT_GOLDEN_DIR)
    lst.set_defaults(func=_cmd_golden_list)
    golden.set_defaults(func=lambda args: (golden.print_help(), 2)[1])


def _cmd_golden_add(args: argparse.Namespace) -> int:
    commands.golden_add(
        args.release,
        golden_dir=args.golden_dir,
        scenarios=args.scenarios,
        python=args.python,
        torch=args.torch,
        package=args.package,
        force=args.force,
        accelerator=args.accelerator,
    )
    return 0


def _cmd_golden_list(args: argparse.Namespace) -> int:
    rows = commands.golden_list(
        args.golden_dir, args.missing, package=args.package, log=lambda m: print(m, file=sys.stderr)
    )
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
    run = commands.matrix(args.pytest_args)
    if run.report is not None:
        print(f"ckpt-compat matrix: report written to {run.report}")
    if run.failed:
        print(f"ckpt-compat matrix: {len(run.failed)} failed; re-run only those with:\n  {run.rerun}")
    return run.code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
