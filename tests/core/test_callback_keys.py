"""Callback states of pre-1.5 goldens get Lightning 2.x state keys: from evidence, or stated by the user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat import upgrade
from pytest_ckpt_compat.cli import main
from pytest_ckpt_compat.core.callback_keys import parse_spec, rekey, unresolved

pl = pytest.importorskip("pytorch_lightning")
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint  # noqa: E402

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
ES_KEY = EarlyStopping(monitor="val_loss", mode="min").state_key
MC_KEY = ModelCheckpoint(monitor="val_loss").state_key


def _truth(release, scenario="end_of_fit"):
    return json.loads((GOLDEN / release / "meta.json").read_text())["scenarios"][scenario]["truth"]


@pytest.mark.parametrize("release", ["1.1.0", "1.2.10", "1.4.9"])
def test_keys_from_evidence_in_real_goldens(release, tmp_path, capsys):
    out = tmp_path / "up.ckpt"
    assert main(["upgrade", str(GOLDEN / release / "end_of_fit.ckpt"), "-o", str(out)]) == 0
    assert "not keyed" not in capsys.readouterr().err
    ckpt = torch.load(out, weights_only=True)
    assert sorted(ckpt["callbacks"]) == sorted([ES_KEY, MC_KEY])
    truth = _truth(release)["callbacks"]
    assert float(ckpt["callbacks"][ES_KEY]["best_score"]) == truth["EarlyStopping"]["best_score"]
    assert ckpt["callbacks"][ES_KEY]["wait_count"] == truth["EarlyStopping"]["wait_count"]
    recs = ckpt["ckpt_compat"]["callback_keys"]
    assert recs[ES_KEY]["from"].endswith("callbacks.early_stopping.EarlyStopping")
    assert recs[ES_KEY]["how"].startswith("monitor of the ModelCheckpoint state with the same best score")
    assert recs[MC_KEY]["how"].startswith("monitor recorded in the state")


@pytest.mark.parametrize("release", ["0.10.0", "1.0.8"])
def test_unkeyable_states_are_kept_reported_and_then_stated(release, tmp_path, capsys):
    out = tmp_path / "up.ckpt"
    assert main(["upgrade", str(GOLDEN / release / "end_of_fit.ckpt"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "callback state kept under 'ModelCheckpoint', not keyed" in err
    assert "callback state kept under 'EarlyStopping', not keyed" in err
    states = torch.load(out, weights_only=True)["callbacks"]
    assert sorted(states) == ["EarlyStopping", "ModelCheckpoint"]  # kept, not dropped

    assert main(["inspect", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert sorted(info["unkeyed_callbacks"]) == ["EarlyStopping", "ModelCheckpoint"]
    assert info["unkeyed_callbacks"]["ModelCheckpoint"] == "unresolved: the state records no monitor (Lightning < 1.1)"

    specs = [
        "--callback",
        'ModelCheckpoint{"monitor": "val_loss"}',
        "--callback",
        'EarlyStopping{"monitor": "val_loss", "mode": "min"}',
    ]
    assert main(["upgrade", str(out), "--in-place", *specs]) == 0
    assert "not keyed" not in capsys.readouterr().err
    ckpt = torch.load(out, weights_only=True)
    assert sorted(ckpt["callbacks"]) == sorted([ES_KEY, MC_KEY])
    assert ckpt["callbacks"][ES_KEY] == states["EarlyStopping"]
    assert ckpt["ckpt_compat"]["callback_keys"][MC_KEY] == {
        "from": "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
        "how": "explicit: stated by the user",
    }
    assert unresolved(ckpt) == {}


def test_upgrade_api_takes_live_callbacks_and_specs():
    from pytest_ckpt_compat import load_checkpoint

    ckpt = load_checkpoint(GOLDEN / "1.0.8" / "end_of_fit.ckpt")
    es = EarlyStopping(monitor="val_acc", mode="max")
    upgrade(ckpt, "2.6.6", callbacks=[es, 'ModelCheckpoint{"monitor": "val_acc", "mode": "max"}'])
    assert sorted(ckpt["callbacks"]) == sorted([es.state_key, ModelCheckpoint(monitor="val_acc", mode="max").state_key])
    assert unresolved(ckpt) == {}


def test_explicit_overrides_evidence_but_never_a_key_the_release_wrote():
    ckpt = {
        "callbacks": {MC_KEY: {"monitor": "val_loss"}, "Other{'x': 1}": {}},
        "ckpt_compat": {"callback_keys": {MC_KEY: {"from": "c", "how": "monitor recorded"}}},
    }
    wanted = ModelCheckpoint(monitor="val_loss", every_n_epochs=2).state_key
    assert rekey(ckpt, [ModelCheckpoint(monitor="val_loss", every_n_epochs=2)]) == [(MC_KEY, wanted)]
    assert rekey(ckpt, ['Other{"x": 2}']) == []  # written by a 1.5+ release: left alone


@pytest.mark.parametrize("bad", ["EarlyStopping", "EarlyStopping{bad", "EarlyStopping[1]", "{}"])
def test_bad_specs_are_refused(bad):
    with pytest.raises(ValueError, match="callback spec"):
        parse_spec(bad)
    with pytest.raises(SystemExit) as info:
        main(["upgrade", "x.ckpt", "--dry-run", "--callback", bad])
    assert info.value.code == 2


def test_rekey_moves_a_state_only_when_the_match_is_unique_both_ways():
    """Two states could go to the one stated callback: neither moves (the file's order decided it before)."""
    resolved = "ModelCheckpoint{'monitor': 'b'}"
    ckpt = {
        "callbacks": {"ModelCheckpoint": {"x": 1}, resolved: {"monitor": "b"}},
        "ckpt_compat": {"callback_keys": {resolved: {"from": "c", "how": "monitor recorded"}}},
    }
    assert rekey(ckpt, ['ModelCheckpoint{"monitor": "b", "mode": "max"}']) == []
    assert list(ckpt["callbacks"]) == ["ModelCheckpoint", resolved]
    assert unresolved(ckpt) == {"ModelCheckpoint": "unresolved: keyed by class name only"}


@pytest.mark.parametrize("saved_keys", [False, True])
def test_rekey_never_moves_a_state_to_a_callback_watching_another_metric(saved_keys):
    """A changed ``monitor`` starts fresh, as plain Lightning does: the saved best scores are of the
    old metric (its key says which, or the 1.1 - 1.4 state records it); a state of unknown metric moves."""
    saved = "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}"
    ckpt = {"callbacks": {saved: {"best_score": 0.5}, "ModelCheckpoint": {"monitor": "val_loss"}}}
    ckpt["ckpt_compat"] = {"callback_keys": {saved: {"from": "c", "how": "monitor from the checkpoint state"}}}
    specs = ['EarlyStopping{"monitor": "train_loss"}', 'ModelCheckpoint{"monitor": "train_loss"}']
    assert rekey(ckpt, specs, saved_keys=saved_keys) == []
    assert list(ckpt["callbacks"]) == [saved, "ModelCheckpoint"]
    unknown = {"callbacks": {"EarlyStopping": {"best_score": 0.5}}}
    assert rekey(unknown, specs[:1], saved_keys=saved_keys) == [
        ("EarlyStopping", "EarlyStopping{'monitor': 'train_loss', 'mode': 'min'}")
    ]


def test_the_trainer_path_rekeys_once_and_records_the_live_callbacks(tmp_path):
    """One algorithm, run once per load; the ledger says the key came from the Trainer's callbacks."""
    from pytest_ckpt_compat.lightning.callback import UpgradingCheckpointIO

    path = tmp_path / "old.ckpt"
    torch.save({"pytorch-lightning_version": "2.0.0", "callbacks": {"EarlyStopping": {"wait_count": 2}}}, path)
    live = EarlyStopping(monitor="val_acc", mode="max")
    trainer = type("Trainer", (), {"callbacks": [live]})()
    io = UpgradingCheckpointIO(pl.plugins.TorchCheckpointIO(), trainer, trust=False, target_version="2.0.0")
    ckpt = io.load_checkpoint(path)
    assert ckpt["callbacks"] == {live.state_key: {"wait_count": 2}}
    assert ckpt["ckpt_compat"]["callback_keys"] == {
        live.state_key: {"from": "EarlyStopping", "how": "explicit: the Trainer's live callbacks"}
    }
