"""The save path: a checkpoint saved now by the installed release goes through the matrix like a golden.

Why: every golden was saved by an old release, so the matrix alone never resumes a file the
installed release wrote. A release that saves ``global_step`` one too high, stamps a truncated
version or writes hyperparameters as an object ``weights_only`` refuses would pass everything.
Here the suite's recipe saves each scenario now, with its truth read live as the goldens' was;
the file becomes a one-golden store and gets the matrix's checks (upgrade, load, resume,
weights_only, plain_resume), exactly. Its structure against the newest golden is :mod:`.drift`'s.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import pooch

from ..goldens.registry import write_registry
from ..goldens.store import Golden, GoldenStore
from . import known_defects
from .compare import CheckFailed
from .suites import Suite
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
        recipe = view.truth
        return recipe.run_scenario(scenario, recipe.CLASSES, str(out / "build"), str(out), "cpu")


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
    failures = []
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
