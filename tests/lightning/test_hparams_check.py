"""``hparams.check`` says what a real ``load_from_checkpoint`` then does, and the helpers fix it."""

from __future__ import annotations

import pytest
import torch

pl = pytest.importorskip("pytorch_lightning")

from pytest_ckpt_compat.core import hparams  # noqa: E402


class Saved(pl.LightningModule):
    def __init__(self, width: int = 4, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(self.hparams.width, 1)


class RenamedArgument(pl.LightningModule):  # width became size, no default
    def __init__(self, size: int, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(size, 1)


class RemovedArgumentKwargs(pl.LightningModule):  # width removed; extra options go to the base class
    def __init__(self, lr: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.net = torch.nn.Linear(4, 1)


class RemovedArgument(pl.LightningModule):  # width removed, no **kwargs: Lightning drops it silently
    def __init__(self, lr: float = 0.1, depth: int = 2):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(4, 1)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "saved.ckpt"
    checkpoint = {"state_dict": Saved(width=4, lr=0.3).state_dict(), "hyper_parameters": {"width": 4, "lr": 0.3}}
    checkpoint["pytorch-lightning_version"] = pl.__version__
    torch.save(checkpoint, path)
    return path, checkpoint


def test_a_renamed_required_argument_is_missing_and_the_load_fails_until_renamed(saved, tmp_path):
    path, checkpoint = saved
    report = hparams.check_checkpoint(checkpoint, RenamedArgument)
    assert (report.dropped, report.missing) == (("width",), ("size",))
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'size'"):
        RenamedArgument.load_from_checkpoint(path, weights_only=True)
    hparams.rename(checkpoint, {"width": "size"})
    assert hparams.check_checkpoint(checkpoint, RenamedArgument).ok
    torch.save(checkpoint, tmp_path / "fixed.ckpt")
    model = RenamedArgument.load_from_checkpoint(tmp_path / "fixed.ckpt", weights_only=True)
    assert (model.hparams.size, model.hparams.lr) == (4, 0.3)


def test_a_removed_argument_sent_to_kwargs_is_rejected_until_dropped(saved, tmp_path):
    path, checkpoint = saved
    assert hparams.check_checkpoint(checkpoint, RemovedArgumentKwargs).to_kwargs == ("width",)
    with pytest.raises(TypeError, match="unexpected keyword argument 'width'"):
        RemovedArgumentKwargs.load_from_checkpoint(path, weights_only=True)
    hparams.drop(checkpoint, ["width"])
    torch.save(checkpoint, tmp_path / "fixed.ckpt")
    assert RemovedArgumentKwargs.load_from_checkpoint(tmp_path / "fixed.ckpt", weights_only=True).hparams.lr == 0.3


def test_a_removed_argument_without_kwargs_is_dropped_silently_and_check_says_so(saved):
    path, checkpoint = saved
    report = hparams.check_checkpoint(checkpoint, RemovedArgument)
    assert (report.dropped, report.defaulted, report.ok) == (("width",), ("depth",), False)
    model = RemovedArgument.load_from_checkpoint(path, weights_only=True)  # no error, no warning: width is gone
    assert "width" not in model.hparams and model.hparams.depth == 2
