"""Version stamps: with a team catalogue registered, checkpoints saved through CheckpointUpgrade or
install() carry its version key, so the catalogue later knows they need none of its older units."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("pytorch_lightning")

import pytest_ckpt_compat.lightning as integration  # noqa: E402
from pytest_ckpt_compat.core.catalogue import Catalogue, register_catalogue, unregister_catalogue  # noqa: E402
from pytest_ckpt_compat.core.engine import plan  # noqa: E402
from pytest_ckpt_compat.core.stamps import owns  # noqa: E402
from pytest_ckpt_compat.lightning import CheckpointUpgrade  # noqa: E402


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.net(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)


class OwnStamp(Tiny):
    def on_save_checkpoint(self, checkpoint):
        checkpoint["team_version"] = "0.9.0"


@pytest.fixture
def team(tmp_path):
    """A registered team catalogue at release 1.2.0 with one unit from 1.1.0."""
    folder = tmp_path / "team_migrations"
    folder.mkdir()
    (folder / "v1_1_0__10_rename.py").write_text(
        '"""1.1 renamed a key."""\nID = "team-1.1-rename"\nVERSION = "1.1.0"\n\n\ndef upgrade(c):\n    return c\n'
    )

    def register(**options):
        return register_catalogue(
            Catalogue(name="team", path=folder, version_key="team_version", target_version="1.2.0", **options)
        )

    yield register
    unregister_catalogue("team")


def _fit_and_save(tmp_path, model, *callbacks, weights=False):
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "auto", save_weights_only=weights), *callbacks],
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(model)
    trainer.save_checkpoint(tmp_path / "manual.ckpt")
    trainer.save_checkpoint(tmp_path / "weights.ckpt", weights_only=True)
    assert {f.name for f in (tmp_path / "auto").iterdir()} == {"epoch=0-step=2.ckpt"}
    files = [tmp_path / "manual.ckpt", tmp_path / "weights.ckpt", *sorted((tmp_path / "auto").glob("*.ckpt"))]
    return [torch.load(f, weights_only=True) for f in files]


def test_checkpoint_upgrade_stamps_every_save_and_the_catalogue_then_skips_its_older_units(tmp_path, team):
    catalogue = team()
    saved = _fit_and_save(tmp_path, Tiny(), CheckpointUpgrade())
    # after fit the callback's hook stamps full saves; Lightning runs no callback hook on a weights-only one
    assert [c.get("team_version") for c in saved] == ["1.2.0", None, "1.2.0"]
    assert plan(saved[0], catalogues=[catalogue]) == []
    unstamped = dict(saved[0])
    del unstamped["team_version"]
    assert plan(unstamped, catalogues=[catalogue]) == []  # undated, unrecognised: not the team's file
    recognizing = team(recognizes=lambda checkpoint: "net.weight" in checkpoint.get("state_dict", {}))
    assert [m.id for m in plan(unstamped, catalogues=[recognizing])] == ["team-1.1-rename"]


def test_a_weights_only_save_during_fit_is_stamped_too(tmp_path, team):
    team()
    auto = _fit_and_save(tmp_path, Tiny(), CheckpointUpgrade(), weights=True)[2]
    assert "optimizer_states" not in auto and auto["team_version"] == "1.2.0"


def test_without_the_callback_or_install_nothing_is_stamped(tmp_path, team):
    team()
    assert [c.get("team_version") for c in _fit_and_save(tmp_path, Tiny())] == [None, None, None]


def test_install_stamps_every_save_until_uninstalled(tmp_path, team):
    team()
    with integration.install():
        assert [c.get("team_version") for c in _fit_and_save(tmp_path / "a", Tiny())] == ["1.2.0"] * 3
    assert [c.get("team_version") for c in _fit_and_save(tmp_path / "b", Tiny())] == [None] * 3


def test_a_catalogue_with_models_stamps_only_those_modules_and_a_modules_own_stamp_wins(tmp_path, team):
    catalogue = team(models=("elsewhere.Other",))
    assert not owns(catalogue, Tiny()) and owns(team(models=(Tiny,)), OwnStamp())
    assert owns(team(models=(f"{Tiny.__module__}.Tiny",)), OwnStamp)
    team(models=("elsewhere.Other",))
    assert _fit_and_save(tmp_path / "a", Tiny(), CheckpointUpgrade())[0].get("team_version") is None
    team(models=(Tiny,))
    assert _fit_and_save(tmp_path / "b", OwnStamp(), CheckpointUpgrade())[0]["team_version"] == "0.9.0"
