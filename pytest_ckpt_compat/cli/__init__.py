"""``ckpt-compat``: the one argparse front end: upgrade, inspect, migrations, golden, matrix.

Every sub-command is defined here; each parses, calls one function of ``commands`` (where the
work is done), prints what it returned and gives the exit code. No room registers commands.
``commands`` imports the loader (torch) only in the actions that read a checkpoint, so ``--help``,
``--version`` and ``migrations`` answer at once. Every name printed goes through ``files.names.shown``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import commands
from ..core import premigrated, redirects
from ..core.errors import CheckpointCompatError, classify
from ..core.progress import echo, iterate
from ..core.versions import TOOL_VERSION
from ..files.names import shown
from ..files.signals import signals_as_exceptions
from .suite import add_golden, add_matrix

rerun_command = commands.rerun_command


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

    add_golden(sub)
    add_matrix(sub)
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
    from ..core.callback_keys import parse_spec

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
        kind = " (reader-side: any target)" if row["any_target"] else ""
        print(f"{i:3d}. [{row['catalogue']}] {row['version']:<8} {row['id']:<48} {row['title']}{kind}")
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
        print(json.dumps(_jsonable(info), indent=2))
        return 0
    lines = [f"{key:>15}: {info[key]}" for key in ("path", "format", "size_bytes", "saved_version", "legacy_version")]
    lines.append(f"{'top_level_keys':>15}: {', '.join(info['top_level_keys'])}")
    lines.append(f"{'ledger':>15}: {json.dumps(_jsonable(info['ledger'])) if info['ledger'] else '-'}")
    lines.append(f"{'catalogues':>15}: {', '.join(info['catalogues'])}")
    lines += [f"{'redirect':>15}: {old} -> {new}" for old, new in info["redirects"].items()]
    lines.append(f"{'plan':>15}: {len(info['plan'])} migration(s)")
    lines += [f"{'':>17}{step['version']:<8} {step['id']}  {step['title']}" for step in info["plan"]]
    lines += [f"{'callback key':>15}: {k}  <- {rec['from']} ({rec['how']})" for k, rec in info["callback_keys"].items()]
    if info["lightning_migrated"]:
        lines.append(f"{'lightning_migrated':>15}: {premigrated.summary(info['lightning_migrated'])}")
    lines += [f"{'warning':>15}: {text}" for text in info["warnings"]]
    for line in lines:  # names and keys come from the file: nothing in them may reach the terminal raw
        print(shown(line))
    _print_unkeyed(args.path, info["unkeyed_callbacks"], sys.stdout)
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
    if args.output is not None and commands.output_is_input(args.output, args.paths[0]):
        print(
            f"error: -o {shown(args.output)} is the input {shown(args.paths[0])} itself (through a link or '..'); "
            "use --in-place to replace it (the original is kept as NAME.ckpt.bak), or another -o",
            file=sys.stderr,
        )
        return 2
    found = commands.expand(args.paths, follow_links=args.follow_links)
    for path, why in found.skipped:
        echo(f"skipped {shown(path)}: {why}", file=sys.stderr)
    targets = found.found
    failures: list[CheckpointCompatError] = []
    if not targets:
        print("error: no checkpoint found in the given paths", file=sys.stderr)
        return 2
    options = _upgrade_options(args)
    done = 0
    for index, entry in enumerate(iterate(targets, desc="upgrading", unit="ckpt")):
        path = entry.path
        try:
            if entry.error is not None:  # a folder that could not be searched fails alone
                raise entry.error
            _print_upgrade(commands.upgrade_one(path, options), args.target)
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


def _print_object_file(done: commands.FileUpgrade) -> None:
    """A whole pickled object: the class names rewritten (its content is not a checkpoint dict)."""
    used = done.redirected or {}
    if not used:
        echo(f"{shown(done.path)}: a whole pickled object, no class name to redirect: nothing to do")
        return
    head = f"{shown(done.path)}: a whole pickled object, {len(used)} class name(s) redirected"
    if done.written_to is not None:
        head += f", written to {shown(done.written_to)}"
        if done.backup is not None:
            head += f"; original kept as {shown(done.backup)}"
    echo(head)
    for old, new in used.items():
        echo(shown(f"    redirect {old} -> {new}"))
    for cls, values in (done.object_state or {}).items():
        echo(shown(f"    set on {cls}: " + ", ".join(f"{name}={value!r}" for name, value in values.items())))


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
    path, result = shown(done.path), done.result
    if done.redirected is not None:
        _print_object_file(done)
        return
    migrated = result.lightning_migrated
    if done.dry_run:
        echo(
            f"{path}: {result.version_before} -> {target or 'installed Lightning'}: {len(result.applied)} migration(s)"
        )
        if migrated:
            echo(f"    first, already migrated by Lightning: {premigrated.summary(migrated)}")
        for old, new in redirects.recorded(result.checkpoint).items():
            echo(shown(f"    redirect {old} -> {new}"))
        for m in result.applied:
            echo(f"    {str(m.version):<8} {m.id}  {m.title}")
        return
    for text in result.warnings:
        echo(shown(f"{path}: warning: {text}"), file=sys.stderr)
    _print_unkeyed(path, result.unresolved, sys.stderr)
    if done.written_to is None:
        echo(f"{path}: already at {result.version_before}, nothing to do")
        return
    where = shown(done.written_to)
    if done.link is not None:  # an in-place upgrade through a link wrote the file it points to
        where += f" (the file the link {shown(done.link)} points to)"
    if done.backup is not None:
        where += f"; original kept as {shown(done.backup)}"
    echo(
        f"{path}: {result.version_before} -> {result.version_after} ({len(result.applied)} migration(s)) "
        f"written to {where}"
        + (f"; it was already migrated by Lightning, {premigrated.summary(migrated)}" if migrated else "")
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
    chk.add_argument(
        "--assume-version",
        metavar="VERSION",
        help="version of a checkpoint that has no version key (Lightning < 0.8.2)",
    )
    chk.add_argument("--json", action="store_true", help="machine-readable output")
    chk.set_defaults(func=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    from ..core.errors import PreflightFailed
    from ..lightning.preflight import preflight_specs

    try:
        report = preflight_specs(
            args.path,
            args.model,
            datamodule=args.datamodule,
            callbacks=args.callbacks,
            precision=args.precision,
            trust=args.trust,
            assume_version=args.assume_version,
        )
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        print(
            f"error: cannot build what --model/--datamodule/--callback name: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else "\n".join(report.lines()))
    return 0 if report.ok else PreflightFailed.exit_code
