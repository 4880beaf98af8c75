"""What the golden matrix costs: per golden next to a bare Lightning resume, and ``-n 2`` next to serial.

Ratios are taken within one run on one machine, so they compare across machines; absolute seconds
do not. Two parts:

1. **Per golden** (in this process): for a few goldens from different eras, the median of
   ``--repeat`` timings (after one warm-up) of

   * (a) a *bare* resume: the recipe's module, datamodule and callbacks,
     ``Trainer(...).fit(model, dm, ckpt_path=<golden>, weights_only=False)`` for one more epoch, with
     Lightning's own migration on (what a user does without this tool);
   * (b) our ``resume`` check alone, in a fresh :class:`~pytest_ckpt_compat.matrix.workspace.Workspace`
     (so it pays for the upgrade and the write of the upgraded file, as the first check of a golden
     in a pytest process does);
   * (c) every check of ``checks.CHECKS`` (six) on the golden in one fresh workspace (what the matrix
     spends per golden).

   Printed: ``b/a`` and ``c/a``. Target: ``c/a`` <= 1.5. All three run with torch on one thread, as
   the matrix's processes do (``plugin.py``): on a shared 2-core machine two intra-op threads made
   a and c alike several times slower and their ratio a measure of the load.
2. **Speedup** (subprocesses): ``python -m pytest --ckpt-compat pytest_ckpt_compat/_matrix.py -q
   -p no:cacheprovider`` serially, then with ``-n 2``, both on a cache warmed beforehand. ``--subset K``
   selects K goldens spread over the registry with ``-k`` (their golden cells only); ``--full`` runs the
   whole matrix, migration tests included. Target: speedup >= 1.6.

The registry is snapshotted into a temp folder first (``registry.txt`` lines whose file and truth
exist, their ``meta.json``, ``recipes/``), so goldens being added meanwhile change neither run.

    python benchmarks/bench_matrix.py [--repeat 5] [--subset 12 | --full] [--goldens 1.6.5-end_of_fit ...]
                                      [--skip-per-golden] [--skip-speedup] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "golden"
DEFAULT_GOLDENS = ("1.2.10-end_of_fit", "1.6.5-end_of_fit", "2.0.9-end_of_fit", "2.6.6-end_of_fit", "2.6.6-mid_epoch")


def _print(out: list, line: str = "") -> None:
    print(line, flush=True)
    out.append(line)


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine_info() -> list[str]:
    import torch

    from pytest_ckpt_compat.core import versions

    return [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {platform.machine()} {platform.system()} {platform.release()}, {os.cpu_count()} logical cores"
        f" ({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable)",
        f"load average (1/5/15 min) at start: {_load()}",
        f"python {platform.python_version()}, torch {torch.__version__}, Lightning "
        f"{versions.installed_lightning_version()}",
    ]


# ------------------------------------------------------------------------------------ snapshot
def snapshot_registry(dest: Path) -> list[str]:
    """Copy the registry's usable lines, their meta.json and recipes/; return the kept names."""
    import json

    from pytest_ckpt_compat.goldens.registry import read_registry

    kept, metas = [], {}
    for name, digest in read_registry(GOLDEN).items():
        release = name.split("/", 1)[0]
        if release not in metas:
            try:
                metas[release] = json.loads((GOLDEN / release / "meta.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                metas[release] = None
        scenario = Path(name).stem
        if (GOLDEN / name).is_file() and "truth" in ((metas[release] or {}).get("scenarios", {}).get(scenario) or {}):
            kept.append(f"{name} {digest}")
    dest.mkdir(parents=True)
    (dest / "registry.txt").write_text("\n".join(sorted(kept)) + "\n", encoding="utf-8")
    for release in {line.split("/", 1)[0] for line in kept}:
        (dest / release).mkdir()
        (dest / release / "meta.json").write_text(json.dumps(metas[release]), encoding="utf-8")
    shutil.copytree(GOLDEN / "recipes", dest / "recipes", ignore=shutil.ignore_patterns("__pycache__"))
    return [line.split(" ", 1)[0] for line in kept]


# ------------------------------------------------------------------------------------ part 1
def bare_resume(store, golden, tmp: Path, max_epochs: int) -> int:
    """What a user does without this tool: plain Trainer.fit(ckpt_path=...), Lightning migrating."""
    import torch

    from pytest_ckpt_compat.matrix import workspace

    recipe = workspace.load_recipe(str(workspace.recipe_path(store)))
    datamodule_cls, _, _, topk_cls = recipe.CLASSES
    torch.manual_seed(1234)
    model = recipe.RECIPE.make_module(golden.scenario, golden.truth["hparams"])
    callbacks = recipe._callbacks(topk_cls, str(tmp), golden.scenario)
    kwargs = recipe._trainer_kwargs(str(tmp), golden.scenario, "cpu", callbacks + [_one_more_epoch(recipe.pl)()])
    kwargs.update(max_epochs=max_epochs, deterministic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = recipe.pl.Trainer(**kwargs)
        trainer.fit(model, datamodule=datamodule_cls(), ckpt_path=str(store.fetch(golden)), weights_only=False)
    return int(trainer.global_step)


def _one_more_epoch(pl):
    """Lightning may restore a pre-1.6 file at another epoch than our check does: train one epoch anyway."""

    class OneMoreEpoch(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            trainer.fit_loop.max_epochs = trainer.current_epoch + 1

    return OneMoreEpoch


def our_checks(store, golden, tmp: Path, which: tuple) -> dict:
    """Checks in a fresh workspace, as the first cells of this golden in a new pytest process."""
    from pytest_ckpt_compat.matrix import checks, workspace

    store._verified.clear()  # a new session verifies each golden's sha256 once: count that too
    ws = workspace.Workspace(store, tmp / "ws")
    spent = {}
    for check in which:
        cell = tmp / check
        cell.mkdir()
        start = time.perf_counter()
        checks.run(ws, golden, check, cell)
        spent[check] = time.perf_counter() - start
    return spent


def per_golden(args, store, out: list) -> None:
    import logging

    import torch

    from pytest_ckpt_compat.matrix import checks, harness, workspace

    torch.set_num_threads(1)  # as in every matrix process (plugin.py): the bare resume runs with it too
    workspace.load_recipe(str(workspace.recipe_path(store)))  # imports Lightning, which sets its loggers' level
    for name in ("lightning.pytorch", "pytorch_lightning", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _print(
        out, f"== 1. per-golden cost vs a bare Lightning resume (median of {args.repeat} after 1 warm-up; seconds) =="
    )
    _print(
        out, "   a = bare Trainer.fit(ckpt_path=golden, weights_only=False), Lightning's migration on, one more epoch"
    )
    _print(out, "   b = our `resume` check alone (fresh workspace: fetch verify + upgrade + write + resume + compare)")
    _print(out, f"   c = all {len(checks.CHECKS)} checks of the golden (fresh workspace)           target: c/a <= 1.5")
    _print(out, f"   a, b and c with torch on {torch.get_num_threads()} thread(s), as the matrix's processes run")
    _print(
        out,
        f"{'golden':24} {'a bare':>8} {'b resume':>9} {f'c all {len(checks.CHECKS)}':>8} {'b/a':>6} {'c/a':>6}  load",
    )
    rows = []
    for gid in args.goldens:
        try:
            golden = store.get(gid)
        except Exception as exc:
            _print(out, f"{gid:24} not in the registry snapshot: {exc}")
            continue
        ws = workspace.Workspace(store, Path(tempfile.mkdtemp(prefix="probe-", dir=args.tmp)))
        upgraded, _ = ws.upgraded(golden)
        expected = harness.expected_counters(golden, upgraded, ws.load(golden))
        max_epochs = expected["epoch"] + 1
        runs = {
            "a": lambda tmp, golden=golden, max_epochs=max_epochs: bare_resume(store, golden, tmp, max_epochs),
            "b": lambda tmp, golden=golden: our_checks(store, golden, tmp, ("resume",)),
            "c": lambda tmp, golden=golden: our_checks(store, golden, tmp, checks.CHECKS),
        }
        times: dict[str, list] = {k: [] for k in runs}
        error, bare_steps, split = None, None, {}
        for i in range(args.repeat + 1):  # round 0 is the warm-up; a, b, c interleaved so load drifts hit all three
            for key, fn in runs.items():
                tmp = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=args.tmp))
                start = time.perf_counter()
                try:
                    result = fn(tmp)
                except Exception as exc:
                    error = f"{key} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                    break
                elapsed = time.perf_counter() - start
                shutil.rmtree(tmp, ignore_errors=True)
                if key == "a":
                    bare_steps = result
                elif key == "c" and i:
                    for check, seconds in result.items():
                        split.setdefault(check, []).append(seconds)
                if i:
                    times[key].append(elapsed)
            if error:
                break
        if error:
            _print(out, f"{gid:24} {error}")
            continue
        a, b, c = (statistics.median(times[k]) for k in "abc")
        rows.append((gid, a, b, c))
        _print(out, f"{gid:24} {a:8.3f} {b:9.3f} {c:8.3f} {b / a:6.2f} {c / a:6.2f}  {_load()}")
        spread = ", ".join(f"{k} {min(v):.3f}-{max(v):.3f}" for k, v in times.items())
        expects = expected["global_step"] + expected["batches"]
        steps = f"; final global_step: bare {bare_steps}, our resume check expects {expects}"
        _print(
            out,
            f"{'':24} c by check (median s; upgrade pays the upgrade + write, resume and weights_only reuse it): "
            + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in split.items()),
        )
        _print(
            out,
            f"{'':24} range {spread}"
            + (steps if golden.scenario != "manual_opt" else f"; bare final global_step {bare_steps}"),
        )
    if rows:
        worst = max(rows, key=lambda r: r[3] / r[1])
        _print(
            out,
            f"worst c/a: {worst[3] / worst[1]:.2f} ({worst[0]}); target <= 1.5: "
            f"{'met' if worst[3] / worst[1] <= 1.5 else 'NOT met'}",
        )
        _print(
            out,
            f"geometric mean c/a: {statistics.geometric_mean([r[3] / r[1] for r in rows]):.2f}, b/a: "
            f"{statistics.geometric_mean([r[2] / r[1] for r in rows]):.2f}",
        )


# ------------------------------------------------------------------------------------ part 2
def subset_expr(names: list[str], k: int, store) -> tuple[str, list[str]]:
    """K goldens spread evenly over the (sorted) registry; ``[id-`` matches only that golden's cells."""
    goldens = store.goldens
    k = max(1, min(k, len(goldens)))
    picked = (
        [goldens[round(i * (len(goldens) - 1) / max(1, k - 1))].id for i in range(k)] if k > 1 else [goldens[-1].id]
    )
    picked = list(dict.fromkeys(picked))
    return " or ".join(f"[{gid}-" for gid in picked), picked


def run_matrix(args, extra: list[str], label: str, out: list) -> float:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--ckpt-compat",
        "pytest_ckpt_compat/_matrix.py",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--ckpt-compat-registry={args.snapshot}",
        f"--ckpt-compat-url={GOLDEN}",
        f"--ckpt-compat-cache={args.cache}",
        f"--basetemp={Path(tempfile.mkdtemp(prefix='pytest-', dir=args.tmp))}",
        *extra,
    ]
    load = _load()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    last = [line for line in proc.stdout.splitlines() if line.strip()][-1:] or ["(no output)"]
    _print(out, f"{label:8} {wall:8.1f} s  exit {proc.returncode}  load before {load}  | {last[0].strip('= ')}")
    if proc.returncode not in (0, 1):
        _print(out, "   " + "\n   ".join((proc.stdout + proc.stderr).splitlines()[-15:]))
    return wall


def speedup(args, store, out: list) -> None:
    if args.full:
        extra, what = [], f"full matrix ({len(store.goldens)} goldens x 5 checks + migration tests)"
    else:
        expr, picked = subset_expr(args.names, args.subset, store)
        extra, what = ["-k", expr], f"--subset {len(picked)}: {', '.join(picked)} (golden cells only)"
    _print(out, f"== 2. -n 2 speedup: {what} ==")
    serial = run_matrix(args, extra, "serial", out)
    parallel = run_matrix(args, [*extra, "-n", "2"], "-n 2", out)
    ratio = serial / parallel
    _print(out, f"speedup serial/-n 2: {ratio:.2f}x   target >= 1.6: {'met' if ratio >= 1.6 else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats per golden and contender (median)")
    parser.add_argument("--goldens", nargs="+", default=list(DEFAULT_GOLDENS), help="golden ids for part 1")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--subset", type=int, default=12, metavar="K", help="part 2 on K goldens (default 12)")
    scope.add_argument("--full", action="store_true", help="part 2 on the whole matrix")
    parser.add_argument("--skip-per-golden", action="store_true")
    parser.add_argument("--skip-speedup", action="store_true")
    parser.add_argument("--out", help="also write the output to this file")
    args = parser.parse_args(argv)

    from pytest_ckpt_compat.goldens.store import GoldenStore

    out: list[str] = []
    for line in machine_info():
        _print(out, line)
    args.tmp = Path(tempfile.mkdtemp(prefix="bench-matrix-"))
    try:
        args.snapshot, args.cache = args.tmp / "registry", args.tmp / "cache"
        args.names = snapshot_registry(args.snapshot)
        store = GoldenStore(GOLDEN, args.cache, registry_dir=args.snapshot, progressbar=False)
        start = time.perf_counter()
        for golden in store.goldens:  # warm cache: both parts measure checks, not copies
            store.fetch(golden)
        _print(
            out, f"registry snapshot: {len(store.goldens)} goldens; cache warmed in {time.perf_counter() - start:.1f} s"
        )
        _print(out)
        if not args.skip_per_golden:
            per_golden(args, store, out)
            _print(out)
        if not args.skip_speedup:
            speedup(args, store, out)
        _print(out, f"load average at end: {_load()}")
    finally:
        shutil.rmtree(args.tmp, ignore_errors=True)
    if args.out:
        Path(args.out).write_text("\n".join(out) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
