"""The save path: a checkpoint saved now by the installed release goes through the matrix like a golden.

Why: every golden was saved by an old release, so the matrix alone never resumes a file the
installed release wrote. A release that saves ``global_step`` one too high, stamps a truncated
version or writes hyperparameters as an object ``weights_only`` refuses would pass everything.
Here the suite's recipe saves each scenario now, with its truth read live as the goldens' was;
the file becomes a one-golden store and gets the matrix's checks (upgrade, load, resume,
weights_only, plain_resume), exactly; the file as saved must stamp the full version, load with
``weights_only=True`` and carry what the module's own ``on_save_checkpoint`` added
(:func:`check_saved_file`). Its structure against the newest golden is :mod:`.drift`'s.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import pooch

from ..goldens.registry import write_registry
from ..goldens.store import Golden, GoldenStore
from . import known_defects
from .compare import CheckFailed
from .suites import RECIPE_MODULE, Suite
from .workspace import Workspace

ROUND_TRIP_CHECKS = ("upgrade", "load", "resume", "weights_only", "plain_resume")


def save_now(ws: Workspace, scenario: str, out: Path) -> dict:
    """Save ``out/<scenario>.ckpt`` with the installed code; its meta.json entry (truth read live)."""
    from .drift import _quiet_lightning

    view = ws.view
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), _quiet_lightning():
        warnings.simplefilter("ignore")
        if view.team:
            from ..goldens import recorder

            return recorder.run_scenario(view.contract, scenario, str(out / "build"), str(out))
        recipe: Any = view.truth
        sys.modules[RECIPE_MODULE] = recipe  # pickle and LightningCLI's class_path find its classes by that name
        recipe.SAVE_MARK = SAVE_MARK  # the module's own on_save_checkpoint writes it into this file only
        try:
            return recipe.run_scenario(scenario, recipe.CLASSES, str(out / "build"), str(out), "cpu")
        finally:
            recipe.SAVE_MARK = None


# The top-level key the built-in module's ``on_save_checkpoint`` adds to a round trip's file, and its value.
SAVE_MARK = "ckpt_compat_round_trip"
SAVE_MARK_VALUE = {"hook": "on_save_checkpoint"}


def check_saved_file(view, scenario: str, saved: Path, saved_version: str) -> list[str]:
    """The file as the installed release wrote it (built-in recipe; a team's classes are its own):

    - it stamps the full installed version (a truncated stamp makes every old file's units re-run);
    - plain ``torch.load(weights_only=True)`` reads it, as Lightning's own default load does (unless a
      known Lightning defect says this release's own saves cannot: ``known_defects.toml``);
    - it carries what the module's own ``on_save_checkpoint`` added (the hook ran on the save path).
    """
    import torch

    from ..core import versions

    if view.team:
        return []
    failures, installed = [], versions.installed_lightning_version()
    if saved_version != installed:
        failures.append(f"version stamp: the file says {saved_version!r}, the installed Lightning is {installed!r}")
    try:
        checkpoint = torch.load(saved, map_location="cpu", weights_only=True)
    except Exception as exc:
        if not known_defects.lookup(scenario, "weights_only", saved_version):
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
            said = f"it pickles {found.group(1)}" if found else (str(exc).splitlines() or [""])[0]
            failures.append(f"weights_only: the file as saved does not load with weights_only=True: {said}")
        checkpoint = torch.load(saved, map_location="cpu", weights_only=False)
    found = checkpoint.get(SAVE_MARK)
    if found != SAVE_MARK_VALUE:
        failures.append(
            f"on_save_checkpoint: checkpoint[{SAVE_MARK!r}] = {found!r}, expected {SAVE_MARK_VALUE!r} "
            "(the module's own on_save_checkpoint hook did not run, or what it added was not saved)"
        )
    return failures


def one_golden_store(
    suite: Suite, scenario: str, entry: dict, saved: Path, build_dir: Path, folder: Path
) -> tuple[GoldenStore, Golden]:
    """A registry folder holding the file saved now as the installed release's golden of ``scenario``."""
    release = suite.installed_version()
    (folder / release).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(saved, folder / release / saved.name)
    digest = pooch.file_hash(str(saved))
    entry = dict(entry, sha256=digest, size=saved.stat().st_size)
    meta = {"release": release, "build_dir": str(build_dir), "scenarios": {scenario: entry}}
    (folder / release / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    write_registry(folder, {f"{release}/{saved.name}": f"sha256:{digest}"})
    store = GoldenStore(folder, folder / ".cache", registry_dir=folder, suite=suite.name, progressbar=False)
    return store, store.goldens[0]


def check_round_trip(ws: Workspace, scenario: str, tmp_path: Path) -> None:
    """Save ``scenario`` now, then run the matrix's checks on that file; every failure named at once."""
    from .checks import run

    assert ws.suite is not None
    entry = save_now(ws, scenario, tmp_path / "saved")
    saved = tmp_path / "saved"
    store, golden = one_golden_store(
        ws.suite, scenario, entry, saved / f"{scenario}.ckpt", saved / "build", tmp_path / "goldens"
    )
    suite = Suite(store, ws.suite.recipe_spec, ws.suite.name)
    here = Workspace(suite.store, tmp_path / "ws", suite)
    who = f"{suite.name} {golden.release}" if suite.is_team else f"Lightning {golden.release}"
    failures = check_saved_file(ws.view, scenario, saved / f"{scenario}.ckpt", golden.saved_version)
    for check in ROUND_TRIP_CHECKS:
        if not suite.is_team and known_defects.lookup(scenario, check, golden.saved_version):
            continue  # a known Lightning defect on this release's own saves: the matrix xfails it on the golden too
        try:
            run(here, golden, check, tmp_path / check)
        except CheckFailed as exc:
            failures.append(f"{check}: {exc}")
        except Exception as exc:  # Lightning's own load or fit refused the file: name what it said
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
            said = f"it pickles {found.group(1)}" if found else (str(exc).splitlines() or [""])[0]
            failures.append(f"{check}: {type(exc).__name__}: {said}")
    if failures:
        raise CheckFailed(
            f"round trip: a {scenario} checkpoint saved now by {who} does not come back exactly:\n  "
            + "\n  ".join(line for failure in failures for line in failure.splitlines()[:12])
        )
