"""pl-2.6.0-scheduler-functions-as-data: pickled scheduler functions become the data newer torch stores."""

from __future__ import annotations

import io

import pytest
import torch
from torch.optim.lr_scheduler import CyclicLR, OneCycleLR

from tests.migrations.helpers_pre16 import same, snapshot, unit

UNIT = unit("pl-2.6.0-scheduler-functions-as-data")


def _optimizer():
    return torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.01, momentum=0.9)


def _stepped(scheduler, n=3):
    for _ in range(n):
        scheduler.optimizer.step()
        scheduler.step()
    return scheduler


def _weights_only_round_trip(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def old_onecycle_state(strategy="cos"):
    """What torch < 2.4 saved: the annealing function itself, no ``_anneal_func_type``."""
    sched = _stepped(OneCycleLR(_optimizer(), max_lr=0.1, total_steps=10, anneal_strategy=strategy))
    state = sched.state_dict()
    del state["_anneal_func_type"]
    state["anneal_func"] = getattr(sched, "_annealing_" + strategy)
    return sched, state


def old_cyclic_state():
    """What torch < 2.2 saved: the built-in scale function, no ``_scale_fn_custom``."""
    sched = _stepped(CyclicLR(_optimizer(), base_lr=0.001, max_lr=0.1, step_size_up=2))
    state = sched.state_dict()
    del state["_scale_fn_custom"]
    state["scale_fn"] = sched._triangular_scale_fn
    return sched, state


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_onecycle_anneal_func_becomes_its_type(strategy):
    sched, state = old_onecycle_state(strategy)
    ckpt = {"lr_schedulers": [state]}
    with pytest.raises(Exception, match="weights_only|Unsupported|getattr"):
        _weights_only_round_trip(ckpt)  # torch refuses the pickled function
    UNIT.upgrade(ckpt)
    assert "anneal_func" not in state and state["_anneal_func_type"] == strategy
    loaded = _weights_only_round_trip(ckpt)["lr_schedulers"][0]
    fresh = OneCycleLR(_optimizer(), max_lr=0.1, total_steps=10)  # default "cos": the state decides
    fresh.load_state_dict(loaded)
    assert fresh.state_dict() == sched.state_dict()
    assert "anneal_func" in ckpt["ckpt_compat"]["notes"][UNIT.id]


def test_cyclic_scale_fn_dropped_and_custom_none():
    sched, state = old_cyclic_state()
    with pytest.raises(KeyError, match="_scale_fn_custom"):  # torch >= 2.2 pops it on load
        CyclicLR(_optimizer(), base_lr=0.001, max_lr=0.1, step_size_up=2).load_state_dict(dict(state))
    ckpt = {"lr_schedulers": [state]}
    UNIT.upgrade(ckpt)
    assert "scale_fn" not in state and state["_scale_fn_custom"] is None
    fresh = CyclicLR(_optimizer(), base_lr=0.001, max_lr=0.1, step_size_up=2)
    fresh.load_state_dict(_weights_only_round_trip(ckpt)["lr_schedulers"][0])
    assert fresh.state_dict() == sched.state_dict()
    assert fresh.scale_fn(1.0) == 1.0  # the triangular function, rebuilt from mode


def test_cyclic_without_scale_fn_gets_custom_none():  # torch 2.0 / 2.1 shape
    _, state = old_cyclic_state()
    del state["scale_fn"]
    UNIT.upgrade({"lr_schedulers": [state]})
    assert state["_scale_fn_custom"] is None


def test_user_functions_and_other_states_untouched_idempotent():
    def my_scale(x):
        return 0.5

    _, cyclic = old_cyclic_state()
    cyclic["scale_fn"] = my_scale
    ckpt = {"lr_schedulers": [cyclic, {"step_size": 1, "gamma": 0.5, "last_epoch": 2}, "not a dict"]}
    before = snapshot(ckpt)
    UNIT.upgrade(ckpt)
    assert ckpt["lr_schedulers"][0]["scale_fn"] is my_scale and "_scale_fn_custom" not in ckpt["lr_schedulers"][0]
    assert ckpt["lr_schedulers"][1:] == before["lr_schedulers"][1:] and "ckpt_compat" not in ckpt
    _, state = old_onecycle_state()
    ckpt = {"lr_schedulers": [state]}
    once = snapshot(UNIT.upgrade(ckpt))
    assert same(UNIT.upgrade(ckpt), once)
    assert UNIT.upgrade({}) == {} and UNIT.upgrade({"lr_schedulers": None}) == {"lr_schedulers": None}


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_swalr_anneal_func_becomes_its_strategy_in_both_places(strategy):
    """What torch <= 2.8 saved for SWALR, in lr_schedulers and in SWA's callback state (Lightning 1.6+)."""
    from torch.optim.swa_utils import SWALR

    sched = _stepped(SWALR(_optimizer(), swa_lr=0.05, anneal_epochs=2, anneal_strategy=strategy))
    state = sched.state_dict()
    del state["_anneal_strategy"]
    state["anneal_func"] = getattr(SWALR, "_cosine_anneal" if strategy == "cos" else "_linear_anneal")
    ckpt = {"lr_schedulers": [dict(state)], "callbacks": {"StochasticWeightAveraging": {"scheduler_state": state}}}
    with pytest.raises(Exception, match="weights_only|Unsupported|getattr"):
        _weights_only_round_trip(ckpt)
    UNIT.upgrade(ckpt)
    loaded = _weights_only_round_trip(ckpt)
    for saved in (loaded["lr_schedulers"][0], loaded["callbacks"]["StochasticWeightAveraging"]["scheduler_state"]):
        assert "anneal_func" not in saved and saved["_anneal_strategy"] == strategy
        fresh = SWALR(_optimizer(), swa_lr=0.05)  # default "cos": the state decides
        fresh.load_state_dict(saved)
        assert fresh.state_dict() == sched.state_dict() and fresh.anneal_func(0.5) == sched.anneal_func(0.5)
    notes = ckpt["ckpt_compat"]["notes"][UNIT.id]
    assert "lr_schedulers[0].anneal_func" in str(notes) and "scheduler_state.anneal_func" in str(notes)
