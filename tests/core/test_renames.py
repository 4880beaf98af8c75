"""Pattern renames of state-dict keys: _metadata, optimizer param_names and callback weight copies follow."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

from pytest_ckpt_compat.core import renames


def _compiled_checkpoint() -> dict:
    """What Lightning saves for a module whose ``net`` was compiled (keys and metadata as torch writes them)."""
    sd = OrderedDict()
    sd["net._orig_mod.0.weight"] = torch.ones(2, 2)
    sd["net._orig_mod.1.running_mean"] = torch.zeros(2)
    sd["net._orig_mod.1.num_batches_tracked"] = torch.tensor(3)
    sd["head.weight"] = torch.ones(1, 2)
    sd._metadata = OrderedDict(
        [
            ("", {"version": 1}),
            ("net", {"version": 1}),  # the OptimizedModule wrapper
            ("net._orig_mod", {"version": 1}),
            ("net._orig_mod.0", {"version": 1}),
            ("net._orig_mod.1", {"version": 2}),  # BatchNorm: the version decides how num_batches_tracked loads
            ("head", {"version": 1}),
        ]
    )
    names = list(sd)
    names.remove("net._orig_mod.1.running_mean")
    names.remove("net._orig_mod.1.num_batches_tracked")
    return {
        "state_dict": sd,
        "optimizer_states": [
            {"state": {0: {"step": torch.tensor(1.0)}}, "param_groups": [{"params": [0, 1], "param_names": names}]}
        ],
        "callbacks": {
            "StochasticWeightAveraging": {
                "n_averaged": torch.tensor(2),
                "average_model_state": {
                    "module.net._orig_mod.0.weight": torch.ones(2, 2),
                    "n_averaged": torch.tensor(2),
                },
            },
            "EarlyStopping{'monitor': 'val_loss'}": {"best_score": torch.tensor(0.5), "wait_count": 1},
        },
    }


def test_compiled_keys_become_eager_with_metadata_param_names_and_swa_copy_aligned():
    checkpoint = _compiled_checkpoint()
    optimizer_state = checkpoint["optimizer_states"][0]["state"]
    weight = checkpoint["state_dict"]["net._orig_mod.0.weight"]
    assert renames.strip_compiled_prefix(checkpoint) is checkpoint
    sd = checkpoint["state_dict"]
    assert type(sd) is OrderedDict
    assert list(sd) == ["net.0.weight", "net.1.running_mean", "net.1.num_batches_tracked", "head.weight"]
    assert sd["net.0.weight"] is weight  # tensors are not copied
    assert sd._metadata == OrderedDict(
        [
            ("", {"version": 1}),
            ("net", {"version": 1}),
            ("net.0", {"version": 1}),
            ("net.1", {"version": 2}),
            ("head", {"version": 1}),
        ]
    )
    group = checkpoint["optimizer_states"][0]["param_groups"][0]
    assert group["param_names"] == ["net.0.weight", "head.weight"] and group["params"] == [0, 1]
    assert checkpoint["optimizer_states"][0]["state"] is optimizer_state  # positional: unchanged
    swa = checkpoint["callbacks"]["StochasticWeightAveraging"]["average_model_state"]
    assert list(swa) == ["module.net.0.weight", "n_averaged"]
    assert checkpoint["callbacks"]["EarlyStopping{'monitor': 'val_loss'}"]["wait_count"] == 1


def test_strip_is_idempotent_and_add_then_strip_is_the_identity():
    checkpoint = _compiled_checkpoint()
    renames.strip_compiled_prefix(checkpoint)
    eager_keys, eager_meta = list(checkpoint["state_dict"]), dict(checkpoint["state_dict"]._metadata)
    assert renames.rename_state_keys(checkpoint, [(renames.COMPILED_SEGMENT, "")]) == {}
    renames.add_compiled_prefix(checkpoint, "net")
    assert list(checkpoint["state_dict"])[:3] == [
        "net._orig_mod.0.weight",
        "net._orig_mod.1.running_mean",
        "net._orig_mod.1.num_batches_tracked",
    ]
    renames.add_compiled_prefix(checkpoint, "net")  # already compiled keys are left alone
    assert "net._orig_mod._orig_mod.0.weight" not in checkpoint["state_dict"]
    renames.strip_compiled_prefix(checkpoint)
    assert list(checkpoint["state_dict"]) == eager_keys
    assert {k: v for k, v in checkpoint["state_dict"]._metadata.items()} == eager_meta


def test_wrapper_prefix_both_ways_and_a_user_regex():
    checkpoint = {"state_dict": OrderedDict([("module.encoder.layers.0.w", torch.ones(1))])}
    checkpoint["state_dict"]._metadata = OrderedDict([("", {}), ("module", {}), ("module.encoder", {"version": 3})])
    renames.strip_wrapper_prefix(checkpoint)
    assert list(checkpoint["state_dict"]) == ["encoder.layers.0.w"]
    assert checkpoint["state_dict"]._metadata == OrderedDict([("", {}), ("encoder", {"version": 3})])
    done = renames.rename_state_keys(checkpoint, [(r"^encoder\.layers\.(\d+)\.", r"encoder.blocks.\1.")])
    assert done == {"encoder.layers.0.w": "encoder.blocks.0.w"}
    renames.add_wrapper_prefix(checkpoint)
    renames.add_wrapper_prefix(checkpoint)
    assert list(checkpoint["state_dict"]) == ["module.encoder.blocks.0.w"]


def test_a_rename_that_merges_two_keys_raises_instead_of_dropping_a_tensor():
    checkpoint = {"state_dict": {"a.w": torch.ones(1), "b.w": torch.zeros(1)}}
    with pytest.raises(ValueError, match=r"'b.w' and another key both become 'c.w'"):
        renames.rename_state_keys(checkpoint, [(r"^[ab]\.", "c.")])
    assert list(checkpoint["state_dict"]) == ["a.w", "b.w"]  # left as it was


def test_no_state_dict_or_no_match_changes_nothing():
    assert renames.rename_state_keys({}, [renames.prefix("x.", "")]) == {}
    checkpoint = {"state_dict": {"w": torch.ones(1)}}
    state = checkpoint["state_dict"]
    assert renames.rename_state_keys(checkpoint, [renames.prefix("x.", "")]) == {}
    assert checkpoint["state_dict"] is state
