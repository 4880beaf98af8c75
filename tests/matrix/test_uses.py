"""Every way a file is used: validate/test/predict(ckpt_path), explicit load kwargs, the module's own hooks.

Each check runs on a real golden (2.6.6 end_of_fit) under the installed Lightning, then with one
planted regression of ``tests.mutation.mutants`` (the same functions the mutation self-test plants):
the check must name exactly what differs. The save path: a file saved now by the recipe must stamp
the full version, load ``weights_only=True`` and carry what the module's ``on_save_checkpoint`` added.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_ckpt_compat.core import versions
from pytest_ckpt_compat.goldens.store import GoldenStore
from pytest_ckpt_compat.matrix import checks, roundtrip
from pytest_ckpt_compat.matrix.compare import CheckFailed
from pytest_ckpt_compat.matrix.workspace import Workspace
from tests.mutation import mutants
from tests.plugin.conftest import make_golden_subset


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    tmp = tmp_path_factory.mktemp("uses")
    folder = make_golden_subset(tmp / "golden", ["2.6.6/end_of_fit.ckpt"])
    return Workspace(GoldenStore(folder, tmp / "cache", registry_dir=folder, progressbar=False), tmp / "ws")


def _failure(ws: Workspace, check: str, tmp_path: Path) -> list[str]:
    """The mismatch lines ``check`` reports on the golden (empty: it passed)."""
    try:
        checks.run(ws, ws.store.goldens[0], check, tmp_path)
    except CheckFailed as exc:
        return [line.strip() for line in str(exc).splitlines()[1:]]
    return []


def test_evaluate_is_a_check_of_the_matrix():
    assert checks.CHECKS[-1] == "evaluate"


def test_evaluate_passes_on_a_real_golden(ws, tmp_path):
    assert _failure(ws, "evaluate", tmp_path) == []


def test_evaluate_sees_validate_run_without_the_files_weights(ws, tmp_path, monkeypatch):
    mutants.validate_ignores_checkpoint_weights(ws.view.pl, monkeypatch)
    lines = _failure(ws, "evaluate", tmp_path)
    assert [line.split(":")[0] for line in lines] == ["validate"] * 3  # test and predict still load
    assert lines[0].startswith("validate: weights_sha256: got ")
    assert lines[0].endswith(f"expected {ws.store.goldens[0].truth['weights_sha256']!r}")
    assert lines[1].startswith("validate: weights_sum: got ")
    assert lines[2] == "validate: module on_load_checkpoint calls: got 0, expected 1"  # restore_model never ran


def test_evaluate_sees_predict_drop_a_weight_non_strictly(ws, tmp_path, monkeypatch):
    mutants.predict_loads_non_strict(ws.view.pl, monkeypatch)
    lines = _failure(ws, "evaluate", tmp_path)
    assert [line.split(": ")[:2] for line in lines] == [["predict", "weights_sha256"], ["predict", "weights_sum"]]


def test_load_lets_explicit_kwargs_win(ws, tmp_path, monkeypatch):
    assert _failure(ws, "load", tmp_path) == []
    mutants.saved_hparams_override_kwargs(ws.view.pl, monkeypatch)
    lines = _failure(ws, "load", tmp_path)
    assert len(lines) == 1
    assert lines[0].startswith("hparams (lr passed explicitly): got {'hidden': 16, 'lr': 0.01,")
    assert f"expected {{'hidden': 16, 'lr': {checks.EXPLICIT_LR}," in lines[0]


@pytest.mark.parametrize("check", ["resume", "evaluate"])
def test_the_modules_own_on_load_checkpoint_must_run(ws, tmp_path, monkeypatch, check):
    assert not any("on_load_checkpoint" in line for line in _failure(ws, check, tmp_path / "clean"))
    mutants.module_on_load_checkpoint_not_called(ws.view.pl, monkeypatch)
    lines = _failure(ws, check, tmp_path / "mutant")
    expected = {
        "resume": ["module on_load_checkpoint calls: got 0, expected 1"],
        "evaluate": [
            f"{stage}: module on_load_checkpoint calls: got 0, expected 1" for stage in ("validate", "test", "predict")
        ],
    }[check]
    assert lines == expected


def _saved_file_failures(ws: Workspace, tmp_path: Path) -> list[str]:
    entry = roundtrip.save_now(ws, "end_of_fit", tmp_path)
    return roundtrip.check_saved_file(ws.view, "end_of_fit", tmp_path / "end_of_fit.ckpt", entry["saved_version"])


def test_a_file_saved_now_carries_what_on_save_checkpoint_added(ws, tmp_path):
    import torch

    assert _saved_file_failures(ws, tmp_path) == []
    saved = torch.load(tmp_path / "end_of_fit.ckpt", map_location="cpu", weights_only=True)
    assert saved[roundtrip.SAVE_MARK] == {"hook": "on_save_checkpoint"}
    assert ws.view.truth.SAVE_MARK is None  # goldens recorded afterwards stay as they were


@pytest.mark.parametrize(
    ("mutant", "line"),
    [
        ("module_on_save_checkpoint_not_called", "on_save_checkpoint: checkpoint['ckpt_compat_round_trip'] = None"),
        ("truncated_version_stamp", "version stamp: the file says '{short}', the installed Lightning is '{full}'"),
        ("hparams_saved_as_attribute_dict", "weights_only: the file as saved does not load with weights_only=True: it"),
    ],
    ids=["on_save_checkpoint", "version_stamp", "hparams_object"],
)
def test_the_round_trip_sees_the_save_path(ws, tmp_path, monkeypatch, mutant, line):
    full = versions.installed_lightning_version()
    getattr(mutants, mutant)(ws.view.pl, monkeypatch)
    failures = _saved_file_failures(ws, tmp_path)
    line = line.format(full=full, short=".".join(full.split(".")[:2]))
    assert len(failures) == 1 and failures[0].startswith(line), failures
