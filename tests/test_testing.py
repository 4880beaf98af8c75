"""``pytest_ckpt_compat.testing.check_migration`` catches each broken rule, and passes a good unit."""

from __future__ import annotations

import textwrap

import pytest

from pytest_ckpt_compat.core.catalogue import Catalogue
from pytest_ckpt_compat.testing import (
    CheckFailed,
    check_migration,
    forbidden_imports,
    minimal_checkpoint,
    version_before,
)

GOOD = '''
"""Rename top-level "old" to "new".

Why: test unit.
"""
ID = "t-1.0.0-rename"
VERSION = "1.0.0"
def upgrade(checkpoint):
    if "old" in checkpoint:
        checkpoint["new"] = checkpoint.pop("old")
    return checkpoint
'''


def _unit(tmp_path, body, name="v1_0_0__10_unit.py"):
    folder = tmp_path / "units"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(textwrap.dedent(body))
    catalogue = Catalogue("mine", folder, version_key="my_version")
    return catalogue.migrations[0], catalogue


def _ckpt():
    ckpt = minimal_checkpoint("0.9.0", version_key="my_version")
    ckpt["old"] = 1
    return ckpt


def test_good_unit_passes(tmp_path):
    unit, catalogue = _unit(tmp_path, GOOD)
    out = check_migration(unit, _ckpt(), catalogue=catalogue, after={"my_version": "1.0.0", "new": 1})
    assert out["new"] == 1 and "old" not in out


@pytest.mark.parametrize(
    "body, message",
    [
        (
            GOOD.replace('checkpoint["new"] = checkpoint.pop("old")', 'checkpoint["n"] = checkpoint.get("n", 0) + 1'),
            "not idempotent: a second run changed /n: 1 -> 2",
        ),
        (
            GOOD.replace('checkpoint["new"] = checkpoint.pop("old")', 'checkpoint["state_dict"]["layer.bias"].add_(1)'),
            "tensor /state_dict/layer.bias was changed in place",
        ),
        (
            GOOD.replace(
                'checkpoint["new"] = checkpoint.pop("old")', 'checkpoint["state_dict"].pop("layer.bias", None)'
            ),
            "tensor /state_dict/layer.bias was lost or replaced",
        ),
        (
            GOOD.replace("ID =", "import lightning.pytorch\nID ="),
            "imports current Lightning (line 6: imports lightning.pytorch)",
        ),
        (
            GOOD.replace("return checkpoint", "return dict(checkpoint)"),
            "upgrade() must mutate the checkpoint in place and return the same dict",
        ),
    ],
    ids=["idempotent", "tensor-changed", "tensor-lost", "imports", "returns-copy"],
)
def test_each_rule_is_enforced(tmp_path, body, message):
    unit, catalogue = _unit(tmp_path, body)
    with pytest.raises(CheckFailed, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        check_migration(unit, _ckpt(), catalogue=catalogue)


def test_not_a_noop_on_newer_format(tmp_path):
    unit, catalogue = _unit(
        tmp_path,
        GOOD.replace(
            'if "old" in checkpoint:\n        checkpoint["new"] = checkpoint.pop("old")', 'checkpoint["new"] = 2'
        ),
    )
    with pytest.raises(CheckFailed, match=r"not a no-op on a checkpoint already in its format: changed /new: 1 -> 2"):
        check_migration(unit, _ckpt(), catalogue=catalogue, after={"my_version": "1.0.0", "new": 1})


def test_forbidden_imports_ast(tmp_path):
    path = tmp_path / "u.py"
    path.write_text(
        "import os\nfrom pytorch_lightning.callbacks import X\nimport "
        "importlib\nimportlib.import_module('lightning_fabric')\n"
    )
    assert forbidden_imports(path) == [
        "line 2: imports pytorch_lightning.callbacks",
        "line 4: imports lightning_fabric",
    ]


def test_version_before():
    assert [version_before(v) for v in ("1.6.5", "1.6.0", "2.0.0", "0.10.0")] == ["1.6.4", "1.5.0", "1.0.0", "0.9.0"]
