"""Coverage-guided fuzzing (atheris) of load_checkpoint -> upgrade -> save_checkpoint on real goldens.

Each input is a mutation of a real golden checkpoint (``golden/<release>/*.ckpt``). The target
loads it, upgrades it, writes it (carry-over path, ``source=``) and loads the result again. Our
named errors (``CheckpointCompatError``) are the expected outcome for damaged input; anything
else (an uncaught exception, a crash, a hang past ``-timeout``) is a finding and fails the run.

    python benchmarks/fuzz_roundtrip.py --seconds 600            # the long run
    python benchmarks/fuzz_roundtrip.py --runs 4000 --seed 1     # what the `fuzz` test runs in CI

The CI run counts inputs, not seconds, so a busy machine runs the same inputs, only slower.
libFuzzer prints ``stat::number_of_executed_units: N`` at the end (the inputs run); a crashing
input (also one over ``--rss-limit-mb`` or ``--input-timeout``) is written to ``--artifacts``
and the exit status is non-zero.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["pytest_ckpt_compat"]):
    from pytest_ckpt_compat import load_checkpoint, save_checkpoint, upgrade
    from pytest_ckpt_compat.core.errors import CheckpointCompatError

REPO = Path(__file__).resolve().parent.parent
SEEDS = ["0.10.0", "1.0.0", "1.2.10", "1.4.9", "1.5.10", "1.6.5", "1.9.5", "2.0.0", "2.2.3", "lightning-2.6.6"]
TARGET = "2.6.6"
_work = Path()  # set by main(): where each input is written and upgraded


def seed_corpus(folder: Path, per_release: int = 2) -> int:
    """Copy the smallest goldens of a spread of releases into ``folder``; returns how many."""
    copied = 0
    for release in SEEDS:
        for path in sorted((REPO / "golden" / release).glob("*.ckpt"), key=lambda p: p.stat().st_size)[:per_release]:
            shutil.copy(path, folder / f"{release}-{path.name}")
            copied += 1
    return copied


def one_input(data: bytes) -> None:
    source, out = _work / "in.ckpt", _work / "out.ckpt"
    source.write_bytes(data)
    try:
        checkpoint = load_checkpoint(source)
        upgrade(checkpoint, TARGET)
        save_checkpoint(checkpoint, out, source=source)
        again = load_checkpoint(out)
        assert again["pytorch-lightning_version"] == TARGET, again.get("pytorch-lightning_version")
    except CheckpointCompatError:
        pass  # a named error: the promised outcome for damaged input


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600, help="stop after this long (0: no limit)")
    parser.add_argument("--runs", type=int, default=-1, help="stop after this many inputs (-1: no limit)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--input-timeout", type=int, default=30, help="seconds one input may take (a hang)")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="memory the process may reach (a bomb)")
    parser.add_argument("--workdir", default=None, help="folder for the inputs and the corpus (default: a temp folder)")
    parser.add_argument(
        "--artifacts", default=None, help="where libFuzzer writes crashing inputs (default: a temp folder)"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    global _work
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ckpt-compat-fuzz-"))
    _work, corpus = workdir / "work", workdir / "corpus"
    _work.mkdir(parents=True, exist_ok=True)
    corpus.mkdir(exist_ok=True)
    print(f"seed inputs: {seed_corpus(corpus)}", flush=True)
    artifacts = args.artifacts or tempfile.mkdtemp(prefix="ckpt-compat-fuzz-crashes-")
    libfuzzer = [
        sys.argv[0],
        f"-seed={args.seed}",
        f"-max_total_time={args.seconds}",
        f"-runs={args.runs}",
        f"-timeout={args.input_timeout}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        "-max_len=65536",
        f"-artifact_prefix={os.path.join(artifacts, '')}",
        "-print_final_stats=1",
        str(corpus),
    ]
    atheris.Setup(libfuzzer, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
