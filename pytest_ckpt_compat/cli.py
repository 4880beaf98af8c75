"""``ckpt-compat``: the one argparse front end: upgrade, inspect, migrations, golden, matrix.

Every sub-command is defined here and calls the functions of its room (engine, building,
the plugin's matrix file); no room registers commands of its own.
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

from .core import callback_keys, premigrated
from .core.catalogue import all_catalogues
from .core.engine import LEDGER_KEY, plan, upgrade
from .core.errors import HardLinked, classify
from .core.progress import echo, iterate
from .core.versions import LEGACY_VERSION_KEY, TOOL_VERSION, VERSION_KEY
from .files.loading import checkpoint_file, is_zip_checkpoint, load_checkpoint, sharded_metadata
from .files.signals import signals_as_exceptions
from .goldens.building import DEFAULT_GOLDEN_DIR, PACKAGES, add_release, list_goldens


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
        help='configuration of a callback that wrote a pre-1.5 file, e.g. \'EarlyStopping{"monitor": "val_loss", "mode": "max"}\' (repeatable)',
    )


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


def _cmd_inspect(args: argparse.Namespace) -> int:
    checkpoint = load_checkpoint(args.path, trust=args.trust)
    file = checkpoint_file(args.path)
    info = {
        "path": str(args.path),
        "format": "sharded" if args.path.is_dir() else ("zip" if is_zip_checkpoint(file) else "legacy"),
        "size_bytes": file.stat().st_size,
        "saved_version": _str_or_none(checkpoint.get(VERSION_KEY)) if isinstance(checkpoint, dict) else None,
        "legacy_version": _str_or_none(checkpoint.get(LEGACY_VERSION_KEY)) if isinstance(checkpoint, dict) else None,
        "top_level_keys": [str(k) for k in checkpoint] if isinstance(checkpoint, dict) else [],
        "ledger": checkpoint.get(LEDGER_KEY) if isinstance(checkpoint, dict) else None,
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
        print(json.dumps(info, indent=2, default=str))
        return 0
    for key in ("path", "format", "size_bytes", "saved_version", "legacy_version"):
        print(f"{key:>15}: {info[key]}")
    print(f"{'top_level_keys':>15}: {', '.join(info['top_level_keys'])}")
    print(f"{'ledger':>15}: {json.dumps(info['ledger'], default=str) if info['ledger'] else '-'}")
    print(f"{'plan':>15}: {len(info['plan'])} migration(s)")
    for step in info["plan"]:
        print(f"{'':>17}{step['version']:<8} {step['id']}  {step['title']}")
    for key, rec in info["callback_keys"].items():
        print(f"{'callback key':>15}: {key}  <- {rec['from']} ({rec['how']})")
    if info["lightning_migrated"]:
        print(f"{'lightning_migrated':>15}: {premigrated.summary(info['lightning_migrated'])}")
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
    targets, failures = _expand(args.paths), []
    if not targets:
        print("error: no checkpoint found in the given paths", file=sys.stderr)
        return 2
    done = 0
    for index, path in enumerate(iterate(targets, desc="upgrading", unit="ckpt")):
        try:
            _upgrade_one(path, args)
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


def _upgrade_one(path: Path, args: argparse.Namespace) -> None:
    from .files import writing

    file = checkpoint_file(path)
    if args.in_place:  # load → backup → replace must not interleave with another upgrader
        writing.clean_stale_temp_files(file.parent)
        with writing.exclusive(file):
            _upgrade_file(path, file, args, writing)
    else:
        _upgrade_file(path, file, args, writing)


def _upgrade_file(path: Path, file: Path, args: argparse.Namespace, writing) -> None:
    checkpoint = load_checkpoint(path, trust=args.trust)
    ours = isinstance(checkpoint, dict) and isinstance(checkpoint.get(LEDGER_KEY), dict)  # already our output
    lightning_migrated = premigrated.detect(checkpoint) is not None  # repaired by this upgrade, said below
    steps = plan(checkpoint, args.target, assume_version=args.assume_version)
    before = _str_or_none(checkpoint.get(VERSION_KEY)) if isinstance(checkpoint, dict) else None
    if args.dry_run:
        echo(f"{path}: {before} -> {args.target or 'installed Lightning'}: {len(steps)} migration(s)")
        if migrated := premigrated.repair(checkpoint):  # in memory only, to be shown
            echo(f"    first, already migrated by Lightning: {premigrated.summary(migrated)}")
        for m in steps:
            echo(f"    {str(m.version):<8} {m.id}  {m.title}")
        return
    rekeyed = callback_keys.apply_explicit(checkpoint, args.callbacks or []) if args.callbacks else []
    upgrade(checkpoint, args.target, assume_version=args.assume_version, callbacks=args.callbacks)
    _print_unkeyed(path, callback_keys.unresolved(checkpoint), sys.stderr)
    if args.in_place and not args.break_hardlinks and os.stat(file).st_nlink > 1:
        raise HardLinked(
            f"{file} has {os.stat(file).st_nlink} hard links; an in-place upgrade writes a new file, so the other "
            "links would keep the old checkpoint. Use -o, or pass --break-hardlinks to upgrade this name only"
        )
    if args.in_place:
        if not steps and not rekeyed and before == checkpoint.get(VERSION_KEY):
            echo(f"{path}: already at {before}, nothing to do")
            return
        if not args.no_backup:
            writing.keep_first_original(file, ours=ours)
        writing.save_checkpoint(checkpoint, file, source=file)
    else:
        writing.save_checkpoint(checkpoint, args.output, source=file)
    dest = file if args.in_place else args.output
    migrated = (checkpoint.get(LEDGER_KEY) or {}).get(premigrated.RECORD_KEY) if lightning_migrated else None
    echo(
        f"{path}: {before} -> {checkpoint.get(VERSION_KEY)} ({len(steps)} migration(s)) written to {dest}"
        + (f"; it was already migrated by Lightning, {premigrated.summary(migrated)}" if migrated else "")
    )


def _expand(paths: Sequence[Path]) -> list[Path]:
    """Files stay; a sharded checkpoint folder is one checkpoint; other folders recurse over *.ckpt."""
    found: list[Path] = []
    for path in paths:
        try:
            is_dir = path.is_dir()
        except OSError:  # a name too long, a loop of links: the per-file boundary reports it
            is_dir = False
        if not is_dir or sharded_metadata(path) is not None:
            found.append(path)
            continue
        for root, dirs, files in os.walk(path):
            root_path = Path(root)
            for d in list(dirs):
                if sharded_metadata(root_path / d) is not None:
                    found.append(root_path / d)
                    dirs.remove(d)
            found.extend(root_path / f for f in sorted(files) if f.endswith(".ckpt"))
    return found


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
    add_release(
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
    rows = list_goldens(args.golden_dir, args.missing, package=args.package, log=lambda m: print(m, file=sys.stderr))
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
            f"ckpt-compat matrix: {len(failures.names)} failed; re-run only those with:\n  {rerun_command(args.pytest_args, failures.names)}"
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
