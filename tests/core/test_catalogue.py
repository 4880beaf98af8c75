"""Lightning's real catalogue: well-formed, documented, ordered, and free of Lightning imports."""

from __future__ import annotations

import ast
import dataclasses
import re

import pytest

from pytest_ckpt_compat import Catalogue, CatalogueError, lightning_catalogue
from pytest_ckpt_compat.core.versions import parse

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
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        for name in names:
            assert name.split(".")[0] not in {"lightning", "pytorch_lightning", "lightning_fabric"}, (
                f"{unit.id} imports {name}"
            )


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
    (tmp_path / "v1_0_0__10_nodoc.py").write_text(
        '"""Doc."""\nID = "a"\nVERSION = "1.0.0"\ndef upgrade(c):\n    return c\n'
    )
    (tmp_path / "v1_1_0__10_dup.py").write_text(
        '"""Doc."""\nID = "a"\nVERSION = "1.1.0"\ndef upgrade(c):\n    return c\n'
    )
    with pytest.raises(CatalogueError, match="id 'a' is used by"):
        Catalogue(name="t", path=tmp_path).migrations
    with pytest.raises(CatalogueError, match="does not exist"):
        Catalogue(name="t", path=tmp_path / "missing").migrations


def _unit(folder, name: str, uid: str, version: str, extra: str = "") -> None:
    (folder / name).write_text(
        f'"""Doc."""\nID = {uid!r}\nVERSION = {version!r}\n{extra}def upgrade(c):\n    return c\n'
    )


def test_requires_must_name_an_earlier_unit(tmp_path):
    _unit(tmp_path, "v1_0_0__10_a.py", "a", "1.0.0")
    _unit(tmp_path, "v1_1_0__10_b.py", "b", "1.1.0", "REQUIRES = ('a',)\n")
    assert [m.requires for m in Catalogue(name="t", path=tmp_path).migrations] == [(), ("a",)]
    _unit(tmp_path, "v0_9_0__10_c.py", "c", "0.9.0", "REQUIRES = ('b',)\n")
    with pytest.raises(CatalogueError, match=r"v0_9_0__10_c.py requires 'b', which sorts after it"):
        Catalogue(name="t", path=tmp_path).migrations
    _unit(tmp_path, "v0_9_0__10_c.py", "c", "0.9.0", "REQUIRES = ('gone',)\n")
    with pytest.raises(CatalogueError, match=r"requires 'gone', which is not in the catalogue"):
        Catalogue(name="t", path=tmp_path).migrations


def test_reader_side_must_say_why(tmp_path):
    _unit(tmp_path, "v2_6_0__10_a.py", "a", "2.6.0", "READER_SIDE = '  torch refuses it  '\n")
    (unit,) = Catalogue(name="t", path=tmp_path).migrations
    assert (unit.reader_side, unit.any_target) == ("torch refuses it", True)
    for bad in ("''", "True", "'   '"):
        _unit(tmp_path, "v2_6_0__10_a.py", "a", "2.6.0", f"READER_SIDE = {bad}\n")
        with pytest.raises(CatalogueError, match=r"v2_6_0__10_a.py: READER_SIDE must say why"):
            Catalogue(name="t", path=tmp_path).migrations


def test_reader_side_units_require_only_reader_side_units(tmp_path):
    _unit(tmp_path, "v2_5_0__10_plain.py", "plain", "2.5.0")
    _unit(tmp_path, "v2_6_0__10_r.py", "r", "2.6.0", "READER_SIDE = 'why'\nREQUIRES = ('plain',)\n")
    with pytest.raises(CatalogueError, match=r"v2_6_0__10_r.py is READER_SIDE .* requires 'plain'"):
        Catalogue(name="t", path=tmp_path).migrations
    _unit(tmp_path, "v2_5_0__10_plain.py", "plain", "2.5.0", "READER_SIDE = 'why too'\n")
    assert [m.id for m in Catalogue(name="t", path=tmp_path).migrations] == ["plain", "r"]


def test_only_the_reader_side_units_apply_whatever_the_target():
    units = [m.id for m in lightning_catalogue().migrations if m.any_target]
    assert units == ["pl-2.6.0-scheduler-functions-as-data", "pl-2.6.0-hparams-paths-as-strings"]


def test_counters_unit_declares_that_it_reads_the_fault_tolerant_unit():
    units = {m.id: m for m in lightning_catalogue().migrations}
    assert units["pl-1.6.0-loops-from-counters"].requires == ("pl-1.6.0-fault-tolerant-loop-layouts",)


def test_subset_keeps_name_and_key_and_only_the_given_units():
    catalogue = lightning_catalogue()
    first, second = catalogue.migrations[:2]
    subset = catalogue.subset([second], target_version="1.2.3")
    assert (subset.name, subset.version_key, subset.target_version) == (catalogue.name, catalogue.version_key, "1.2.3")
    assert subset.migrations == [second] and subset.migrations[0] is second
    assert catalogue.migrations[:2] == [first, second]  # the original is untouched
    stranger = dataclasses.replace(first, id="not-in-it")
    with pytest.raises(CatalogueError, match="has no unit not-in-it"):
        catalogue.subset([stranger])
