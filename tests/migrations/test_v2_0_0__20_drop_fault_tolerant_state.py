"""pl-2.0.0-drop-fault-tolerant-state: _results and dataloader_state_dict leave the loop state."""

from __future__ import annotations

import torch

from tests.migrations.helpers_pre16 import same, snapshot, tensors, unit

UNIT = unit("pl-2.0.0-drop-fault-tolerant-state")


def results():  # hand-made ResultCollection.state_dict() (1.5 - 1.9, fault tolerant)
    return {"training": True, "_batch_size": torch.tensor(8), "device": "cpu", "items": {}}


def ft_loops():
    return {
        "fit_loop": {
            "state_dict": {},
            "epoch_loop.state_dict": {
                "_batches_that_stepped": 3,
                "dataloader_state_dict": [{"num_batches_fetched": 3}],
            },
            "epoch_loop._results": results(),
            "epoch_loop.val_loop._results": results(),
            "epoch_loop.val_loop.epoch_loop.state_dict": {"dataloader_state_dict": [{"x": 1}]},
        },
        "validate_loop": {"state_dict": {}, "_results": results(), "epoch_loop.state_dict": {}},
    }


def test_moved_under_original_paths():
    ckpt = {"loops": ft_loops()}
    originals = tensors(ckpt)
    UNIT.upgrade(ckpt)
    assert ckpt["loops"] == {
        "fit_loop": {
            "state_dict": {},
            "epoch_loop.state_dict": {"_batches_that_stepped": 3},
            "epoch_loop.val_loop.epoch_loop.state_dict": {},
        },
        "validate_loop": {"state_dict": {}, "epoch_loop.state_dict": {}},
    }
    dropped = ckpt["ckpt_compat"]["dropped"]
    assert sorted(dropped) == [
        "loops/fit_loop/epoch_loop._results",
        "loops/fit_loop/epoch_loop.state_dict/dataloader_state_dict",
        "loops/fit_loop/epoch_loop.val_loop._results",
        "loops/fit_loop/epoch_loop.val_loop.epoch_loop.state_dict/dataloader_state_dict",
        "loops/validate_loop/_results",
    ]
    assert dropped["loops/fit_loop/epoch_loop.state_dict/dataloader_state_dict"] == [{"num_batches_fetched": 3}]
    kept = tensors(ckpt)
    assert len(kept) == 3 and all(any(a is b for b in originals) for a in kept)


def test_idempotent_and_optional():
    ckpt = {"loops": ft_loops()}
    once = snapshot(UNIT.upgrade(ckpt))
    assert same(UNIT.upgrade(ckpt), once)
    for plain in ({}, {"loops": {}}, {"loops": {"fit_loop": {"epoch_loop.state_dict": {"_batches_that_stepped": 1}}}}):
        expected = snapshot(plain)
        assert UNIT.upgrade(plain) == expected
