"""`ckpt-compat` end to end on real files (in-process `main`, plus one real console-script run)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest
import torch

from pytest_ckpt_compat import lightning_catalogue, plan
from pytest_ckpt_compat.cli import main
from pytest_ckpt_compat.core.versions import installed_lightning_version

CURRENT = installed_lightning_version()


def old_checkpoint(version="1.9.5", **extra):
    """Hand-made: a small 1.9-era checkpoint (string callback keys, 1.9 loop layout skipped)."""
    ckpt = {
        "epoch": 1,
        "global_step": 8,
        "pytorch-lightning_version": version,
        "state_dict": {"net.weight": torch.arange(6.0).reshape(2, 3), "net.bias": torch.zeros(2)},
        "callbacks": {
            "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}": {
                "wait_count": 0,
                "stopped_epoch": 0,
                "best_score": torch.tensor(0.5),
                "patience": 3,
            }
        },
        "optimizer_states": [],
        "lr_schedulers": [],
    }
    ckpt.update(extra)
    return ckpt


@pytest.fixture
def old_file(tmp_path):
    path = tmp_path / "old.ckpt"
    torch.save(old_checkpoint(), path)
    return path


def test_upgrade_to_output_leaves_input_untouched(old_file, tmp_path, capsys):
    before = old_file.read_bytes()
    out = tmp_path / "new.ckpt"
    assert main(["upgrade", str(old_file), "-o", str(out)]) == 0
    assert old_file.read_bytes() == before
    new = torch.load(out, weights_only=True)
    assert new["pytorch-lightning_version"] == CURRENT and new["legacy_pytorch-lightning_version"] == "1.9.5"
    assert new["ckpt_compat"]["applied"]["lightning"]  # the ledger names what ran
    assert torch.equal(new["state_dict"]["net.weight"], torch.arange(6.0).reshape(2, 3))
    assert f"1.9.5 -> {CURRENT}" in capsys.readouterr().out


def test_in_place_keeps_a_backup_and_is_idempotent(old_file, capsys):
    before = old_file.read_bytes()
    assert main(["upgrade", str(old_file), "--in-place"]) == 0
    backup = old_file.with_name("old.ckpt.bak")
    assert backup.read_bytes() == before
    assert torch.load(old_file, weights_only=True)["pytorch-lightning_version"] == CURRENT
    upgraded = old_file.read_bytes()
    assert main(["upgrade", str(old_file), "--in-place"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert old_file.read_bytes() == upgraded and backup.read_bytes() == before
    assert sorted(p.name for p in old_file.parent.iterdir()) == ["old.ckpt", "old.ckpt.bak"]


def test_no_backup(old_file):
    assert main(["upgrade", str(old_file), "--in-place", "--no-backup"]) == 0
    assert not old_file.with_name("old.ckpt.bak").exists()


def test_folders_recurse_and_one_bad_file_does_not_stop_the_others(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    good = [tmp_path / "a.ckpt", tmp_path / "sub" / "b.ckpt"]
    for path in good:
        torch.save(old_checkpoint(), path)
    bad = tmp_path / "sub" / "broken.ckpt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    other = tmp_path / "sub" / "notes.other"
    other.write_bytes(b"left alone")
    assert main(["upgrade", str(tmp_path), "--in-place", "--no-backup"]) == 5
    for path in good:
        assert torch.load(path, weights_only=True)["pytorch-lightning_version"] == CURRENT
    assert bad.read_bytes() == b"PK\x03\x04 truncated" and other.read_bytes() == b"left alone"
    err = capsys.readouterr().err
    assert "FAILED" in err and "broken.ckpt" in err and "1 of 3 checkpoint(s) failed" in err


def test_dry_run_prints_the_plan_and_writes_nothing(old_file, capsys):
    before = old_file.read_bytes()
    assert main(["upgrade", str(old_file), "--dry-run"]) == 0
    out = capsys.readouterr().out
    expected = [m.id for m in plan(old_checkpoint())]
    assert expected and all(mid in out for mid in expected)
    assert old_file.read_bytes() == before and sorted(os.listdir(old_file.parent)) == ["old.ckpt"]


def test_target_version_and_too_new(old_file, tmp_path, capsys):
    out = tmp_path / "t.ckpt"
    assert main(["upgrade", str(old_file), "-o", str(out), "--target", "2.0.0"]) == 0
    assert torch.load(out, weights_only=True)["pytorch-lightning_version"] == "2.0.0"
    assert main(["upgrade", str(old_file), "-o", str(out), "--target", "1.5.0"]) == 4
    assert "newer than the target 1.5.0" in capsys.readouterr().err


def test_unsafe_file_needs_trust(tmp_path, capsys):
    path = tmp_path / "ns.ckpt"
    torch.save(old_checkpoint(hyper_parameters=argparse.Namespace(lr=0.1)), path)
    assert main(["upgrade", str(path), "-o", str(tmp_path / "o.ckpt")]) == 6
    assert "argparse.Namespace" in capsys.readouterr().err and not (tmp_path / "o.ckpt").exists()
    assert main(["upgrade", str(path), "-o", str(tmp_path / "o.ckpt"), "--trust"]) == 0


def test_not_a_lightning_checkpoint_lists_keys(tmp_path, capsys):
    path = tmp_path / "weights.pt"
    torch.save({"layer.weight": torch.ones(1)}, path)
    assert main(["inspect", str(path)]) == 3
    assert "'layer.weight'" in capsys.readouterr().err
    assert main(["upgrade", str(path), "-o", str(tmp_path / "o.ckpt"), "--assume-version", "0.7.6"]) == 0


def test_sharded_folder_upgrades_only_the_metadata(tmp_path):
    folder = tmp_path / "fsdp.ckpt"
    folder.mkdir()
    torch.save(old_checkpoint("2.0.0"), folder / "meta.pt")
    shard = folder / "__0_0.distcp"
    shard.write_bytes(b"shard bytes that must never be read or rewritten")
    stat = shard.stat()
    assert main(["upgrade", str(tmp_path), "--in-place"]) == 0
    assert torch.load(folder / "meta.pt", weights_only=True)["pytorch-lightning_version"] == CURRENT
    assert (folder / "meta.pt.bak").exists()
    assert shard.stat().st_mtime_ns == stat.st_mtime_ns and shard.read_bytes().startswith(b"shard bytes")
    assert main(["upgrade", str(folder), "-o", str(tmp_path / "x")]) == 2


def test_inspect_json(old_file, capsys):
    assert main(["inspect", str(old_file), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["saved_version"] == "1.9.5" and info["format"] == "zip" and info["ledger"] is None
    assert "state_dict" in info["top_level_keys"] and [s["id"] for s in info["plan"]]


def test_migrations_lists_the_catalogue_in_order(capsys):
    assert main(["migrations", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows if r["catalogue"] == "lightning"] == [m.id for m in lightning_catalogue().migrations]
    assert [r["id"] for r in rows if r["any_target"]] == [
        "pl-2.6.0-scheduler-functions-as-data",
        "pl-2.6.0-hparams-paths-as-strings",
    ]
    assert main(["migrations"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("paths become their string. (reader-side: any target)")


def test_console_script_runs(old_file, tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "ckpt-compat")
    done = subprocess.run(
        [exe, "upgrade", str(old_file), "-o", str(tmp_path / "n.ckpt")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    bad = subprocess.run(
        [exe, "upgrade", str(tmp_path / "missing.ckpt"), "-o", str(tmp_path / "m.ckpt")], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "missing.ckpt" in bad.stderr


def test_matrix_forwards_pytest_options(tmp_path):
    """The report goes beside the golden cache, not into the working folder (no stray file in git status)."""
    exe = os.path.join(os.path.dirname(sys.executable), "ckpt-compat")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    done = subprocess.run(
        [exe, "matrix", "-k", "2.6.6 and end_of_fit and (upgrade or weights_only)", "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=checkout,
        env={**os.environ, "CKPT_COMPAT_CACHE": str(tmp_path / "cache")},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "passed" in done.stdout and " failed" not in done.stdout.replace("0 failed", "")
    assert list(checkout.iterdir()) == []
    report = tmp_path / "cache" / "reports" / "ckpt-compat-report.md"
    assert f"ckpt-compat matrix: report written to {report}" in done.stdout
    assert report.read_text().startswith("# Checkpoint compatibility matrix")
    assert "re-run only those" not in done.stdout
    rejected = subprocess.run([exe, "inspect", "-k", "x"], capture_output=True, text=True)
    assert rejected.returncode == 2 and "unrecognized arguments: -k" in rejected.stderr


def test_rerun_command_keeps_the_options_and_selects_exactly_the_failures():
    from pytest_ckpt_compat.cli import rerun_command

    command = rerun_command(
        ["-n", "2", "-k", "1.6", "--ckpt-compat-check", "--"],
        ["test_golden[1.9.5-end_of_fit-load]", "test_migration[pl-2.0.0-x]", "test_schema_drift"],
    )
    expression = "[1.9.5-end_of_fit-load] or [pl-2.0.0-x] or test_schema_drift"
    assert command == f"ckpt-compat matrix -n 2 --ckpt-compat-check -k '{expression}'"


def test_rerun_expression_selects_exactly_the_failed_tests(pytester):
    """The hint's -k expression, run by pytest itself, selects the failures and nothing else."""
    from pytest_ckpt_compat.commands import Failures as _Failures
    from pytest_ckpt_compat.commands import rerun_command

    pytester.makepyfile(
        test_cells="""
import pytest

@pytest.mark.parametrize(
    "cell", ["1.9.5-end_of_fit-load", "lightning-1.9.5-end_of_fit-load", "1.9.5-end_of_fit-resume"]
)
def test_golden(cell):
    assert cell != "1.9.5-end_of_fit-load"
"""
    )
    failures = _Failures()
    pytester.runpytest("-p", "no:ckpt_compat", plugins=[failures]).assert_outcomes(passed=2, failed=1)
    assert failures.names == ["test_golden[1.9.5-end_of_fit-load]"]
    expression = rerun_command([], failures.names).split(" -k ", 1)[1].strip("'")
    pytester.runpytest("-p", "no:ckpt_compat", "-k", expression).assert_outcomes(failed=1, deselected=2)
