"""The package's public names: all resolvable, resolved lazily, and one version string."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(pytest_ckpt_compat, "no_such_name")  # noqa: B009 - the attribute access is what is tested


def test_importing_the_package_imports_no_torch():
    heavy = ("torch", "numpy", "pooch", "lightning", "pytorch_lightning")
    code = f"import sys, pytest_ckpt_compat; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_version_is_the_pyproject_version():
    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert pytest_ckpt_compat.__version__ == declared


def _type_checking_imports(path: Path) -> dict[str, str]:
    """``name -> module`` of the ``from .X import name`` lines under ``if TYPE_CHECKING:``."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level == 1, ast.unparse(imp)
                found.update({alias.name: imp.module for alias in imp.names})
    return found


def test_the_public_list_is_one_list_that_type_checkers_can_read():
    """``__all__`` is spelled out, the ``TYPE_CHECKING`` mirror names the same objects as the lazy
    table, and nothing else is public."""
    init = ROOT / "pytest_ckpt_compat" / "__init__.py"
    exports = pytest_ckpt_compat._EXPORTS
    assert _type_checking_imports(init) == exports
    literal = next(
        n.value for n in ast.parse(init.read_text()).body if isinstance(n, ast.Assign) and n.targets[0].id == "__all__"
    )
    assert isinstance(literal, ast.List)  # not computed: static analysis reads it
    assert sorted(pytest_ckpt_compat.__all__) == sorted([*exports, "__version__"])


@pytest.mark.parametrize(
    "spelling",
    [
        "pytest_ckpt_compat.errors",
        "pytest_ckpt_compat.ops",
        "pytest_ckpt_compat.lightning",
        "pytest_ckpt_compat.testing",
    ],
)
def test_every_public_module_lists_its_public_names_and_each_resolves(spelling):
    module = importlib.import_module(spelling)
    assert module.__all__ == sorted(set(module.__all__), key=module.__all__.index)  # no duplicates
    assert [n for n in module.__all__ if not hasattr(module, n)] == []
    if spelling.endswith(("errors", "ops")):  # everything they define is public
        defined = {
            n
            for n, obj in vars(module).items()
            if not n.startswith("_")
            and getattr(obj, "__module__", module.__name__) == module.__name__
            and not inspect.ismodule(obj)
            and n != "annotations"
        }
        assert sorted(defined - set(module.__all__)) == []
