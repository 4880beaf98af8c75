"""The shared operations of the migration units (``pytest_ckpt_compat.core.ops``)."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import numpy as np
import torch

from pytest_ckpt_compat.core import engine, ledger, ops
from pytest_ckpt_compat.core.ops import to_plain

OPS_FILE = Path(ops.__file__)


def test_numpy_rng_state_keeps_its_numbers():
    state = np.random.RandomState(7).get_state()  # ('MT19937', uint32[624], pos, has_gauss, cached)
    plain = to_plain({"rng": state, "n": np.int64(3), "fn": torch.add, "tags": {"b", "a"}, 1: (1.5, None)})
    assert plain["rng"][0] == "MT19937" and plain["rng"][1].dtype == torch.int64  # uint32 widened, see below
    assert plain["rng"][1].tolist() == state[1].tolist()
    assert plain["rng"][2:] == [int(state[2]), int(state[3]), float(state[4])]
    assert plain["n"] == 3 and type(plain["n"]) is int
    assert plain["fn"] == "torch.add" and plain["tags"] == ["a", "b"] and plain[1] == [1.5, None]
    buffer = io.BytesIO()
    torch.save(plain, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["fn"] == "torch.add"


def test_unsigned_arrays_are_widened_so_that_torch_before_2_3_reads_them():
    """torch < 2.3 has no uint16/32/64 tensor: a uint32 one pickles ``torch.uint32`` and ``_rebuild_tensor_v3``."""
    top = np.iinfo(np.uint64).max
    plain = to_plain(
        {
            "u16": np.array([0, 65535], dtype=np.uint16),
            "u32": np.array([[0, 4294967295]], dtype=np.uint32),
            "u64": np.array([[0, top]], dtype=np.uint64),
            "u8": np.array([255], dtype=np.uint8),
        }
    )
    assert (plain["u16"].dtype, plain["u16"].tolist()) == (torch.int32, [0, 65535])
    assert (plain["u32"].dtype, plain["u32"].tolist()) == (torch.int64, [[0, 4294967295]])
    assert plain["u64"] == [[0, top]] and type(plain["u64"][0][1]) is int
    assert (plain["u8"].dtype, plain["u8"].tolist()) == (torch.uint8, [255])  # torch has always had uint8
    buffer = io.BytesIO()
    torch.save(plain, buffer)
    assert b"uint32" not in buffer.getvalue() and b"_rebuild_tensor_v3" not in buffer.getvalue()


def test_devices_and_dtypes_become_their_names():
    """torch 2.0's weights_only table has no ``torch.device`` and no ``torch.bool`` / ``torch.uint8`` objects."""
    plain = to_plain({"device": torch.device("cpu"), "dtypes": [torch.float32, torch.bool, torch.uint8]})
    assert plain == {"device": "cpu", "dtypes": ["torch.float32", "torch.bool", "torch.uint8"]}


def test_to_plain_keeps_tensors_by_identity_and_names_non_string_keys():
    t = torch.ones(2)
    plain = to_plain({"t": t, (1, 2): "x", "arr": np.array([1.0, 2.0])})
    assert plain["t"] is t
    assert plain["(1, 2)"] == "x"
    assert torch.equal(plain["arr"], torch.tensor([1.0, 2.0], dtype=torch.float64))


def test_engine_and_ops_use_the_key_of_the_ledger():
    assert ops.LEDGER_KEY == ledger.KEY == "ckpt_compat"
    assert engine.LEDGER_KEY is ops.LEDGER_KEY is ledger.KEY


def test_ops_imports_only_the_ledger_of_this_package():
    """The engine imports ops; ops importing the engine/catalogue (or Lightning) would be a cycle or a leak."""
    tree = ast.parse(OPS_FILE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            imported.update(f"{base}{a.name}" if base == "." else base for a in node.names)
    assert imported == {"__future__", "typing", "torch", ".ledger"}


def test_ledger_is_created_once_and_kept():
    checkpoint = {"epoch": 1}
    first = ops.ledger(checkpoint)
    assert first == {} and checkpoint["ckpt_compat"] is first
    first["applied"] = {"lightning": ["x"]}
    assert ops.ledger(checkpoint) is first
    assert checkpoint == {"epoch": 1, "ckpt_compat": {"applied": {"lightning": ["x"]}}}


def test_drop_moves_the_value_unchanged_and_returns_its_path():
    value = {"scale": torch.tensor(2.0)}
    checkpoint = {"ckpt_compat": {"applied": {}}}
    assert ops.drop(checkpoint, "amp_scaling_state", value) == "amp_scaling_state"
    assert checkpoint["ckpt_compat"]["dropped"]["amp_scaling_state"] is value
    assert checkpoint["ckpt_compat"]["applied"] == {}
    # without unique, the same path is overwritten (units that drop each path at most once)
    assert ops.drop(checkpoint, "amp_scaling_state", 3) == "amp_scaling_state"
    assert checkpoint["ckpt_compat"]["dropped"] == {"amp_scaling_state": 3}


def test_drop_unique_numbers_taken_paths():
    checkpoint: dict = {}
    assert ops.drop(checkpoint, "callbacks/a.B", 1, unique=True) == "callbacks/a.B"
    assert ops.drop(checkpoint, "callbacks/a.B", 2, unique=True) == "callbacks/a.B#2"
    assert ops.drop(checkpoint, "callbacks/a.B", 3, unique=True) == "callbacks/a.B#3"
    assert checkpoint == {"ckpt_compat": {"dropped": {"callbacks/a.B": 1, "callbacks/a.B#2": 2, "callbacks/a.B#3": 3}}}


def test_note_appends_per_unit_and_skips_repeats():
    checkpoint: dict = {}
    ops.note(checkpoint, "unit-a", "first")
    ops.note(checkpoint, "unit-a", "second")
    ops.note(checkpoint, "unit-a", "first")  # already recorded: idempotent
    ops.note(checkpoint, "unit-b", "other")
    assert checkpoint == {"ckpt_compat": {"notes": {"unit-a": "first; second", "unit-b": "other"}}}


def test_note_replaces_an_empty_previous_note():
    checkpoint = {"ckpt_compat": {"notes": {"unit-a": ""}}}
    ops.note(checkpoint, "unit-a", "text")
    assert checkpoint["ckpt_compat"]["notes"] == {"unit-a": "text"}


def test_rename_keys_moves_values_and_drops_on_collision():
    a, b, c = torch.zeros(1), {"scale": 1.0}, {"scale": 2.0}
    checkpoint = {"OldA": a, "OldB": b, "New": c, "keep": 0}
    renames = {"OldA": "NewA", "OldB": "New", "Missing": "Whatever"}
    assert ops.rename_keys(checkpoint, renames, checkpoint) == ["OldB"]
    assert checkpoint["NewA"] is a and checkpoint["New"] is c and checkpoint["keep"] == 0
    assert checkpoint["ckpt_compat"] == {"dropped": {"OldB": b}}
    assert set(checkpoint) == {"NewA", "New", "keep", "ckpt_compat"}


def test_rename_keys_first_old_name_wins_a_shared_new_name():
    checkpoint = {"X1": 1, "X2": 2}
    assert ops.rename_keys(checkpoint, {"X1": "X", "X2": "X"}, checkpoint) == ["X2"]
    assert checkpoint == {"X": 1, "ckpt_compat": {"dropped": {"X2": 2}}}


def test_rename_keys_in_a_nested_mapping_with_a_prefix():
    loop = {"old": {"a": 1}, "new": {"b": 2}}
    checkpoint = {"loops": {"fit_loop": loop}}
    assert ops.rename_keys(loop, {"old": "new"}, checkpoint, dropped_prefix="loops/fit_loop/") == ["old"]
    assert loop == {"new": {"b": 2}}
    assert checkpoint["ckpt_compat"] == {"dropped": {"loops/fit_loop/old": {"a": 1}}}


def test_rename_keys_without_matches_changes_nothing():
    checkpoint = {"a": 1}
    assert ops.rename_keys(checkpoint, {"b": "c"}, checkpoint) == []
    assert checkpoint == {"a": 1}


def test_get_in_walks_dicts_and_never_raises():
    data = {"a": {"b": {"c": 0}}, "l": [1]}
    assert ops.get_in(data, "a", "b", "c") == 0
    assert ops.get_in(data, "a", "x", "c") is None
    assert ops.get_in(data, "l", 0) is None  # lists are not walked
    assert ops.get_in(data, "a", "b", "c", "d", default=-1) == -1
    assert ops.get_in(None, "a", default="d") == "d"
    assert ops.get_in(data) is data


def test_fit_loop_only_returns_a_dict():
    fit = {"epoch_progress": {}}
    assert ops.fit_loop({"loops": {"fit_loop": fit}}) is fit
    for checkpoint in ({}, {"loops": None}, {"loops": []}, {"loops": {}}, {"loops": {"fit_loop": None}}):
        assert ops.fit_loop(checkpoint) is None


def test_progress_builders():
    assert ops.tracker(ops.RC) == {"completed": 0, "ready": 0}
    assert list(ops.tracker(ops.PROCESSED)) == ["ready", "started", "processed", "completed"]
    assert ops.progress(ops.STARTED) == {
        "current": {"completed": 0, "ready": 0, "started": 0},
        "total": {"completed": 0, "ready": 0, "started": 0},
    }
    batch = ops.progress(ops.PROCESSED, True)
    assert batch["is_last_batch"] is False and batch["current"] is not batch["total"]


def test_fit_loop_skeleton_is_lightning_1_6_0_without_the_logger_step():
    skeleton = ops.fit_loop_skeleton_1_6_0()
    assert skeleton["epoch_loop.state_dict"] == {}
    assert skeleton["epoch_loop.batch_loop.optimizer_loop.optim_progress"] == {
        "optimizer": {"step": ops.progress(ops.RC), "zero_grad": ops.progress(ops.STARTED)},
        "optimizer_position": 0,
    }
    assert skeleton["epoch_progress"] == ops.progress(ops.PROCESSED)
    assert skeleton["epoch_loop.val_loop.epoch_loop.batch_progress"] == ops.progress(ops.PROCESSED, True)
    expected_keys = {
        "epoch_loop.batch_loop.manual_loop.optim_step_progress",
        "epoch_loop.batch_loop.manual_loop.state_dict",
        "epoch_loop.batch_loop.optimizer_loop.optim_progress",
        "epoch_loop.batch_loop.optimizer_loop.state_dict",
        "epoch_loop.batch_loop.state_dict",
        "epoch_loop.batch_progress",
        "epoch_loop.scheduler_progress",
        "epoch_loop.state_dict",
        "epoch_loop.val_loop.dataloader_progress",
        "epoch_loop.val_loop.epoch_loop.batch_progress",
        "epoch_loop.val_loop.epoch_loop.state_dict",
        "epoch_loop.val_loop.state_dict",
        "epoch_progress",
        "state_dict",
    }
    assert set(skeleton) == expected_keys
    other = ops.fit_loop_skeleton_1_6_0()
    other["epoch_progress"]["current"]["ready"] = 5
    assert skeleton["epoch_progress"]["current"]["ready"] == 0  # fresh dicts on every call


def test_fit_loop_skeleton_matches_lightning_when_installed():
    """The same state Lightning's own migration builds (its ``_batches_that_stepped`` is the units' to set)."""
    import pytest

    migration = pytest.importorskip("lightning.pytorch.utilities.migration.migration")
    theirs = migration._get_fit_loop_initial_state_1_6_0()
    theirs["epoch_loop.state_dict"].pop("_batches_that_stepped")
    assert ops.fit_loop_skeleton_1_6_0() == theirs


def test_differences_is_exact_structural_equality():
    """The one comparison of checkpoint trees: types, dtypes, key sets (and order when asked) all count."""
    import torch

    from pytest_ckpt_compat.ops import differences

    assert differences({"a": [1, (2.0, "x")], "t": torch.ones(2)}, {"a": [1, (2.0, "x")], "t": torch.ones(2)}) == []
    assert differences({"a": 1, "b": 1.0}, {"a": True, "b": 1}) == ["/a: 1 -> True", "/b: 1.0 -> 1"]
    assert differences({"t": torch.ones(2)}, {"t": torch.ones(2, dtype=torch.float64)}) == ["/t"]
    assert differences({"x": 1}, {"y": 1}) == ["/x removed", "/y added"]
    assert differences([1, 2], (1, 2)) == [": [1, 2] -> (1, 2)"]
    assert differences({"a": 1, "b": 2}, {"b": 2, "a": 1}) == []
    assert differences({"a": 1, "b": 2}, {"b": 2, "a": 1}, ordered_keys=True) == [
        ".: key order ['a', 'b'] -> ['b', 'a']"
    ]
