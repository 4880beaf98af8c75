"""What the ``evaluate`` check costs per golden next to the ``resume`` check, in one process.

Why: ``evaluate`` (validate/test/predict(ckpt_path=...) on one Trainer) runs on every golden, so its
cost multiplies by the whole matrix. Both checks run on one warmed workspace (the upgrade and the
write of the upgraded file are paid before timing, as every check after a golden's first finds
them), alternating, ``--repeat`` times after one warm-up; printed: the median seconds of each and
their ratio per golden, and the ratio of the sums. Ratios compare across machines; seconds do not.

    python benchmarks/bench_evaluate.py [--repeat 5] [--goldens 1.6.5-end_of_fit ...]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_GOLDENS = ("1.2.10-end_of_fit", "1.6.5-end_of_fit", "2.0.9-end_of_fit", "2.6.6-end_of_fit", "2.6.6-mid_epoch")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--goldens", nargs="+", default=list(DEFAULT_GOLDENS))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from pytest_ckpt_compat.goldens.store import GoldenStore
    from pytest_ckpt_compat.matrix import checks
    from pytest_ckpt_compat.matrix.workspace import Workspace
    from tests.plugin.conftest import make_golden_subset

    tmp = Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    names = [f"{g.split('-', 1)[0]}/{g.split('-', 1)[1]}.ckpt" for g in args.goldens]
    folder = make_golden_subset(tmp / "golden", names)
    store = GoldenStore(folder, tmp / "cache", registry_dir=folder, progressbar=False)
    ws = Workspace(store, tmp / "ws")
    print(f"{'golden':<22} {'resume s':>9} {'evaluate s':>11} {'evaluate/resume':>16}")
    sums = {"resume": 0.0, "evaluate": 0.0}
    for golden in store.goldens:
        times: dict[str, list[float]] = {"resume": [], "evaluate": []}
        for i in range(args.repeat + 1):
            for check in ("resume", "evaluate"):
                start = time.perf_counter()
                checks.run(ws, golden, check, tmp / "runs" / golden.name / f"{check}-{i}")
                if i:  # the first round warms imports and the workspace
                    times[check].append(time.perf_counter() - start)
        resume, evaluate = statistics.median(times["resume"]), statistics.median(times["evaluate"])
        sums["resume"] += resume
        sums["evaluate"] += evaluate
        print(f"{golden.id:<22} {resume:>9.3f} {evaluate:>11.3f} {evaluate / resume:>16.2f}")
    print(f"{'all':<22} {sums['resume']:>9.3f} {sums['evaluate']:>11.3f} {sums['evaluate'] / sums['resume']:>16.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
