"""The pre-1.6 units on real golden checkpoints saved by historical Lightning releases.

Each golden's ``meta.json`` holds ``truth`` read from the live trainer when it saved; the upgraded
file must agree with it exactly, load with ``weights_only=True``, and leave the weights untouched.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from pathlib import Path

import pytest
import torch
from packaging.version import Version

from pytest_ckpt_compat import load_checkpoint, save_checkpoint, upgrade
from pytest_ckpt_compat.core.callback_keys import unresolved
from pytest_ckpt_compat.files.loading import legacy_class_ref

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
RELEASES = ("1.0.8", "1.1.0", "1.2.10", "1.4.9", "1.5.0", "1.5.7", "1.5.10")
SCENARIOS = ("end_of_fit", "mid_epoch", "manual_opt", "ckpt_subclass", "two_checkpoints", "fault_tolerant")
MC_KEY = (
    "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', "
    "'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}"
)
OPTIM = "epoch_loop.automatic_optimization.optim_progress"
MANUAL = "epoch_loop.manual_optimization.optim_step_progress"


def _cases():
    for release in RELEASES:
        for scenario in SCENARIOS:
            yield pytest.param(release, scenario, id=f"{release}-{scenario}")


def _golden(release, scenario):
    meta_path = GOLDEN / release / "meta.json"
    if not meta_path.is_file():
        pytest.skip(f"golden {release} not generated yet")
    meta = json.loads(meta_path.read_text())
    entry = meta.get("scenarios", {}).get(scenario)
    if entry is None or entry.get("requires"):
        pytest.skip(f"{release} has no {scenario} golden ({meta.get('skipped', {}).get(scenario, 'not made')})")
    path = GOLDEN / release / entry["file"]
    if not path.is_file():
        pytest.skip(f"{path.name} of {release} not present")
    return path, entry


def _load(path, scenario):
    if scenario == "fault_tolerant":  # 1.5 _results pickle torch functions; the file is hash-listed
        return load_checkpoint(path, trust=True)
    user = legacy_class_ref("ckpt_compat_recipe", "TopKCheckpoint")  # the recipe's user subclass
    with torch.serialization.safe_globals([(user, "ckpt_compat_recipe.TopKCheckpoint")]):
        return load_checkpoint(path)


def _weights_sha(state_dict):
    digest = hashlib.sha256()
    for tensor in state_dict.values():
        flat = [float(v) for v in tensor.detach().cpu().to(torch.float32).reshape(-1).tolist()]
        digest.update(struct.pack(f"<{len(flat)}f", *flat))
    return digest.hexdigest()


def _num(value):
    if isinstance(value, torch.Tensor):
        value = value.item()
    return value


def _close(a, b):
    a, b = _num(a), _num(b)
    if isinstance(b, str):  # "inf"/"nan" in JSON
        return isinstance(a, float) and str(a) == b
    return math.isclose(a, b, rel_tol=1e-6)


@pytest.mark.parametrize(("release", "scenario"), list(_cases()))
def test_upgraded_golden_matches_truth(release, scenario, tmp_path):
    path, entry = _golden(release, scenario)
    truth, saved = entry["truth"], entry["saved"]
    ckpt = _load(path, scenario)
    assert ckpt["pytorch-lightning_version"] == release
    weights = list(ckpt["state_dict"].values())

    upgrade(ckpt, "2.6.6")

    # counters: originals kept; global_step = optimizer steps the file can prove
    assert ckpt["ckpt_compat"]["original_counters"] == {"epoch": saved["epoch"], "global_step": saved["global_step"]}
    provable = sum(n for n, opt in zip(truth["optimizer_steps"], truth["optimizer_state"]) if opt["step"])
    if scenario == "manual_opt":  # the SGD optimizer keeps no step count: its steps are not in the file
        assert truth["optimizer_steps"][1:] == [4] and provable == truth["optimizer_steps"][0]
    else:
        assert provable == sum(truth["optimizer_steps"])
    fit = ckpt["loops"]["fit_loop"]
    assert ckpt["global_step"] == provable
    assert fit[OPTIM]["optimizer"]["step"]["total"]["completed"] == provable
    assert fit[MANUAL]["total"]["completed"] == provable
    assert fit["epoch_loop.state_dict"]["_batches_that_stepped"] == provable

    # epoch: the saved "+1" epoch is the epoch the release resumed at (the rest of an unfinished one skipped)
    assert saved["epoch"] == truth["completed_epochs"] + (1 if truth["batches_in_current_epoch"] else 0)
    if scenario == "fault_tolerant":
        # recorded progress is kept: epoch 1 running, its 2 batches done
        assert fit["epoch_progress"]["current"]["completed"] == truth["completed_epochs"]
        assert ckpt["epoch"] == truth["completed_epochs"]
        assert fit["epoch_loop.batch_progress"]["current"]["completed"] in (
            truth["batches_in_current_epoch"],
            truth["batches_in_current_epoch"] - 1,
        )
    else:
        every = {f: saved["epoch"] for f in ("ready", "started", "processed", "completed")}
        assert fit["epoch_progress"] == {"current": every, "total": every}
        assert ckpt["epoch"] == saved["epoch"]

    # callbacks: string keys, states preserved
    callbacks = ckpt["callbacks"]
    assert all(isinstance(k, str) for k in callbacks)
    t_es, t_mc = truth["callbacks"]["EarlyStopping"], truth["callbacks"]["ModelCheckpoint"]
    if Version(release) < Version("1.5.0"):  # class keys, re-keyed by pl-1.5.0-callback-state-keys
        # ModelCheckpoint states name their `monitor` from 1.1.0 on: before, only the class is known;
        # EarlyStopping takes the monitor of the ModelCheckpoint with its best score. The subclass
        # (loaded as a marker here) is not known to be a ModelCheckpoint: both stay bare, unresolved.
        keyed = Version(release) >= Version("1.1.0") and scenario != "ckpt_subclass"
        mc_key = MC_KEY if keyed else ("TopKCheckpoint" if scenario == "ckpt_subclass" else "ModelCheckpoint")
        es_key = (
            "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}"
            if keyed and t_es["best_score"] == t_mc["best_model_score"]
            else "EarlyStopping"
        )
        assert sorted(callbacks) == sorted([es_key, mc_key])
        assert ("EarlyStopping" in unresolved(ckpt)) == (es_key == "EarlyStopping")
    else:  # Lightning's own string keys; the 1.9.0 unit drops save_on_train_epoch_end
        es_key = t_es["state_key"]
        mc_key = re.sub(", 'save_on_train_epoch_end': (None|True|False)", "", t_mc["state_key"])
    es, mc = callbacks[es_key], callbacks[mc_key]
    assert (es["wait_count"], es["stopped_epoch"], es["patience"]) == (
        t_es["wait_count"],
        t_es["stopped_epoch"],
        t_es["patience"],
    )
    assert _close(es["best_score"], t_es["best_score"])
    assert _close(mc["best_model_score"], t_mc["best_model_score"])
    assert mc["best_model_path"].endswith(t_mc["best_model_path"])

    # hyperparameters and weights untouched
    assert type(ckpt["hyper_parameters"]) is dict and ckpt["hyper_parameters"] == truth["hparams"]
    assert all(a is b for a, b in zip(ckpt["state_dict"].values(), weights))
    assert _weights_sha(ckpt["state_dict"]) == truth["weights_sha256"]

    # the written file is plain
    out = tmp_path / "up.ckpt"
    save_checkpoint(ckpt, out)
    loaded = torch.load(out, weights_only=True)
    assert loaded["global_step"] == provable and loaded["pytorch-lightning_version"] == "2.6.6"


@pytest.mark.parametrize("release", RELEASES)
def test_saved_global_step_convention(release):
    """Fact check of the "+1" convention: +1 only for saves made after fit; hooks saved == steps."""
    path, entry = _golden(release, "end_of_fit")
    assert entry["saved"]["global_step"] == sum(entry["truth"]["optimizer_steps"]) + 1
    assert (
        entry["saved"]["epoch"] == entry["truth"]["completed_epochs"] == entry["truth"]["trainer"]["current_epoch"] + 1
    )
    _, mid = _golden(release, "mid_epoch")
    assert (
        mid["saved"]["global_step"]
        == sum(mid["truth"]["optimizer_steps"])
        == mid["truth"]["trainer"]["global_step"] + 1
    )
