"""Where Lightning must refuse a resume, the matrix proves it does (loudly, naming what is missing).

Why: a resume that silently starts from scratch looks like success. A weights-only file has no
training state; a copy of a golden with a weight or the scheduler state taken away must be refused.
"""

from __future__ import annotations

from pathlib import Path

from ..goldens.store import Golden
from . import harness
from .compare import CheckFailed
from .workspace import Workspace

__all__ = ["REFUSED_SCENARIOS", "STRICT_PROBE_SCENARIOS", "check_refused", "check_refuses_broken_copies"]

# A resume must fail loudly where Lightning has to refuse: a weights-only file has no training
# state, so ``fit(ckpt_path=...)`` must raise instead of silently starting from scratch.
REFUSED_SCENARIOS = {"save_weights_only": (KeyError, "optimizer")}
# On these goldens the resume check also feeds Lightning two broken copies of the upgraded file
# (made at test time, never stored): one weight missing (strict loading must refuse) and no
# scheduler state (must raise, not be skipped).
STRICT_PROBE_SCENARIOS = ("end_of_fit",)


def check_refused(ws: Workspace, golden: Golden, path: Path, tmp_path: Path, expect: tuple, what: str = "") -> None:
    """``fit(ckpt_path=path)`` must raise ``expect[0]`` naming ``expect[1]`` before any batch trains."""
    __tracebackhide__ = True
    error_cls, needle = expect
    upgraded, _ = ws.upgraded(golden)
    try:
        harness.fit(ws, golden, path, tmp_path, upgraded, max_epochs=int(golden.truth["completed_epochs"]) + 1)
    except error_cls as exc:
        if needle.lower() not in str(exc).lower():
            raise CheckFailed(
                f"{golden.id}: resuming {what or 'it'} raised {type(exc).__name__} without naming {needle!r}: {exc}"
            ) from None
        return
    except Exception as exc:
        raise CheckFailed(
            f"{golden.id}: resuming {what or 'it'} raised {type(exc).__name__}: {exc}, expected {error_cls.__name__}"
        ) from None
    raise CheckFailed(
        f"{golden.id}: resuming {what or 'it'} succeeded; Lightning must refuse it ({error_cls.__name__} naming "
        f"{needle!r})"
    )


def check_refuses_broken_copies(ws: Workspace, golden: Golden, upgraded: dict, path: Path, tmp_path: Path) -> None:
    import torch

    from .compare import copy_checkpoint

    broken = copy_checkpoint(upgraded)
    first = next(iter(broken["state_dict"]))
    del broken["state_dict"][first]
    dest = tmp_path / "broken-missing-weight.ckpt"
    torch.save(broken, dest)
    check_refused(ws, golden, dest, tmp_path / "strict", (RuntimeError, first), f"a copy without state_dict[{first!r}]")
    if not upgraded.get("lr_schedulers"):  # a recipe without schedulers: nothing to take away
        return
    broken = copy_checkpoint(upgraded)
    del broken["lr_schedulers"]
    dest = tmp_path / "broken-no-schedulers.ckpt"
    torch.save(broken, dest)
    check_refused(ws, golden, dest, tmp_path / "no-sched", (KeyError, "scheduler"), "a copy without lr_schedulers")
