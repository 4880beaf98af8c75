"""Record a recipe's goldens: run each scenario, save its checkpoint, read its truth from live objects.

Why standalone: the same file runs in the current environment (``ckpt-compat golden record``, the
matrix's drift check) and, copied as a plain script, inside the isolated environment of a team's
old release (``golden add PKG==VER --recipe``), where this package is not installed and Python may
be as old as 3.8. So it imports only the standard library at module level; torch and Lightning are
imported where a scenario runs, and the recipe is found by its import name (shipped in the team's
package) or by a file path.

One truth schema: the truth is recorded by the built-in recipe's ``record_truth`` (loaded as a
library next to this file, or from the package's ``golden/recipes/recipe.py``), given the live
counts this recorder keeps for any LightningModule; the matrix compares a team's goldens with
exactly the rules it applies to Lightning's own.

Usage (what ``golden add --recipe`` runs in the isolated environment)::

    python recorder.py --recipe teamnet.goldens:RECIPE --build-dir BUILD --out STAGE [--scenario NAME ...]

Writes ``STAGE/<scenario>.ckpt`` and ``STAGE/recipe-result.json`` (the built-in recipe's shape,
plus ``package`` and ``package_version``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import random
import shutil
import sys
import traceback
from pathlib import Path

DEFAULT_SCENARIOS = ("end_of_fit", "mid_epoch")
TRUTH_LIBRARY = "ckpt_compat_truth"  # the built-in recipe, imported under this name as a library
SEED = 1234


# ------------------------------------------------------------------------------------ the recipe
def import_object(spec):
    """``PKG.MODULE:OBJECT`` or ``path/to/file.py:OBJECT`` → the object (errors are the import's own)."""
    module_name, _, attr = str(spec).rpartition(":")
    if module_name.endswith(".py"):
        path = Path(module_name)
        name = "ckpt_compat_team_recipe_" + path.stem
        loaded = importlib.util.spec_from_file_location(name, str(path))
        if loaded is None or loaded.loader is None:
            raise ImportError(f"cannot import the recipe file {path}")
        module = importlib.util.module_from_spec(loaded)
        sys.modules[name] = module
        loaded.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    return getattr(module, attr)


def scenarios_of(recipe):
    return tuple(getattr(recipe, "scenarios", None) or DEFAULT_SCENARIOS)


def save_point(recipe, scenario):
    """``(epoch, batch)`` after which the scenario saves mid-epoch, or ``None`` for the end of fit."""
    own = getattr(recipe, "save_point", None)
    if callable(own):
        point = own(scenario)
        return None if point is None else (int(point[0]), int(point[1]))
    return (1, 1) if scenario == "mid_epoch" else None


def package_version(recipe):
    """The installed version of the distribution that names the goldens."""
    from importlib import metadata

    return metadata.version(recipe.package)


def lightning_of(module):
    """The Lightning package the module was written against (``lightning.pytorch`` or ``pytorch_lightning``)."""
    for cls in type(module).__mro__:
        root = cls.__module__.split(".")[0]
        if root == "lightning":
            return importlib.import_module("lightning.pytorch")
        if root == "pytorch_lightning":
            return importlib.import_module("pytorch_lightning")
    raise TypeError(f"{type(module).__name__} is not a LightningModule of lightning.pytorch or pytorch_lightning")


def truth_library(pl, torch):
    """The built-in recipe as a library of truth readers, bound to this Lightning and torch."""
    lib = sys.modules.get(TRUTH_LIBRARY)
    if lib is None:
        here = Path(__file__).resolve().parent
        candidates = [
            here / (TRUTH_LIBRARY + ".py"),  # copied next to this script in an isolated environment
            here.parents[1] / "golden" / "recipes" / "recipe.py",  # a checkout
            here.parent / "_data" / "golden" / "recipes" / "recipe.py",  # the wheel
        ]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(f"the built-in recipe (truth readers) is not next to {__file__}")
        spec = importlib.util.spec_from_file_location(TRUTH_LIBRARY, str(path))
        lib = importlib.util.module_from_spec(spec)
        sys.modules[TRUTH_LIBRARY] = lib
        spec.loader.exec_module(lib)
    lib.pl, lib.torch = pl, torch
    return lib


# ------------------------------------------------------------------------------------ recording
def _counter_class(pl, stop):
    class LiveCounts(pl.Callback):
        """Batches per epoch and optimizer steps per optimizer, counted as they happen; saves at the point."""

        def __init__(self, point=None, save=None):
            self.batches_seen, self.step_counts, self.point, self.save = {}, [], point, save

        def on_train_start(self, trainer, pl_module):
            self.step_counts = [0] * len(trainer.optimizers)

        def on_before_optimizer_step(self, trainer, pl_module, optimizer, *args):
            raw = getattr(optimizer, "_optimizer", optimizer)
            for i, opt in enumerate(trainer.optimizers):
                if opt is raw or getattr(opt, "_optimizer", opt) is raw:
                    self.step_counts[i] += 1

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args):
            epoch = int(trainer.current_epoch)
            self.batches_seen[epoch] = self.batches_seen.get(epoch, 0) + 1
            if self.point is not None and (epoch, int(batch_idx)) == self.point:
                self.save()
                raise stop()  # the truth library's StopRecipe, which its `_caused_by_stop` finds

    return LiveCounts


class _Live:
    """What ``record_truth`` reads off the built-in module, read off any module and its trainer."""

    def __init__(self, module, counts, trainer):
        self.batches_seen, self.step_counts = counts.batches_seen, counts.step_counts
        self.hparams, self.state_dict = module.hparams, module.state_dict
        self.live_optimizers = list(trainer.optimizers)
        configs = getattr(trainer, "lr_scheduler_configs", None)
        if configs is None:  # Lightning < 1.8: a list of dicts
            configs = [_Config(c["scheduler"]) for c in getattr(trainer, "lr_schedulers", None) or []]
        self.live_schedulers = [c.scheduler for c in configs]


class _Config:
    def __init__(self, scheduler):
        self.scheduler = scheduler


def seed_everything(pl, torch):
    random.seed(SEED)
    torch.manual_seed(SEED)
    if hasattr(pl, "seed_everything"):
        pl.seed_everything(SEED)


def run_scenario(recipe, scenario, build_dir, out_dir):
    """Train the scenario, save ``out_dir/<scenario>.ckpt``, and return its meta.json entry."""
    import warnings

    import torch

    scenario_dir = os.path.join(build_dir, scenario)
    shutil.rmtree(scenario_dir, ignore_errors=True)
    os.makedirs(scenario_dir)
    torch.manual_seed(SEED)
    random.seed(SEED)
    module = recipe.make_module(scenario, None)
    pl = lightning_of(module)
    seed_everything(pl, torch)
    module = recipe.make_module(scenario, None)  # built again after the full seed: the same weights every run
    datamodule = recipe.make_datamodule(scenario)
    path = os.path.join(out_dir, scenario + ".ckpt")
    result = {}

    def save_now():
        trainer.save_checkpoint(path)
        live = _Live(module, counts, trainer)
        lib = truth_library(pl, torch)
        result["truth"] = lib.record_truth(trainer, live, datamodule, build_dir, int(trainer.num_training_batches))

    point = save_point(recipe, scenario)
    lib = truth_library(pl, torch)
    counts = _counter_class(pl, lib.StopRecipe)(point, save_now)
    kwargs = dict(recipe.trainer_kwargs(scenario, scenario_dir))
    kwargs["callbacks"] = list(recipe.make_callbacks(scenario, scenario_dir)) + [counts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(**kwargs)
        try:
            trainer.fit(module, datamodule=datamodule)
        except lib.StopRecipe:
            pass
        except BaseException as exc:  # Lightning may wrap the hook's exception
            if "truth" not in result or not lib._caused_by_stop(exc):
                raise
        if point is None:
            save_now()
    if "truth" not in result:
        raise RuntimeError(f"scenario {scenario} never reached its save point {point}")
    saved = lib._load_saved(path)
    return {
        "file": scenario + ".ckpt",
        "requires": None,
        "saved_version": saved.pop("version"),
        "saved": saved,
        "truth": result["truth"],
    }


def record(recipe, build_dir, out_dir, scenarios=None):
    """Run every wanted scenario; the report ``recipe-result.json`` holds (also returned)."""
    import torch

    os.makedirs(build_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    report = {
        "package": recipe.package,
        "package_version": package_version(recipe),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "scenarios": {},
        "skipped": {},
        "failed": {},
    }
    for name in scenarios or scenarios_of(recipe):
        try:
            report["scenarios"][name] = run_scenario(recipe, name, build_dir, out_dir)
            print(f"recorder: made {name}", flush=True)
        except BaseException as exc:  # noqa: BLE001 - every failure is reported with its traceback
            traceback.print_exc()
            report["failed"][name] = f"{type(exc).__name__}: {exc}"
            partial = os.path.join(out_dir, name + ".ckpt")
            if os.path.exists(partial):
                os.remove(partial)
    made = next(iter(report["scenarios"].values()), None)
    report["lightning_version"] = made["saved_version"] if made else None
    with open(os.path.join(out_dir, "recipe-result.json"), "w") as fh:
        json.dump(report, fh, indent=1, sort_keys=True)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", required=True, help="PKG.MODULE:OBJECT or path/to/recipe.py:OBJECT")
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--scenario", action="append", default=None)
    args = parser.parse_args(argv)
    recipe = import_object(args.recipe)
    build_dir, out_dir = os.path.abspath(args.build_dir), os.path.abspath(args.out)
    os.makedirs(build_dir, exist_ok=True)
    os.chdir(build_dir)
    report = record(recipe, build_dir, out_dir, args.scenario)
    if report["failed"]:
        failed = ", ".join("{} ({})".format(*item) for item in sorted(report["failed"].items()))
        print(f"recorder: FAILED {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
