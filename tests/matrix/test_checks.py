"""Structure diff, exact comparisons and skip reasons of the matrix checks."""

from __future__ import annotations

import pytest
import torch

from pytest_ckpt_compat.goldens.store import Golden
from pytest_ckpt_compat.matrix.checks import skip_reason
from pytest_ckpt_compat.matrix.compare import CheckFailed, Mismatches
from pytest_ckpt_compat.matrix.drift import structure, structure_diff


def test_structure_normalises_paths_and_lists():
    ckpt = {
        "epoch": 1,
        "ckpt_compat": {"x": 1},
        "callbacks": {"MC": {"best_k_models": {"/build/a/epoch=0.ckpt": torch.tensor(1.0)}, "scores": [1.0, 2.0]}},
    }
    assert structure(ckpt) == {
        ".": "dict",
        "epoch": "int",
        "callbacks": "dict",
        "callbacks.MC": "dict",
        "callbacks.MC.best_k_models": "dict",
        "callbacks.MC.best_k_models.<path>": "Tensor",
        "callbacks.MC.scores": "list",
        "callbacks.MC.scores[]": "float",
    }


def test_structure_diff_lines():
    a = {"x": "int", "y": "str", "z": "NoneType"}
    b = {"x": "float", "w": "dict", "z": "Tensor"}
    assert structure_diff(a, b) == [
        "+ w (dict)  only in the checkpoint saved now",
        "~ x: int in the upgraded golden, float now",
        "- y (str)  only in the upgraded golden",
    ]


def test_mismatches_are_exact_and_all_reported():
    m = Mismatches("here")
    m.eq("same int/float", 2, 2.0)
    m.eq("a", 0.1 + 0.2, 0.3)
    m.eq("b", [1, 2], [1, 3])
    with pytest.raises(
        CheckFailed,
        match=r"(?s)here:\n  a: got 0.30000000000000004, expected 0.3\n  b: got \[1, 2\], expected \[1, 3\]$",
    ):
        m.raise_if_any()


def test_skip_reasons():
    newer = Golden("99.0.0/end_of_fit.ckpt", "0" * 64, meta={"saved_version": "99.0.0"})
    assert skip_reason(newer, "fetch") is None
    assert skip_reason(newer, "load").startswith(
        "golden 99.0.0-end_of_fit was saved by Lightning 99.0.0, newer than the installed"
    )
    gpu = Golden("1.0.0/amp_16_mixed.ckpt", "0" * 64, meta={"saved_version": "1.0.0", "requires": "gpu"})
    expected = (
        None
        if torch.cuda.is_available()
        else "golden 1.0.0-amp_16_mixed requires a GPU (requires: gpu) and none is available"
    )
    assert skip_reason(gpu, "resume") == expected
    assert skip_reason(gpu, "upgrade") is None


def test_drift_hint_names_a_range_only_when_releases_lie_between():
    """A golden of the installed release cannot miss a migration: "2.6.6 < VERSION <= 2.6.6" said nothing."""
    from pytest_ckpt_compat.core.versions import installed_lightning_version
    from pytest_ckpt_compat.matrix.drift import drift_hint

    installed = installed_lightning_version()
    same = drift_hint(installed)
    assert same.startswith(f"The golden was saved by the installed release {installed} itself")
    assert "< VERSION <=" not in same and f"ckpt-compat golden add {installed}" in same
    older = drift_hint("1.9.0")
    assert older.startswith(f"Likely missing migration: a unit with 1.9.0 < VERSION <= {installed} ")
    assert "pl-2.0.0-drop-apex-amp-state" in older
