"""Hostile golden folders: a registry line or a ``meta.json`` the matrix cannot use is a named error.

Each case names the file (and the line, for the registry); a name that would leave the cache is
refused before anything is written. Nothing here needs torch or a network.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pytest_ckpt_compat.core.errors import GoldenError
from pytest_ckpt_compat.goldens.registry import read_registry
from pytest_ckpt_compat.goldens.store import GoldenStore

DATA = b"golden bytes"
HEX = hashlib.sha256(DATA).hexdigest()


def _folder(tmp_path: Path, registry: str, meta=None) -> Path:
    root = tmp_path / "golden"
    (root / "1.0.0").mkdir(parents=True)
    (root / "1.0.0" / "end_of_fit.ckpt").write_bytes(DATA)
    (root / "registry.txt").write_text(registry)
    if meta is not None:
        (root / "1.0.0" / "meta.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return root


@pytest.mark.parametrize(
    "name",
    ["../outside.ckpt", "1.0.0/../../outside.ckpt", "/tmp/outside.ckpt", "1.0.0//end.ckpt", "1.0.0\\end.ckpt", "x"],
)
def test_a_name_that_leaves_the_cache_is_refused(tmp_path, name):
    root = _folder(tmp_path, f"# goldens\n{name} sha256:{HEX}\n")
    with pytest.raises(GoldenError, match=rf"{root / 'registry.txt'}:2: golden name .* must be"):
        read_registry(root)


def test_dotdot_name_writes_nothing_outside_the_cache(tmp_path):
    """Before: ``../escaped.ckpt`` was fetched to ``cache/../escaped.ckpt`` and the run passed."""
    root = _folder(tmp_path, f"../escaped.ckpt sha256:{HEX}\n")
    (tmp_path / "escaped.ckpt").write_bytes(DATA)  # the source folder's parent holds the "golden"
    with pytest.raises(GoldenError, match="must be a relative path"):
        GoldenStore(root, tmp_path / "cache" / "inner").fetch("../escaped.ckpt")
    assert not (tmp_path / "cache" / "escaped.ckpt").exists()


@pytest.mark.parametrize("digest", ["sha256:xyz", f"sha256:{HEX[:-1]}", f"md5:{HEX}", f"sha256:{HEX}0"])
def test_a_bad_hash_format_names_file_and_line(tmp_path, digest):
    root = _folder(tmp_path, f"1.0.0/end_of_fit.ckpt {digest}\n")
    with pytest.raises(GoldenError, match=rf"{root / 'registry.txt'}:1: expected '<relative/path> sha256:<64 hex"):
        read_registry(root)


def test_a_duplicate_names_file_and_line(tmp_path):
    line = f"1.0.0/end_of_fit.ckpt sha256:{HEX}\n"
    root = _folder(tmp_path, line + "\n" + line)
    with pytest.raises(GoldenError, match=rf"{root / 'registry.txt'}:3: duplicate entry '1.0.0/end_of_fit.ckpt'"):
        read_registry(root)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
        ([1, 2], "the top level must be a JSON object, not list: \\[1, 2\\]"),
        ({"scenarios": "end_of_fit"}, "'scenarios' must be a JSON object, not str"),
        ({"scenarios": {"end_of_fit": "a string"}}, "scenario 'end_of_fit' must be a JSON object, not str"),
        ({"scenarios": {"end_of_fit": {"truth": [1]}}}, "scenario 'end_of_fit' field 'truth' must be a JSON object"),
        ({"scenarios": {"end_of_fit": {"saved_version": 1.6}}}, "field 'saved_version' must be a JSON string"),
        ('{"scenarios": {', "is not valid JSON: .*line 1 column 16"),
    ],
    ids=["deep", "list", "scenarios-str", "scenario-str", "truth-list", "version-number", "broken"],
)
def test_hostile_meta_json_is_a_golden_error_naming_the_file(tmp_path, meta, message):
    root = _folder(tmp_path, f"1.0.0/end_of_fit.ckpt sha256:{HEX}\n", meta)
    store = GoldenStore(root, tmp_path / "cache")
    with pytest.raises(GoldenError, match=rf"{root / '1.0.0' / 'meta.json'}:? .*{message}"):
        store.goldens  # noqa: B018 (reading is the test)


def test_a_well_formed_meta_json_is_read(tmp_path):
    meta = {"scenarios": {"end_of_fit": {"saved_version": "1.0.0", "truth": {"hparams": {}}, "requires": None}}}
    root = _folder(tmp_path, f"1.0.0/end_of_fit.ckpt sha256:{HEX}\n", meta)
    (golden,) = GoldenStore(root, tmp_path / "cache").goldens
    assert (golden.name, golden.saved_version, golden.truth, golden.requires) == (
        "1.0.0/end_of_fit.ckpt",
        "1.0.0",
        {"hparams": {}},
        None,
    )
