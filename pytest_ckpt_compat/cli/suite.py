"""``ckpt-compat golden add|list`` and ``ckpt-compat matrix``: the golden suite's commands.

They serve Lightning maintainers (the built-in goldens) and teams (their own goldens) alike; the
work is in :mod:`pytest_ckpt_compat.commands`, here only the arguments and what is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import commands
from ..core.errors import GoldenBuildError
from ..goldens.building import PACKAGES, default_golden_dir


def add_golden(subparsers) -> None:
    """``ckpt-compat golden add|list``: goldens from real historical releases (:mod:`.building`)."""
    golden = subparsers.add_parser("golden", help="make (add, record) or list golden checkpoints")
    gsub = golden.add_subparsers(metavar="ACTION")

    add = gsub.add_parser(
        "add",
        help="save goldens with a real historical release in an isolated environment",
        description="Lightning's goldens: `golden add 1.6.5`. A team's: `golden add teamnet==1.0.0 --recipe "
        "teamnet.goldens:RECIPE --out goldens` (the release resolved as of its date, the recipe run there).",
    )
    add.add_argument("release", help="e.g. 1.6.5; with --recipe PACKAGE==VERSION (teamnet==1.0.0)")
    add.add_argument(
        "--scenario", action="append", dest="scenarios", metavar="S", help="only this scenario (repeatable)"
    )
    add.add_argument(
        "--python", help="pyenv Python X.Y[.Z] (default: environments.toml; with --recipe this Python's X.Y)"
    )
    add.add_argument("--torch", help="torch version pin (default: whatever resolves as of the release date)")
    add.add_argument("--package", default="pytorch-lightning", choices=PACKAGES)
    add.add_argument("--force", action="store_true", help="replace an existing golden folder")
    add.add_argument("--accelerator", default="cpu", choices=("cpu", "gpu"))
    add.add_argument("--golden-dir", type=Path, help="the golden folder to add to (default: the checkout's golden/)")
    team = add.add_argument_group("a team's release (with --recipe)")
    team.add_argument("--recipe", metavar="SPEC", help="PKG.MODULE:OBJECT of the installed release, or file.py:OBJECT")
    team.add_argument("--out", type=Path, metavar="DIR", help="the team's golden folder (DIR/<version>/, registry.txt)")
    team.add_argument("--find-links", type=Path, metavar="DIR", help="a folder of wheels (releases not on PyPI)")
    team.add_argument("--exclude-newer", metavar="DATE", help="resolve as of DATE (default: upload date + 1 day)")
    add.add_argument(
        "--with",
        action="append",
        dest="with_reqs",
        metavar="REQ",
        help="another requirement to install, resolved as of the release date (repeatable; e.g. jsonargparse)",
    )
    _determinism_option(team)
    add.set_defaults(func=_cmd_golden_add)

    rec = gsub.add_parser(
        "record",
        help="save a recipe's goldens of the release installed in this environment",
        description="Run the recipe here and write DIR/<installed version of recipe.package>/<scenario>.ckpt, "
        "meta.json and DIR/registry.txt.",
    )
    rec.add_argument("--recipe", required=True, metavar="SPEC", help="PKG.MODULE:OBJECT or path/to/recipe.py:OBJECT")
    rec.add_argument("--out", required=True, type=Path, metavar="DIR", help="the team's golden folder")
    rec.add_argument(
        "--scenario", action="append", dest="scenarios", metavar="S", help="only this scenario (repeatable)"
    )
    rec.add_argument("--force", action="store_true", help="replace an existing release folder")
    _determinism_option(rec)
    rec.set_defaults(func=_cmd_golden_record)

    lst = gsub.add_parser("list", help="list goldens, or the releases still missing in a range")
    lst.add_argument("--missing", metavar="A..B", help="releases in A..B (inclusive) without a golden")
    lst.add_argument("--package", default="pytorch-lightning", choices=PACKAGES)
    lst.add_argument("--coverage", action="store_true", help="the README's coverage block (Markdown) from the registry")
    lst.add_argument("--golden-dir", type=Path, help="default: the checkout's golden/, else the installed registry")
    lst.set_defaults(func=_cmd_golden_list)
    golden.set_defaults(func=lambda args: (golden.print_help(), 2)[1])


def _determinism_option(parser) -> None:
    parser.add_argument(
        "--no-determinism-check",
        dest="determinism_check",
        action="store_false",
        help="record each scenario once (default: twice, failing when a tensor differs between the runs)",
    )


def _cmd_golden_record(args: argparse.Namespace) -> int:
    commands.golden_record(
        args.recipe,
        out=args.out,
        scenarios=args.scenarios,
        force=args.force,
        determinism_check=args.determinism_check,
    )
    return 0


TEAM_ONLY = {"out": "--out", "find_links": "--find-links", "exclude_newer": "--exclude-newer"}
BUILT_IN_ONLY = {"torch": None, "package": "pytorch-lightning", "accelerator": "cpu", "golden_dir": None}


def _cmd_golden_add(args: argparse.Namespace) -> int:
    if args.recipe is not None:
        return _cmd_golden_add_team(args)
    flags = [flag for name, flag in TEAM_ONLY.items() if getattr(args, name) is not None]
    flags += [] if args.determinism_check else ["--no-determinism-check"]
    if flags:
        raise GoldenBuildError(f"{', '.join(flags)}: only with --recipe (a team's release)")
    commands.golden_add(
        args.release,
        golden_dir=args.golden_dir or default_golden_dir(writing=True),
        scenarios=args.scenarios,
        python=args.python,
        torch=args.torch,
        package=args.package,
        force=args.force,
        accelerator=args.accelerator,
        with_reqs=args.with_reqs or (),
    )
    return 0


def _cmd_golden_add_team(args: argparse.Namespace) -> int:
    given = [name for name, default in BUILT_IN_ONLY.items() if getattr(args, name) != default]
    if given:
        flags = ", ".join(f"--{n.replace('_', '-')}" for n in given)
        raise GoldenBuildError(f"{flags}: not with --recipe (the team's release brings its own; use --with, --out)")
    if args.out is None:
        raise GoldenBuildError("golden add --recipe needs --out DIR, the team's golden folder")
    commands.golden_add_team(
        args.release,
        recipe=args.recipe,
        out=args.out,
        find_links=args.find_links,
        exclude_newer=args.exclude_newer,
        python=args.python,
        with_reqs=args.with_reqs or (),
        scenarios=args.scenarios,
        force=args.force,
        determinism_check=args.determinism_check,
    )
    return 0


def _cmd_golden_list(args: argparse.Namespace) -> int:
    if args.coverage:
        print(commands.golden_coverage(args.golden_dir or default_golden_dir(writing=False)), end="")
        return 0
    rows = commands.golden_list(
        args.golden_dir or default_golden_dir(writing=False),
        args.missing,
        package=args.package,
        log=lambda m: print(m, file=sys.stderr),
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


def add_matrix(subparsers) -> None:
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
