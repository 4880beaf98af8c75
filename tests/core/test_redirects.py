"""The redirect table: exact names, modules, precedence, validation, conflicts, the ledger record."""

from __future__ import annotations

import pytest

from pytest_ckpt_compat.core import redirects
from pytest_ckpt_compat.core.catalogue import Catalogue
from pytest_ckpt_compat.core.errors import CatalogueError


def test_exact_and_module_redirects_resolve_with_exact_first_and_longest_module_next():
    table = redirects.Redirects(
        [
            ("lib.loss.MSELoss", "lib.metrics.MSE", "a"),
            ("lib.loss.*", "lib.metrics.*", "b"),
            ("lib.loss.deep.*", "lib.other.*", "c"),
        ]
    )
    assert table.resolve("lib.loss", "MSELoss") == ("lib.metrics", "MSE")
    assert table.resolve("lib.loss", "SIDLoss") == ("lib.metrics", "SIDLoss")
    assert table.resolve("lib.loss.sub", "X") == ("lib.metrics.sub", "X")
    assert table.resolve("lib.loss.deep.x", "Y") == ("lib.other.x", "Y")
    assert table.resolve("lib.lossy", "X") is None  # a prefix of the name, not of the module
    assert table.resolve("lib.metrics", "MSE") is None  # one step: a target is not redirected again
    assert table.declared_by("lib.loss", "MSELoss") == "a"
    assert table.declared_by("lib.loss.sub", "X") == "b"
    assert len(table) == 3 and bool(table) and not redirects.EMPTY


def test_the_same_redirect_twice_is_fine_two_targets_for_one_name_are_a_conflict():
    assert redirects.Redirects([("a.B", "c.D", "x"), ("a.B", "c.D", "y")]).resolve("a", "B") == ("c", "D")
    with pytest.raises(CatalogueError, match=r"redirect conflict: 'a.B' -> 'c.D' \(x\) and -> 'c.E' \(y\)"):
        redirects.Redirects([("a.B", "c.D", "x"), ("a.B", "c.E", "y")])


@pytest.mark.parametrize(
    "mapping, message",
    [
        (["a.B"], "must be a dict"),
        ({"a.B": 3}, "both names must be strings"),
        ({"a.*": "c.D"}, "a module .* maps to a module"),
        ({"B": "c.D"}, "is not 'module.ClassName'"),
        ({"a.B c": "c.D"}, "is not 'module.ClassName'"),
    ],
)
def test_malformed_redirects_are_a_catalogue_error_naming_where(mapping, message):
    with pytest.raises(CatalogueError, match=message):
        redirects.validate(mapping, "migration file x.py")
    with pytest.raises(CatalogueError, match="catalogue 'team'"):
        Catalogue(name="team", path=".", version_key="team_version", redirects=mapping)


def test_catalogue_and_unit_redirects_are_collected_with_their_origin(tmp_path):
    (tmp_path / "v1_0_0__10_moved.py").write_text(
        '"""The metric moved."""\nID = "team-moved"\nVERSION = "1.0.0"\n'
        'REDIRECTS = {"team.old.Metric": "team.new.Metric"}\n\ndef upgrade(c):\n    return c\n'
    )
    catalogue = Catalogue(name="team", path=tmp_path, version_key="team_version", redirects={"team.a.*": "team.b.*"})
    assert catalogue.migrations[0].redirects == (("team.old.Metric", "team.new.Metric"),)
    table = redirects.from_catalogues([catalogue])
    assert table.resolve("team.old", "Metric") == ("team.new", "Metric")
    assert table.declared_by("team.old", "Metric") == "team:team-moved"
    assert table.declared_by("team.a.x", "Y") == "catalogue team"
    assert catalogue.subset(catalogue.migrations).redirects == {"team.a.*": "team.b.*"}


def test_a_name_mapped_to_itself_resolves_but_is_not_recorded_as_a_move():
    table = redirects.Redirects([("lib.*", "lib.*", "x"), ("lib.old.A", "lib.new.B", "x")])
    assert table.resolve("lib.util", "Act") == ("lib.util", "Act")
    assert table.resolve("lib.old", "A") == ("lib.new", "B")
    checkpoint: dict = {}
    redirects.record(checkpoint, {"lib.util.Act": "lib.util.Act", "lib.old.A": "lib.new.B"})
    assert checkpoint == {"ckpt_compat": {"redirects": {"lib.old.A": "lib.new.B"}}}


def test_record_merges_into_the_ledger_and_leaves_a_foreign_ledger_alone():
    checkpoint: dict = {"ckpt_compat": {"redirects": {"a.B": "c.D"}}}
    redirects.record(checkpoint, {"x.Y": "z.Y"})
    assert checkpoint["ckpt_compat"]["redirects"] == {"a.B": "c.D", "x.Y": "z.Y"}
    assert redirects.recorded(checkpoint) == {"a.B": "c.D", "x.Y": "z.Y"}
    foreign: dict = {"ckpt_compat": "someone else's"}
    redirects.record(foreign, {"x.Y": "z.Y"})
    assert foreign == {"ckpt_compat": "someone else's"}
    empty: dict = {}
    redirects.record(empty, {})
    assert empty == {} and redirects.recorded(empty) == {}
