"""The committed goldens are consistent: registry <-> files <-> meta.json, and nothing private inside.

Why: consumers fetch by registry hash and compare against meta.json's ``truth``; one stale hash,
a meta naming a file that is not there, or a checkpoint that leaks a local path would make the
whole compat matrix untrustworthy.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from packaging.version import Version

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
REGISTRY = GOLDEN / "registry.txt"
LINE = re.compile(r"^(?P<name>[A-Za-z0-9._-]+/[A-Za-z0-9._-]+\.ckpt) sha256:(?P<hex>[0-9a-f]{64})$")
PRIVATE = (b"/work/", b"/root/", b"/tmp/", b"/home/")
TRUTH_KEYS = {
    "completed_epochs",
    "optimizer_steps",
    "batches_in_current_epoch",
    "steps_per_epoch",
    "max_epochs",
    "hparams",
    "datamodule_hparams",
    "optimizer_state",
    "schedulers",
    "callbacks",
    "scaler",
    "weights_sha256",
    "weights_sum",
}


def _lines() -> list[str]:
    return REGISTRY.read_text().splitlines() if REGISTRY.exists() else []


def _entries() -> dict[str, str]:
    return {m["name"]: m["hex"] for m in map(LINE.match, _lines()) if m}


def _release_dirs() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.is_dir() and p.name != "recipes" and not p.name.startswith("."))


def test_registry_lines_are_well_formed_sorted_and_unique():
    lines = _lines()
    bad = [line for line in lines if not LINE.match(line)]
    assert bad == []
    assert lines == sorted(lines)
    names = [line.split()[0] for line in lines]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", sorted(_entries()))
def test_registry_entry_exists_and_hash_matches(name):
    path = GOLDEN / name
    assert path.is_file(), f"{name} is in registry.txt but missing"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == _entries()[name]


def test_every_checkpoint_file_is_registered():
    on_disk = sorted(f"{p.parent.name}/{p.name}" for d in _release_dirs() for p in d.glob("*.ckpt"))
    assert on_disk == sorted(_entries())


@pytest.mark.parametrize("folder", [p.name for p in _release_dirs()])
def test_meta_matches_registry_and_files(folder):
    meta_path = GOLDEN / folder / "meta.json"
    assert meta_path.is_file(), f"golden/{folder} has no meta.json"
    meta = json.loads(meta_path.read_text())
    package = meta["package"]
    assert package in ("pytorch-lightning", "lightning")
    assert folder == (meta["release"] if package == "pytorch-lightning" else f"{package}-{meta['release']}")
    assert not Version(meta["release"]).is_postrelease
    for key in ("python", "torch", "pins", "made_with", "date", "scenarios"):
        assert key in meta, key
    assert meta["made_with"].startswith(f"ckpt-compat golden add {meta['release']}")
    entries = _entries()
    registered = {n.split("/", 1)[1]: h for n, h in entries.items() if n.startswith(folder + "/")}
    files = {}
    for scenario, entry in meta["scenarios"].items():
        assert entry["file"] == f"{scenario}.ckpt"
        files[entry["file"]] = entry["sha256"]
        assert entry["saved_version"] == meta["release"]
        assert TRUTH_KEYS <= set(entry["truth"]), TRUTH_KEYS - set(entry["truth"])
        assert entry["requires"] in (None, "gpu")
        # a GradScaler state only where AMP ran: on a GPU, or with torch's CPU scaler
        assert (entry["truth"]["scaler"] is not None) == (entry["requires"] == "gpu" or scenario == "amp_16_mixed_cpu")
        assert scenario not in meta.get("skipped", {})
    assert files == registered
    assert {"end_of_fit", "mid_epoch"} <= set(meta["scenarios"])


@pytest.mark.parametrize("folder", [p.name for p in _release_dirs()])
def test_no_local_paths_in_meta_or_checkpoints(folder):
    for path in sorted((GOLDEN / folder).iterdir()):
        data = path.read_bytes()
        leaks = [p.decode() for p in PRIVATE if p in data]
        assert leaks == [], f"{folder}/{path.name} mentions {leaks}"


def test_end_of_fit_truth_is_two_full_epochs():
    """Every release trains the same 2 x 4 batches; the live counters must say so."""
    for folder in _release_dirs():
        truth = json.loads((folder / "meta.json").read_text())["scenarios"]["end_of_fit"]["truth"]
        assert (truth["completed_epochs"], truth["batches_in_current_epoch"], truth["optimizer_steps"]) == (
            2,
            0,
            [8],
        ), folder.name
        mid = json.loads((folder / "meta.json").read_text())["scenarios"]["mid_epoch"]["truth"]
        assert (mid["completed_epochs"], mid["batches_in_current_epoch"], mid["optimizer_steps"]) == (1, 2, [6]), (
            folder.name
        )


def test_golden_folder_stays_small():
    """The repository and sdist carry golden/: 37.7 MB (36.0 MiB) measured with every scenario in every release
    where it exists (2,136 goldens, weight_averaging / stateful_loader / cli_saved / ema_averaging included)."""
    total = sum(p.stat().st_size for p in GOLDEN.rglob("*") if p.is_file())
    assert total < 40 * 1024 * 1024
