"""Preflight on the real goldens (0.10 – 2.6.6): the recipe's own module reports nothing; a wrong one
(a renamed layer, a removed hyperparameter, a changed ``monitor``) is named; AMP and weights-only
files get the verdicts their resume gives (the matrix checks those resumes)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytorch_lightning")

from pytest_ckpt_compat.lightning import trainer_module  # noqa: E402
from pytest_ckpt_compat.lightning.preflight import preflight  # noqa: E402
from pytest_ckpt_compat.matrix.workspace import load_recipe  # noqa: E402

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


@pytest.fixture(scope="module")
def module_class():
    return load_recipe(str(GOLDEN / "recipes" / "recipe.py")).CLASSES[1]  # GoldenModule


def _callbacks(monitor="val_loss"):
    pl = trainer_module()
    return [
        pl.callbacks.ModelCheckpoint(monitor="val_loss", save_top_k=2, save_last=True),
        pl.callbacks.EarlyStopping(monitor=monitor, patience=3),
    ]


@pytest.mark.parametrize(
    "golden",
    ["0.10.0/end_of_fit", "1.2.10/end_of_fit", "1.6.5/mid_epoch", "2.0.9/end_of_fit", "2.6.6/early_stop_waited"],
)
def test_the_recipe_module_reports_nothing_on_goldens_of_every_era(golden, module_class):
    report = preflight(GOLDEN / f"{golden}.ckpt", module_class, callbacks=_callbacks())
    assert report.findings == [] and report.ok


def test_amp_and_weights_only_goldens_get_their_resume_verdicts(module_class):
    amp = GOLDEN / "2.6.6" / "amp_16_mixed_cpu.ckpt"
    assert preflight(amp, module_class, callbacks=_callbacks(), precision="16-mixed").findings == []
    assert [f.area for f in preflight(amp, module_class, callbacks=_callbacks()).findings] == ["precision"]
    weights = preflight(GOLDEN / "2.6.6" / "save_weights_only.ckpt", module_class, callbacks=_callbacks())
    assert [(f.severity, f.area) for f in weights.findings] == [
        ("fail", "optimizers"),
        ("note", "callbacks"),
        ("note", "callbacks"),
    ]


def test_a_wrong_module_is_named_on_a_golden(module_class):
    class RenamedLayer(module_class):
        def __init__(self, hidden=16, lr=0.01, name="golden", schedule=None):
            super().__init__(hidden, lr, name, schedule)
            self.body = self.net
            del self.net

    class RemovedHparam(module_class):
        def __init__(self, hidden=16, lr=0.01, schedule=None):
            super().__init__(hidden, lr, "golden", schedule)

    path = GOLDEN / "2.6.6" / "end_of_fit.ckpt"
    renamed = preflight(path, RenamedLayer, callbacks=_callbacks()).findings
    assert [(f.severity, f.area) for f in renamed] == [("fail", "state_dict"), ("fail", "state_dict")]
    assert renamed[0].hint.endswith("toolkit.rename_state_keys(checkpoint, [prefix('net.', 'body.')])")
    removed = preflight(path, RemovedHparam, callbacks=_callbacks()).findings
    assert [f.message for f in removed] == [
        "saved 'name' is not an argument of " + RemovedHparam.__qualname__ + ": the load drops it"
    ]
    monitor = preflight(path, module_class, callbacks=_callbacks("train_loss")).findings
    assert [(f.severity, f.area) for f in monitor] == [("lost", "callbacks"), ("note", "callbacks")]
    assert "it would need EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}" in monitor[0].hint
