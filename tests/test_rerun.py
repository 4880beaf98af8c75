"""``upgrade --in-place`` re-runs: after a partial (``--target``) upgrade, over a folder, over a new original."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from pytest_ckpt_compat.cli import main
from pytest_ckpt_compat.core.versions import installed_lightning_version

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def _copy(tmp_path, release, scenario="end_of_fit", name=None):
    dest = tmp_path / (name or f"{release}-{scenario}.ckpt")
    shutil.copyfile(GOLDEN / release / f"{scenario}.ckpt", dest)
    return dest


def _state(path):
    ckpt = torch.load(path, weights_only=True)
    return (
        {
            k: ckpt[k]
            for k in ("epoch", "global_step", "loops", "pytorch-lightning_version", "legacy_pytorch-lightning_version")
        },
        sorted(ckpt["callbacks"]),
        # the same units; a reader-side unit already ran in a partial (--target) run, so the order may differ
        {catalogue: sorted(ids) for catalogue, ids in ckpt["ckpt_compat"]["applied"].items()},
    )


def test_partial_then_full_upgrade_reaches_the_target_and_keeps_the_first_original(tmp_path, capsys):
    file = _copy(tmp_path, "1.2.10")
    original = file.read_bytes()
    direct = _copy(tmp_path, "1.2.10", name="direct.ckpt")
    assert main(["upgrade", str(direct), "-o", str(tmp_path / "direct-out.ckpt")]) == 0

    assert main(["upgrade", str(file), "--in-place", "--target", "1.9.0"]) == 0
    partial = torch.load(file, weights_only=True)
    assert partial["pytorch-lightning_version"] == "1.9.0"
    assert partial["ckpt_compat"]["applied"]["lightning"][-2:] == [  # reader-side: whatever the target
        "pl-2.6.0-scheduler-functions-as-data",
        "pl-2.6.0-hparams-paths-as-strings",
    ]
    assert main(["upgrade", str(file), "--in-place"]) == 0  # refused before ("a different backup already exists")
    assert _state(file) == _state(tmp_path / "direct-out.ckpt")
    assert _state(file)[0]["pytorch-lightning_version"] == installed_lightning_version()
    assert (tmp_path / (file.name + ".bak")).read_bytes() == original
    assert not (tmp_path / (file.name + ".bak.2")).exists()
    assert main(["upgrade", str(file), "--in-place"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_folder_rerun_brings_every_file_to_the_target(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    partial, fresh = _copy(folder, "1.4.9", name="a.ckpt"), _copy(folder, "2.0.9", name="b.ckpt")
    originals = {p: p.read_bytes() for p in (partial, fresh)}
    assert main(["upgrade", str(partial), "--in-place", "--target", "2.0.0"]) == 0
    assert main(["upgrade", str(folder), "--in-place"]) == 0
    for path in (partial, fresh):
        assert torch.load(path, weights_only=True)["pytorch-lightning_version"] == installed_lightning_version()
        assert path.with_name(path.name + ".bak").read_bytes() == originals[path]


def test_a_new_original_next_to_an_old_backup_gets_a_numbered_backup(tmp_path):
    file = _copy(tmp_path, "1.2.10", name="model.ckpt")
    first = file.read_bytes()
    assert main(["upgrade", str(file), "--in-place"]) == 0
    shutil.copyfile(GOLDEN / "1.4.9" / "end_of_fit.ckpt", file)  # the user puts another original in place
    second = file.read_bytes()
    assert main(["upgrade", str(file), "--in-place"]) == 0
    assert (tmp_path / "model.ckpt.bak").read_bytes() == first
    assert (tmp_path / "model.ckpt.bak.2").read_bytes() == second
    assert torch.load(file, weights_only=True)["legacy_pytorch-lightning_version"] == "1.4.9"
