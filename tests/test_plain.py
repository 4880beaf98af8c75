"""Dropped state is kept as plain, weights_only-loadable data."""
from __future__ import annotations

import io

import numpy as np
import torch

from pytest_ckpt_compat.plain import to_plain


def test_numpy_rng_state_keeps_its_numbers():
    state = np.random.RandomState(7).get_state()  # ('MT19937', uint32[624], pos, has_gauss, cached)
    plain = to_plain({"rng": state, "n": np.int64(3), "fn": torch.add, "tags": {"b", "a"}, 1: (1.5, None)})
    assert plain["rng"][0] == "MT19937" and torch.equal(plain["rng"][1], torch.as_tensor(state[1]))
    assert plain["rng"][2:] == [int(state[2]), int(state[3]), float(state[4])]
    assert plain["n"] == 3 and type(plain["n"]) is int
    assert plain["fn"] == "torch.add" and plain["tags"] == ["a", "b"] and plain[1] == [1.5, None]
    buffer = io.BytesIO()
    torch.save(plain, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["fn"] == "torch.add"
