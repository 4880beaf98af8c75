"""The one-line integration with a real Trainer (CPU, tiny model, a few seconds)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("pytorch_lightning")
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint  # noqa: E402

from pytest_ckpt_compat.lightning import (  # noqa: E402 - after the importorskip above
    CheckpointUpgrade,
    lightning_migration_disabled,
    load_from_checkpoint,
    match_callback_states,
)  # noqa: E402


class TinyModel(pl.LightningModule):
    def __init__(self, width: int = 4, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(width, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    def train_dataloader(self):
        g = torch.Generator().manual_seed(0)
        return DataLoader(TensorDataset(torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g)), batch_size=4)

    val_dataloader = train_dataloader


def make_trainer(tmp_path, max_epochs, *callbacks):
    return pl.Trainer(
        max_epochs=max_epochs,
        callbacks=list(callbacks),
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    trainer = make_trainer(
        tmp_path,
        2,
        ModelCheckpoint(dirpath=tmp_path, monitor="val_loss"),
        EarlyStopping(monitor="val_loss", patience=5),
    )
    trainer.fit(TinyModel())
    path = tmp_path / "saved.ckpt"
    trainer.save_checkpoint(path)
    return path


def strip_callback_config(path):
    """Hand-made: keys naming only the class, as upgraded pre-1.5 files have them."""
    ckpt = torch.load(path, weights_only=True)
    ckpt["callbacks"] = {key.split("{")[0]: state for key, state in ckpt["callbacks"].items()}
    torch.save(ckpt, path)
    return ckpt["callbacks"]


class Probe(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        stopper = next(cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping))
        self.seen = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "best": float(stopper.best_score),
            "wait": stopper.wait_count,
        }


def test_resume_rekeys_class_named_states_to_live_callbacks(saved, tmp_path):
    states = strip_callback_config(saved)
    probe = Probe()
    trainer = make_trainer(
        tmp_path,
        3,
        CheckpointUpgrade(),
        ModelCheckpoint(dirpath=tmp_path, monitor="val_loss"),
        EarlyStopping(monitor="val_loss", patience=5),
        probe,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*Be aware that when using `ckpt_path`.*")
        trainer.fit(TinyModel(), ckpt_path=saved)
    assert probe.seen == {
        "epoch": 2,
        "step": 8,
        "best": float(states["EarlyStopping"]["best_score"]),
        "wait": states["EarlyStopping"]["wait_count"],
    }
    assert trainer.global_step == 12


def test_without_the_callback_lightning_drops_those_states(saved, tmp_path):
    strip_callback_config(saved)
    probe = Probe()
    trainer = make_trainer(
        tmp_path,
        3,
        ModelCheckpoint(dirpath=tmp_path, monitor="val_loss"),
        EarlyStopping(monitor="val_loss", patience=5),
        probe,
    )
    with pytest.warns(UserWarning, match="Be aware that when using `ckpt_path`"):
        trainer.fit(TinyModel(), ckpt_path=saved)
    assert probe.seen["best"] == float("inf")  # fresh EarlyStopping: the state was silently lost


def test_resume_upgrades_an_old_stamp_and_restores_the_wrapped_io(saved, tmp_path):
    ckpt = torch.load(saved, weights_only=True)
    ckpt["pytorch-lightning_version"] = "2.5.0"
    torch.save(ckpt, saved)
    trainer = make_trainer(tmp_path, 3, CheckpointUpgrade())
    original_io = trainer.strategy.checkpoint_io
    loaded = {}
    real_restore = trainer._checkpoint_connector.resume_end

    def spy():
        loaded.update(trainer._checkpoint_connector._loaded_checkpoint)
        real_restore()

    trainer._checkpoint_connector.resume_end = spy
    with lightning_migration_disabled():
        trainer.fit(TinyModel(), ckpt_path=saved)
    assert loaded["pytorch-lightning_version"] == pl.__version__
    assert loaded["legacy_pytorch-lightning_version"] == "2.5.0"
    assert "ckpt_compat" in loaded
    assert trainer.strategy.checkpoint_io is original_io


def test_load_from_checkpoint_upgrades_without_touching_the_file(saved):
    ckpt = torch.load(saved, weights_only=True)
    ckpt["pytorch-lightning_version"] = "1.9.5"
    torch.save(ckpt, saved)
    before = saved.read_bytes()
    model = load_from_checkpoint(TinyModel, saved)
    assert dict(model.hparams) == {"width": 4, "lr": 0.05}
    assert torch.equal(model.net.weight, ckpt["state_dict"]["net.weight"])
    assert saved.read_bytes() == before


class Stopper:
    def __init__(self, key):
        self.state_key = key


def test_match_callback_states_only_moves_unique_matches():
    a, b = Stopper("Stopper{'m': 'a'}"), Stopper("Stopper{'m': 'b'}")
    ambiguous = {"callbacks": {"Stopper": {"x": 1}}}
    assert match_callback_states(ambiguous, [a, b]) == {"callbacks": {"Stopper": {"x": 1}}}
    exact = {"callbacks": {"Stopper{'m': 'a'}": {"x": 1}, "Stopper": {"x": 2}}}
    assert match_callback_states(exact, [a, b]) == {
        "callbacks": {"Stopper{'m': 'a'}": {"x": 1}, "Stopper{'m': 'b'}": {"x": 2}},
        "ckpt_compat": {
            "callback_keys": {"Stopper{'m': 'b'}": {"from": "Stopper", "how": "explicit: the Trainer's live callbacks"}}
        },
    }


def test_lightning_migration_disabled_is_scoped():
    from pytorch_lightning.utilities.migration import utils

    original = utils._migration_index
    with lightning_migration_disabled():
        assert utils._migration_index() == {}
    assert utils._migration_index is original and utils._migration_index() != {}
