"""Proof of the prefix units: a module saved compiled resumes eager, and the reverse, with exact state.

Real parts only: ``torch.compile`` (the ``eager`` backend, which needs no C compiler) wraps the
submodule ``net`` as Lightning users do (Lightning#17415, #20233), a real ``Trainer.fit`` saves and
resumes, and a team catalogue with one ready-made unit (``toolkit.strip_compiled_prefix`` /
``add_compiled_prefix``) upgrades the file through ``CheckpointUpgrade``. The resumed run must equal,
bit for bit, the run that resumed the file in the layout it was saved in.
"""

from __future__ import annotations

import copy
import re
import textwrap

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("pytorch_lightning")

from pytest_ckpt_compat.core.catalogue import Catalogue, register_catalogue, unregister_catalogue  # noqa: E402
from pytest_ckpt_compat.core.renames import COMPILED_SEGMENT  # noqa: E402
from pytest_ckpt_compat.lightning import CheckpointUpgrade  # noqa: E402


class Model(pl.LightningModule):
    def __init__(self, compiled: bool):
        super().__init__()
        net = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
        )
        self.net = torch.compile(net, backend="eager") if compiled else net

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):  # named parameters: the saved param_groups carry param_names
        return torch.optim.Adam(self.named_parameters(), lr=0.05)

    def train_dataloader(self):
        g = torch.Generator().manual_seed(0)
        return DataLoader(TensorDataset(torch.randn(32, 4, generator=g), torch.randn(32, 1, generator=g)), batch_size=8)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["team_version"] = "1.0.0"  # a team's own version key (README: "Your own catalogue")


class Snapshot(pl.Callback):
    """The module's and the optimizer's state right after the restore, before any training step."""

    def on_train_start(self, trainer, pl_module):
        self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}
        self.optimizer = copy.deepcopy(trainer.optimizers[0].state_dict())  # live tensors change in training


def _trainer(tmp_path, epochs, *callbacks):
    return pl.Trainer(
        max_epochs=epochs,
        callbacks=list(callbacks),
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
    )


def _saved_and_resumed(tmp_path, compiled: bool):
    """A file saved after one epoch, and the weights/optimizer of resuming it as it was saved for one more."""
    torch.manual_seed(0)
    trainer = _trainer(tmp_path, 1)
    trainer.fit(Model(compiled))
    path = tmp_path / f"{'compiled' if compiled else 'eager'}.ckpt"
    trainer.save_checkpoint(path)
    reference = Model(compiled)
    trainer = _trainer(tmp_path, 2)
    trainer.fit(reference, ckpt_path=path)
    return path, reference.state_dict(), trainer.optimizers[0].state_dict()


@pytest.fixture
def team_unit(tmp_path):
    """Registers a team catalogue holding one ready-made unit; yields a function that writes it."""

    def write(body: str) -> None:
        folder = tmp_path / "team_migrations"
        folder.mkdir()
        (folder / "v1_1_0__10_compile_keys.py").write_text(textwrap.dedent(body))
        register_catalogue(Catalogue(name="team", path=folder, version_key="team_version", target_version="1.1.0"))

    yield write
    unregister_catalogue("team")


def _assert_equal_states(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key


def _assert_equal_optimizers(got: dict, want: dict, names: list[str]) -> None:
    assert got["param_groups"][0]["param_names"] == names
    assert got["state"].keys() == want["state"].keys()
    for index, state in want["state"].items():
        for field, value in state.items():
            assert torch.equal(got["state"][index][field], value), (index, field)


def test_saved_compiled_resumes_eager_with_exact_weights_and_optimizer_state(tmp_path, team_unit):
    path, want_weights, want_optimizer = _saved_and_resumed(tmp_path, compiled=True)
    saved = torch.load(path, weights_only=True)
    assert "net._orig_mod.1.num_batches_tracked" in saved["state_dict"]
    with pytest.raises(RuntimeError, match=r"Missing key\(s\) in state_dict: \"net.0.weight\""):
        _trainer(tmp_path, 2).fit(Model(compiled=False), ckpt_path=path)  # plain Lightning

    team_unit(
        '''
        """Checkpoints saved while ``net`` was torch.compile'd carry ``_orig_mod.``; the eager model loads them."""
        from pytest_ckpt_compat.toolkit import strip_compiled_prefix as upgrade

        ID = "team-1.1-eager-keys"
        VERSION = "1.1.0"
        '''
    )
    eager, snapshot = Model(compiled=False), Snapshot()
    trainer = _trainer(tmp_path, 2, CheckpointUpgrade(), snapshot)
    trainer.fit(eager, ckpt_path=path)
    restored = {re.sub(COMPILED_SEGMENT, "", k): v for k, v in saved["state_dict"].items()}
    _assert_equal_states(snapshot.weights, restored)  # right after the restore: the file's weights, bit for bit
    names = [name for name, _ in eager.named_parameters()]
    _assert_equal_optimizers(snapshot.optimizer, saved["optimizer_states"][0], names)
    _assert_equal_states(eager.state_dict(), {re.sub(COMPILED_SEGMENT, "", k): v for k, v in want_weights.items()})
    _assert_equal_optimizers(trainer.optimizers[0].state_dict(), want_optimizer, names)


def test_saved_eager_resumes_compiled_with_exact_weights_and_optimizer_state(tmp_path, team_unit):
    path, want_weights, want_optimizer = _saved_and_resumed(tmp_path, compiled=False)
    with pytest.raises(RuntimeError, match=r"Missing key\(s\) in state_dict: \"net._orig_mod.0.weight\""):
        _trainer(tmp_path, 2).fit(Model(compiled=True), ckpt_path=path)

    team_unit(
        '''
        """``net`` is torch.compile'd from 1.1 on: keys saved eager get its ``_orig_mod.``."""
        from pytest_ckpt_compat.toolkit import add_compiled_prefix

        ID = "team-1.1-compiled-keys"
        VERSION = "1.1.0"


        def upgrade(checkpoint):
            return add_compiled_prefix(checkpoint, "net")
        '''
    )
    compiled = Model(compiled=True)
    trainer = _trainer(tmp_path, 2, CheckpointUpgrade())
    trainer.fit(compiled, ckpt_path=path)
    names = [name for name, _ in compiled.named_parameters()]
    assert names[0] == "net._orig_mod.0.weight"
    want = {k.replace("net.", "net._orig_mod.", 1): v for k, v in want_weights.items()}
    _assert_equal_states(compiled.state_dict(), want)
    _assert_equal_optimizers(trainer.optimizers[0].state_dict(), want_optimizer, names)
