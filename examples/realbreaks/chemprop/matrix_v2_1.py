"""Run under chemprop 2.1.x with this package installed: the team matrix on the chemprop goldens, twice.

1. ``recipe.py:WITHOUT_CATALOGUE`` (chemprop's recipe before anyone knew of the break): the 2.0.5
   goldens must fail every cell past ``fetch``, each naming the renamed class
   ``chemprop.nn.metrics.RMSEMetric`` (what chemprop's users met, chemprop#1156); the 2.1.2 goldens
   must not fail.
2. ``recipe.py:RECIPE`` (names the team catalogue, ``catalogue/``, and the classes chemprop's files
   pickle as ``safe_globals``), in check mode: every cell must pass, and so must check mode's own
   tests (the installed chemprop has a golden; a file saved now has the newest golden's structure).

Prints one JSON object (outcomes and seconds per run) and exits 0 only when both hold.
Usage: ``python matrix_v2_1.py [--goldens DIR] [--work DIR]`` (``.ci/chemprop`` runs it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
RENAMED = "chemprop.nn.metrics.RMSEMetric"


def run_matrix(recipe: str, goldens: Path, work: Path, *extra: str) -> tuple[dict, float]:
    """``ckpt-compat matrix`` on the goldens with the recipe object; ``{cell id: (outcome, message)}``."""
    xml = work / f"{recipe}.xml"
    command = [
        sys.executable,
        "-m",
        "pytest_ckpt_compat.cli",
        "matrix",
        "-p",
        "no:cacheprovider",
        "--ckpt-compat-goldens",
        str(goldens),
        "--ckpt-compat-recipe",
        f"{HERE / 'recipe.py'}:{recipe}",
        f"--ckpt-compat-report={work / (recipe + '.md')}",
        f"--junitxml={xml}",
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(command, cwd=work, stdout=sys.stderr)
    seconds = round(time.perf_counter() - start, 1)
    cells = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = case.get("name", "")  # a matrix cell by its id; check mode's own tests by their full name
        cell = name.partition("[")[2].rstrip("]") if name.startswith("test_golden[") else name
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = "failed" if tag != "skipped" else "skipped"
                message = (found.get("message") or "") + (found.text or "")
        cells[cell] = (outcome, message)
    return cells, seconds


def expectations(without: dict, with_catalogue: dict) -> dict:
    from pytest_ckpt_compat.matrix.checks import CHECKS

    past_fetch = 2 * (len(CHECKS) - 1)  # two 2.0.5 goldens, every check but fetch
    old = {cell for cell in without if cell.startswith("chemprop-2.0.5-") and not cell.endswith("-fetch")}
    failed_without = {cell for cell, (outcome, _) in without.items() if outcome == "failed"}
    return {
        "both runs saw the 2.0.5 and 2.1.2 goldens": len(old) == past_fetch and len(with_catalogue) >= 4 * len(CHECKS),
        "check mode ran": {"test_installed_release_has_golden[chemprop-2.1.2]"} <= set(with_catalogue)
        and any(name.startswith("test_schema_drift[chemprop-2.1.2-") for name in with_catalogue),
        "without the catalogue exactly the 2.0.5 cells fail": failed_without == old,
        f"each names {RENAMED}": all(RENAMED in without[cell][1] for cell in old),
        "with the catalogue every cell passes": all(outcome == "passed" for outcome, _ in with_catalogue.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goldens", type=Path, default=HERE / "goldens")
    parser.add_argument("--work", type=Path, default=None, help="where reports go (default: a temporary folder)")
    args = parser.parse_args(argv)
    work = (args.work or Path(tempfile.mkdtemp(prefix="ckpt-compat-chemprop-"))).resolve()  # the runs' cwd
    work.mkdir(parents=True, exist_ok=True)
    without, without_s = run_matrix("WITHOUT_CATALOGUE", args.goldens.resolve(), work)
    with_catalogue, with_s = run_matrix("RECIPE", args.goldens.resolve(), work, "--ckpt-compat-check")
    checks = expectations(without, with_catalogue)
    counts = {
        name: {k: sum(1 for o, _ in cells.values() if o == k) for k in ("passed", "failed", "skipped")}
        for name, cells in (("without_catalogue", without), ("with_catalogue", with_catalogue))
    }
    report = {"counts": counts, "seconds": {"without_catalogue": without_s, "with_catalogue": with_s}}
    print(json.dumps({**report, "checks": checks, "reports": str(work)}, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
