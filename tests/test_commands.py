"""The command layer (``commands``) and what the CLI prints from its results; issue 20's team catalogues."""

from __future__ import annotations

import json
import textwrap
import warnings
from importlib import metadata

import pytest
import torch

import pytest_ckpt_compat
from pytest_ckpt_compat import Catalogue, CatalogueError, NotALightningCheckpoint, register_catalogue, upgrade
from pytest_ckpt_compat import upgrade_with_result as apply
from pytest_ckpt_compat.cli import main
from pytest_ckpt_compat.core import catalogue as catalogue_module
from pytest_ckpt_compat.core.catalogue import unregister_catalogue
from tests.test_cli import old_checkpoint

MC = (
    "ModelCheckpoint{{'monitor': None, 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, "
    "'train_time_interval': None{}}}"
)


@pytest.fixture
def team(tmp_path):
    """A team's catalogue ("mymodel", key ``mymodel_version``, target 0.2.0) with one unit, registered."""
    folder = tmp_path / "mymodel_migrations"
    folder.mkdir()
    (folder / "v0_2_0__10_rename_head.py").write_text(
        textwrap.dedent(
            '''\
            """mymodel 0.2.0 renamed its head."""
            ID = "mymodel-0.2.0-head"
            VERSION = "0.2.0"


            def upgrade(checkpoint):
                sd = checkpoint.get("state_dict", {})
                if "fc.weight" in sd:
                    sd["head.weight"] = sd.pop("fc.weight")
                return checkpoint
            '''
        )
    )
    mine = register_catalogue(
        Catalogue(name="mymodel", path=folder, version_key="mymodel_version", target_version="0.2.0")
    )
    yield mine
    unregister_catalogue("mymodel")


def test_apply_says_what_it_did():
    ckpt = old_checkpoint("1.5.10")
    result = apply(ckpt, "2.0.0")
    assert result.checkpoint is ckpt
    assert (result.version_before, result.version_after) == ("1.5.10", "2.0.0")
    assert [m.id for m in result.applied] == ckpt["ckpt_compat"]["applied"]["lightning"]
    assert result.catalogues == ["lightning"] and result.changed
    again = apply(ckpt, "2.0.0")
    assert (again.applied, again.rekeyed, again.changed) == ([], [], False)


def test_a_team_catalogue_applies_only_to_its_own_model(team):
    lightning_only = old_checkpoint("1.9.5", state_dict={"fc.weight": torch.ones(1)})
    result = apply(lightning_only, "2.0.0")
    assert result.catalogues == ["lightning"]
    assert "mymodel_version" not in lightning_only and "fc.weight" in lightning_only["state_dict"]
    assert list(lightning_only["ckpt_compat"]["applied"]) == ["lightning"]

    ours = old_checkpoint("1.9.5", mymodel_version="0.1.0", state_dict={"fc.weight": torch.ones(1)})
    result = apply(ours, "2.0.0")
    assert result.catalogues == ["lightning", "mymodel"]
    assert [m.id for m in result.applied][-1] == "mymodel-0.2.0-head" and "head.weight" in ours["state_dict"]
    assert ours["mymodel_version"] == "0.2.0" and list(ours["ckpt_compat"]["applied"]) == ["lightning", "mymodel"]


def test_a_team_catalogue_recognises_its_files_from_before_its_version_key(team):
    team.recognizes = lambda checkpoint: "fc.weight" in checkpoint.get("state_dict", {})
    ckpt = old_checkpoint("1.9.5", state_dict={"fc.weight": torch.ones(1)})
    assert apply(ckpt, "2.0.0").catalogues == ["lightning", "mymodel"]
    assert ckpt["mymodel_version"] == "0.2.0" and "head.weight" in ckpt["state_dict"]
    team.recognizes = lambda checkpoint: 1 / 0
    with pytest.raises(CatalogueError, match=r"catalogue 'mymodel': its recognizes\(\) predicate raised ZeroDivision"):
        apply(old_checkpoint("1.9.5"), "2.0.0")


def test_inspect_says_which_catalogues_apply(team, tmp_path, capsys):
    plain, ours = tmp_path / "plain.ckpt", tmp_path / "ours.ckpt"
    torch.save(old_checkpoint(), plain)
    torch.save(old_checkpoint(mymodel_version="0.1.0"), ours)
    assert main(["inspect", str(plain), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["catalogues"] == ["lightning"]
    assert main(["inspect", str(ours), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["catalogues"] == ["lightning", "mymodel"]
    assert [step["catalogue"] for step in info["plan"]][-1] == "mymodel"
    assert main(["inspect", str(ours)]) == 0
    assert "     catalogues: lightning, mymodel\n" in capsys.readouterr().out


def test_a_team_entry_point_that_fails_to_import_is_named(monkeypatch, capsys):
    broken = metadata.EntryPoint(
        name="teamcat", value="no_such_team_package_xyz:catalogue", group="pytest_ckpt_compat.catalogues"
    )
    monkeypatch.setattr(catalogue_module, "_entry_points", lambda: (broken,))
    with pytest.raises(CatalogueError, match=r"entry point 'teamcat' \(no_such_team_package_xyz:catalogue\)"):
        catalogue_module.all_catalogues()
    assert main(["migrations"]) == CatalogueError.exit_code
    err = capsys.readouterr().err
    assert "entry point 'teamcat'" in err and "ModuleNotFoundError" in err and "please report" not in err


def test_the_api_and_the_cli_agree_on_what_a_lightning_checkpoint_is(tmp_path, capsys):
    path = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "hyper_parameters": {"lr": 0.1}}, path)
    with pytest.raises(NotALightningCheckpoint, match="'state_dict', 'hyper_parameters'"):
        pytest_ckpt_compat.load_checkpoint(path)
    assert main(["upgrade", str(path), "-o", str(tmp_path / "out.ckpt")]) == NotALightningCheckpoint.exit_code
    assert main(["inspect", str(path)]) == NotALightningCheckpoint.exit_code
    assert "NotALightningCheckpoint" in capsys.readouterr().err
    # stating the release that saved it (Lightning < 0.8.2) is accepted by both
    assert sorted(pytest_ckpt_compat.load_checkpoint(path, assume_version="0.7.6")) == [
        "hyper_parameters",
        "state_dict",
    ]
    assert main(["upgrade", str(path), "-o", str(tmp_path / "out.ckpt"), "--assume-version", "0.7.6"]) == 0


def _colliding(path):
    states = {
        MC.format(", 'save_on_train_epoch_end': True"): {"n": 0},
        MC.format(", 'save_on_train_epoch_end': False"): {"n": 1},
    }
    torch.save(old_checkpoint("1.8.6", callbacks=states), path)
    return states


def test_colliding_callback_states_are_a_line_of_the_report_not_a_raw_warning(tmp_path, capsys):
    path = tmp_path / "collide.ckpt"
    second = list(_colliding(path))[1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["upgrade", str(path), "-o", str(tmp_path / "out.ckpt")]) == 0
    assert [
        str(w.message) for w in caught if issubclass(w.category, UserWarning) and "collides" in str(w.message)
    ] == []
    err = capsys.readouterr().err
    assert f"{path}: warning: ModelCheckpoint state {second!r} collides with another one" in err
    saved = torch.load(tmp_path / "out.ckpt", weights_only=True)
    assert list(saved["ckpt_compat"]["dropped"]) == [f"callbacks/{second}"]


def test_the_api_keeps_the_collision_warning_at_the_callers_line(tmp_path):
    ckpt = old_checkpoint(
        "1.8.6",
        callbacks={
            MC.format(", 'save_on_train_epoch_end': True"): {},
            MC.format(", 'save_on_train_epoch_end': False"): {},
        },
    )
    with pytest.warns(UserWarning, match="collides with another one") as record:
        upgrade(ckpt, "2.0.0")
    assert [w.filename for w in record] == [__file__]
    assert apply(old_checkpoint("1.8.6", callbacks={MC.format(""): {}}), "2.0.0").warnings == []  # nothing collides
