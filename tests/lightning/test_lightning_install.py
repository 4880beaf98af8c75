"""``lightning.install()``: unchanged Lightning call sites load through our loader and catalogue.

The seams are checked in this process (identity before, during and after; a fixture always
uninstalls); the calls themselves run on real goldens in subprocesses (``install_flows.py``), once
per installed Lightning namespace, because the switch is process-wide.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from pytest_ckpt_compat import lightning as integration
from pytest_ckpt_compat.core.versions import LIGHTNING_MODULES
from pytest_ckpt_compat.lightning import seams
from pytest_ckpt_compat.matrix import known_defects

FLOWS = Path(__file__).resolve().parent / "install_flows.py"
GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def _importable(namespace: str) -> bool:
    try:
        importlib.import_module(namespace)
    except ImportError:
        return False
    return True


INSTALLED = [ns for ns in LIGHTNING_MODULES if _importable(ns)]


@pytest.fixture(autouse=True)
def always_uninstall():
    yield
    integration.uninstall()


def _seams() -> dict:
    """``(namespace, owner, attribute)`` → the object there now."""
    found = {}
    for ns in INSTALLED:
        for owner, name, _ in seams._seams(ns):
            found[(ns, owner.__name__, name)] = vars(owner)[name]  # a module's __name__ is dotted, a class's is not
    return found


def test_install_replaces_each_seam_once_and_uninstall_restores_the_originals():
    originals = _seams()
    assert {(owner, name) for _, owner, name in originals} >= {(f"{ns}.core.saving", "pl_load") for ns in INSTALLED} | {
        ("_CheckpointConnector", "resume_start")
    }
    for ns in INSTALLED:  # LightningCLI reads --ckpt_path's hparams itself since 2.5.5
        has_cli_read = Version(importlib.import_module(ns).__version__) >= Version("2.5.5")
        assert ((ns, "LightningCLI", "_parse_ckpt_path") in originals) is has_cli_read
    integration.install()
    patched = _seams()
    assert all(patched[key] is not originals[key] and patched[key].__wrapped__ is originals[key] for key in originals)
    integration.install()  # the same options: nothing changes
    assert _seams() == patched and all(_seams()[key] is patched[key] for key in patched)
    assert integration.uninstall() is True
    assert all(_seams()[key] is originals[key] for key in originals)
    assert integration.uninstall() is False


def test_install_with_other_options_refuses():
    integration.install()
    with pytest.raises(RuntimeError, match="uninstall\\(\\) before installing with .*'trust': True"):
        integration.install(trust=True)
    assert seams._active[0]["trust"] is False


def test_as_a_context_manager_only_the_installing_call_uninstalls():
    originals = _seams()
    with integration.install(assume_version="0.7.6") as outer:
        with integration.install(assume_version="0.7.6") as inner:
            assert (outer.owner, inner.owner) == (True, False)
        assert all(_seams()[key].__wrapped__ is originals[key] for key in originals)  # still installed
    assert all(_seams()[key] is originals[key] for key in originals)


def _flows(group: str, namespace: str, tmp_path: Path) -> dict:
    env = dict(os.environ, CKPT_COMPAT_LIGHTNING=namespace)
    try:
        proc = subprocess.run(
            [sys.executable, str(FLOWS), group, str(tmp_path)], capture_output=True, text=True, timeout=240, env=env
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{group} under {namespace} did not finish in 240 s (deadlock on pl_legacy_patch?)")
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result.pop("namespace") == namespace
    return result


RESTORED = {"restored": True, "batches": True, "global_step": True}
LOADED = {"hparams": True, "weights": True}


def restored(name: str) -> dict:
    """Exactly restored; the batches trained after it too, unless a known Lightning defect replays one."""
    release, scenario = name.split("/")[0], name.split("/")[1][: -len(".ckpt")]
    return {**RESTORED, "batches": known_defects.lookup(scenario, "resume", release) is None}


@pytest.mark.parametrize("namespace", INSTALLED)
def test_load_fit_validate_test_predict_unchanged_then_plain_lightning_after_uninstall(namespace, tmp_path):
    result = _flows("trainer", namespace, tmp_path)
    files = ("1.2.10/end_of_fit.ckpt", "1.5.10/fault_tolerant.ckpt", "1.9.5/custom_args.ckpt")
    assert result["installed"] == {
        **{f"load {name}": LOADED for name in files},
        "datamodule hparams": True,
        **{f"fit {name}": restored(name) for name in files},
        **{f"{stage} weights {name}": True for name in files[:2] for stage in ("validate", "test", "predict")},
        "lightning migrations": 0,  # Lightning's own migration found nothing left to do
    }
    # uninstalled: plain Lightning refuses the pre-1.5 file (weights_only), or (2.x releases that load
    # with weights_only=False) unpickles it and its own migration resumes at epoch 0 instead of 2;
    # it migrates each file itself
    if result["uninstalled"].pop("plain loader unpickles anything"):
        truth = json.loads((GOLDEN / "1.2.10" / "meta.json").read_text())["scenarios"]["end_of_fit"]["truth"]
        assert truth["completed_epochs"] == 2
        fit = {"EarlyStopping_best_score": truth["callbacks"]["EarlyStopping"]["best_score"], "epoch": 0}
        plain = {"load pre-1.5": None, "fit pre-1.5": fit, "lightning migrations": 3}
    else:
        plain = {"load pre-1.5": "UnpicklingError", "fit pre-1.5": "UnpicklingError", "lightning migrations": 1}
    assert result["uninstalled"] == plain


@pytest.mark.parametrize("namespace", INSTALLED)
def test_trusted_install_resumes_without_deadlock_and_honours_a_custom_checkpoint_io(namespace, tmp_path):
    result = _flows("trusted", namespace, tmp_path)
    pl = importlib.import_module(namespace)
    if (
        "weights_only" in inspect.signature(pl.LightningModule.load_from_checkpoint).parameters
    ):  # a caller's weights_only=False trusts
        assert result.pop("weights_only=False load ckpt_subclass") == LOADED
    assert result == {
        "untrusted load ckpt_subclass": "UnsafeCheckpoint",
        "fit ckpt_subclass": RESTORED,
        "load ckpt_subclass": LOADED,
        "fit custom io": RESTORED,
        "custom io calls": ["end_of_fit.ckpt.gz"],
    }


@pytest.mark.parametrize("namespace", INSTALLED)
def test_lightning_cli_fit_ckpt_path(namespace, tmp_path):
    pytest.importorskip("jsonargparse")
    result = _flows("cli", namespace, tmp_path)
    # plain Lightning refuses the pre-1.5 file, or (releases that unpickle anything) resumes it wrongly
    plain = "CheckFailed" if result.pop("plain loader unpickles anything") else "UnpicklingError"
    assert result == {"installed": {**RESTORED, "hparams": True}, "uninstalled": plain}
