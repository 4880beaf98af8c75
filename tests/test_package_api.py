"""The package's public names: all resolvable, resolved lazily, and one version string."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest_ckpt_compat

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_resolves_to_its_module():
    import pytest_ckpt_compat.core.engine as engine
    import pytest_ckpt_compat.core.errors as errors
    import pytest_ckpt_compat.files.writing as writing

    for name in pytest_ckpt_compat.__all__:
        assert getattr(pytest_ckpt_compat, name) is not None, name
    assert pytest_ckpt_compat.upgrade is engine.upgrade
    assert pytest_ckpt_compat.UnsafeCheckpoint is errors.UnsafeCheckpoint
    assert pytest_ckpt_compat.save_checkpoint is writing.save_checkpoint


def test_unknown_name_is_an_attribute_error():
    try:
        pytest_ckpt_compat.no_such_name
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_package_imports_no_torch():
    code = "import sys, pytest_ckpt_compat; print(sorted(m for m in ('torch', 'numpy', 'pooch', 'lightning', 'pytorch_lightning') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_version_is_the_pyproject_version():
    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert pytest_ckpt_compat.__version__ == declared
