"""The example team package (``examples/teamnet``): two real releases, their goldens and their catalogue.

Release 1 (teamnet 1.0.0, Lightning 1.9) pickles ``teamnet.losses.SmoothL1`` into its checkpoints;
release 2 (2.0.0, Lightning 2.x) renamed ``encoder`` to ``backbone`` and ``hidden`` to ``width``,
moved the loss to ``teamnet.nn.losses`` and added a stateful callback. Each release is built into a
wheel and installed on its own (``wheels``); what needs one runs in a subprocess with only that
release importable (``release_report.py``, one process per release). The goldens are committed;
these tests check that they are what each release saved, and that release 2's catalogue is what
makes release 1's files load under it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from .wheels import DRIFT_VERSION, EXAMPLE

REPORT = Path(__file__).resolve().parent / "release_report.py"
GOLDENS = EXAMPLE / "goldens"
SCENARIOS = ("end_of_fit", "mid_epoch")
BUILTIN_GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "1.9.5" / "end_of_fit.ckpt"
WIDTH, LR, BETA = 6, 0.05, 0.5  # the recipes' configuration (teamnet.goldens)
UNITS = ["teamnet-2.0-smoothl1-moved", "teamnet-2.0-encoder-renamed-backbone", "teamnet-2.0-hidden-renamed-width"]


def goldens(release: str) -> list[str]:
    return [str(GOLDENS / release / f"{scenario}.ckpt") for scenario in SCENARIOS]


def meta(release: str) -> dict:
    return json.loads((GOLDENS / release / "meta.json").read_text())


@pytest.fixture(scope="module")
def reports(teamnet_releases):
    """Each release's report: its own facts, its goldens as it reads them; release 2 also upgrades release 1's."""
    return {
        "1.0.0": teamnet_releases["1.0.0"].json(REPORT, "--saved", *goldens("1.0.0")),
        "2.0.0": teamnet_releases["2.0.0"].json(
            REPORT, "--saved", *goldens("2.0.0"), "--upgrade", *goldens("1.0.0"), "--other", str(BUILTIN_GOLDEN)
        ),
        DRIFT_VERSION: teamnet_releases[DRIFT_VERSION].json(REPORT),
    }


@pytest.mark.parametrize(
    ("release", "modules", "state_dict", "hparams"),
    [
        ("1.0.0", ["teamnet.losses"], ["encoder.weight", "encoder.bias", "head.weight", "head.bias"], "hidden"),
        (
            "2.0.0",
            ["teamnet.nn.losses", "teamnet.callbacks"],
            ["backbone.weight", "backbone.bias", "head.weight", "head.bias"],
            "width",
        ),
        (
            DRIFT_VERSION,
            ["teamnet.nn.losses", "teamnet.callbacks"],
            ["output_scale", "backbone.weight", "backbone.bias", "head.weight", "head.bias"],
            "width",
        ),
    ],
)
def test_each_release_is_its_own_installed_distribution(
    teamnet_releases, reports, release, modules, state_dict, hparams
):
    assert teamnet_releases[release].wheel.name == f"teamnet-{release}-py3-none-any.whl"
    assert reports[release]["facts"] == {
        "version": release,
        "modules": modules,
        "state_dict": state_dict,
        "hparams": sorted([hparams, "lr", "loss"]),
    }


@pytest.mark.parametrize("release", ["1.0.0", "2.0.0"])
def test_the_registry_holds_each_golden_with_its_hash(release):
    registry = dict(line.split() for line in (GOLDENS / "registry.txt").read_text().splitlines() if line.strip())
    for path in goldens(release):
        data = Path(path).read_bytes()
        assert registry[f"{release}/{Path(path).name}"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert meta(release)["scenarios"][Path(path).stem]["size"] == len(data) < 16_000  # a tiny model: a few KB


def test_release_1_goldens_are_what_lightning_1_9_5_saved(reports):
    info = meta("1.0.0")
    assert (info["package"], info["release"], info["lightning_version"]) == ("teamnet", "1.0.0", "1.9.5")
    assert info["python"].startswith("3.10.")
    for path in goldens("1.0.0"):
        assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == ["teamnet.losses.SmoothL1"]
        saved = reports["1.0.0"]["saved"][path]
        assert saved["lightning"] == "1.9.5"
        assert saved["teamnet_version"] is None  # release 1 wrote no version key: compat.is_teamnet_file knows it
        assert saved["hparams"] == {"hidden": WIDTH, "lr": LR}
        assert saved["loss"] == ["teamnet.losses.SmoothL1", BETA]
        assert sorted(saved["weights"]) == ["encoder.bias", "encoder.weight", "head.bias", "head.weight"]
        assert saved["callbacks"] == ["EarlyStopping", "ModelCheckpoint"]


def test_release_2_goldens_carry_the_version_stamp_and_the_callback_state(reports):
    info = meta("2.0.0")
    assert (info["package"], info["release"]) == ("teamnet", "2.0.0")
    assert int(info["lightning_version"].split(".")[0]) >= 2
    counted = {"end_of_fit": 8, "mid_epoch": 6}  # 4 batches an epoch; mid_epoch saves after batch 1 of epoch 1
    for path, scenario in zip(goldens("2.0.0"), SCENARIOS):
        assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == ["teamnet.nn.losses.SmoothL1"]
        saved = reports["2.0.0"]["saved"][path]
        assert saved["lightning"] == info["lightning_version"]
        assert saved["teamnet_version"] == "2.0.0"
        assert saved["hparams"] == {"width": WIDTH, "lr": LR}
        assert saved["loss"] == ["teamnet.nn.losses.SmoothL1", BETA]
        assert saved["callbacks"] == ["BatchCounter", "EarlyStopping", "ModelCheckpoint"]
        assert saved["callback_states"] == {"BatchCounter": {"batches": counted[scenario]}}


def test_without_the_team_catalogue_release_2_cannot_load_release_1_goldens(reports):
    for path in goldens("1.0.0"):
        failed = reports["2.0.0"]["upgraded"]["without"][path]
        assert failed["safe"][0] == "UnsafeCheckpoint"
        assert "refusing to unpickle globals outside the allowlist: teamnet.losses.SmoothL1." in failed["safe"][1]
        assert failed["trusted"][0] == "MissingGlobal"
        assert "pickles teamnet.losses.SmoothL1, which cannot be imported here" in failed["trusted"][1]
        assert "No module named 'teamnet.losses'" in failed["trusted"][1]
        assert failed["lightning"] == ["ModuleNotFoundError", "No module named 'teamnet.losses'"]  # what users see


def test_the_team_catalogue_upgrades_release_1_goldens_into_release_2s_layout(reports):
    upgraded = reports["2.0.0"]["upgraded"]
    for path in goldens("1.0.0"):
        before = reports["1.0.0"]["saved"][path]["weights"]
        renamed = {key.replace("encoder.", "backbone.", 1): value for key, value in before.items()}
        after = upgraded["with"][path]
        assert after["hparams"] == {"width": WIDTH, "lr": LR}
        assert after["loss"] == ["teamnet.nn.losses.SmoothL1", BETA]
        assert after["weights"] == renamed  # the same tensors, exactly, under the new names
        assert after["teamnet_version"] == "2.0.0"
        assert after["ledger"] == {
            "applied": UNITS,
            "redirects": {"teamnet.losses.SmoothL1": "teamnet.nn.losses.SmoothL1"},
        }
        # and release 2's own loader builds the model from it (pytest_ckpt_compat.lightning.load_from_checkpoint)
        assert after["model"] == {"width": WIDTH, "loss": "teamnet.nn.losses", "weights": renamed}
    assert upgraded["other_file_is_left_alone"] is True  # a plain Lightning golden is not teamnet's
