"""The resume checks of ``weight_averaging`` and ``stateful_loader`` on the real 2.6.6 goldens: each passes
on the file as saved and fails, naming what is lost, on a copy without the state it proves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat.goldens.store import GoldenStore
from pytest_ckpt_compat.matrix import checks, harness
from pytest_ckpt_compat.matrix.compare import CheckFailed, copy_checkpoint
from pytest_ckpt_compat.matrix.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(GoldenStore(ROOT / "golden", tmp_path / "cache"), tmp_path / "ws")


def _resume_tampered(ws: Workspace, name: str, tmp_path: Path, change, monkeypatch) -> None:
    """``check_resume`` on a copy of the upgraded golden changed by ``change`` (made here, never stored)."""
    golden = ws.store.get(name)
    broken = copy_checkpoint(ws.upgraded(golden)[0])
    change(broken)
    path = tmp_path / "tampered.ckpt"
    torch.save(broken, path)
    monkeypatch.setattr(ws, "upgraded", lambda g: (broken, path))
    checks.check_resume(ws, golden, tmp_path / "run")


def _swa_key(checkpoint: dict) -> str:
    return next(k for k in checkpoint["callbacks"] if "StochasticWeightAveraging" in str(k))


def test_weight_averaging_resumes_with_its_averaged_weights_and_count(ws, tmp_path):
    """SWA holds the restored count and SWALR state aside until its next epoch: compared as restored."""
    checks.check_resume(ws, ws.store.get("2.6.6-weight_averaging"), tmp_path)


def test_weight_averaging_without_its_averaged_state_fails_naming_it(ws, tmp_path, monkeypatch):
    def drop(checkpoint):
        del checkpoint["callbacks"][_swa_key(checkpoint)]

    with pytest.raises(CheckFailed, match="StochasticWeightAveraging: its averaged weights were recorded"):
        _resume_tampered(ws, "2.6.6-weight_averaging", tmp_path, drop, monkeypatch)


def test_weight_averaging_with_other_averaged_weights_fails_naming_them(ws, tmp_path, monkeypatch):
    def shift(checkpoint):
        state = checkpoint["callbacks"][_swa_key(checkpoint)]["average_model_state"]
        first = next(k for k, v in state.items() if v.is_floating_point())
        state[first] = state[first] + 1.0

    with pytest.raises(CheckFailed, match="StochasticWeightAveraging restored state 'average_model_state' vs truth"):
        _resume_tampered(ws, "2.6.6-weight_averaging", tmp_path, shift, monkeypatch)


def test_stateful_loader_resumes_with_the_next_batch(ws, tmp_path):
    golden = ws.store.get("2.6.6-stateful_loader")
    assert golden.truth["stateful_loader"]["next_batch"] == list(range(16, 24))
    checks.check_resume(ws, golden, tmp_path)


def test_stateful_loader_without_its_loader_state_fails_on_the_first_batch(ws, tmp_path, monkeypatch):
    """Without the saved loader state the resumed epoch starts over at sample 0: named, not only counted."""

    def drop(checkpoint):
        del checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"]

    with pytest.raises(CheckFailed, match=r"first batch trained after resuming.*\[0, 1, 2, 3, 4, 5, 6, 7\]"):
        _resume_tampered(ws, "2.6.6-stateful_loader", tmp_path, drop, monkeypatch)


def test_cli_saved_loads_through_lightnings_instantiator(ws):
    """2.6.6 writes ``_class_path``/``_instantiator``; ``load_from_checkpoint`` rebuilds the module through
    the CLI's instantiator (jsonargparse), which consumes them: the other hparams must be exactly the saved ones."""
    golden = ws.store.get("2.6.6-cli_saved")
    assert golden.truth["hparams"]["_instantiator"].endswith("cli.instantiate_module")
    checks.check_load(ws, golden)


def test_only_the_cli_entries_a_rebuilt_object_lacks_are_left_out():
    recorded = {"_class_path": "m.C", "_instantiator": "pl.cli.instantiate_module", "hidden": 12}
    assert harness.rebuilt_hparams(recorded, {"hidden": 12}) == {"hidden": 12}
    assert harness.rebuilt_hparams(recorded, {"_class_path": "m.C", "hidden": 3}) == {
        "_class_path": "m.C",
        "hidden": 12,
    }
    assert harness.rebuilt_hparams({"_class_path": "m.C", "hidden": 12}, {}) == {"_class_path": "m.C", "hidden": 12}

    nested = {"_instantiator": "pl.cli.instantiate_module", "class_path": "m.C", "init_args": {"hidden": 12}}  # 2.3.x
    assert harness.rebuilt_hparams(nested, {"hidden": 12}) == {"hidden": 12}


# ema_averaging (2.6's EMAWeightAveraging): the file's state_dict is the averaged module, current_model_state the
# live weights training goes on from, averaging_state the AveragedModel's n_averaged.
def test_ema_averaging_resumes_with_the_live_and_the_averaged_weights(ws, tmp_path):
    golden = ws.store.get("2.6.6-ema_averaging")
    assert set(golden.truth["averaged"]) == {"EMAWeightAveraging"}
    checks.check_resume(ws, golden, tmp_path)


def test_ema_averaging_load_and_evaluate_see_the_averaged_module(ws, tmp_path):
    """load_from_checkpoint and validate/test/predict restore the state_dict: the average, not the live weights."""
    golden = ws.store.get("2.6.6-ema_averaging")
    assert harness.file_weights(golden.truth)[0] != golden.truth["weights_sha256"]
    checks.run(ws, golden, "load", tmp_path / "load")
    checks.run(ws, golden, "evaluate", tmp_path / "evaluate")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: c["averaging_state"].update(n_averaged=c["averaging_state"]["n_averaged"] + 1), "averaged model"),
        (lambda c: c.pop("averaging_state"), "averaged model"),
        (lambda c: c.pop("current_model_state"), "restored weights"),
    ],
    ids=["n_averaged-off-by-one", "no-averaging-state", "no-current-model-state"],
)
def test_ema_averaging_with_its_state_changed_fails_naming_it(ws, tmp_path, monkeypatch, change, named):
    with pytest.raises(CheckFailed, match=named):
        _resume_tampered(ws, "2.6.6-ema_averaging", tmp_path, change, monkeypatch)
