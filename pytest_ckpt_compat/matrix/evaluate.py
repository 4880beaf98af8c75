"""The ``evaluate`` check: ``validate``, ``test`` and ``predict(ckpt_path=...)`` run with the file's weights.

Why: ``fit`` is not the only way a file is used. A release whose ``validate``/``test``/``predict``
restore drops or skips the weights (or loads them non-strictly) reports metrics of a model that
was never trained, and no resume check sees it. One Trainer runs the three calls on the upgraded
file, each with a fresh module (no call inherits weights another one loaded); a callback reads the
module's weights as each loop starts and compares them, exactly, with the weights recorded live
when the golden was saved. Each module's own ``on_load_checkpoint`` must have run once.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..goldens.store import Golden
from .compare import CheckFailed, Mismatches
from .harness import file_weights
from .workspace import Workspace

__all__ = ["STAGES", "check_evaluate"]

STAGES = ("validate", "test", "predict")


def check_evaluate(ws: Workspace, golden: Golden, tmp_path: Path) -> None:
    """``trainer.validate/test/predict(model, ckpt_path=upgraded)``: each loop starts with the saved weights."""
    __tracebackhide__ = True
    import torch

    view, truth = ws.view, golden.truth
    upgraded, path = ws.upgraded(golden)
    torch.manual_seed(1234)
    models = {stage: _evaluable(view.make_module(golden, upgraded)) for stage in STAGES}  # fresh weights each
    changes = _changes_tensors(view, models["validate"], ws.load(golden))
    expected = None if changes else file_weights(truth)
    probe = _make_probe(view.pl)(view)
    datamodule = view.make_datamodule(golden.scenario)
    kwargs = view.trainer_kwargs(golden.scenario, str(tmp_path))
    kwargs.update(callbacks=[probe], deterministic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = view.pl.Trainer(**kwargs)
        read = _full_read(trainer)
        loader = datamodule.val_dataloader()
        trainer.validate(models["validate"], datamodule=datamodule, ckpt_path=str(path), verbose=False, **read)
        trainer.test(models["test"], dataloaders=loader, ckpt_path=str(path), verbose=False, **read)
        trainer.predict(models["predict"], dataloaders=loader, ckpt_path=str(path), **read)
    m = Mismatches(f"{golden.id} validate/test/predict(ckpt_path=...)")
    m.eq("loops that started", sorted(probe.seen), sorted(STAGES))
    saved = upgraded.get("state_dict", {})
    for stage, (digest, total, tensors) in probe.seen.items():
        if expected is not None:
            m.eq(f"{stage}: weights_sha256", digest, expected[0])
            m.eq(f"{stage}: weights_sum", total, expected[1])
        else:  # a team's unit added or dropped tensors: the upgraded file's own tensors are the reference
            _compare_tensors(m, stage, tensors, saved)
    for stage, model in models.items():
        if hasattr(model, "checkpoint_loads"):  # the built-in module counts its own hook's calls
            m.eq(f"{stage}: module on_load_checkpoint calls", model.checkpoint_loads, 1)
    m.raise_if_any()


def _full_read(trainer) -> dict:
    """``weights_only=False`` where Lightning takes it: the upgraded file was written from what our loader
    accepted, and whether it loads weights-only is the ``weights_only`` check's question, not this one's."""
    import inspect

    return {"weights_only": False} if "weights_only" in inspect.signature(trainer.validate).parameters else {}


def _changes_tensors(view, model, original: dict) -> bool:
    """A team's catalogue may add or drop tensors (a buffer the new release registers): then the digest
    recorded live from the golden's own tensors cannot match, as in ``checks._check_weights_truth``."""
    return bool(view.team) and len(model.state_dict()) != len(original.get("state_dict", {}))


def _compare_tensors(m: Mismatches, stage: str, live: dict, saved: dict) -> None:
    import torch

    if list(live) != list(saved):
        m.add(f"{stage}: state_dict keys differ: {sorted(set(live) ^ set(saved))}")
    for key, tensor in saved.items():
        if key in live and not torch.equal(live[key], tensor):
            m.add(f"{stage}: state_dict[{key!r}] is not the file's")


def _evaluable(model):
    """The module, given the ``test_step``/``predict_step`` Lightning requires for ``test``/``predict``.

    A recipe's module need not define them (the built-in one trains and validates only); a subclass
    made here adds ``test_step = validation_step`` and a ``predict_step`` that returns the batch
    index, so no hook of the recipe's is replaced and nothing about loading changes.
    """
    cls = type(model)
    attrs: dict = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
    if "test_step" not in _overridden(cls):
        attrs["test_step"] = cls.validation_step
    if "predict_step" not in _overridden(cls):
        attrs["predict_step"] = _predict_step
    model.__class__ = type(cls.__name__, (cls,), attrs)
    return model


def _predict_step(self, batch, batch_idx, dataloader_idx=0):
    return batch_idx


def _overridden(cls) -> set:
    """The step methods ``cls`` defines below LightningModule."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] in ("lightning", "pytorch_lightning"):
            break
        names.update(n for n in ("test_step", "predict_step") if n in vars(klass))
    return names


def _make_probe(pl):
    class EvaluateProbe(pl.Callback):
        """Reads the module's weights as each loop starts (after Lightning's restore, before any batch)."""

        def __init__(self, view):
            self.view, self.seen = view, {}

        def _read(self, stage, pl_module):
            if stage in self.seen:
                raise CheckFailed(f"the {stage} loop started twice")
            digest, total = self.view.weights(pl_module)
            tensors = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            self.seen[stage] = (digest, total, tensors)

        def on_validation_start(self, trainer, pl_module):
            if not trainer.sanity_checking:
                self._read("validate", pl_module)

        def on_test_start(self, trainer, pl_module):
            self._read("test", pl_module)

        def on_predict_start(self, trainer, pl_module):
            self._read("predict", pl_module)

    return EvaluateProbe
