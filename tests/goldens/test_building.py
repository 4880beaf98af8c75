"""``ckpt-compat golden add/list``: registry bookkeeping, refusals, and all-or-nothing builds.

Why: goldens are consumed while new ones are being added, so a rebuild must never leave a
half-written folder or a registry that disagrees with the files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import pytest

from pytest_ckpt_compat import cli
from pytest_ckpt_compat.core.errors import GoldenError
from pytest_ckpt_compat.goldens import building
from pytest_ckpt_compat.goldens.building import (
    GoldenBuildError,
    add_release,
    exclude_newer,
    folder_name,
    load_environments,
    resolve_environment,
)
from pytest_ckpt_compat.goldens.listing import list_goldens
from pytest_ckpt_compat.goldens.registry import format_registry, read_registry, update_registry, write_registry

REPO_GOLDEN = Path(__file__).resolve().parents[2] / "golden"
HEX_A = "a" * 64
HEX_B = "b" * 64
HEX_C = "c" * 64


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def golden_dir(tmp_path: Path) -> Path:
    """A small golden folder with the real recipe, environments and PyPI date cache."""
    root = tmp_path / "golden"
    (root / "recipes").mkdir(parents=True)
    shutil.copy(REPO_GOLDEN / "recipes" / "recipe.py", root / "recipes" / "recipe.py")
    shutil.copy(REPO_GOLDEN / "environments.toml", root / "environments.toml")
    shutil.copy(REPO_GOLDEN / "pypi-release-dates.json", root / "pypi-release-dates.json")
    (root / "1.6.5").mkdir()
    (root / "1.6.5" / "end_of_fit.ckpt").write_bytes(b"not really a checkpoint")
    digest = hashlib.sha256(b"not really a checkpoint").hexdigest()
    (root / "1.6.5" / "meta.json").write_text(json.dumps({"release": "1.6.5", "package": "pytorch-lightning"}))
    write_registry(root, {"1.6.5/end_of_fit.ckpt": f"sha256:{digest}", "1.2.10/end_of_fit.ckpt": f"sha256:{HEX_C}"})
    return root


# ------------------------------------------------------------------------------------ registry
def test_update_registry_replaces_only_that_release():
    entries = {
        "1.6.5/end_of_fit.ckpt": f"sha256:{HEX_A}",
        "1.6.5/old.ckpt": f"sha256:{HEX_A}",
        "2.0.0/end_of_fit.ckpt": f"sha256:{HEX_C}",
    }
    new, added, removed = update_registry(entries, "1.6.5", {"end_of_fit.ckpt": HEX_B, "mid_epoch.ckpt": HEX_A})
    assert new == {
        "1.6.5/end_of_fit.ckpt": f"sha256:{HEX_B}",
        "1.6.5/mid_epoch.ckpt": f"sha256:{HEX_A}",
        "2.0.0/end_of_fit.ckpt": f"sha256:{HEX_C}",
    }
    assert added == ["1.6.5/end_of_fit.ckpt", "1.6.5/mid_epoch.ckpt"]
    assert removed == ["1.6.5/old.ckpt"]


def test_update_registry_with_identical_files_reports_nothing_added():
    entries = {"1.6.5/end_of_fit.ckpt": f"sha256:{HEX_A}"}
    new, added, removed = update_registry(entries, "1.6.5", {"end_of_fit.ckpt": HEX_A})
    assert (new, added, removed) == (entries, [], [])


def test_registry_is_written_sorted_and_read_back(tmp_path):
    entries = {"2.0.0/a.ckpt": f"sha256:{HEX_A}", "1.10.0/a.ckpt": f"sha256:{HEX_B}", "1.9.0/b.ckpt": f"sha256:{HEX_C}"}
    write_registry(tmp_path, entries)
    text = (tmp_path / "registry.txt").read_text()
    assert text == (f"1.10.0/a.ckpt sha256:{HEX_B}\n1.9.0/b.ckpt sha256:{HEX_C}\n2.0.0/a.ckpt sha256:{HEX_A}\n")
    assert text == format_registry(entries)
    assert read_registry(tmp_path) == entries
    assert [p.name for p in tmp_path.iterdir()] == ["registry.txt"]  # no temp file left behind


def test_registry_rejects_duplicates_and_malformed_lines(tmp_path):
    (tmp_path / "registry.txt").write_text(f"1.0.0/a.ckpt sha256:{HEX_A}\n1.0.0/a.ckpt sha256:{HEX_B}\n")
    with pytest.raises(GoldenError, match="duplicate entry '1.0.0/a.ckpt'"):
        read_registry(tmp_path)
    (tmp_path / "registry.txt").write_text(f"1.0.0/a.ckpt md5:{HEX_A}\n")
    with pytest.raises(GoldenError, match="registry.txt:1"):
        read_registry(tmp_path)


# --------------------------------------------------------------------------------- environments
def test_exclude_newer_is_upload_time_plus_one_day():
    assert exclude_newer("2022-07-13T00:37:46.106535Z") == "2022-07-14T00:37:46Z"
    assert exclude_newer("2020-12-31T23:00:00Z") == "2021-01-01T23:00:00Z"


def test_folder_names():
    assert folder_name("1.6.5") == "1.6.5"
    assert folder_name("2.0.9", "lightning") == "lightning-2.0.9"


def test_committed_environments_resolve_per_era():
    envs = load_environments(REPO_GOLDEN)
    assert resolve_environment("1.0.8", "pytorch-lightning", envs) == {"python": "3.8", "torch": None, "pins": []}
    assert resolve_environment("1.5.0", "pytorch-lightning", envs) == {
        "python": "3.8",
        "torch": None,
        "pins": ["setuptools<59.6"],
    }
    assert resolve_environment("1.6.5", "pytorch-lightning", envs) == {
        "python": "3.9",
        "torch": None,
        "pins": ["setuptools<82"],
    }
    assert resolve_environment("2.0.9", "lightning", envs)["python"] == "3.10"
    assert resolve_environment("2.6.6", "pytorch-lightning", envs)["python"] == "3.11"


def test_later_entries_override_and_pins_accumulate():
    envs = [
        {"releases": ">=1.0", "python": "3.8", "pins": ["numpy<2"]},
        {"releases": ">=1.5,<1.6", "python": "3.9", "torch": "1.10.0", "pins": ["numpy<2", "setuptools<59.6"]},
        {"releases": ">=1.0", "package": "lightning", "python": "3.12"},
    ]
    assert resolve_environment("1.5.3", "pytorch-lightning", envs) == {
        "python": "3.9",
        "torch": "1.10.0",
        "pins": ["numpy<2", "setuptools<59.6"],
    }
    assert resolve_environment("1.4.0", "lightning", envs) == {"python": "3.12", "torch": None, "pins": ["numpy<2"]}


# ------------------------------------------------------------------------------------ refusals
def test_existing_release_is_refused_without_force(golden_dir):
    before = _snapshot(golden_dir)
    with pytest.raises(GoldenBuildError, match=r"golden/1\.6\.5 already exists; pass --force"):
        add_release("1.6.5", golden_dir=golden_dir, log=lambda m: None)
    assert _snapshot(golden_dir) == before


def test_registry_entries_alone_also_count_as_existing(golden_dir):
    with pytest.raises(GoldenBuildError, match=r"golden/1\.2\.10 already exists"):
        add_release("1.2.10", golden_dir=golden_dir, log=lambda m: None)


def test_post_releases_share_the_base_golden(golden_dir):
    with pytest.raises(GoldenBuildError, match=r"1\.5\.10\.post0 is a re-upload.*1\.5\.10"):
        add_release("1.5.10.post0", golden_dir=golden_dir, log=lambda m: None)


def test_unknown_release_is_refused(golden_dir):
    with pytest.raises(GoldenBuildError, match="not on PyPI"):
        add_release("0.0.999", golden_dir=golden_dir, log=lambda m: None)


def test_cli_add_refusal_exits_with_golden_error_code(golden_dir, capsys):
    assert cli.main(["golden", "add", "1.6.5", "--golden-dir", str(golden_dir)]) == GoldenError.exit_code
    assert "already exists; pass --force" in capsys.readouterr().err


def test_a_build_of_scenarios_the_release_lacks_records_their_reasons_only():
    skipped = {"scenarios": {}, "failed": {}, "skipped": {"cli_saved": "LightningCLI exists from Lightning 1.3"}}
    building.check_made(skipped, ["cli_saved"], "1.1.8")  # meta.json records the reason
    with pytest.raises(GoldenBuildError, match="recipe made no scenario for 1.1.8"):
        building.check_made(skipped, None, "1.1.8")  # a whole release that makes nothing is an error
    with pytest.raises(GoldenBuildError, match="recipe made no scenario"):
        building.check_made({**skipped, "failed": {"end_of_fit": "boom"}}, ["cli_saved", "end_of_fit"], "1.1.8")


def test_cli_parses_every_add_option():
    parser = cli.build_parser()
    args = parser.parse_args(
        "golden add 2.0.9 --scenario end_of_fit --scenario mid_epoch --python 3.10 --torch 2.0.1 "
        "--package lightning --force --accelerator gpu --golden-dir somewhere --with jsonargparse[signatures]".split()
    )
    assert args.with_reqs == ["jsonargparse[signatures]"]  # the built-in recipe's cli_saved needs it
    assert (
        args.release,
        args.scenarios,
        args.python,
        args.torch,
        args.package,
        args.force,
        args.accelerator,
        args.golden_dir,
    ) == (
        "2.0.9",
        ["end_of_fit", "mid_epoch"],
        "3.10",
        "2.0.1",
        "lightning",
        True,
        "gpu",
        Path("somewhere"),
    )
    assert args.func is cli.suite._cmd_golden_add
    assert parser.parse_args(["golden", "list", "--missing", "1.0.0..1.1.0"]).func is cli.suite._cmd_golden_list


# ---------------------------------------------------------------------------- all or nothing
def _tooling_available() -> bool:
    try:
        building.find_python("3.9")
    except GoldenBuildError:
        return False
    return bool(shutil.which("uv"))


@pytest.mark.skipif(not _tooling_available(), reason="needs uv and a pyenv Python 3.9")
def test_failed_build_leaves_golden_untouched(golden_dir, tmp_path):
    """An impossible torch pin fails the install: no folder, no registry change, no leftovers."""
    before = _snapshot(golden_dir)
    build_root = tmp_path / "build"
    with pytest.raises(GoldenBuildError, match="installing pytorch-lightning==1.6.4 failed"):
        add_release("1.6.4", golden_dir=golden_dir, torch="0.0.1", build_root=build_root, log=lambda m: None)
    assert _snapshot(golden_dir) == before
    assert sorted(p.name for p in golden_dir.iterdir()) == [
        "1.6.5",
        "environments.toml",
        "pypi-release-dates.json",
        "recipes",
        "registry.txt",
    ]
    assert not (build_root / "1.6.4").exists() and not (build_root / ".envs" / "1.6.4").exists()


@pytest.mark.skipif(not _tooling_available(), reason="needs uv and a pyenv Python 3.9")
def test_failed_recipe_leaves_golden_untouched(golden_dir, tmp_path):
    """The environment installs, the recipe fails (unknown scenario): nothing reaches golden/."""
    before = _snapshot(golden_dir)
    with pytest.raises(GoldenBuildError, match="recipe under pytorch-lightning 1.6.4 failed"):
        add_release(
            "1.6.4",
            golden_dir=golden_dir,
            scenarios=["no_such_scenario"],
            build_root=tmp_path / "b",
            log=lambda m: None,
        )
    assert _snapshot(golden_dir) == before


# ---------------------------------------------------------------------------------- golden list
def test_list_present_goldens(golden_dir):
    rows = list_goldens(golden_dir)
    assert [(r["release"], r["scenarios"], r["bytes"]) for r in rows] == [
        ("1.2.10", ["end_of_fit"], 0),
        ("1.6.5", ["end_of_fit"], len(b"not really a checkpoint")),
    ]


def test_list_missing_skips_prereleases_posts_and_present(golden_dir):
    rows = list_goldens(golden_dir, "1.6.0..1.6.5", log=lambda m: None)
    assert [r["release"] for r in rows] == ["1.6.0", "1.6.1", "1.6.2", "1.6.3", "1.6.4"]


def test_list_missing_needs_a_range(golden_dir):
    with pytest.raises(GoldenBuildError, match="expects A..B"):
        list_goldens(golden_dir, "1.6.0")


# ------------------------------------------------------------------------------ end to end (slow)
@pytest.mark.slow
@pytest.mark.skipif(not _tooling_available(), reason="needs uv and a pyenv Python 3.9")
def test_real_golden_add_end_to_end(tmp_path, request):
    """Install pytorch-lightning 1.6.4 as of its release date and save one real golden."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("opt in with -m slow (downloads torch and builds a real environment)")
    root = tmp_path / "golden"
    (root / "recipes").mkdir(parents=True)
    shutil.copy(REPO_GOLDEN / "recipes" / "recipe.py", root / "recipes" / "recipe.py")
    shutil.copy(REPO_GOLDEN / "environments.toml", root / "environments.toml")
    shutil.copy(REPO_GOLDEN / "pypi-release-dates.json", root / "pypi-release-dates.json")
    build_root = Path("/golden-build") / f"test-{uuid.uuid4().hex[:8]}"  # neutral, as in real builds
    try:
        summary = add_release(
            "1.6.4", golden_dir=root, scenarios=["end_of_fit"], build_root=build_root, log=lambda m: None
        )
    finally:
        shutil.rmtree(build_root, ignore_errors=True)
    assert summary["added"] == ["1.6.4/end_of_fit.ckpt"] and summary["removed"] == []
    ckpt = root / "1.6.4" / "end_of_fit.ckpt"
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert read_registry(root) == {"1.6.4/end_of_fit.ckpt": f"sha256:{digest}"}
    meta = json.loads((root / "1.6.4" / "meta.json").read_text())
    assert (meta["release"], meta["package"], meta["python"][:4], meta["pins"]) == (
        "1.6.4",
        "pytorch-lightning",
        "3.9.",
        ["setuptools<82"],
    )
    entry = meta["scenarios"]["end_of_fit"]
    assert (entry["sha256"], entry["saved_version"], entry["saved"]["epoch"], entry["saved"]["global_step"]) == (
        digest,
        "1.6.4",
        2,
        8,
    )
    truth = entry["truth"]
    assert (truth["completed_epochs"], truth["optimizer_steps"], truth["batches_in_current_epoch"]) == (2, [8], 0)
    assert truth["schedulers"] == [{"last_epoch": 2, "_step_count": 3, "_last_lr": [0.0025]}]
    for private in (b"/work/", b"/root/", b"/tmp/", b"/home/"):
        assert private not in ckpt.read_bytes()
    assert not any(p.name.startswith(".") for p in root.iterdir())

    # Rebuilding one scenario keeps the others (how a GPU scenario joins a CPU-built release).
    try:
        again = add_release(
            "1.6.4", golden_dir=root, scenarios=["mid_epoch"], force=True, build_root=build_root, log=lambda m: None
        )
    finally:
        shutil.rmtree(build_root, ignore_errors=True)
    assert (again["added"], again["removed"]) == (["1.6.4/mid_epoch.ckpt"], [])
    meta = json.loads((root / "1.6.4" / "meta.json").read_text())
    assert sorted(meta["scenarios"]) == ["end_of_fit", "mid_epoch"]
    assert meta["scenarios"]["end_of_fit"]["sha256"] == digest
    assert meta["scenarios"]["mid_epoch"]["truth"]["optimizer_steps"] == [6]
    assert sorted(read_registry(root)) == ["1.6.4/end_of_fit.ckpt", "1.6.4/mid_epoch.ckpt"]
    assert ckpt.read_bytes() and hashlib.sha256(ckpt.read_bytes()).hexdigest() == digest
