"""The engine on a small hand-made catalogue: order, version window, ledger, stamps, errors."""

from __future__ import annotations

import textwrap

import pytest
import torch

from pytest_ckpt_compat import (
    Catalogue,
    CheckpointTooNew,
    InvalidVersion,
    MigrationError,
    NotALightningCheckpoint,
    plan,
    upgrade,
)
from pytest_ckpt_compat.core.engine import LEDGER_KEY, applied_ids


def write_unit(folder, stem, uid, version, order=0, body="checkpoint.setdefault('trail', []).append(ID)"):
    (folder / f"{stem}.py").write_text(
        textwrap.dedent(
            f'''\
            """Hand-made unit {uid} for engine tests."""
            ID = {uid!r}
            VERSION = {version!r}
            ORDER = {order}


            def upgrade(checkpoint):
                {body}
                return checkpoint
            '''
        )
    )


@pytest.fixture
def catalogue(tmp_path):
    folder = tmp_path / "units"
    folder.mkdir()
    write_unit(folder, "v1_6_0__20_second", "b", "1.6.0", order=20)
    write_unit(folder, "v1_6_0__10_first", "a", "1.6.0", order=10)
    write_unit(folder, "v0_10_0__10_oldest", "old", "0.10.0")
    write_unit(folder, "v2_0_0__10_newest", "new", "2.0.0")
    return Catalogue(name="lightning", path=folder, target_version="2.6.6")


def test_order_is_version_then_explicit_order(catalogue):
    assert [m.id for m in catalogue.migrations] == ["old", "a", "b", "new"]
    assert catalogue.migrations[0].title == "Hand-made unit old for engine tests."


def test_plan_and_upgrade_apply_the_window_between_saved_and_target(catalogue):
    ckpt = {"pytorch-lightning_version": "1.5.10", "state_dict": {"w": torch.ones(2)}}
    weights = ckpt["state_dict"]["w"]
    assert [m.id for m in plan(ckpt, catalogues=[catalogue])] == ["a", "b", "new"]
    out = upgrade(ckpt, catalogues=[catalogue])
    assert out is ckpt and out["state_dict"]["w"] is weights  # in place, tensors untouched
    assert ckpt["trail"] == ["a", "b", "new"]
    assert ckpt["pytorch-lightning_version"] == "2.6.6"
    assert ckpt["legacy_pytorch-lightning_version"] == "1.5.10"
    assert ckpt[LEDGER_KEY]["applied"] == {"lightning": ["a", "b", "new"]}
    assert ckpt[LEDGER_KEY]["tool_version"] == "0.1.0"


def test_target_limits_migrations_and_is_the_stamp(catalogue):
    ckpt = {"pytorch-lightning_version": "0.9.0"}
    upgrade(ckpt, "1.6.0", catalogues=[catalogue])
    assert ckpt["trail"] == ["old", "a", "b"]
    assert ckpt["pytorch-lightning_version"] == "1.6.0"
    upgrade(ckpt, "2.6.6", catalogues=[catalogue])
    assert ckpt["trail"] == ["old", "a", "b", "new"]
    assert ckpt["legacy_pytorch-lightning_version"] == "0.9.0"  # the first original is kept


def test_rerun_is_a_noop_even_after_the_catalogue_grows(catalogue, tmp_path):
    ckpt = {"pytorch-lightning_version": "1.0.0"}
    upgrade(ckpt, catalogues=[catalogue])
    assert plan(ckpt, catalogues=[catalogue]) == []
    upgrade(ckpt, catalogues=[catalogue])
    assert ckpt["trail"] == ["a", "b", "new"]
    # a unit added later for an old change still reaches a checkpoint upgraded before it existed
    write_unit(catalogue.path, "v1_2_0__10_late", "late", "1.2.0")
    grown = Catalogue(name="lightning", path=catalogue.path, target_version="2.6.6")
    assert [m.id for m in plan(ckpt, catalogues=[grown])] == ["late"]
    upgrade(ckpt, catalogues=[grown])
    assert ckpt["trail"][-1] == "late" and applied_ids(ckpt) == ["a", "b", "new", "late"]


def test_reader_side_units_run_whatever_the_target_but_only_on_older_content(catalogue):
    (catalogue.path / "v2_6_0__10_reader.py").write_text(
        '"""Reader-side unit."""\nID = "reader"\nVERSION = "2.6.0"\nREADER_SIDE = "torch refuses it"\n'
        "def upgrade(checkpoint):\n    checkpoint.setdefault('trail', []).append(ID)\n    return checkpoint\n"
    )
    grown = Catalogue(name="lightning", path=catalogue.path, target_version="2.6.6")
    ckpt = {"pytorch-lightning_version": "1.5.10"}
    assert [m.id for m in plan(ckpt, "1.6.0", catalogues=[grown])] == ["a", "b", "reader"]
    upgrade(ckpt, "1.6.0", catalogues=[grown])
    assert ckpt["trail"] == ["a", "b", "reader"] and ckpt["pytorch-lightning_version"] == "1.6.0"
    upgrade(ckpt, "2.6.6", catalogues=[grown])  # already in the ledger: not again
    assert ckpt["trail"] == ["a", "b", "reader", "new"] and applied_ids(ckpt) == ["a", "b", "reader", "new"]
    assert plan({"pytorch-lightning_version": "2.6.1"}, "2.6.6", catalogues=[grown]) == []  # saved after it


def test_rc_and_post_releases_compare_by_pep440(catalogue):
    assert [m.id for m in plan({"pytorch-lightning_version": "1.6.0rc1"}, catalogues=[catalogue])] == ["a", "b", "new"]
    assert [m.id for m in plan({"pytorch-lightning_version": "2.0.0.post0"}, catalogues=[catalogue])] == []


def test_current_checkpoint_is_left_alone(catalogue):
    ckpt = {"pytorch-lightning_version": "2.6.6", "epoch": 3}
    upgrade(ckpt, catalogues=[catalogue])
    assert ckpt == {"pytorch-lightning_version": "2.6.6", "epoch": 3}


def test_newer_than_target_is_refused_untouched(catalogue):
    ckpt = {"pytorch-lightning_version": "9.0.0", "epoch": 1}
    with pytest.raises(CheckpointTooNew, match="9.0.0, newer than the target 2.6.6"):
        upgrade(ckpt, catalogues=[catalogue])
    assert ckpt == {"pytorch-lightning_version": "9.0.0", "epoch": 1}


def test_unversioned_payload_names_the_keys_found(catalogue):
    with pytest.raises(NotALightningCheckpoint, match="'layer.weight', 'layer.bias'"):
        upgrade({"layer.weight": 1, "layer.bias": 2}, catalogues=[catalogue])
    with pytest.raises(NotALightningCheckpoint, match="payload is a list"):
        plan([1, 2], catalogues=[catalogue])


def test_assume_version_for_files_older_than_the_version_key(catalogue):
    ckpt = {"epoch": 1, "global_step": 5}
    upgrade(ckpt, assume_version="0.7.6", catalogues=[catalogue])
    assert ckpt["legacy_pytorch-lightning_version"] == "0.7.6" and ckpt["trail"] == ["old", "a", "b", "new"]


def test_plan_is_pure_also_with_assume_version(catalogue):
    ckpt = {"epoch": 1, "global_step": 5}
    steps = plan(ckpt, assume_version="0.7.6", catalogues=[catalogue])
    assert [m.id for m in steps] == [m.id for m in catalogue.migrations]
    assert ckpt == {"epoch": 1, "global_step": 5}  # nothing written, not even the assumed version
    with pytest.raises(NotALightningCheckpoint):
        plan(ckpt, catalogues=[catalogue])  # and so a later plan without the assumption still refuses it


def test_bad_versions_are_reported(catalogue):
    with pytest.raises(InvalidVersion, match="'not-a-version'"):
        upgrade({"pytorch-lightning_version": "not-a-version"}, catalogues=[catalogue])
    with pytest.raises(InvalidVersion, match="'x.y'"):
        upgrade({"pytorch-lightning_version": "1.0.0"}, "x.y", catalogues=[catalogue])


def test_a_failing_migration_is_named(catalogue):
    write_unit(catalogue.path, "v1_7_0__10_boom", "boom", "1.7.0", body="raise KeyError('loops')")
    broken = Catalogue(name="lightning", path=catalogue.path, target_version="2.6.6")
    with pytest.raises(MigrationError, match="migration boom failed: KeyError"):
        upgrade({"pytorch-lightning_version": "1.6.5"}, catalogues=[broken])


def test_downstream_catalogue_runs_after_lightning_with_its_own_key(catalogue, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    write_unit(
        folder,
        "v0_2_0__10_rename_head",
        "mine-0.2.0-rename-head",
        "0.2.0",
        body=(
            "checkpoint['state_dict']['head'] = checkpoint['state_dict'].pop('fc', None); "
            "checkpoint.setdefault('trail', []).append(ID)"
        ),
    )
    mine = Catalogue(name="mymodel", path=folder, version_key="mymodel_version", target_version=lambda: "0.3.0")
    ckpt = {"pytorch-lightning_version": "1.9.0", "mymodel_version": "0.1.0", "state_dict": {"fc": 1}}
    upgrade(ckpt, catalogues=[catalogue, mine])
    assert ckpt["trail"] == ["new", "mine-0.2.0-rename-head"]
    assert ckpt["state_dict"] == {"head": 1}
    assert ckpt["mymodel_version"] == "0.3.0" and ckpt["legacy_mymodel_version"] == "0.1.0"
    assert ckpt[LEDGER_KEY]["applied"] == {"lightning": ["new"], "mymodel": ["mine-0.2.0-rename-head"]}
