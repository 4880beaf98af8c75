"""Lightning's real catalogue: well-formed, documented, ordered, and free of Lightning imports."""
from __future__ import annotations

import ast
import re

import pytest

from pytest_ckpt_compat import Catalogue, CatalogueError, lightning_catalogue
from pytest_ckpt_compat.versions import parse

UNIT_FILE = re.compile(r"^v(\d+)_(\d+)_(\d+)__(\d+)_[a-z0-9_]+\.py$")


def test_catalogue_is_not_empty_and_ids_are_unique():
    units = lightning_catalogue().migrations
    assert len(units) >= 10
    assert len({m.id for m in units}) == len(units)


@pytest.mark.parametrize("unit", lightning_catalogue().migrations, ids=lambda m: m.id)
def test_each_unit_is_documented_and_named_after_its_version(unit):
    match = UNIT_FILE.match(unit.path.name)
    assert match, f"{unit.path.name}: name it v<major>_<minor>_<patch>__<order>_<title>.py"
    assert parse(".".join(match.groups()[:3])) == unit.version
    assert int(match.group(4)) == unit.order
    assert unit.id.startswith("pl-") and str(unit.version) in unit.id
    doc = unit.doc
    assert "Why:" in doc and "When:" in doc, f"{unit.id}: the docstring must say why and when"
    tree = ast.parse(unit.path.read_text())
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        for name in names:
            assert not name.split(".")[0] in {"lightning", "pytorch_lightning", "lightning_fabric"}, f"{unit.id} imports {name}"


def test_application_order_is_sorted_by_version_then_order():
    keys = [(m.version, m.order) for m in lightning_catalogue().migrations]
    assert keys == sorted(keys)


def test_malformed_units_are_reported(tmp_path):
    (tmp_path / "v1_0_0__10_nodoc.py").write_text("ID='x'\nVERSION='1.0.0'\ndef upgrade(c):\n    return c\n")
    with pytest.raises(CatalogueError, match="no docstring"):
        Catalogue(name="t", path=tmp_path).migrations
    (tmp_path / "v1_0_0__10_nodoc.py").write_text('"""Doc."""\nVERSION = "1.0.0"\n')
    with pytest.raises(CatalogueError, match="lacks ID, upgrade"):
        Catalogue(name="t", path=tmp_path).migrations
    (tmp_path / "v1_0_0__10_nodoc.py").write_text('"""Doc."""\nID = "a"\nVERSION = "1.0.0"\ndef upgrade(c):\n    return c\n')
    (tmp_path / "v1_1_0__10_dup.py").write_text('"""Doc."""\nID = "a"\nVERSION = "1.1.0"\ndef upgrade(c):\n    return c\n')
    with pytest.raises(CatalogueError, match="id 'a' is used by"):
        Catalogue(name="t", path=tmp_path).migrations
    with pytest.raises(CatalogueError, match="does not exist"):
        Catalogue(name="t", path=tmp_path / "missing").migrations
